-- The knowledge base (知识库) and the bot (智能客服): entries with their similar questions
-- and every version, the bot's thresholds, and the questions it could not answer.

CREATE TABLE kb_entries (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    question TEXT NOT NULL,
    -- JSON array of the similar questions (相似问法).
    similar_questions TEXT NOT NULL,
    answer TEXT NOT NULL,
    category TEXT NOT NULL,
    language TEXT NOT NULL,
    status TEXT NOT NULL,
    created_by INTEGER REFERENCES users(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX kb_entries_by_status ON kb_entries (status, id);

-- Every version of every entry as it was saved (the current one included).
CREATE TABLE kb_entry_versions (
    entry_id INTEGER NOT NULL REFERENCES kb_entries(id),
    version BIGINT NOT NULL,
    question TEXT NOT NULL,
    similar_questions TEXT NOT NULL,
    answer TEXT NOT NULL,
    category TEXT NOT NULL,
    language TEXT NOT NULL,
    status TEXT NOT NULL,
    edited_by INTEGER REFERENCES users(id),
    edited_at BIGINT NOT NULL,
    PRIMARY KEY (entry_id, version)
);

-- The bot's settings: one row.
CREATE TABLE bot_settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    answer_threshold DOUBLE PRECISION NOT NULL,
    clarify_threshold DOUBLE PRECISION NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);

-- Questions the bot handed over for want of an answer, grouped by their normalised text.
CREATE TABLE bot_unanswered (
    id INTEGER PRIMARY KEY,
    normalized TEXT NOT NULL UNIQUE,
    example TEXT NOT NULL,
    language TEXT NOT NULL,
    best_entry_id INTEGER REFERENCES kb_entries(id),
    best_confidence DOUBLE PRECISION NOT NULL,
    times BIGINT NOT NULL,
    first_seen_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX bot_unanswered_by_times ON bot_unanswered (times DESC, id);
