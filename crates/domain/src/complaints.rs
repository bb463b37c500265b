//! Complaints (投诉): the four classifications, the customer's psychological needs, and
//! the textbook's core flow with its escalation path as an explicit state machine.
//!
//! A help desk usually treats a complaint as a ticket with a high priority. The textbooks
//! treat it as a process with decision points — is there enough information? enough
//! authority? does the customer agree? — and an escalation ladder that ends, when nothing
//! else works, in advice on legal action. Each decision point is a stage here, each
//! stage says who may leave it and what the step must carry, and the rule set (one for
//! every customer, versioned) says how much each role may offer.

use crate::access::Role;
use crate::{DomainError, optional_text, required_text};
use serde::{Deserialize, Serialize};

labelled_enum! {
    /// 投诉的严重程度.
    Severity ("severity") {
        General = "general", "General", "一般投诉";
        Serious = "serious", "Serious", "严重投诉";
    }
}

labelled_enum! {
    /// How the customer behaves (投诉行为).
    Behaviour ("behaviour") {
        PassiveGrumbling = "passive_grumbling", "Passive grumbling", "消极抱怨型";
        NegativePublicity = "negative_publicity", "Negative publicity", "负面宣传型";
        AngryVenting = "angry_venting", "Angry venting", "愤怒发泄型";
        Aggressive = "aggressive", "Extreme / aggressive", "极端激进型";
    }
}

labelled_enum! {
    /// What the customer wants from complaining (投诉目的).
    Purpose ("purpose") {
        Suggestion = "suggestion", "Suggestion", "建议型";
        Criticism = "criticism", "Criticism", "批评型";
        /// Demands a commitment from the company.
        Accusation = "accusation", "Accusation", "控告型";
    }
}

labelled_enum! {
    /// What the complaint is about (投诉原因).
    Cause ("cause") {
        ProductQuality = "product_quality", "Product quality", "产品质量";
        Service = "service", "Service", "服务";
        Price = "price", "Price", "价格";
        /// Misleading promises (诚信).
        Integrity = "integrity", "Integrity / misleading promises", "诚信";
    }
}

labelled_enum! {
    /// Which side is at fault, once the facts are clear.
    FaultSide ("fault_side") {
        Undetermined = "undetermined", "Not yet clear", "待查明";
        Company = "company", "The company", "企业方";
        Customer = "customer", "The customer", "客户方";
    }
}

labelled_enum! {
    /// The fault in detail; the first four are the company's, the last two the customer's.
    FaultDetail ("fault_detail") {
        Product = "product", "Product defect", "产品缺陷";
        ServiceFailure = "service_failure", "Service failure", "服务不到位";
        MisleadingAdvertising = "misleading_advertising", "Misleading advertising", "虚假宣传";
        PoorManagement = "poor_management", "Poor management", "管理不善";
        Misuse = "misuse", "Misuse by the customer", "使用不当";
        ExcessiveExpectations = "excessive_expectations", "Excessive expectations", "期望过高";
    }
}

impl FaultDetail {
    pub fn side(self) -> FaultSide {
        match self {
            FaultDetail::Misuse | FaultDetail::ExcessiveExpectations => FaultSide::Customer,
            _ => FaultSide::Company,
        }
    }
}

labelled_enum! {
    /// Outcome dissatisfaction costs the customer money; process dissatisfaction is
    /// about how they were treated.
    Dissatisfaction ("dissatisfaction") {
        Outcome = "outcome", "Outcome (a loss)", "结果不满意";
        Process = "process", "Process (how it was handled)", "过程不满意";
    }
}

labelled_enum! {
    /// What the complaining customer needs psychologically (投诉心理).
    Need ("needs") {
        Vent = "vent", "To vent", "发泄";
        Compensation = "compensation", "To be compensated", "补偿";
        Resolution = "resolution", "To see it solved", "解决问题";
        Respect = "respect", "To be respected", "受尊重";
    }
}

