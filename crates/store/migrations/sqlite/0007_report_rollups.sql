-- Report roll-ups (报表汇总): each report reads per-day sums instead of scanning every
-- case. A row of report_case_days holds one UTC day's measures for everything (dim
-- 'all', ref_id 0), one team, one assignee or one first-contact owner (ref_id 0: none);
-- report_complaint_days counts the day's complaints per classification value.
--
-- Triggers mark the day of every case whose reported facts change as dirty; the
-- background sweep recomputes dirty days, and reports compute dirty days and partial
-- days at the edges of a period from the cases themselves, so a report is always exact.

CREATE INDEX cases_by_created ON cases (created_at, id);

CREATE TABLE report_case_days (
    dim TEXT NOT NULL,
    day BIGINT NOT NULL,
    ref_id BIGINT NOT NULL,
    cases BIGINT NOT NULL DEFAULT 0,
    fr_0 BIGINT NOT NULL DEFAULT 0,
    fr_1 BIGINT NOT NULL DEFAULT 0,
    fr_2 BIGINT NOT NULL DEFAULT 0,
    fr_3 BIGINT NOT NULL DEFAULT 0,
    fr_4 BIGINT NOT NULL DEFAULT 0,
    fr_5 BIGINT NOT NULL DEFAULT 0,
    fr_6 BIGINT NOT NULL DEFAULT 0,
    fr_7 BIGINT NOT NULL DEFAULT 0,
    fr_pending BIGINT NOT NULL DEFAULT 0,
    fr_sum BIGINT NOT NULL DEFAULT 0,
    sv_0 BIGINT NOT NULL DEFAULT 0,
    sv_1 BIGINT NOT NULL DEFAULT 0,
    sv_2 BIGINT NOT NULL DEFAULT 0,
    sv_3 BIGINT NOT NULL DEFAULT 0,
    sv_4 BIGINT NOT NULL DEFAULT 0,
    sv_5 BIGINT NOT NULL DEFAULT 0,
    sv_6 BIGINT NOT NULL DEFAULT 0,
    sv_7 BIGINT NOT NULL DEFAULT 0,
    sv_pending BIGINT NOT NULL DEFAULT 0,
    sv_sum BIGINT NOT NULL DEFAULT 0,
    formal BIGINT NOT NULL DEFAULT 0,
    front BIGINT NOT NULL DEFAULT 0,
    solved BIGINT NOT NULL DEFAULT 0,
    first_contact BIGINT NOT NULL DEFAULT 0,
    csat_sum BIGINT NOT NULL DEFAULT 0,
    csat_n BIGINT NOT NULL DEFAULT 0,
    first_response_met BIGINT NOT NULL DEFAULT 0,
    first_response_breached BIGINT NOT NULL DEFAULT 0,
    first_response_open BIGINT NOT NULL DEFAULT 0,
    next_response_met BIGINT NOT NULL DEFAULT 0,
    next_response_breached BIGINT NOT NULL DEFAULT 0,
    next_response_open BIGINT NOT NULL DEFAULT 0,
    resolution_met BIGINT NOT NULL DEFAULT 0,
    resolution_breached BIGINT NOT NULL DEFAULT 0,
    resolution_open BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (dim, day, ref_id)
);

CREATE TABLE report_complaint_days (
    dim TEXT NOT NULL,
    day BIGINT NOT NULL,
    value TEXT NOT NULL,
    detail TEXT NOT NULL,
    n BIGINT NOT NULL,
    repurchased BIGINT NOT NULL,
    PRIMARY KEY (dim, day, value, detail)
);

CREATE TABLE report_dirty_days (day BIGINT PRIMARY KEY);

-- Everything that exists now is computed by the sweep.
INSERT OR IGNORE INTO report_dirty_days (day) SELECT DISTINCT created_at / 86400000 FROM cases;

CREATE TRIGGER report_cases_insert AFTER INSERT ON cases BEGIN
    INSERT OR IGNORE INTO report_dirty_days (day) VALUES (NEW.created_at / 86400000);
END;
CREATE TRIGGER report_cases_update AFTER UPDATE OF kind, status, team_id, assignee_id, first_owner_id, first_response_at, solved_at, csat_score, created_at, customer_id ON cases
WHEN NEW.kind IS NOT OLD.kind OR NEW.status IS NOT OLD.status OR NEW.team_id IS NOT OLD.team_id
  OR NEW.assignee_id IS NOT OLD.assignee_id OR NEW.first_owner_id IS NOT OLD.first_owner_id
  OR NEW.first_response_at IS NOT OLD.first_response_at OR NEW.solved_at IS NOT OLD.solved_at
  OR NEW.csat_score IS NOT OLD.csat_score OR NEW.created_at IS NOT OLD.created_at
  OR NEW.customer_id IS NOT OLD.customer_id
