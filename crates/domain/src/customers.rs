//! The customer archive (客户档案): classifications, the lifecycle and its cards, lead
//! sources, the qualification matrix and where each piece of information came from.

use crate::DomainError;
use serde::{Deserialize, Serialize};

labelled_enum! {
    /// A customer is a person or an organisation; a person may belong to an organisation.
    CustomerKind ("kind") {
        Person = "person", "Person", "个人";
        Organization = "organization", "Organisation", "组织";
    }
}

labelled_enum! {
    /// Classification by value (按价值).
    ValueClass ("value_class") {
        Key = "key", "Key customer", "关键客户";
        Ordinary = "ordinary", "Ordinary customer", "普通客户";
    }
}

labelled_enum! {
    /// Classification by position (按位置): colleagues are customers too.
    Position ("position") {
        External = "external", "External", "外部客户";
        Internal = "internal", "Internal", "内部客户";
    }
}

labelled_enum! {
    /// Classification by role in the supply chain.
    SupplyChainRole ("supply_chain_role") {
        Intermediate = "intermediate", "Intermediate customer", "中间客户";
        Consumer = "consumer", "Consumer", "消费客户";
        PublicInterest = "public_interest", "Public-interest customer", "公利客户";
    }
}

labelled_enum! {
    /// The customer lifecycle (客户生命周期). Every change is recorded with who, when and why.
    LifecycleState ("lifecycle") {
        Potential = "potential", "Potential", "潜在客户";
        Target = "target", "Target", "目标客户";
        Current = "current", "Current", "现实客户";
        Lost = "lost", "Lost", "流失客户";
    }
}

impl LifecycleState {
    /// The states this one may move to. A potential customer may buy without having been
    /// targeted; a lost customer is won back by targeting them again or by a new purchase.
    /// Nobody goes back to "potential" once they have bought.
    pub fn allowed_next(self) -> &'static [LifecycleState] {
        use LifecycleState::*;
        match self {
            Potential => &[Target, Current, Lost],
            Target => &[Potential, Current, Lost],
            Current => &[Lost],
            Lost => &[Target, Current],
        }
    }

    /// Checks a transition; the error lists the allowed targets.
    pub fn transition(self, to: LifecycleState) -> Result<LifecycleState, DomainError> {
        if self.allowed_next().contains(&to) {
            Ok(to)
        } else {
            Err(DomainError::transition_refused(
                "to",
                self,
                to,
                self.allowed_next(),
            ))
        }
    }

    /// The customer card (客户资料卡) that goes with this state.
    pub fn card(self) -> CardKind {
        match self {
            LifecycleState::Potential | LifecycleState::Target => CardKind::Potential,
            LifecycleState::Current => CardKind::Current,
            LifecycleState::Lost => CardKind::Lost,
        }
    }
}

labelled_enum! {
    /// The customer card shown for a lifecycle state: the potential card holds basics,
    /// needs and hobbies; the current card adds transactions; the lost card adds when and
    /// why the customer was lost and the attempts to win them back.
    CardKind ("card") {
        Potential = "potential", "Potential customer card", "潜在客户资料卡";
        Current = "current", "Current customer card", "现实客户资料卡";
        Lost = "lost", "Lost customer card", "流失客户资料卡";
    }
}

labelled_enum! {
    /// How a lead was found (寻找客户的方法): the textbook's twelve methods.
    LeadSource ("lead_source") {
        DoorToDoor = "door_to_door", "Door-to-door visits", "逐户访问法";
        DataAnalysis = "data_analysis", "Data analysis", "资料分析法";
        PersonalNetwork = "personal_network", "Personal network", "缘故法";
        WebSearch = "web_search", "Web search", "网络搜寻法";
        HaloEffect = "halo_effect", "Halo effect (opinion leaders)", "光辉效应法";
        Advertising = "advertising", "Advertising", "广告开拓法";
        Telephone = "telephone", "Telephone", "电话开拓法";
        Referral = "referral", "Referral chain", "连锁介绍法";
        Event = "event", "Events and conferences", "会议寻找法";
        PublicWelfare = "public_welfare", "Public-welfare and social events", "公益社交法";
        MarketConsulting = "market_consulting", "Market consulting", "市场咨询法";
        AgentHound = "agent_hound", "Agents (hounds, paid per referral)", "猎犬法";
    }
}

