-- Service levels (服务时限): business calendars per team, SLA policies, and one clock
-- per case and metric. The sweep finds due clocks by next_check_at alone.

CREATE TABLE business_calendars (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    spec TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);

ALTER TABLE teams ADD COLUMN calendar_id BIGINT REFERENCES business_calendars(id);

CREATE TABLE sla_policies (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    rank BIGINT NOT NULL,
    case_kind TEXT,
    priority TEXT,
    severity TEXT,
    first_response_ms BIGINT,
    next_response_ms BIGINT,
    resolution_ms BIGINT,
    warn_at_percent BIGINT NOT NULL,
    escalate_on_breach BOOLEAN NOT NULL,
    active BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE sla_clocks (
    id INTEGER PRIMARY KEY,
    case_id BIGINT NOT NULL REFERENCES cases(id),
    metric TEXT NOT NULL,
    policy_id BIGINT NOT NULL REFERENCES sla_policies(id),
    calendar_id BIGINT REFERENCES business_calendars(id),
    target_ms BIGINT NOT NULL,
    warn_at_percent BIGINT NOT NULL,
    escalate_on_breach BOOLEAN NOT NULL,
    state TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    resumed_at BIGINT NOT NULL,
    elapsed_ms BIGINT NOT NULL DEFAULT 0,
    due_at BIGINT,
    warn_at BIGINT,
    warned BOOLEAN NOT NULL DEFAULT FALSE,
    next_check_at BIGINT,
    stopped_at BIGINT,
    breached_at BIGINT,
    UNIQUE (case_id, metric)
);
CREATE INDEX sla_clocks_next_check ON sla_clocks (next_check_at) WHERE next_check_at IS NOT NULL;
