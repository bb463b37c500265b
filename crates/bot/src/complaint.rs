//! Complaint pre-classification (投诉预分类): a suggested cause, severity and behaviour
//! type (DOMAIN.md §7) for a new complaint, each with the words that suggested it. The
//! agent confirms or corrects; nothing here is recorded without them.

use kefu_domain::complaints::{Behaviour, Cause, Severity};
use serde::Serialize;

use crate::normalize::normalize;
use crate::sentiment::{Context, Rule, SentimentModel, analyse};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestion<T> {
    pub value: T,
    /// The words or rules in the message that point to this value (empty for a default).
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComplaintSuggestion {
    /// None when nothing in the text points to a cause.
    pub cause: Option<Suggestion<Cause>>,
    pub severity: Suggestion<Severity>,
    pub behaviour: Suggestion<Behaviour>,
}

const CAUSES: &[(Cause, &[&str])] = &[
    (
        Cause::ProductQuality,
        &[
            "质量",
            "坏了",
            "故障",
            "破损",
            "损坏",
            "瑕疵",
            "次品",
            "假货",
            "不能用",
            "用不了",
            "漏水",
            "异味",
            "过期",
            "变质",
            "开裂",
            "掉色",
            "broken",
            "defective",
            "faulty",
            "damaged",
            "stopped working",
            "doesn't work",
            "does not work",
            "quality",
            "leaking",
            "expired",
            "fake",
        ],
    ),
    (
        Cause::Service,
        &[
            "态度",
            "客服",
            "服务",
            "快递员",
            "骑手",
            "店员",
            "不理",
            "没人管",
            "推诿",
            "踢皮球",
            "等了",
            "没回复",
            "挂电话",
            "敷衍",
            "rude",
            "ignored",
            "no one answered",
            "nobody answered",
            "waited",
            "hung up",
            "unhelpful",
            "attitude",
            "staff",
            "service",
        ],
    ),
    (
        Cause::Price,
        &[
            "价格",
            "太贵",
            "乱收费",
            "多收",
            "多扣",
            "扣费",
            "扣钱",
            "差价",
            "收费",
            "涨价",
            "降价",
            "overcharged",
            "charged twice",
            "price",
            "fee",
            "too expensive",
            "hidden charge",
            "billing",
        ],
    ),
    (
        Cause::Integrity,
        &[
            "虚假宣传",
            "骗",
            "承诺",
            "说好的",
            "不符",
            "与描述不符",
            "货不对板",
            "欺诈",
            "忽悠",
            "不兑现",
            "misleading",
            "false advertising",
            "promised",
            "not as described",
            "lied",
            "scam",
            "bait",
        ],
    ),
];

/// Harm or exposure that makes a complaint serious whatever else it says.
const SERIOUS: &[&str] = &[
    "受伤",
    "安全",
    "起火",
    "着火",
    "爆炸",
    "过敏",
    "中毒",
    "住院",
    "触电",
    "烫伤",
    "孩子",
    "injury",
    "injured",
    "fire",
    "exploded",
    "allergic",
    "poisoning",
    "hospital",
    "unsafe",
    "electric shock",
];

const PUBLICITY: &[&str] = &[
    "曝光",
    "朋友圈",
    "微博",
    "抖音",
    "差评",
    "小红书",
    "媒体",
    "记者",
    "告诉所有人",
    "review",
    "social media",
    "twitter",
    "facebook",
    "tell everyone",
    "the press",
    "go public",
];

fn found(normalized: &str, words: &[&str]) -> Vec<String> {
    words
        .iter()
        .filter(|w| {
            if w.is_ascii() {
                contains_words(normalized, w)
            } else {
                normalized.contains(**w)
            }
        })
        .map(|w| w.to_string())
        .collect()
}

/// Whole-word match for Latin phrases ("fee" is not in "feel").
fn contains_words(text: &str, phrase: &str) -> bool {
    text.match_indices(phrase).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + phrase.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

/// Suggests how to classify a complaint from its text. `earlier_contacts` as for
/// sentiment (repeated contacts make venting likelier).
pub fn suggest(model: &SentimentModel, text: &str, earlier_contacts: u32) -> ComplaintSuggestion {
    let normalized = normalize(text);
    let cause = CAUSES
        .iter()
        .map(|(cause, words)| (*cause, found(&normalized, words)))
        .filter(|(_, evidence)| !evidence.is_empty())
        .max_by_key(|(_, evidence)| evidence.len())
        .map(|(value, evidence)| Suggestion { value, evidence });

    let sentiment = analyse(model, text, Context { earlier_contacts });
    let rule_evidence = |rule: Rule| -> Vec<String> {
        sentiment
            .rules
            .iter()
            .filter(|h| h.rule == rule)
            .map(|h| format!("{}: {}", rule.as_str(), h.evidence))
            .collect()
    };
    let escalation = rule_evidence(Rule::Escalation);
    let harm = found(&normalized, SERIOUS);
    let severity = if !escalation.is_empty() || !harm.is_empty() {
        Suggestion {
            value: Severity::Serious,
            evidence: harm.into_iter().chain(escalation.clone()).collect(),
        }
    } else {
        Suggestion {
            value: Severity::General,
            evidence: Vec::new(),
        }
    };

    let anger = rule_evidence(Rule::AngerWords);
    let shouting = rule_evidence(Rule::Shouting);
    let publicity = found(&normalized, PUBLICITY);
    let behaviour = if !escalation.is_empty() && (!anger.is_empty() || !shouting.is_empty()) {
        Suggestion {
            value: Behaviour::Aggressive,
            evidence: escalation
                .into_iter()
                .chain(anger)
                .chain(shouting)
                .collect(),
        }
    } else if !publicity.is_empty() {
        Suggestion {
            value: Behaviour::NegativePublicity,
            evidence: publicity,
        }
    } else if !anger.is_empty() || !shouting.is_empty() {
        Suggestion {
            value: Behaviour::AngryVenting,
            evidence: anger.into_iter().chain(shouting).collect(),
        }
    } else {
        Suggestion {
            value: Behaviour::PassiveGrumbling,
            evidence: Vec::new(),
        }
    };
    ComplaintSuggestion {
        cause,
        severity,
        behaviour,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_come_with_their_evidence() {
        let model = SentimentModel::shipped();
        let s = suggest(
            &model,
            "买的热水壶用了两天就漏水，还差点烫伤孩子，我要去12315投诉",
            0,
        );
        let cause = s.cause.expect("a cause");
        assert_eq!(cause.value, Cause::ProductQuality);
        assert!(cause.evidence.contains(&"漏水".to_string()));
        assert_eq!(s.severity.value, Severity::Serious);
        assert!(s.severity.evidence.iter().any(|e| e.contains("烫伤")));
        assert!(s.severity.evidence.iter().any(|e| e.contains("12315")));

        let s = suggest(
            &model,
            "The agent was rude and hung up on me. I'll post a review.",
            0,
        );
        assert_eq!(s.cause.map(|c| c.value), Some(Cause::Service));
        assert_eq!(s.severity.value, Severity::General);
        assert_eq!(s.behaviour.value, Behaviour::NegativePublicity);

        let s = suggest(&model, "你们就是骗子！！！说好的赠品呢", 0);
        assert_eq!(s.cause.map(|c| c.value), Some(Cause::Integrity));
        assert_eq!(s.behaviour.value, Behaviour::AngryVenting);

        let s = suggest(&model, "I feel a bit let down.", 0);
        assert!(s.cause.is_none(), "fee is not in feel");
        assert_eq!(s.behaviour.value, Behaviour::PassiveGrumbling);
    }
}
