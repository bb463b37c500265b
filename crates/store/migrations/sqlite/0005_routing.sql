-- Routing (工单分配) and agent stress (压力管理): how each team's queue hands out cases,
-- each agent's capacity, skills and availability, the skills a case needs, and the
-- stress flags raised to supervisors.

CREATE TABLE team_routing (
    team_id BIGINT PRIMARY KEY REFERENCES teams(id),
    strategy TEXT NOT NULL,
    auto_assign BOOLEAN NOT NULL,
    auto_pause_on_severe BOOLEAN NOT NULL,
    -- {"case kind": ["skill", …]}: skills every case of that kind needs.
    kind_skills TEXT NOT NULL DEFAULT '{}',
    stress_thresholds TEXT NOT NULL DEFAULT '{}',
    updated_by BIGINT REFERENCES users(id),
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE agent_routing_profiles (
    user_id BIGINT PRIMARY KEY REFERENCES users(id),
    capacity BIGINT NOT NULL,
    skills TEXT NOT NULL DEFAULT '[]',
    availability TEXT NOT NULL,
    availability_changed_at BIGINT,
    on_duty_since BIGINT,
    paused BOOLEAN NOT NULL DEFAULT FALSE,
    paused_reason TEXT,
    paused_by BIGINT REFERENCES users(id),
    paused_at BIGINT,
    last_assigned_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE case_required_skills (
    case_id BIGINT NOT NULL REFERENCES cases(id),
    skill TEXT NOT NULL,
    PRIMARY KEY (case_id, skill)
);

CREATE TABLE agent_stress_flags (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL REFERENCES users(id),
    level TEXT NOT NULL,
    reasons TEXT NOT NULL,
    facts TEXT NOT NULL,
    raised_at BIGINT NOT NULL,
    auto_paused BOOLEAN NOT NULL DEFAULT FALSE,
    acknowledged_by BIGINT REFERENCES users(id),
    acknowledged_at BIGINT,
    acknowledgement_note TEXT NOT NULL DEFAULT '',
    cleared_at BIGINT
);
CREATE INDEX agent_stress_flags_by_user ON agent_stress_flags (user_id, id);
CREATE INDEX agent_stress_flags_uncleared ON agent_stress_flags (id) WHERE cleared_at IS NULL;

-- A team's queue: its unassigned cases, oldest first.
CREATE INDEX cases_queue ON cases (team_id, created_at, id) WHERE assignee_id IS NULL;
-- An agent's latest cases, for the streak of angry customers.
CREATE INDEX cases_by_assignee_created ON cases (assignee_id, created_at, id);
