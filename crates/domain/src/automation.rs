//! Automations (自动化规则): "when this happens and these hold, do that" — for example, a
//! serious complaint becomes urgent, its team's supervisors are told, and it goes to
//! internal review. Rules are data, validated before they are saved, and every firing
//! says which conditions held and what was done.

use crate::cases::{CaseKind, CaseStatus, Priority};
use crate::complaints::{Behaviour, Cause, Severity};
use crate::customers::ValueClass;
use crate::timeline::Channel;
use crate::{DomainError, Labelled, required_text};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

labelled_enum! {
    /// When a rule is considered.
    Trigger ("trigger") {
        CaseCreated = "case_created", "A case is created", "新建工单时";
        CustomerMessage = "customer_message", "The customer writes", "客户来信时";
        ComplaintRecorded = "complaint_recorded", "A complaint is recorded", "投诉受理时";
    }
}

labelled_enum! {
    /// What a condition looks at.
    Field ("field") {
        Kind = "kind", "Case kind", "工单类型";
        Priority = "priority", "Priority", "优先级";
        Channel = "channel", "Channel", "渠道";
        Status = "status", "Status", "状态";
        Subject = "subject", "Subject", "主题";
        Message = "message", "The customer's message", "客户消息";
        CustomerValue = "customer_value", "Customer value", "客户价值";
        ComplaintSeverity = "complaint_severity", "Complaint severity", "投诉严重程度";
        ComplaintBehaviour = "complaint_behaviour", "Complaint behaviour", "投诉行为";
        ComplaintCause = "complaint_cause", "Complaint cause", "投诉原因";
        ReputationRisk = "reputation_risk", "Reputation risk", "声誉风险";
    }
}

labelled_enum! {
    Operator ("operator") {
        Is = "is", "is", "等于";
        IsNot = "is_not", "is not", "不等于";
        /// For text fields: contains (case- and width-insensitive).
        Contains = "contains", "contains", "包含";
        /// One of a list.
        In = "in", "is one of", "属于";
    }
}

/// One condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub field: Field,
    pub operator: Operator,
    /// A value of the field's vocabulary (e.g. `serious`), text for `contains`,
    /// `true`/`false` for flags; a list of values for `in`.
    pub value: Vec<String>,
}

/// What a rule does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    SetPriority {
        priority: Priority,
    },
    /// Moves the case to a team's queue (a transfer with the rule as its reason).
    AssignTeam {
        team_id: String,
    },
    /// An internal note on the case.
    AddNote {
        text: String,
    },
    /// Tells the supervisors of the case's team.
    NotifySupervisors {
        message: String,
    },
    /// Sends an unreviewed complaint to internal review.
    EscalateComplaint,
}

/// A rule as written by an admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    pub trigger: Trigger,
    /// All must hold; none means always.
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
    /// Lower positions run first.
    pub position: Option<i64>,
    pub active: Option<bool>,
}

fn check_value(field: Field, operator: Operator, value: &str) -> Result<(), String> {
    fn parse<T: Labelled>(value: &str) -> Result<(), String> {
        T::parse(value).map(|_| ()).map_err(|e| e.to_string())
    }
    match field {
        Field::Kind => parse::<CaseKind>(value),
        Field::Priority => parse::<Priority>(value),
        Field::Channel => parse::<Channel>(value),
        Field::Status => parse::<CaseStatus>(value),
        Field::CustomerValue => parse::<ValueClass>(value),
        Field::ComplaintSeverity => parse::<Severity>(value),
        Field::ComplaintBehaviour => parse::<Behaviour>(value),
        Field::ComplaintCause => parse::<Cause>(value),
        Field::ReputationRisk => match value {
            "true" | "false" => Ok(()),
            _ => Err("is `true` or `false`".into()),
        },
        Field::Subject | Field::Message => {
            if value.trim().is_empty() {
                Err("must not be empty".into())
            } else if operator != Operator::Contains {
                Err("text is matched with `contains`".into())
            } else {
                Ok(())
            }
        }
    }
}

