//! The bot's decision for one customer message: answer from the knowledge base, ask
//! which question was meant (the top 3), or hand over to a person — and why.
//!
//! Order of reasons: nothing readable → ask again; anger, a threat or a request for a
//! person → hand over now; a complaint → hand over; small talk (greeting, thanks) →
//! reply in kind; otherwise the FAQ's calibrated confidence against the tenant's
//! thresholds. After [`MAX_CLARIFICATIONS`] unsuccessful clarifications the bot hands over
//! rather than asking a third time.

use serde::{Deserialize, Serialize};

use crate::faq::{FaqIndex, Match};
use crate::intent::{self, IntentGuess, IntentModel};
use crate::normalize::{language_of, normalize};
use crate::sentiment::{self, Label, Sentiment, SentimentModel};

/// When the bot answers and when it asks (per tenant; the defaults suit a knowledge base
/// of a few hundred entries with a few similar questions each).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Answer when the confidence in the best entry is at least this.
    pub answer: f32,
    /// Otherwise offer the top 3 questions when the confidence that one of them is right
    /// is at least this; below, hand over.
    pub clarify: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            answer: 0.75,
            clarify: 0.35,
        }
    }
}

impl Thresholds {
    pub fn check(&self) -> Result<(), String> {
        let valid = |x: f32| (0.0..=1.0).contains(&x);
        if !valid(self.answer) || !valid(self.clarify) {
            return Err("thresholds are probabilities between 0 and 1".into());
        }
        Ok(())
    }
}

pub const MAX_CLARIFICATIONS: u32 = 2;

/// Intent confidence at which the bot acts on an intent by itself.
const INTENT_SURE: f32 = 0.6;

/// What the caller knows about the conversation so far.
#[derive(Debug, Clone, Default)]
pub struct Conversation {
    /// Clarifications the bot has already asked in a row.
    pub clarifications: u32,
    /// Earlier inbound messages about the same matter (for the repeated-contact rule).
    pub earlier_contacts: u32,
    /// The entries offered in the bot's last clarification, in the order shown: the
    /// customer may answer "2" or "第二个".
    pub offered: Vec<String>,
}

/// Which of the offered questions (0-based) a reply picks: "2", "2.", "#2", "第二个",
/// "第2个", "second", "the second one", "option 2". Anything else is a new question.
pub fn choice(message: &str) -> Option<usize> {
    let text = normalize(message);
    let text = text
        .trim_matches(|c: char| !c.is_alphanumeric())
        .trim_start_matches("option ")
        .trim_start_matches("the ")
        .trim_end_matches(" one")
        .trim_end_matches(['个', '条', '项'])
        .trim_start_matches('第')
        .trim_start_matches('#');
    match text {
        "1" | "一" | "first" => Some(0),
        "2" | "二" | "second" => Some(1),
        "3" | "三" | "third" => Some(2),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Answer,
    Clarify,
    Handoff,
    /// A greeting or thanks, answered in kind.
    SmallTalk,
    /// Nothing readable in the message: the bot asks the customer to write again.
    NoText,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffReason {
    /// The customer asked for a person.
    CustomerAsked,
    /// Anger, abuse or a threat to go to a regulator, the media or a lawyer.
    Angry,
    /// The message is a complaint (投诉): people handle complaints.
    Complaint,
    /// The knowledge base has no entry the bot is sure enough of.
    NotUnderstood,
    /// The bot already asked twice which question was meant.
    ClarifiedTooOften,
}

impl HandoffReason {
    pub fn as_str(self) -> &'static str {
        match self {
            HandoffReason::CustomerAsked => "customer_asked",
            HandoffReason::Angry => "angry",
            HandoffReason::Complaint => "complaint",
            HandoffReason::NotUnderstood => "not_understood",
            HandoffReason::ClarifiedTooOften => "clarified_too_often",
        }
    }
}

/// The bot's reply and everything a person taking over needs to know.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reply {
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handoff_reason: Option<HandoffReason>,
    /// What the bot says to the customer, in the customer's language.
    pub text: String,
    /// `zh` or `en`.
    pub language: &'static str,
    /// The answered entry (outcome `answer`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_id: Option<String>,
    /// Confidence in the best knowledge-base entry (0 when none matched).
    pub confidence: f32,
    /// The entries considered, best first (at most 5); the first 3 are offered on clarify.
    pub matches: Vec<Match>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<IntentGuess>,
    pub sentiment: Sentiment,
}