/// The three questions of customer qualification (客户资格审查). `None` means "not yet
/// known", which is different from "no".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Qualification {
    /// Does the customer need what we offer? (需求)
    pub need: Option<bool>,
    /// Can the customer pay? (支付能力)
    pub ability_to_pay: Option<bool>,
    /// Can the customer decide the purchase? (购买决策权)
    pub authority: Option<bool>,
}

/// One row of the textbook's qualification table with the strategy it prescribes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QualificationAssessment {
    /// The row of the textbook's table, 1–8; absent while any answer is unknown.
    pub row: Option<u8>,
    /// Whether the customer is worth contacting at all.
    pub worth_contacting: Option<bool>,
    pub strategy_en: String,
    pub strategy_zh: String,
}

impl Qualification {
    /// Maps the three answers to the textbook's strategy table (rows 1–8).
    pub fn assess(&self) -> QualificationAssessment {
        let (Some(need), Some(pay), Some(authority)) =
            (self.need, self.ability_to_pay, self.authority)
        else {
            return QualificationAssessment {
                row: None,
                worth_contacting: None,
                strategy_en: "Qualification incomplete: find out need, ability to pay and decision authority.".into(),
                strategy_zh: "资格审查未完成：请确认需求、支付能力和购买决策权。".into(),
            };
        };
        const CULTIVATE_EN: &str = "May be contacted; observe and cultivate over time until the other two conditions are met.";
        const CULTIVATE_ZH: &str = "可以接触，应长期观察、培养，使之具备另外两个条件。";
        let (row, en, zh): (u8, &str, &str) = match (need, pay, authority) {
            (true, true, true) => (
                1,
                "Ideal prospect: contact actively, focus on them and keep communicating.",
                "积极接触，重点关注和沟通，是理想的销售对象。",
            ),
            (true, true, false) => (
                2,
                "May be contacted; find the person who holds the decision.",
                "可以接触，并设法找到具有决定权的人。",
            ),
            (true, false, true) => (
                3,
                "May be contacted; check their business and credit standing and offer financing.",
                "可以接触，需调查其业务状况、信用条件等给予融资。",
            ),
            (false, true, true) => (
                4,
                "May be contacted; with skilled selling there is hope of success.",
                "可以接触，配合熟练的销售技巧，有成功的希望。",
            ),
            (true, false, false) => (5, CULTIVATE_EN, CULTIVATE_ZH),
            (false, true, false) => (6, CULTIVATE_EN, CULTIVATE_ZH),
            (false, false, true) => (7, CULTIVATE_EN, CULTIVATE_ZH),
            (false, false, false) => (
                8,
                "Not worth contacting: none of the three conditions is met.",
                "不具备任何条件，不值得接触。",
            ),
        };
        QualificationAssessment {
            row: Some(row),
            worth_contacting: Some(row != 8),
            strategy_en: en.into(),
            strategy_zh: zh.into(),
        }
    }
}

labelled_enum! {
    /// The kind of a piece of customer information (客户信息的类型).
    InformationKind ("information_kind") {
        Descriptive = "descriptive", "Descriptive (who they are)", "描述类信息";
        Behavioural = "behavioural", "Behavioural (what they did)", "行为类信息";
        Associated = "associated", "Associated (what drives them)", "关联类信息";
    }
}

labelled_enum! {
    /// Where a piece of customer information came from (信息来源): internal channels
    /// first, then external ones.
    InformationSource ("source") {
        Registration = "registration", "Registration", "客户注册";
        SalesRecord = "sales_record", "Sales record", "销售记录";
        ServiceContact = "service_contact", "Service contact", "服务接触";
        Agent = "agent", "Entered by an agent", "客服录入";
        Import = "import", "Import", "批量导入";
        PurchasedList = "purchased_list", "Purchased list", "购买名单";
        Partner = "partner", "Partner", "合作伙伴";
        PublicSource = "public_source", "Public source", "公开资料";
    }
}

/// The information kind of each built-in customer field. Custom fields declare theirs.
pub fn builtin_field_kind(field: &str) -> Option<InformationKind> {
    use InformationKind::*;
    Some(match field {
        "name" | "kind" | "organization_id" | "contacts" | "language" | "position"
        | "supply_chain_role" | "value_class" | "address" | "birthday" | "gender" | "industry"
        | "company_size" => Descriptive,
        "lifecycle" | "lead_source" | "referrer_id" | "transactions" | "last_contact_at" => {
            Behavioural
        }
        "needs" | "hobbies" | "qualification" | "communication_type" | "notes" | "satisfaction" => {
            Associated
        }
        _ => return None,
    })
}