BEGIN
    INSERT OR IGNORE INTO report_dirty_days (day) VALUES (NEW.created_at / 86400000);
    INSERT OR IGNORE INTO report_dirty_days (day) VALUES (OLD.created_at / 86400000);
END;
CREATE TRIGGER report_cases_delete AFTER DELETE ON cases BEGIN
    INSERT OR IGNORE INTO report_dirty_days (day) VALUES (OLD.created_at / 86400000);
END;
CREATE TRIGGER report_sla_clocks_insert AFTER INSERT ON sla_clocks
BEGIN
    INSERT OR IGNORE INTO report_dirty_days (day) SELECT created_at / 86400000 FROM cases WHERE id = NEW.case_id;
END;
CREATE TRIGGER report_sla_clocks_update AFTER UPDATE OF state ON sla_clocks
WHEN NEW.state IS NOT OLD.state
BEGIN
    INSERT OR IGNORE INTO report_dirty_days (day) SELECT created_at / 86400000 FROM cases WHERE id = NEW.case_id;
END;
CREATE TRIGGER report_sla_clocks_delete AFTER DELETE ON sla_clocks
BEGIN
    INSERT OR IGNORE INTO report_dirty_days (day) SELECT created_at / 86400000 FROM cases WHERE id = OLD.case_id;
END;
CREATE TRIGGER report_complaints_insert AFTER INSERT ON complaints
BEGIN
    INSERT OR IGNORE INTO report_dirty_days (day) SELECT created_at / 86400000 FROM cases WHERE id = NEW.case_id;
END;
CREATE TRIGGER report_complaints_update AFTER UPDATE OF stage, severity, behaviour, purpose, cause, fault_side, dissatisfaction, escalation_level, product, resolved_at ON complaints
BEGIN
    INSERT OR IGNORE INTO report_dirty_days (day) SELECT created_at / 86400000 FROM cases WHERE id = NEW.case_id;
END;
CREATE TRIGGER report_complaints_delete AFTER DELETE ON complaints
BEGIN
    INSERT OR IGNORE INTO report_dirty_days (day) SELECT created_at / 86400000 FROM cases WHERE id = OLD.case_id;
END;
CREATE TRIGGER report_case_transfers_insert AFTER INSERT ON case_transfers
BEGIN
    INSERT OR IGNORE INTO report_dirty_days (day) SELECT created_at / 86400000 FROM cases WHERE id = NEW.case_id;
END;
CREATE TRIGGER report_case_transfers_delete AFTER DELETE ON case_transfers
BEGIN
    INSERT OR IGNORE INTO report_dirty_days (day) SELECT created_at / 86400000 FROM cases WHERE id = OLD.case_id;
END;
CREATE TRIGGER report_case_status_changes_insert AFTER INSERT ON case_status_changes
BEGIN
    INSERT OR IGNORE INTO report_dirty_days (day) SELECT created_at / 86400000 FROM cases WHERE id = NEW.case_id;
END;
CREATE TRIGGER report_case_status_changes_delete AFTER DELETE ON case_status_changes
BEGIN
    INSERT OR IGNORE INTO report_dirty_days (day) SELECT created_at / 86400000 FROM cases WHERE id = OLD.case_id;
END;
-- A purchase after a complaint changes its repurchase figure.
CREATE TRIGGER report_customer_transactions_insert AFTER INSERT ON customer_transactions BEGIN
    INSERT OR IGNORE INTO report_dirty_days (day) SELECT created_at / 86400000 FROM cases WHERE customer_id = NEW.customer_id AND kind = 'complaint';
END;
CREATE TRIGGER report_customer_transactions_update AFTER UPDATE OF customer_id, occurred_at ON customer_transactions BEGIN
    INSERT OR IGNORE INTO report_dirty_days (day) SELECT created_at / 86400000 FROM cases WHERE customer_id = NEW.customer_id AND kind = 'complaint';
    INSERT OR IGNORE INTO report_dirty_days (day) SELECT created_at / 86400000 FROM cases WHERE customer_id = OLD.customer_id AND kind = 'complaint';
END;
CREATE TRIGGER report_customer_transactions_delete AFTER DELETE ON customer_transactions BEGIN
    INSERT OR IGNORE INTO report_dirty_days (day) SELECT created_at / 86400000 FROM cases WHERE customer_id = OLD.customer_id AND kind = 'complaint';
END;