/// Everything the bot needs, built once per knowledge-base or model change and shared.
pub struct Bot {
    pub faq: FaqIndex,
    pub intents: IntentModel,
    pub sentiment: std::sync::Arc<SentimentModel>,
    pub thresholds: Thresholds,
}

fn say(language: &str, zh: &str, en: &str) -> String {
    if language == "zh" { zh } else { en }.to_string()
}

impl Bot {
    pub fn respond(&self, message: &str, conversation: Conversation) -> Reply {
        let language = language_of(message);
        let sentiment = sentiment::analyse(
            &self.sentiment,
            message,
            sentiment::Context {
                earlier_contacts: conversation.earlier_contacts,
            },
        );
        let mut reply = Reply {
            outcome: Outcome::NoText,
            handoff_reason: None,
            text: String::new(),
            language,
            entry_id: None,
            confidence: 0.0,
            matches: Vec::new(),
            intent: None,
            sentiment,
        };
        if let Some(entry) = choice(message)
            .and_then(|i| conversation.offered.get(i))
            .and_then(|id| self.faq.entry(id))
        {
            // The customer picked one of the questions offered: that is certainty.
            reply.outcome = Outcome::Answer;
            reply.entry_id = Some(entry.id.clone());
            reply.confidence = 1.0;
            reply.matches = vec![Match {
                id: entry.id.clone(),
                question: entry.question.clone(),
                score: 1.0,
            }];
            reply.text = entry.answer.clone();
            return reply;
        }
        if normalize(message).chars().all(|c| !c.is_alphanumeric()) {
            reply.text = say(
                language,
                "抱歉，没有看到您的问题，请用文字描述一下好吗？",
                "Sorry, I couldn't read a question there. Could you describe it in words?",
            );
            return reply;
        }
        let retrieval = self.faq.search(message, 5);
        reply.confidence = retrieval.confidence;
        let retrieval_top3 = retrieval.top3_confidence;
        reply.matches = retrieval.matches;
        reply.intent = self.intents.screen(message);
        let sure_intent = reply
            .intent
            .as_ref()
            .filter(|g| g.confidence >= INTENT_SURE)
            .map(|g| g.intent.as_str());

        let handoff = if reply.sentiment.label == Label::Angry {
            Some(HandoffReason::Angry)
        } else if reply.sentiment.handoff || sure_intent == Some(intent::HUMAN) {
            Some(HandoffReason::CustomerAsked)
        } else if sure_intent == Some(intent::COMPLAINT) {
            Some(HandoffReason::Complaint)
        } else {
            None
        };
        if let Some(reason) = handoff {
            return self.hand_over(reply, reason);
        }
        if matches!(sure_intent, Some(intent::GREETING | intent::THANKS))
            && reply.confidence < self.thresholds.answer
        {
            reply.outcome = Outcome::SmallTalk;
            reply.text = if sure_intent == Some(intent::GREETING) {
                say(
                    language,
                    "您好！请问有什么可以帮您？",
                    "Hello! How can I help you?",
                )
            } else {
                say(
                    language,
                    "不客气，还有其他问题随时找我。",
                    "You're welcome. Ask any time if there's anything else.",
                )
            };
            return reply;
        }
        if reply.confidence >= self.thresholds.answer {
            // The entry is known to the index it came from.
            if let Some(entry) = reply.matches.first().and_then(|m| self.faq.entry(&m.id)) {
                reply.outcome = Outcome::Answer;
                reply.entry_id = Some(entry.id.clone());
                reply.text = entry.answer.clone();
                return reply;
            }
        }
        if retrieval_top3 >= self.thresholds.clarify && !reply.matches.is_empty() {
            if conversation.clarifications >= MAX_CLARIFICATIONS {
                return self.hand_over(reply, HandoffReason::ClarifiedTooOften);
            }
            reply.outcome = Outcome::Clarify;
            let options: Vec<String> = reply
                .matches
                .iter()
                .take(3)
                .enumerate()
                .map(|(i, m)| format!("{}. {}", i + 1, m.question))
                .collect();
            reply.text = format!(
                "{}\n{}",
                say(
                    language,
                    "您想问的是下面哪一个？",
                    "Did you mean one of these?"
                ),
                options.join("\n")
            );
            return reply;
        }
        self.hand_over(reply, HandoffReason::NotUnderstood)
    }