labelled_enum! {
    /// The customer's communication type (不同类型客户), which selects the strategy the
    /// agent is shown while answering.
    CommunicationType ("communication_type") {
        Hesitant = "hesitant", "Hesitant", "犹豫不决型";
        Introverted = "introverted", "Introverted", "内向型";
        Vain = "vain", "Vain", "虚荣型";
        Boastful = "boastful", "Boastful", "自夸自大型";
        ColdArrogant = "cold_arrogant", "Cold and arrogant", "冷淡傲慢型";
        StrongWilled = "strong_willed", "Strong-willed", "刚强型";
        Stubborn = "stubborn", "Stubborn", "顽固型";
        Cautious = "cautious", "Cautious and steady", "谨慎稳定型";
        Bargaining = "bargaining", "Bargaining", "讨价还价型";
        Combative = "combative", "Combative", "好斗型";
    }
}

impl CommunicationType {
    /// The communication strategy for this type, in English and Chinese.
    pub fn strategy(self) -> (&'static str, &'static str) {
        use CommunicationType::*;
        match self {
            Hesitant => (
                "Help them decide: give clear recommendations and reasons, and narrow the choices.",
                "帮助其下决心：给出明确建议和理由，缩小选择范围。",
            ),
            Introverted => (
                "Be patient and sincere; ask gentle open questions and let them take their time.",
                "耐心真诚，温和地提问，给对方充分的时间。",
            ),
            Vain => (
                "Acknowledge their taste and standing sincerely; offer options that reflect it.",
                "真诚肯定其品味与身份，提供与之相称的方案。",
            ),
            Boastful => (
                "Listen and let them talk, then steer back to facts and the decision.",
                "耐心倾听，让其充分表达，再引回事实与决定。",
            ),
            ColdArrogant => (
                "Stay courteous and professional; let facts and quality speak.",
                "保持礼貌和专业，用事实和品质说话。",
            ),
            StrongWilled => (
                "Be direct and confident; give facts, respect their decisions.",
                "直接自信，摆事实，尊重其决定。",
            ),
            Stubborn => (
                "Do not argue; find common ground and let evidence change their mind.",
                "不争辩，寻找共同点，用证据改变其看法。",
            ),
            Cautious => (
                "Give thorough information, guarantees and time; avoid pressure.",
                "提供详尽资料和保证，给予时间，避免施压。",
            ),
            Bargaining => (
                "Hold the price with value arguments; concede little and in exchange.",
                "以价值支撑价格，让步要小且有交换条件。",
            ),
            Combative => (
                "Stay calm and never fight back; acknowledge feelings and move to solutions.",
                "保持冷静，绝不对抗，先接纳情绪再谈解决办法。",
            ),
        }
    }
}

labelled_enum! {
    /// The type of a custom field defined by an admin.
    CustomFieldType ("field_type") {
        Text = "text", "Text", "文本";
        Number = "number", "Number", "数字";
        Boolean = "boolean", "Yes/No", "是否";
        Date = "date", "Date", "日期";
        Select = "select", "Choice", "选项";
    }
}

impl CustomFieldType {
    /// Checks a value against this type (and the allowed options, for a choice).
    pub fn check(
        self,
        key: &str,
        value: &serde_json::Value,
        options: &[String],
    ) -> Result<(), DomainError> {
        use serde_json::Value;
        let ok = match (self, value) {
            (_, Value::Null) => true,
            (CustomFieldType::Text, Value::String(s)) => s.chars().count() <= 10_000,
            (CustomFieldType::Number, Value::Number(_)) => true,
            (CustomFieldType::Boolean, Value::Bool(_)) => true,
            (CustomFieldType::Date, Value::String(s)) => is_iso_date(s),
            (CustomFieldType::Select, Value::String(s)) => options.iter().any(|o| o == s),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            let expected = match self {
                CustomFieldType::Text => "a string of at most 10000 characters".to_string(),
                CustomFieldType::Number => "a number".to_string(),
                CustomFieldType::Boolean => "true or false".to_string(),
                CustomFieldType::Date => "a date as YYYY-MM-DD".to_string(),
                CustomFieldType::Select => format!("one of {}", options.join(", ")),
            };
            Err(DomainError::Invalid {
                field: "custom_fields",
                message: format!("`{key}` must be {expected}"),
            })
        }
    }
}

