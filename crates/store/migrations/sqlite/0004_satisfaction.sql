-- Follow-up and satisfaction (回访与满意度): when a case is solved, a follow-up task for
-- its owner and a CSAT request for the customer; the answer lands on the case.

ALTER TABLE cases ADD COLUMN csat_score BIGINT;
ALTER TABLE cases ADD COLUMN csat_reason TEXT;

CREATE TABLE follow_ups (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    case_id BIGINT NOT NULL REFERENCES cases(id),
    owner_id BIGINT REFERENCES users(id),
    due_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    done_at BIGINT,
    done_by BIGINT REFERENCES users(id)
);
CREATE INDEX follow_ups_by_case ON follow_ups (case_id, id);
CREATE INDEX follow_ups_open ON follow_ups (status, due_at);

CREATE TABLE satisfaction_requests (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    case_id BIGINT NOT NULL REFERENCES cases(id),
    token TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    answered_at BIGINT,
    score BIGINT,
    reason TEXT,
    answered_via TEXT
);
CREATE INDEX satisfaction_by_case ON satisfaction_requests (case_id, id);