    /// For a reply that hands over: the full reading of the intent (the embedding tier
    /// too, some milliseconds) for the person taking over. The bot's own decisions need
    /// only the lexical screen, so answering does not wait for the encoder.
    pub fn read_for_handoff(&self, reply: &mut Reply, message: &str) {
        if reply.outcome == Outcome::Handoff
            && let Some(full) = self.intents.classify(message)
        {
            reply.intent = Some(full);
        }
    }

    fn hand_over(&self, mut reply: Reply, reason: HandoffReason) -> Reply {
        reply.outcome = Outcome::Handoff;
        reply.handoff_reason = Some(reason);
        reply.text = match reason {
            HandoffReason::Angry | HandoffReason::Complaint => say(
                reply.language,
                "非常抱歉给您带来不好的体验，我马上为您转接人工客服处理。",
                "I'm very sorry about this. I'm passing you to a member of our team right now.",
            ),
            _ => say(
                reply.language,
                "正在为您转接人工客服，请稍候。",
                "I'm connecting you with a member of our team, one moment please.",
            ),
        };
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faq::FaqEntry;

    fn bot() -> Bot {
        let entry = |id: &str, q: &str, similar: &[&str], a: &str| FaqEntry {
            id: id.into(),
            question: q.into(),
            similar: similar.iter().map(|s| s.to_string()).collect(),
            answer: a.into(),
        };
        Bot {
            faq: FaqIndex::build(vec![
                entry(
                    "refund-time",
                    "退款多久到账",
                    &["How long does a refund take?"],
                    "退款将在1-3个工作日原路退回。",
                ),
                entry(
                    "invoice",
                    "怎么开发票",
                    &["How do I get an invoice?"],
                    "在订单详情页点击“申请开票”。",
                ),
                entry(
                    "invoice-title",
                    "发票抬头写错了怎么办",
                    &[],
                    "可在开票后30天内申请重开。",
                ),
                entry(
                    "invoice-mail",
                    "纸质发票什么时候寄出",
                    &[],
                    "纸质发票在开具后3个工作日内寄出。",
                ),
                entry(
                    "delivery",
                    "快递一般几天到",
                    &["How long does delivery take?"],
                    "一般3-5天送达。",
                ),
            ])
            .expect("index"),
            intents: IntentModel::builtin(),
            sentiment: SentimentModel::shipped(),
            thresholds: Thresholds::default(),
        }
    }

    #[test]
    fn a_clear_question_is_answered_in_its_language() {
        let bot = bot();
        let r = bot.respond("退款多久能到账？", Conversation::default());
        assert_eq!(r.outcome, Outcome::Answer, "{r:?}");
        assert_eq!(r.entry_id.as_deref(), Some("refund-time"));
        assert_eq!(r.language, "zh");
        let r = bot.respond("how long does delivery take", Conversation::default());
        assert_eq!(r.outcome, Outcome::Answer, "{r:?}");
        assert_eq!(r.entry_id.as_deref(), Some("delivery"));
    }

    #[test]
    fn a_vague_question_gets_the_top_three_then_a_person() {
        let bot = bot();
        let r = bot.respond("发票", Conversation::default());
        assert_eq!(r.outcome, Outcome::Clarify, "{r:?}");
        assert!(
            r.text.contains("1. ") && r.text.contains("3. "),
            "{}",
            r.text
        );
        let r = bot.respond(
            "发票",
            Conversation {
                clarifications: 2,
                ..Conversation::default()
            },
        );
        assert_eq!(r.handoff_reason, Some(HandoffReason::ClarifiedTooOften));
    }

    #[test]
    fn the_customer_picks_an_offered_question_by_number() {
        let bot = bot();
        let offered = bot.respond("发票", Conversation::default());
        assert_eq!(offered.outcome, Outcome::Clarify, "{offered:?}");
        let ids: Vec<String> = offered
            .matches
            .iter()
            .take(3)
            .map(|m| m.id.clone())
            .collect();
        for (answer, index) in [
            ("2", 1),
            ("第三个", 2),
            ("第1个", 0),
            ("the second one", 1),
            ("#3", 2),
        ] {
            let r = bot.respond(
                answer,
                Conversation {
                    clarifications: 1,
                    offered: ids.clone(),
                    ..Conversation::default()
                },
            );
            assert_eq!(r.outcome, Outcome::Answer, "{answer}: {r:?}");
            assert_eq!(r.entry_id.as_ref(), Some(&ids[index]), "{answer}");
        }
        // Nothing offered: a lone digit is not a question the bot can read.
        let r = bot.respond("2", Conversation::default());
        assert_ne!(r.outcome, Outcome::Answer, "{r:?}");
        assert_eq!(choice("我想问第二个问题的细节"), None);
        assert_eq!(choice("12"), None);
    }

    #[test]
    fn people_take_over_anger_complaints_requests_and_the_unknown() {
        let bot = bot();
        let cases = [
            ("你们这是欺诈！我要找律师起诉你们", HandoffReason::Angry),
            ("转人工", HandoffReason::CustomerAsked),
            (
                "I want to speak to a real person",
                HandoffReason::CustomerAsked,
            ),
            ("我要投诉你们的快递员", HandoffReason::Complaint),
            ("你们公司的股票代码是多少", HandoffReason::NotUnderstood),
        ];
        for (message, reason) in cases {
            let mut r = bot.respond(message, Conversation::default());
            assert_eq!(r.outcome, Outcome::Handoff, "{message}: {r:?}");
            assert_eq!(r.handoff_reason, Some(reason), "{message}: {r:?}");
            let screened = r.intent.clone();
            bot.read_for_handoff(&mut r, message);
            assert_eq!(
                r.intent,
                bot.intents.classify(message),
                "the full reading replaces the screen ({screened:?})"
            );
        }
        // Answers keep the screen's reading.
        let mut r = bot.respond("退款多久能到账？", Conversation::default());
        let screened = r.intent.clone();
        bot.read_for_handoff(&mut r, "退款多久能到账？");
        assert_eq!(r.intent, screened);
    }

    #[test]
    fn small_talk_and_unreadable_input() {
        let bot = bot();
        assert_eq!(
            bot.respond("你好", Conversation::default()).outcome,
            Outcome::SmallTalk
        );
        let r = bot.respond("thanks a lot!", Conversation::default());
        assert_eq!(r.outcome, Outcome::SmallTalk, "{r:?}");
        let binary = String::from_utf8_lossy(&[0xff, 0xfe, 0x00]).into_owned();
        for message in ["", "   ", "🙂🙂", "？？？", binary.as_str()] {
            assert_eq!(
                bot.respond(message, Conversation::default()).outcome,
                Outcome::NoText,
                "{message:?}"
            );
        }
        let huge = "退款".repeat(500_000);
        let r = bot.respond(&huge, Conversation::default());
        assert!(r.outcome != Outcome::NoText);
        let mixed = bot.respond("refund 退款 возврат 환불", Conversation::default());
        assert!(matches!(
            mixed.outcome,
            Outcome::Answer | Outcome::Clarify | Outcome::Handoff
        ));
    }

    #[test]
    fn thresholds_are_checked() {
        assert!(Thresholds::default().check().is_ok());
        assert!(
            Thresholds {
                answer: 0.3,
                clarify: -0.5
            }
            .check()
            .is_err()
        );
        assert!(
            Thresholds {
                answer: 1.5,
                clarify: 0.5
            }
            .check()
            .is_err()
        );
    }
}