labelled_enum! {
    /// Whether the complaint is well-founded (投诉是否成立).
    Validity ("validity") {
        Pending = "pending", "Not yet judged", "待判断";
        Valid = "valid", "Valid", "成立";
        Invalid = "invalid", "Not valid", "不成立";
    }
}

labelled_enum! {
    /// Who reviews an escalated complaint outside the company (外部评审).
    ReviewBody ("body") {
        IndustryAuthority = "industry_authority", "Industry authority", "行业主管部门";
        IndustryAssociation = "industry_association", "Industry association", "行业协会";
        ConsumerOrganisation = "consumer_organisation", "Consumer organisation", "消费者组织";
        ArbitrationCommittee = "arbitration_committee", "Arbitration committee", "仲裁委员会";
    }
}

labelled_enum! {
    /// Why a complaint was escalated (升级原因).
    EscalationTrigger ("trigger") {
        Manual = "manual", "Escalated by hand", "人工升级";
        SeriousSeverity = "serious_severity", "Serious complaint", "严重投诉";
        SeveralTeams = "several_teams", "Several teams involved", "涉及多个部门";
        CustomerRejected = "customer_rejected", "Customer rejected the solution", "客户不接受方案";
        ReputationRisk = "reputation_risk", "Reputation at risk", "声誉风险";
        AuthorityExceeded = "authority_exceeded", "Beyond the handler's authority", "超出处理权限";
        SlaBreached = "sla_breached", "Deadline breached", "超时未处理";
        Automation = "automation", "An automation rule", "自动化规则";
    }
}

labelled_enum! {
    /// The stages of the core flow (投诉管理的核心流程) and of escalation (升级处理).
    ComplaintStage ("stage") {
        Recorded = "recorded", "Recorded", "受理登记";
        InformationNeeded = "information_needed", "More information needed", "补充信息";
        AuthorityCheck = "authority_check", "Authority check", "权限判断";
        /// A quick reply was given; waiting for the customer's answer.
        SolutionProposed = "solution_proposed", "Solution proposed", "已答复待确认";
        InAction = "in_action", "Carrying out the solution", "执行方案";
        FollowUp = "follow_up", "Follow-up", "跟进回访";
        Closed = "closed", "Closed, customer satisfied", "满意结案";
        InternalReview = "internal_review", "Internal review", "内部评审";
        /// The internal review decided; waiting for the customer's answer.
        ReviewProposed = "review_proposed", "Review decision proposed", "评审结论待确认";
        ExternalReview = "external_review", "External review", "外部评审";
        /// The external decision was not accepted: the customer was advised of legal action.
        LegalAdvised = "legal_advised", "Legal action advised", "建议法律途径";
    }
}

impl ComplaintStage {
    /// Where a complaint may go from here.
    pub fn allowed_next(self) -> &'static [ComplaintStage] {
        use ComplaintStage::*;
        match self {
            Recorded => &[InformationNeeded, AuthorityCheck, InternalReview],
            InformationNeeded => &[AuthorityCheck, InternalReview],
            AuthorityCheck => &[SolutionProposed, InternalReview],
            SolutionProposed => &[InAction, InternalReview],
            InAction => &[FollowUp],
            FollowUp => &[Closed, InternalReview],
            InternalReview => &[ReviewProposed],
            ReviewProposed => &[InAction, ExternalReview],
            ExternalReview => &[InAction, LegalAdvised],
            Closed | LegalAdvised => &[],
        }
    }

    /// Whether the complaint is still being handled.
    pub fn is_open(self) -> bool {
        !matches!(self, ComplaintStage::Closed | ComplaintStage::LegalAdvised)
    }

    /// Stages before any review: an automatic escalation moves a complaint from here
    /// into internal review.
    pub fn before_review(self) -> bool {
        use ComplaintStage::*;
        matches!(
            self,
            Recorded | InformationNeeded | AuthorityCheck | SolutionProposed
        )
    }

    /// How far up the ladder the complaint has gone: 0 front line, 1 internal review,
    /// 2 external review, 3 legal advice.
    pub fn escalation_level(self) -> u8 {
        use ComplaintStage::*;
        match self {
            InternalReview | ReviewProposed => 1,
            ExternalReview => 2,
            LegalAdvised => 3,
            _ => 0,
        }
    }

    /// The least role that may take the step `self → to`. Reviews decide on behalf of the
    /// company, so deciding one, and sending a complaint outside, takes a supervisor.
    pub fn required_role(self, to: ComplaintStage) -> Role {
        use ComplaintStage::*;
        match (self, to) {
            (InternalReview, ReviewProposed) => Role::Supervisor,
            (ReviewProposed, ExternalReview) => Role::Supervisor,
            (ExternalReview, _) => Role::Supervisor,
            _ => Role::Agent,
        }
    }

    /// Checks the step against the machine; the error lists the allowed targets.
    pub fn transition(self, to: ComplaintStage) -> Result<ComplaintStage, DomainError> {
        if self.allowed_next().contains(&to) {
            Ok(to)
        } else {
            Err(DomainError::transition_refused(
                "stage",
                self,
                to,
                self.allowed_next(),
            ))
        }
    }
}

