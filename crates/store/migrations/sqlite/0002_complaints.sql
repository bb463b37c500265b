-- Complaints (投诉): the record on a complaint case, its steps through the core flow
-- and escalation, reviews, compensation, promises, appeals, the versioned rule set,
-- notifications and customer tracking links.

CREATE TABLE complaint_rule_sets (
    id INTEGER PRIMARY KEY,
    version BIGINT NOT NULL UNIQUE,
    rules TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    created_by BIGINT REFERENCES users(id),
    created_at BIGINT NOT NULL
);

CREATE TABLE complaints (
    id INTEGER PRIMARY KEY,
    case_id BIGINT NOT NULL UNIQUE REFERENCES cases(id),
    stage TEXT NOT NULL,
    severity TEXT NOT NULL,
    behaviour TEXT NOT NULL,
    purpose TEXT NOT NULL,
    cause TEXT NOT NULL,
    fault_side TEXT NOT NULL,
    fault_detail TEXT,
    dissatisfaction TEXT NOT NULL,
    needs TEXT NOT NULL,
    key_points TEXT NOT NULL,
    validity TEXT NOT NULL,
    validity_reason TEXT NOT NULL DEFAULT '',
    product TEXT NOT NULL DEFAULT '',
    reputation_risk BOOLEAN NOT NULL DEFAULT FALSE,
    subject_user_id BIGINT REFERENCES users(id),
    escalation_level BIGINT NOT NULL DEFAULT 0,
    escalation_trigger TEXT,
    escalated_at BIGINT,
    rule_set_version BIGINT NOT NULL,
    stage_changed_at BIGINT NOT NULL,
    resolved_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX complaints_by_stage ON complaints (stage, id);
CREATE INDEX complaints_by_subject ON complaints (subject_user_id);

CREATE TABLE complaint_steps (
    id INTEGER PRIMARY KEY,
    complaint_id BIGINT NOT NULL REFERENCES complaints(id),
    from_stage TEXT,
    to_stage TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    proposal TEXT,
    decision TEXT,
    escalation_trigger TEXT,
    actor_id BIGINT REFERENCES users(id),
    actor_label TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX complaint_steps_by_complaint ON complaint_steps (complaint_id, id);

CREATE TABLE complaint_reviews (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    complaint_id BIGINT NOT NULL REFERENCES complaints(id),
    level TEXT NOT NULL,
    body_kind TEXT,
    body_name TEXT,
    body_reference TEXT,
    reason TEXT NOT NULL DEFAULT '',
    opened_at BIGINT NOT NULL,
    opened_by BIGINT REFERENCES users(id),
    decision TEXT,
    decided_at BIGINT,
    decided_by BIGINT REFERENCES users(id),
    accepted BOOLEAN
);
CREATE INDEX complaint_reviews_by_complaint ON complaint_reviews (complaint_id, id);

CREATE TABLE compensations (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    case_id BIGINT NOT NULL REFERENCES cases(id),
    amount_cents BIGINT NOT NULL,
    currency TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    offered_by BIGINT REFERENCES users(id),
    offered_at BIGINT NOT NULL,
    decided_at BIGINT
);
CREATE INDEX compensations_by_case ON compensations (case_id, id);

CREATE TABLE promises (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    case_id BIGINT NOT NULL REFERENCES cases(id),
    description TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    owner_id BIGINT NOT NULL REFERENCES users(id),
    status TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    created_by BIGINT REFERENCES users(id),
    created_at BIGINT NOT NULL,
    resolved_at BIGINT,
    alerted_at BIGINT,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX promises_by_case ON promises (case_id, id);
-- The sweep reads only open promises that are due and not yet alerted.
CREATE INDEX promises_due ON promises (status, alerted_at, due_at);

CREATE TABLE complaint_appeals (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    complaint_id BIGINT NOT NULL REFERENCES complaints(id),
    employee_id BIGINT NOT NULL REFERENCES users(id),
    statement TEXT NOT NULL,
    status TEXT NOT NULL,
    decision_reason TEXT NOT NULL DEFAULT '',
    decided_by BIGINT REFERENCES users(id),
    created_at BIGINT NOT NULL,
    decided_at BIGINT
);
CREATE INDEX complaint_appeals_by_complaint ON complaint_appeals (complaint_id, id);
CREATE INDEX complaint_appeals_by_status ON complaint_appeals (status, id);

CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL,
    case_id BIGINT REFERENCES cases(id),
    message_en TEXT NOT NULL,
    message_zh TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    read_at BIGINT
);
CREATE INDEX notifications_by_user ON notifications (user_id, id);

CREATE TABLE case_tracking (
    case_id BIGINT PRIMARY KEY REFERENCES cases(id),
    token TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