impl RuleSpec {
    pub fn validate(&self) -> Result<(), DomainError> {
        required_text("name", &self.name, 200)?;
        if self.conditions.len() > 20 {
            return Err(DomainError::invalid("conditions", "at most 20"));
        }
        if self.actions.is_empty() || self.actions.len() > 10 {
            return Err(DomainError::invalid("actions", "one to ten actions"));
        }
        for (i, condition) in self.conditions.iter().enumerate() {
            let count = condition.value.len();
            let ok_count = match condition.operator {
                Operator::In => (1..=50).contains(&count),
                _ => count == 1,
            };
            if !ok_count {
                return Err(DomainError::invalid(
                    "conditions",
                    format!(
                        "conditions[{i}]: `{}` takes {}",
                        condition.operator,
                        if condition.operator == Operator::In {
                            "1 to 50 values"
                        } else {
                            "exactly one value"
                        }
                    ),
                ));
            }
            if condition.operator == Operator::Contains
                && !matches!(condition.field, Field::Subject | Field::Message)
            {
                return Err(DomainError::invalid(
                    "conditions",
                    format!("conditions[{i}]: `contains` is for subject and message"),
                ));
            }
            if matches!(condition.field, Field::Message)
                && self.trigger == Trigger::ComplaintRecorded
            {
                return Err(DomainError::invalid(
                    "conditions",
                    format!("conditions[{i}]: there is no message when a complaint is recorded"),
                ));
            }
            if matches!(
                condition.field,
                Field::ComplaintSeverity
                    | Field::ComplaintBehaviour
                    | Field::ComplaintCause
                    | Field::ReputationRisk
            ) && self.trigger != Trigger::ComplaintRecorded
            {
                return Err(DomainError::invalid(
                    "conditions",
                    format!(
                        "conditions[{i}]: complaint fields are known when a complaint is recorded; use the trigger complaint_recorded"
                    ),
                ));
            }
            for value in &condition.value {
                check_value(condition.field, condition.operator, value).map_err(|why| {
                    DomainError::invalid(
                        "conditions",
                        format!("conditions[{i}].value `{value}`: {why}"),
                    )
                })?;
            }
        }
        for (i, action) in self.actions.iter().enumerate() {
            match action {
                Action::AddNote { text } | Action::NotifySupervisors { message: text }
                    if text.trim().is_empty() || text.chars().count() > 2000 =>
                {
                    return Err(DomainError::invalid(
                        "actions",
                        format!("actions[{i}]: the text must be 1 to 2000 characters"),
                    ));
                }
                Action::EscalateComplaint if self.trigger != Trigger::ComplaintRecorded => {
                    return Err(DomainError::invalid(
                        "actions",
                        format!(
                            "actions[{i}]: escalate_complaint needs the trigger complaint_recorded"
                        ),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The facts a rule is tested against: field → value, text already folded.
pub type Facts = BTreeMap<Field, String>;

impl Condition {
    /// Whether the condition holds, and how it reads in the explanation.
    pub fn holds(&self, facts: &Facts) -> bool {
        let Some(actual) = facts.get(&self.field) else {
            return false;
        };
        match self.operator {
            Operator::Is => self.value.first().is_some_and(|v| v == actual),
            Operator::IsNot => self.value.first().is_some_and(|v| v != actual),
            Operator::In => self.value.iter().any(|v| v == actual),
            Operator::Contains => self
                .value
                .first()
                .is_some_and(|v| actual.contains(&crate::text::search_key(v))),
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{} {} {}",
            self.field.label_zh(),
            self.operator.label_zh(),
            self.value.join(" / ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serious_rule() -> RuleSpec {
        RuleSpec {
            name: "严重投诉加急".into(),
            trigger: Trigger::ComplaintRecorded,
            conditions: vec![Condition {
                field: Field::ComplaintSeverity,
                operator: Operator::Is,
                value: vec!["serious".into()],
            }],
            actions: vec![
                Action::SetPriority {
                    priority: Priority::Urgent,
                },
                Action::EscalateComplaint,
            ],
            position: None,
            active: None,
        }
    }

    #[test]
    fn rules_are_validated() {
        serious_rule().validate().expect("valid");
        let mut bad = serious_rule();
        bad.conditions[0].value = vec!["catastrophic".into()];
        assert!(bad.validate().is_err());
        let mut bad = serious_rule();
        bad.trigger = Trigger::CaseCreated;
        assert!(
            bad.validate().is_err(),
            "complaint fields need the complaint trigger"
        );
        let mut bad = serious_rule();
        bad.actions.clear();
        assert!(bad.validate().is_err());
        let mut bad = serious_rule();
        bad.conditions[0] = Condition {
            field: Field::Priority,
            operator: Operator::Contains,
            value: vec!["high".into()],
        };
        assert!(bad.validate().is_err());
        let json = serde_json::json!({"action": "set_priority", "priority": "urgent"});
        assert_eq!(
            serde_json::from_value::<Action>(json).expect("action"),
            Action::SetPriority {
                priority: Priority::Urgent
            }
        );
    }

    #[test]
    fn conditions_match_facts() {
        let mut facts = Facts::new();
        facts.insert(
            Field::Subject,
            crate::text::search_key("我要投诉到１２３１５"),
        );
        facts.insert(Field::Priority, "high".into());
        let contains = Condition {
            field: Field::Subject,
            operator: Operator::Contains,
            value: vec!["12315".into()],
        };
        assert!(contains.holds(&facts), "full-width digits folded");
        let one_of = Condition {
            field: Field::Priority,
            operator: Operator::In,
            value: vec!["high".into(), "urgent".into()],
        };
        assert!(one_of.holds(&facts));
        let missing = Condition {
            field: Field::Channel,
            operator: Operator::IsNot,
            value: vec!["email".into()],
        };
        assert!(!missing.holds(&facts), "an unknown fact never holds");
    }
}
