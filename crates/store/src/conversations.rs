//! Conversations with the bot (机器人会话): every turn kept, clarifications counted here
//! rather than by the caller, and the handover to a person (转人工) — a case created with
//! the customer's words as its first message and an internal note carrying what the bot
//! knew: why it handed over, the intent, the confidence, the sentiment, the entries it
//! matched and the whole transcript. After the handover the customer's messages go to
//! that case.

use crate::cases::NewCase;
use crate::customers::{customer_key, parse_label};
use crate::sql::{Conn, Dialect, Row, q};
use crate::{Actor, Result, Store, StoreError, new_public_id, parse_public_id};
use kefu_bot::bot::{HandoffReason, Outcome, Reply};
use kefu_bot::sentiment::{Label, Rule};
use kefu_domain::cases::{CaseKind, MessageKind, Priority};
use kefu_domain::timeline::Channel;
use kefu_domain::{Labelled, Timestamp, required_text};
use serde::{Deserialize, Serialize};

/// The longest customer message a conversation keeps (a chat message, not a document).
pub const MAX_TURN_CHARS: usize = 10_000;

/// Window in which the customer's earlier conversations count as repeated contacts.
const REPEAT_WINDOW_MS: i64 = 7 * 24 * 3600 * 1000;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BotConversation {
    pub id: String,
    pub customer_id: String,
    pub channel: Channel,
    /// `open` (the bot answers) or `handed_over` (a person has it, on `case_id`).
    pub status: String,
    /// Clarifying questions the bot has asked in a row.
    pub clarifications: u32,
    /// The case the conversation was handed over to.
    pub case_id: Option<String>,
    pub handoff_reason: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One turn: the customer's words, or the bot's reply with what it knew.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BotTurn {
    /// `customer` or `bot`.
    pub role: String,
    pub text: String,
    /// The bot's outcome: `answer`, `clarify`, `handoff`, `small_talk` or `no_text`.
    pub outcome: Option<String>,
    /// The bot's whole reply: intent, confidence, matches, sentiment, handoff reason.
    #[schema(value_type = Object)]
    pub detail: Option<serde_json::Value>,
    pub at: Timestamp,
}

/// A conversation with its transcript.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BotTranscript {
    pub conversation: BotConversation,
    pub turns: Vec<BotTurn>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBotConversation {
    pub customer_id: String,
    /// `live_chat` unless given.
    pub channel: Option<Channel>,
}

/// What the bot needs to know before it answers the next message.
#[derive(Debug, Clone)]
pub struct ConversationState {
    pub conversation: BotConversation,
    /// The entries the last clarification offered, in order.
    pub offered: Vec<String>,
    /// The customer's other conversations in the last seven days.
    pub earlier_contacts: u32,
}

macro_rules! conversation_select {
    () => {
        "SELECT v.public_id, c.public_id AS customer, v.channel, v.status, v.clarifications, v.offered, k.public_id AS case_public_id, v.handoff_reason, v.created_at, v.updated_at, v.id, v.customer_id AS customer_key FROM bot_conversations v JOIN customers c ON c.id = v.customer_id LEFT JOIN cases k ON k.id = v.case_id WHERE v.public_id = $1"
    };
}

struct Loaded {
    conversation: BotConversation,
    offered: Vec<String>,
    key: i64,
    customer: i64,
}

fn from_row(row: &Row) -> Result<Loaded> {
    let offered: String = row.get("offered")?;
    Ok(Loaded {
        conversation: BotConversation {
            id: row.get("public_id")?,
            customer_id: row.get("customer")?,
            channel: parse_label(row, "channel")?,
            status: row.get("status")?,
            clarifications: u32::try_from(row.get::<i64>("clarifications")?).unwrap_or(0),
            case_id: row.get("case_public_id")?,
            handoff_reason: row.get("handoff_reason")?,
            created_at: Timestamp(row.get("created_at")?),
            updated_at: Timestamp(row.get("updated_at")?),
        },
        offered: serde_json::from_str(&offered).unwrap_or_default(),
        key: row.get("id")?,
        customer: row.get("customer_key")?,
    })
}

async fn load(conn: &mut Conn, public_id: &str, lock: bool) -> Result<Loaded> {
    let id = parse_public_id("bot conversation", public_id)?;
    let sql = if lock && conn.dialect() == Dialect::Postgres {
        concat!(conversation_select!(), " FOR UPDATE OF v")
    } else {
        conversation_select!()
    };
    let row = conn
        .fetch_optional(q(sql).bind(id))
        .await?
        .ok_or_else(|| StoreError::not_found("bot conversation", public_id))?;
    from_row(&row)
}

fn reason_zh(reason: HandoffReason) -> &'static str {
    match reason {
        HandoffReason::CustomerAsked => "客户要求转人工",
        HandoffReason::Angry => "客户情绪愤怒",
        HandoffReason::Complaint => "客户投诉",
        HandoffReason::NotUnderstood => "知识库中没有把握的答案",
        HandoffReason::ClarifiedTooOften => "多次澄清仍未明确问题",
    }
}

