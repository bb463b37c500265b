-- Sentiment and anger (情绪识别) of every message from a customer: the score, the label
-- and the rules that fired. A case's rows in time order are its sentiment trajectory.
CREATE TABLE message_sentiments (
    message_id BIGINT PRIMARY KEY REFERENCES case_messages(id),
    case_id BIGINT NOT NULL REFERENCES cases(id),
    score DOUBLE PRECISION NOT NULL,
    label TEXT NOT NULL,
    -- JSON array of {"rule", "evidence"}.
    rules TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX message_sentiments_by_case ON message_sentiments (case_id, at);
