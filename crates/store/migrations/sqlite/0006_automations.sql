-- Automations (自动化规则): rules as data, and a record of every firing with its reasons.

CREATE TABLE automation_rules (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    trigger_event TEXT NOT NULL,
    spec TEXT NOT NULL,
    position BIGINT NOT NULL,
    active BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX automation_rules_by_trigger ON automation_rules (trigger_event, active, position);

CREATE TABLE automation_firings (
    id INTEGER PRIMARY KEY,
    rule_id BIGINT NOT NULL REFERENCES automation_rules(id),
    case_id BIGINT NOT NULL REFERENCES cases(id),
    trigger_event TEXT NOT NULL,
    explanation TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX automation_firings_by_case ON automation_firings (case_id, id);