fn reason_en(reason: HandoffReason) -> &'static str {
    match reason {
        HandoffReason::CustomerAsked => "the customer asked for a person",
        HandoffReason::Angry => "the customer is angry",
        HandoffReason::Complaint => "the customer is complaining",
        HandoffReason::NotUnderstood => "no knowledge-base entry the bot was sure of",
        HandoffReason::ClarifiedTooOften => "still unclear after two clarifying questions",
    }
}

/// The kind of case a handover opens, from why and what the customer wants.
fn case_kind(reply: &Reply) -> CaseKind {
    let reason = reply.handoff_reason;
    if matches!(
        reason,
        Some(HandoffReason::Angry | HandoffReason::Complaint)
    ) {
        return CaseKind::Complaint;
    }
    let intent = reply
        .intent
        .as_ref()
        .filter(|g| g.confidence >= 0.5)
        .map(|g| g.intent.as_str());
    match intent {
        Some("complaint") => CaseKind::Complaint,
        Some("tech_support" | "account") => CaseKind::TechnicalSupport,
        Some("order_status" | "logistics" | "payment" | "invoice") => CaseKind::Order,
        Some("refund_return") => CaseKind::AfterSale,
        _ => CaseKind::Consultation,
    }
}

/// The note a person taking over reads first, in both languages.
fn handoff_note(reply: &Reply, turns: &[(String, String)]) -> String {
    let reason = reply.handoff_reason.unwrap_or(HandoffReason::NotUnderstood);
    let mut note = format!(
        "机器人转人工 / Bot handoff\n原因 Reason: {}（{}）\n",
        reason_zh(reason),
        reason_en(reason)
    );
    if let Some(intent) = &reply.intent {
        let ranked: Vec<String> = intent
            .ranked
            .iter()
            .map(|r| format!("{} {:.2}", r.label, r.probability))
            .collect();
        note.push_str(&format!("意图 Intent: {}\n", ranked.join(", ")));
    }
    note.push_str(&format!(
        "知识库置信度 Confidence: {:.2}\n",
        reply.confidence
    ));
    let s = &reply.sentiment;
    let rules: Vec<String> = s
        .rules
        .iter()
        .map(|r| format!("{} ({})", r.rule.as_str(), r.evidence))
        .collect();
    note.push_str(&format!(
        "情绪 Sentiment: {} {:+.2}{}\n",
        s.label.as_str(),
        s.score,
        if rules.is_empty() {
            String::new()
        } else {
            format!("; {}", rules.join("; "))
        }
    ));
    if !reply.matches.is_empty() {
        note.push_str("匹配条目 Matched entries:\n");
        for (i, m) in reply.matches.iter().take(3).enumerate() {
            note.push_str(&format!("  {}. {} ({:.2})\n", i + 1, m.question, m.score));
        }
    }
    note.push_str("对话记录 Transcript:\n");
    for (role, text) in turns {
        let who = if role == "customer" {
            "客户 Customer"
        } else {
            "机器人 Bot"
        };
        note.push_str(&format!("{who}: {text}\n"));
    }
    // A case message holds 100,000 characters; a long conversation keeps its end.
    let chars = note.chars().count();
    if chars > 100_000 {
        note = format!("…{}", note.chars().skip(chars - 99_000).collect::<String>());
    }
    note
}

impl Store {
    /// Starts a conversation between a customer and the bot.
    pub async fn start_bot_conversation(
        &self,
        input: NewBotConversation,
    ) -> Result<BotConversation> {
        let now = self.now_ms();
        let mut conn = self.write().await?;
        let customer = customer_key(&mut conn, &input.customer_id, "customer_id").await?;
        let public_id = new_public_id();
        conn.execute(
            q("INSERT INTO bot_conversations (public_id, customer_id, channel, status, clarifications, offered, created_at, updated_at) VALUES ($1, $2, $3, 'open', 0, '[]', $4, $4)")
                .bind(public_id.as_str())
                .bind(customer)
                .bind(input.channel.unwrap_or(Channel::LiveChat).as_str())
                .bind(now),
        )
        .await?;
        let loaded = load(&mut conn, &public_id, false).await?;
        conn.commit().await?;
        Ok(loaded.conversation)
    }