/// The rank of a role for "at least" checks.
pub fn role_rank(role: Role) -> u8 {
    match role {
        Role::Readonly => 0,
        Role::Agent => 1,
        Role::Supervisor => 2,
        Role::Admin => 3,
    }
}

/// Suggests the psychological needs from the classification, for when the agent does not
/// say: angry customers need to vent and to be respected, a money loss asks for
/// compensation, and every complainer wants the problem solved.
pub fn suggested_needs(behaviour: Behaviour, dissatisfaction: Dissatisfaction) -> Vec<Need> {
    let mut needs = vec![Need::Resolution];
    if matches!(behaviour, Behaviour::AngryVenting | Behaviour::Aggressive) {
        needs.push(Need::Vent);
    }
    if dissatisfaction == Dissatisfaction::Outcome {
        needs.push(Need::Compensation);
    }
    if dissatisfaction == Dissatisfaction::Process || behaviour != Behaviour::PassiveGrumbling {
        needs.push(Need::Respect);
    }
    needs.sort();
    needs
}

/// A body outside the company that reviews the complaint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExternalBody {
    pub kind: ReviewBody,
    /// The body's name, e.g. 上海市消费者权益保护委员会.
    pub name: String,
    /// The body's case reference.
    pub reference: String,
}

/// Money offered to the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompensationOffer {
    pub amount_cents: i64,
    /// ISO 4217, CNY unless said.
    pub currency: Option<String>,
    pub description: Option<String>,
}

/// What a step carries. Which fields a step needs is checked by [`check_step`].
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepInput {
    /// The stage the caller believes the complaint is at. Over HTTP, this or `If-Match`
    /// is required, so that of two concurrent steps the second is refused, not stacked.
    pub from: Option<ComplaintStage>,
    pub stage: Option<ComplaintStage>,
    /// Why, or what happened (required where the step says).
    pub note: Option<String>,
    /// The solution offered to the customer (`solution_proposed`).
    pub proposal: Option<String>,
    /// A review's decision (`review_proposed`, and the external body's decision when
    /// leaving `external_review`).
    pub decision: Option<String>,
    pub compensation: Option<CompensationOffer>,
    /// The reviewing body (`external_review`).
    pub body: Option<ExternalBody>,
}

/// A checked step, ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub from: ComplaintStage,
    pub to: ComplaintStage,
    pub note: String,
    pub proposal: Option<String>,
    pub decision: Option<String>,
    pub compensation: Option<(i64, String, String)>,
    pub body: Option<ExternalBody>,
}

/// Why a step was refused for the actor rather than for the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepDenied {
    /// The step itself is wrong (order, missing or malformed field).
    Invalid(DomainError),
    /// The role may not take this step.
    Role { required: Role },
    /// The compensation is above the role's limit in the rule set: escalate.
    Authority { limit_cents: i64 },
}

