-- Conversations with the bot (机器人会话) and the intents admins add (意图).
--
-- A conversation belongs to one customer on one channel. Every turn is kept — the
-- customer's words and the bot's reply with what it knew (intent, confidence, matches,
-- sentiment) — and, once the bot hands over (转人工), the case that a person took it to.
CREATE TABLE bot_conversations (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    channel TEXT NOT NULL,
    -- open | handed_over | closed
    status TEXT NOT NULL,
    -- Clarifying questions asked in a row, and the entries the last one offered (JSON).
    clarifications BIGINT NOT NULL,
    offered TEXT NOT NULL,
    case_id INTEGER REFERENCES cases(id),
    handoff_reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX bot_conversations_by_customer ON bot_conversations (customer_id, created_at);
CREATE INDEX bot_conversations_by_case ON bot_conversations (case_id);

CREATE TABLE bot_turns (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES bot_conversations(id),
    -- customer | bot
    role TEXT NOT NULL,
    text TEXT NOT NULL,
    -- The bot's turns: the outcome and the whole reply as JSON.
    outcome TEXT,
    detail TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX bot_turns_by_conversation ON bot_turns (conversation_id, id);

-- Intents added by admins, next to the built-in ones.
CREATE TABLE bot_intents (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    label_zh TEXT NOT NULL,
    label_en TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Examples for any intent, built-in or added. Deleting one marks it; every change
-- raises its version, so the sum of versions tells a server its model is stale.
CREATE TABLE bot_intent_examples (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    intent TEXT NOT NULL,
    text TEXT NOT NULL,
    language TEXT NOT NULL,
    created_by INTEGER REFERENCES users(id),
    created_at BIGINT NOT NULL,
    deleted_at BIGINT,
    version BIGINT NOT NULL DEFAULT 1,
    UNIQUE (intent, text)
);
CREATE INDEX bot_intent_examples_by_intent ON bot_intent_examples (intent, id);