fn is_iso_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return false;
    }
    let number =
        |range: std::ops::Range<usize>| text.get(range).and_then(|s| s.parse::<u32>().ok());
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days_in_month).contains(&day)
}

/// Checks a custom-field key: lower-case ASCII letters, digits and underscores.
pub fn custom_field_key(key: &str) -> Result<String, DomainError> {
    let valid = !key.is_empty()
        && key.len() <= 64
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(key.to_string())
    } else {
        Err(DomainError::invalid(
            "key",
            "must start with a-z and hold only a-z, 0-9 and _ (at most 64)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Labelled;

    #[test]
    fn every_lifecycle_pair_is_decided_once() {
        use LifecycleState::*;
        let allowed = [
            (Potential, Target),
            (Potential, Current),
            (Potential, Lost),
            (Target, Potential),
            (Target, Current),
            (Target, Lost),
            (Current, Lost),
            (Lost, Target),
            (Lost, Current),
        ];
        for from in LifecycleState::ALL {
            for to in LifecycleState::ALL {
                let expected = allowed.contains(&(*from, *to));
                assert_eq!(from.transition(*to).is_ok(), expected, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn illegal_transition_names_the_allowed_ones() {
        let error = LifecycleState::Current
            .transition(LifecycleState::Potential)
            .expect_err("illegal");
        assert_eq!(
            error.to_string(),
            "cannot move from `current` to `potential`; allowed from `current`: [\"lost\"]"
        );
    }

    #[test]
    fn qualification_table_matches_the_textbook() {
        let check = |need, pay, authority, row: Option<u8>, zh_start: &str| {
            let q = Qualification {
                need,
                ability_to_pay: pay,
                authority,
            };
            let assessment = q.assess();
            assert_eq!(assessment.row, row, "{q:?}");
            assert!(
                assessment.strategy_zh.starts_with(zh_start),
                "{q:?}: {}",
                assessment.strategy_zh
            );
        };
        check(Some(true), Some(true), Some(true), Some(1), "积极接触");
        check(
            Some(true),
            Some(true),
            Some(false),
            Some(2),
            "可以接触，并设法找到",
        );
        check(
            Some(true),
            Some(false),
            Some(true),
            Some(3),
            "可以接触，需调查",
        );
        check(
            Some(false),
            Some(true),
            Some(true),
            Some(4),
            "可以接触，配合",
        );
        check(
            Some(true),
            Some(false),
            Some(false),
            Some(5),
            "可以接触，应长期",
        );
        check(
            Some(false),
            Some(true),
            Some(false),
            Some(6),
            "可以接触，应长期",
        );
        check(
            Some(false),
            Some(false),
            Some(true),
            Some(7),
            "可以接触，应长期",
        );
        check(Some(false), Some(false), Some(false), Some(8), "不具备");
        check(Some(true), None, Some(true), None, "资格审查未完成");
    }

    #[test]
    fn custom_values_are_checked_against_their_type() {
        let options = vec!["gold".to_string(), "silver".to_string()];
        assert!(
            CustomFieldType::Select
                .check("tier", &serde_json::json!("gold"), &options)
                .is_ok()
        );
        assert!(
            CustomFieldType::Select
                .check("tier", &serde_json::json!("bronze"), &options)
                .is_err()
        );
        assert!(
            CustomFieldType::Date
                .check("d", &serde_json::json!("2026-02-30"), &[])
                .is_err()
        );
        assert!(
            CustomFieldType::Date
                .check("d", &serde_json::json!("2028-02-29"), &[])
                .is_ok()
        );
        assert!(
            CustomFieldType::Date
                .check("d", &serde_json::json!("2026-13-01"), &[])
                .is_err()
        );
        assert!(
            CustomFieldType::Number
                .check("n", &serde_json::json!("12"), &[])
                .is_err()
        );
        assert!(custom_field_key("vip_level2").is_ok());
        assert!(custom_field_key("VIP").is_err());
    }
}