impl From<DomainError> for StepDenied {
    fn from(error: DomainError) -> Self {
        StepDenied::Invalid(error)
    }
}

/// Checks a step from `from` for someone with `role` under `rules`.
pub fn check_step(
    from: ComplaintStage,
    input: &StepInput,
    role: Role,
    rules: &ComplaintRules,
) -> Result<Step, StepDenied> {
    use ComplaintStage::*;
    let to = input
        .stage
        .ok_or_else(|| DomainError::invalid("stage", "name the stage to move to"))?;
    if let Some(expected) = input.from
        && expected != from
    {
        return Err(DomainError::transition_refused("from", from, to, from.allowed_next()).into());
    }
    from.transition(to)?;
    let required = from.required_role(to);
    if role_rank(role) < role_rank(required) {
        return Err(StepDenied::Role { required });
    }
    let note = optional_text("note", input.note.as_deref().unwrap_or(""), 4000)?;
    let needs_note = matches!(
        (from, to),
        (_, InformationNeeded)
            | (_, InternalReview)
            | (ExternalReview, LegalAdvised)
            | (InAction, FollowUp)
    );
    if needs_note && note.is_empty() {
        let what = match to {
            InformationNeeded => "say which information is missing",
            InternalReview => "say why the complaint goes to review",
            LegalAdvised => "record the advice given to the customer",
            _ => "record what was done",
        };
        return Err(DomainError::invalid("note", what).into());
    }
    let proposal = match to {
        SolutionProposed => Some(required_text(
            "proposal",
            input.proposal.as_deref().unwrap_or(""),
            4000,
        )?),
        _ if input.proposal.is_some() => {
            return Err(DomainError::invalid(
                "proposal",
                "a proposal goes with the step to solution_proposed",
            )
            .into());
        }
        _ => None,
    };
    let decision = match (from, to) {
        (InternalReview, ReviewProposed) | (ExternalReview, _) => Some(required_text(
            "decision",
            input.decision.as_deref().unwrap_or(""),
            4000,
        )?),
        _ if input.decision.is_some() => {
            return Err(DomainError::invalid(
                "decision",
                "a decision goes with the end of a review",
            )
            .into());
        }
        _ => None,
    };
    let body = match to {
        ExternalReview => {
            let body = input.body.clone().ok_or_else(|| {
                DomainError::invalid(
                    "body",
                    "an external review names the body: kind, name and reference",
                )
            })?;
            Some(ExternalBody {
                kind: body.kind,
                name: required_text("body.name", &body.name, 200)?,
                reference: required_text("body.reference", &body.reference, 200)?,
            })
        }
        _ if input.body.is_some() => {
            return Err(DomainError::invalid("body", "a body goes with external_review").into());
        }
        _ => None,
    };
    let compensation = match &input.compensation {
        Some(offer) => {
            if !matches!(to, SolutionProposed | ReviewProposed | InAction) {
                return Err(DomainError::invalid(
                    "compensation",
                    "compensation is offered with a proposal or a review decision",
                )
                .into());
            }
            if offer.amount_cents <= 0 || offer.amount_cents > MAX_COMPENSATION_CENTS {
                return Err(DomainError::invalid(
                    "compensation.amount_cents",
                    format!("must be between 1 and {MAX_COMPENSATION_CENTS}"),
                )
                .into());
            }
            let currency = optional_text(
                "compensation.currency",
                offer.currency.as_deref().unwrap_or("CNY"),
                3,
            )?
            .to_uppercase();
            if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_alphabetic()) {
                return Err(DomainError::invalid(
                    "compensation.currency",
                    "must be a three-letter ISO 4217 code such as CNY",
                )
                .into());
            }
            if let Some(limit) = rules.compensation_limit(role)
                && offer.amount_cents > limit
            {
                return Err(StepDenied::Authority { limit_cents: limit });
            }
            let description = optional_text(
                "compensation.description",
                offer.description.as_deref().unwrap_or(""),
                1000,
            )?;
            Some((offer.amount_cents, currency, description))
        }
        None => None,
    };
    Ok(Step {
        from,
        to,
        note,
        proposal,
        decision,
        compensation,
        body,
    })
}