    /// A conversation with every turn.
    pub async fn bot_transcript(&self, public_id: &str) -> Result<BotTranscript> {
        let mut conn = self.read();
        let loaded = load(&mut conn, public_id, false).await?;
        let rows = conn
            .fetch_all(
                q("SELECT role, text, outcome, detail, at FROM bot_turns WHERE conversation_id = $1 ORDER BY id")
                    .bind(loaded.key),
            )
            .await?;
        let turns = rows
            .iter()
            .map(|row| {
                let detail: Option<String> = row.get("detail")?;
                Ok(BotTurn {
                    role: row.get("role")?,
                    text: row.get("text")?,
                    outcome: row.get("outcome")?,
                    detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
                    at: Timestamp(row.get("at")?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(BotTranscript {
            conversation: loaded.conversation,
            turns,
        })
    }

    /// The conversations handed over to a case, oldest first (usually one).
    pub async fn case_handoffs(&self, case_id: &str) -> Result<Vec<BotTranscript>> {
        let case = crate::cases::load_case(&mut self.read(), case_id).await?;
        let rows = self
            .read()
            .fetch_all(
                q("SELECT public_id FROM bot_conversations WHERE case_id = $1 ORDER BY id")
                    .bind(case.key),
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.get("public_id")?;
            out.push(self.bot_transcript(&id).await?);
        }
        Ok(out)
    }

    /// What the bot needs before it answers: the clarifications so far, what was offered
    /// and how often the customer came back.
    pub async fn bot_conversation_state(&self, public_id: &str) -> Result<ConversationState> {
        let mut conn = self.read();
        let loaded = load(&mut conn, public_id, false).await?;
        let row = conn
            .fetch_one(
                q("SELECT COUNT(*) AS n FROM bot_conversations WHERE customer_id = $1 AND id <> $2 AND created_at >= $3")
                    .bind(loaded.customer)
                    .bind(loaded.key)
                    .bind(self.now_ms() - REPEAT_WINDOW_MS),
            )
            .await?;
        let earlier: i64 = row.get("n")?;
        Ok(ConversationState {
            conversation: loaded.conversation,
            offered: loaded.offered,
            earlier_contacts: u32::try_from(earlier).unwrap_or(u32::MAX),
        })
    }

    /// Keeps one exchange — the customer's message and the bot's reply — and, when the
    /// reply hands over, opens the case for a person, all in one transaction.
    pub async fn record_bot_exchange(
        &self,
        actor: &Actor,
        public_id: &str,
        customer_text: &str,
        reply: &Reply,
    ) -> Result<BotConversation> {
        let now = self.now_ms();
        let text = required_text("text", customer_text, MAX_TURN_CHARS)?;
        let handoff = reply.outcome == Outcome::Handoff;
        let mut conn = self.write().await?;
        let loaded = load(&mut conn, public_id, true).await?;
        if loaded.conversation.status != "open" {
            return Err(handed_over(&loaded.conversation));
        }
        let detail = serde_json::to_string(reply).unwrap_or_else(|_| "null".into());
        conn.execute(
            q("INSERT INTO bot_turns (conversation_id, role, text, outcome, detail, at) VALUES ($1, 'customer', $2, NULL, NULL, $3)")
                .bind(loaded.key)
                .bind(text.as_str())
                .bind(now),
        )
        .await?;
        conn.execute(
            q("INSERT INTO bot_turns (conversation_id, role, text, outcome, detail, at) VALUES ($1, 'bot', $2, $3, $4, $5)")
                .bind(loaded.key)
                .bind(reply.text.as_str())
                .bind(outcome_str(reply.outcome))
                .bind(detail.as_str())
                .bind(now),
        )
        .await?;
        let (clarifications, offered) = if reply.outcome == Outcome::Clarify {
            let offered: Vec<&str> = reply
                .matches
                .iter()
                .take(3)
                .map(|m| m.id.as_str())
                .collect();
            (
                i64::from(loaded.conversation.clarifications) + 1,
                serde_json::to_string(&offered).unwrap_or_else(|_| "[]".into()),
            )
        } else {
            (0, "[]".to_string())
        };
        let mut case_key = None;
        if handoff {
            case_key = Some(
                self.open_handoff_case(&mut conn, actor, &loaded, reply, now)
                    .await?,
            );
        }
        conn.execute(
            q("UPDATE bot_conversations SET clarifications = $1, offered = $2, status = $3, case_id = COALESCE($4, case_id), handoff_reason = COALESCE($5, handoff_reason), updated_at = $6 WHERE id = $7")
                .bind(clarifications)
                .bind(offered.as_str())
                .bind(if handoff { "handed_over" } else { "open" })
                .bind(case_key)
                .bind(reply.handoff_reason.map(HandoffReason::as_str))
                .bind(now)
                .bind(loaded.key),
        )
        .await?;
        let loaded = load(&mut conn, public_id, false).await?;
        conn.commit().await?;
        Ok(loaded.conversation)
    }

    async fn open_handoff_case(
        &self,
        conn: &mut Conn,
        actor: &Actor,
        conversation: &Loaded,
        reply: &Reply,
        now: i64,
    ) -> Result<i64> {
        let rows = conn
            .fetch_all(
                q("SELECT role, text, outcome FROM bot_turns WHERE conversation_id = $1 ORDER BY id")
                    .bind(conversation.key),
            )
            .await?;
        let mut turns = Vec::with_capacity(rows.len());
        let mut subject = None;
        let mut customer_said = Vec::new();
        let mut last_customer: Option<String> = None;
        for row in &rows {
            let role: String = row.get("role")?;
            let text: String = row.get("text")?;
            let outcome: Option<String> = row.get("outcome")?;
            if role == "customer" {
                customer_said.push(text.clone());
                last_customer = Some(text.clone());
            } else if subject.is_none()
                && !matches!(outcome.as_deref(), Some("small_talk" | "no_text"))
            {
                // The first question that was not small talk names the case.
                subject = last_customer.clone();
            }
            turns.push((role, text));
        }
        let subject: String = subject
            .or(last_customer)
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(120)
            .collect();
        // The customer's words are the case's first message (read for sentiment like
        // any inbound message); a long conversation keeps its most recent 100,000
        // characters.
        let mut body = String::new();
        for said in customer_said.iter().rev() {
            if body.chars().count() + said.chars().count() + 1 > 99_000 {
                body.insert_str(0, "…\n");
                break;
            }
            body.insert_str(0, &format!("{said}\n"));
        }
        let body = body.trim_end().to_string();
        let threat = reply
            .sentiment
            .rules
            .iter()
            .any(|r| r.rule == Rule::Escalation);
        let priority = match reply.handoff_reason {
            Some(HandoffReason::Angry) if threat => Some(Priority::Urgent),
            Some(HandoffReason::Angry) => Some(Priority::High),
            _ if reply.sentiment.label == Label::Angry => Some(Priority::High),
            _ => None,
        };
        let reading = crate::sentiment::read_text(&body);
        let case = self
            .create_case_in(
                conn,
                actor,
                NewCase {
                    customer_id: conversation.conversation.customer_id.clone(),
                    kind: case_kind(reply),
                    subject: if subject.is_empty() {
                        "机器人转人工 / Bot handoff".into()
                    } else {
                        subject
                    },
                    body,
                    message_kind: None,
                    channel: Some(conversation.conversation.channel),
                    priority,
                    service_stage: None,
                    technical: None,
                    charging: None,
                    service_mode: None,
                    recurrence: None,
                    team_id: None,
                    assignee_id: None,
                    content_type: None,
                },
                Some(reading),
            )
            .await?;
        crate::cases::insert_message(
            conn,
            case.key,
            MessageKind::InternalNote,
            conversation.conversation.channel,
            None,
            &handoff_note(reply, &turns),
            now,
        )
        .await?;
        Ok(case.key)
    }
}

fn outcome_str(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Answer => "answer",
        Outcome::Clarify => "clarify",
        Outcome::Handoff => "handoff",
        Outcome::SmallTalk => "small_talk",
        Outcome::NoText => "no_text",
    }
}

fn handed_over(conversation: &BotConversation) -> StoreError {
    StoreError::conflict(
        "conversation_handed_over",
        None,
        format!(
            "the conversation is {}; the customer's messages go to case {}",
            conversation.status,
            conversation.case_id.as_deref().unwrap_or("-")
        ),
    )
}
