-- kefu core schema, SQLite. Timestamps are milliseconds since the Unix epoch.
-- Enumerations are stored as their snake_case names; JSON as TEXT.

CREATE TABLE teams (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    team_id BIGINT REFERENCES teams(id),
    password_hash TEXT,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    locale TEXT NOT NULL DEFAULT 'zh-CN',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    expires_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);

CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    organization_id BIGINT REFERENCES customers(id),
    value_class TEXT NOT NULL,
    position TEXT NOT NULL,
    supply_chain_role TEXT,
    lifecycle TEXT NOT NULL,
    lifecycle_changed_at BIGINT NOT NULL,
    lead_source TEXT,
    referrer_id BIGINT REFERENCES customers(id),
    qualification_need BOOLEAN,
    qualification_ability_to_pay BOOLEAN,
    qualification_authority BOOLEAN,
    communication_type TEXT,
    language TEXT NOT NULL DEFAULT '',
    needs TEXT NOT NULL DEFAULT '',
    hobbies TEXT NOT NULL DEFAULT '',
    notes TEXT NOT NULL DEFAULT '',
    lost_at BIGINT,
    lost_reason TEXT,
    custom_fields TEXT NOT NULL DEFAULT '{}',
    field_sources TEXT NOT NULL DEFAULT '{}',
    search_text TEXT NOT NULL,
    sort_key TEXT NOT NULL,
    created_by BIGINT REFERENCES users(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX customers_by_sort_key ON customers (sort_key, id);
CREATE INDEX customers_by_updated ON customers (updated_at, id);
CREATE INDEX customers_by_lifecycle ON customers (lifecycle, id);
CREATE INDEX customers_by_referrer ON customers (referrer_id);
CREATE INDEX customers_by_organization ON customers (organization_id);

CREATE TABLE customer_contacts (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    customer_id BIGINT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    value TEXT NOT NULL,
    display_value TEXT NOT NULL,
    is_primary BOOLEAN NOT NULL DEFAULT FALSE,
    source TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (channel, value)
);
CREATE INDEX customer_contacts_by_customer ON customer_contacts (customer_id);

CREATE TABLE lifecycle_transitions (
    id INTEGER PRIMARY KEY,
    customer_id BIGINT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    from_state TEXT,
    to_state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    actor_id BIGINT REFERENCES users(id),
    actor_label TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX lifecycle_transitions_by_customer ON lifecycle_transitions (customer_id, id);

CREATE TABLE customer_transactions (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    customer_id BIGINT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    occurred_at BIGINT NOT NULL,
    method TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    currency TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);
CREATE INDEX customer_transactions_by_customer ON customer_transactions (customer_id, occurred_at);

CREATE TABLE win_back_attempts (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    customer_id BIGINT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    occurred_at BIGINT NOT NULL,
    channel TEXT NOT NULL,
    outcome TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    actor_id BIGINT REFERENCES users(id),
    created_at BIGINT NOT NULL
);
CREATE INDEX win_back_attempts_by_customer ON win_back_attempts (customer_id, occurred_at);

CREATE TABLE custom_field_definitions (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    label_en TEXT NOT NULL,
    label_zh TEXT NOT NULL,
    field_type TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '[]',
    information_kind TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE cases (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    number BIGINT NOT NULL UNIQUE,
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    search_text TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    priority TEXT NOT NULL,
    channel TEXT NOT NULL,
    service_stage TEXT NOT NULL,
    technical BOOLEAN NOT NULL,
    charging TEXT NOT NULL,
    service_mode TEXT,
    recurrence TEXT NOT NULL,
    team_id BIGINT REFERENCES teams(id),
    assignee_id BIGINT REFERENCES users(id),
    first_owner_id BIGINT REFERENCES users(id),
    merged_into_id BIGINT REFERENCES cases(id),
    created_by BIGINT REFERENCES users(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    first_response_at BIGINT,
    solved_at BIGINT,
    closed_at BIGINT,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX cases_by_customer ON cases (customer_id, id);
CREATE INDEX cases_by_status ON cases (status, id);
CREATE INDEX cases_by_team ON cases (team_id, status);
CREATE INDEX cases_by_assignee ON cases (assignee_id, status);
CREATE INDEX cases_by_updated ON cases (updated_at, id);

CREATE TABLE case_messages (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    case_id BIGINT NOT NULL REFERENCES cases(id),
    kind TEXT NOT NULL,
    channel TEXT NOT NULL,
    author_id BIGINT REFERENCES users(id),
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX case_messages_by_case ON case_messages (case_id, id);

CREATE TABLE attachments (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    case_id BIGINT NOT NULL REFERENCES cases(id),
    message_id BIGINT REFERENCES case_messages(id),
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    data BLOB NOT NULL,
    uploaded_by BIGINT REFERENCES users(id),
    created_at BIGINT NOT NULL
);
CREATE INDEX attachments_by_case ON attachments (case_id, id);

CREATE TABLE case_transfers (
    id INTEGER PRIMARY KEY,
    case_id BIGINT NOT NULL REFERENCES cases(id),
    from_team_id BIGINT REFERENCES teams(id),
    to_team_id BIGINT REFERENCES teams(id),
    from_assignee_id BIGINT REFERENCES users(id),
    to_assignee_id BIGINT REFERENCES users(id),
    reason TEXT NOT NULL,
    actor_id BIGINT REFERENCES users(id),
    actor_label TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX case_transfers_by_case ON case_transfers (case_id, id);

CREATE TABLE case_status_changes (
    id INTEGER PRIMARY KEY,
    case_id BIGINT NOT NULL REFERENCES cases(id),
    from_status TEXT,
    to_status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    actor_id BIGINT REFERENCES users(id),
    actor_label TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX case_status_changes_by_case ON case_status_changes (case_id, id);

CREATE TABLE timeline_entries (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    customer_id BIGINT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    case_id BIGINT REFERENCES cases(id),
    kind TEXT NOT NULL,
    channel TEXT NOT NULL,
    direction TEXT NOT NULL,
    interaction_type TEXT NOT NULL,
    content_type TEXT NOT NULL,
    summary TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    actor_id BIGINT REFERENCES users(id),
    occurred_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX timeline_by_customer ON timeline_entries (customer_id, occurred_at, id);
CREATE INDEX timeline_by_case ON timeline_entries (case_id, id);
CREATE INDEX timeline_by_occurred ON timeline_entries (occurred_at, id);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL,
    actor_id BIGINT,
    actor_label TEXT NOT NULL,
    action TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    before TEXT,
    after TEXT
);
CREATE INDEX audit_by_object ON audit_log (object_type, object_id, id);
CREATE INDEX audit_by_actor ON audit_log (actor_id, id);

CREATE TABLE idempotency_keys (
    user_id BIGINT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status BIGINT NOT NULL,
    response TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

CREATE TABLE sequences (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO sequences (name, value) VALUES ('case_number', 1000);

CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    payload TEXT NOT NULL,
    run_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL DEFAULT 5,
    locked_by TEXT,
    locked_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX jobs_due ON jobs (queue, finished_at, run_at);

CREATE TABLE locks (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