/// No single compensation above a hundred million in the main unit.
pub const MAX_COMPENSATION_CENTS: i64 = 10_000_000_000;

/// The complaint rule set (投诉处理规则): one set, versioned, applied to every customer
/// and every employee alike. Each complaint records the version it was handled under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComplaintRules {
    /// The most an agent may offer without escalating, in cents.
    pub agent_compensation_limit_cents: i64,
    /// The most a supervisor may offer; admins have no limit.
    pub supervisor_compensation_limit_cents: i64,
    /// Escalate serious complaints to internal review as soon as they are classified.
    pub escalate_serious: bool,
    /// Escalate when the case has involved this many teams (0 = never).
    pub escalate_teams_involved: u32,
    /// Escalate when the reputation-risk flag is raised.
    pub escalate_reputation_risk: bool,
    /// Days after closing when the follow-up call is due.
    pub follow_up_after_days: u32,
}

impl Default for ComplaintRules {
    fn default() -> Self {
        ComplaintRules {
            agent_compensation_limit_cents: 50_000,
            supervisor_compensation_limit_cents: 500_000,
            escalate_serious: true,
            escalate_teams_involved: 2,
            escalate_reputation_risk: true,
            follow_up_after_days: 3,
        }
    }
}

impl ComplaintRules {
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.agent_compensation_limit_cents < 0 {
            return Err(DomainError::invalid(
                "agent_compensation_limit_cents",
                "must not be negative",
            ));
        }
        if self.supervisor_compensation_limit_cents < self.agent_compensation_limit_cents {
            return Err(DomainError::invalid(
                "supervisor_compensation_limit_cents",
                "must be at least the agent's limit",
            ));
        }
        if self.supervisor_compensation_limit_cents > MAX_COMPENSATION_CENTS {
            return Err(DomainError::invalid(
                "supervisor_compensation_limit_cents",
                format!("must be at most {MAX_COMPENSATION_CENTS}"),
            ));
        }
        if self.escalate_teams_involved == 1 {
            return Err(DomainError::invalid(
                "escalate_teams_involved",
                "one team is every case: use 2 or more, or 0 for never",
            ));
        }
        if self.follow_up_after_days > 365 {
            return Err(DomainError::invalid(
                "follow_up_after_days",
                "must be at most 365",
            ));
        }
        Ok(())
    }

    /// The role's limit; `None` is no limit.
    pub fn compensation_limit(&self, role: Role) -> Option<i64> {
        match role {
            Role::Admin => None,
            Role::Supervisor => Some(self.supervisor_compensation_limit_cents),
            Role::Agent => Some(self.agent_compensation_limit_cents),
            Role::Readonly => Some(0),
        }
    }

    /// The first automatic escalation condition a complaint meets, if any.
    pub fn escalation_trigger(&self, facts: &EscalationFacts) -> Option<EscalationTrigger> {
        if self.escalate_serious && facts.severity == Severity::Serious {
            return Some(EscalationTrigger::SeriousSeverity);
        }
        if self.escalate_reputation_risk && facts.reputation_risk {
            return Some(EscalationTrigger::ReputationRisk);
        }
        if self.escalate_teams_involved >= 2 && facts.teams_involved >= self.escalate_teams_involved
        {
            return Some(EscalationTrigger::SeveralTeams);
        }
        None
    }
}

/// What automatic escalation looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EscalationFacts {
    pub severity: Severity,
    pub reputation_risk: bool,
    pub teams_involved: u32,
}

labelled_enum! {
    /// A promise made to the customer (承诺) and what became of it.
    PromiseStatus ("status") {
        Open = "open", "Open", "待兑现";
        Kept = "kept", "Kept", "已兑现";
        Broken = "broken", "Broken", "未兑现";
        Cancelled = "cancelled", "Cancelled", "已取消";
    }
}

impl PromiseStatus {
    pub fn allowed_next(self) -> &'static [PromiseStatus] {
        match self {
            PromiseStatus::Open => &[
                PromiseStatus::Kept,
                PromiseStatus::Broken,
                PromiseStatus::Cancelled,
            ],
            _ => &[],
        }
    }

    pub fn transition(self, to: PromiseStatus) -> Result<PromiseStatus, DomainError> {
        if self.allowed_next().contains(&to) {
            Ok(to)
        } else {
            Err(DomainError::transition_refused(
                "status",
                self,
                to,
                self.allowed_next(),
            ))
        }
    }
}

labelled_enum! {
    /// An employee's appeal against a complaint that names them (申诉).
    AppealStatus ("status") {
        Pending = "pending", "Awaiting decision", "待裁定";
        Upheld = "upheld", "Upheld", "申诉成立";
        Rejected = "rejected", "Rejected", "申诉驳回";
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Labelled;
    use ComplaintStage::*;

    fn step(to: ComplaintStage) -> StepInput {
        StepInput {
            stage: Some(to),
            ..Default::default()
        }
    }

    #[test]
    fn the_core_flow_runs_from_record_to_satisfied_close() {
        let rules = ComplaintRules::default();
        let path = [
            (
                AuthorityCheck,
                StepInput {
                    ..step(AuthorityCheck)
                },
            ),
            (
                SolutionProposed,
                StepInput {
                    proposal: Some("换新并补偿运费".into()),
                    compensation: Some(CompensationOffer {
                        amount_cents: 2000,
                        currency: None,
                        description: Some("运费".into()),
                    }),
                    ..step(SolutionProposed)
                },
            ),
            (InAction, step(InAction)),
            (
                FollowUp,
                StepInput {
                    note: Some("已寄出新品".into()),
                    ..step(FollowUp)
                },
            ),
            (Closed, step(Closed)),
        ];
        let mut at = Recorded;
        for (to, input) in path {
            let done = check_step(at, &input, Role::Agent, &rules).expect("step");
            assert_eq!(done.to, to);
            at = to;
        }
        assert!(!at.is_open());
    }

    #[test]
    fn the_escalation_path_needs_its_facts_and_a_supervisor() {
        let rules = ComplaintRules::default();
        let review = StepInput {
            note: Some("客户不接受".into()),
            ..step(InternalReview)
        };
        check_step(SolutionProposed, &review, Role::Agent, &rules).expect("agents escalate");
        assert_eq!(
            check_step(
                InternalReview,
                &StepInput {
                    decision: Some("全额退款".into()),
                    ..step(ReviewProposed)
                },
                Role::Agent,
                &rules
            ),
            Err(StepDenied::Role {
                required: Role::Supervisor
            })
        );
        let missing_body = check_step(
            ReviewProposed,
            &step(ExternalReview),
            Role::Supervisor,
            &rules,
        );
        assert!(
            matches!(
                missing_body,
                Err(StepDenied::Invalid(DomainError::Invalid {
                    field: "body",
                    ..
                }))
            ),
            "{missing_body:?}"
        );
        let external = StepInput {
            body: Some(ExternalBody {
                kind: ReviewBody::ConsumerOrganisation,
                name: "上海市消费者权益保护委员会".into(),
                reference: "SH-2026-0042".into(),
            }),
            ..step(ExternalReview)
        };
        let done =
            check_step(ReviewProposed, &external, Role::Supervisor, &rules).expect("external");
        assert_eq!(done.body.expect("body").reference, "SH-2026-0042");
        let legal = check_step(
            ExternalReview,
            &StepInput {
                decision: Some("维持原方案".into()),
                ..step(LegalAdvised)
            },
            Role::Supervisor,
            &rules,
        );
        assert!(matches!(
            legal,
            Err(StepDenied::Invalid(DomainError::Invalid {
                field: "note",
                ..
            }))
        ));
        assert_eq!(LegalAdvised.escalation_level(), 3);
    }

    #[test]
    fn out_of_order_steps_list_the_allowed_ones() {
        let error = check_step(
            Recorded,
            &step(Closed),
            Role::Admin,
            &ComplaintRules::default(),
        )
        .expect_err("skip");
        let StepDenied::Invalid(DomainError::TransitionNotAllowed { allowed, .. }) = error else {
            panic!("{error:?}");
        };
        assert_eq!(
            allowed,
            vec!["information_needed", "authority_check", "internal_review"]
        );
        for stage in ComplaintStage::ALL {
            for next in stage.allowed_next() {
                assert_ne!(stage, next, "no self loops");
            }
        }
    }

    #[test]
    fn compensation_above_the_role_limit_is_refused() {
        let rules = ComplaintRules::default();
        let offer = |amount| StepInput {
            proposal: Some("补偿".into()),
            compensation: Some(CompensationOffer {
                amount_cents: amount,
                currency: Some("cny".into()),
                description: None,
            }),
            ..step(SolutionProposed)
        };
        assert_eq!(
            check_step(AuthorityCheck, &offer(50_001), Role::Agent, &rules),
            Err(StepDenied::Authority {
                limit_cents: 50_000
            })
        );
        let ok = check_step(AuthorityCheck, &offer(50_000), Role::Agent, &rules).expect("at limit");
        assert_eq!(ok.compensation, Some((50_000, "CNY".into(), String::new())));
        check_step(AuthorityCheck, &offer(400_000), Role::Supervisor, &rules).expect("supervisor");
        check_step(AuthorityCheck, &offer(9_000_000), Role::Admin, &rules).expect("admin");
        assert!(matches!(
            check_step(AuthorityCheck, &offer(0), Role::Admin, &rules),
            Err(StepDenied::Invalid(_))
        ));
    }

    #[test]
    fn automatic_escalation_follows_the_rules() {
        let rules = ComplaintRules::default();
        let facts = EscalationFacts {
            severity: Severity::General,
            reputation_risk: false,
            teams_involved: 1,
        };
        assert_eq!(rules.escalation_trigger(&facts), None);
        assert_eq!(
            rules.escalation_trigger(&EscalationFacts {
                severity: Severity::Serious,
                ..facts
            }),
            Some(EscalationTrigger::SeriousSeverity)
        );
        assert_eq!(
            rules.escalation_trigger(&EscalationFacts {
                teams_involved: 2,
                ..facts
            }),
            Some(EscalationTrigger::SeveralTeams)
        );
        let lenient = ComplaintRules {
            escalate_serious: false,
            escalate_teams_involved: 0,
            ..rules.clone()
        };
        assert_eq!(
            lenient.escalation_trigger(&EscalationFacts {
                severity: Severity::Serious,
                teams_involved: 5,
                ..facts
            }),
            None
        );
        assert!(
            ComplaintRules {
                escalate_teams_involved: 1,
                ..rules.clone()
            }
            .validate()
            .is_err()
        );
        assert!(
            ComplaintRules {
                supervisor_compensation_limit_cents: 10,
                ..rules
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn needs_follow_the_classification() {
        assert_eq!(
            suggested_needs(Behaviour::AngryVenting, Dissatisfaction::Outcome),
            vec![
                Need::Vent,
                Need::Compensation,
                Need::Resolution,
                Need::Respect
            ]
        );
        assert_eq!(
            suggested_needs(Behaviour::PassiveGrumbling, Dissatisfaction::Outcome),
            vec![Need::Compensation, Need::Resolution]
        );
        assert_eq!(FaultDetail::Misuse.side(), FaultSide::Customer);
        assert_eq!(
            FaultDetail::MisleadingAdvertising.side(),
            FaultSide::Company
        );
    }
}
