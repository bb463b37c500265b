//! Sentiment and anger (情绪识别) of every message from a customer, read in the
//! transaction that stores the message: the score, label and fired rules are kept (the
//! case's trajectory), and anger or a threat to go to a regulator, the media or a lawyer
//! raises the case's priority — to high, or urgent for a threat — with an internal note
//! that says why.

use crate::sql::{Conn, q};
use crate::{Result, Store, new_public_id};
use kefu_bot::sentiment::{Context, Rule, SentimentModel, TextReading};
use kefu_domain::cases::Priority;
use kefu_domain::{Labelled, Timestamp};
use serde::Serialize;

/// One reading on a case's sentiment trajectory.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SentimentPoint {
    pub message_id: String,
    /// −1 (very negative) … +1 (very positive).
    pub score: f64,
    /// positive, neutral, negative or angry.
    pub label: String,
    /// The rules that fired, each `{"rule", "evidence"}`.
    #[schema(value_type = Object)]
    pub rules: serde_json::Value,
    pub at: Timestamp,
}

/// Window in which earlier messages count as repeated contacts.
const REPEAT_WINDOW_MS: i64 = 7 * 24 * 3600 * 1000;

fn rank(priority: &str) -> u8 {
    match priority {
        "low" => 0,
        "normal" => 1,
        "high" => 2,
        _ => 3,
    }
}

/// The text half of the reading, done before the write transaction starts: the model
/// and jieba take a fraction of a millisecond that the single SQLite writer should not.
pub(crate) fn read_text(body: &str) -> TextReading {
    kefu_bot::sentiment::read_text(&SentimentModel::shipped(), body)
}

/// Finishes reading an inbound message in its transaction and acts on it (see the
/// module's documentation).
pub(crate) async fn read_inbound(
    conn: &mut Conn,
    case: i64,
    message: i64,
    channel: &str,
    text: TextReading,
    now: i64,
) -> Result<bool> {
    let row = conn
        .fetch_one(
            q("SELECT COUNT(*) AS n FROM case_messages WHERE case_id = $1 AND kind = 'inbound' AND id <> $2 AND created_at >= $3")
                .bind(case)
                .bind(message)
                .bind(now - REPEAT_WINDOW_MS),
        )
        .await?;
    let earlier: i64 = row.get("n")?;
    let reading = text.conclude(Context {
        earlier_contacts: u32::try_from(earlier).unwrap_or(u32::MAX),
    });
    conn.execute(
        q("INSERT INTO message_sentiments (message_id, case_id, score, label, rules, at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(message)
            .bind(case)
            .bind(f64::from(reading.score))
            .bind(reading.label.as_str())
            .bind(serde_json::to_string(&reading.rules).unwrap_or_else(|_| "[]".into()))
            .bind(now),
    )
    .await?;
    if !reading.raise_priority {
        return Ok(false);
    }
    let threat = reading.rules.iter().any(|r| r.rule == Rule::Escalation);
    let target = if threat {
        Priority::Urgent
    } else {
        Priority::High
    };
    let row = conn
        .fetch_one(q("SELECT priority FROM cases WHERE id = $1").bind(case))
        .await?;
    let current: String = row.get("priority")?;
    if rank(&current) >= rank(target.as_str()) {
        return Ok(false);
    }
    conn.execute(
        q("UPDATE cases SET priority = $1, updated_at = $2, version = version + 1 WHERE id = $3")
            .bind(target.as_str())
            .bind(now)
            .bind(case),
    )
    .await?;
    let why: Vec<String> = reading
        .rules
        .iter()
        .map(|r| format!("{} ({})", r.rule.as_str(), r.evidence))
        .collect();
    let note = format!(
        "情绪识别：客户情绪为愤怒，优先级由{}提升为{}。\nSentiment: the customer is angry; priority raised from {} to {}. Rules: {}",
        Priority::parse(&current)
            .map(|p| p.label_zh())
            .unwrap_or("?"),
        target.label_zh(),
        current,
        target,
        why.join("; ")
    );
    conn.execute(
        q("INSERT INTO case_messages (public_id, case_id, kind, channel, author_id, body, created_at) VALUES ($1, $2, 'internal_note', $3, NULL, $4, $5)")
            .bind(new_public_id().as_str())
            .bind(case)
            .bind(channel)
            .bind(note.as_str())
            .bind(now),
    )
    .await?;
    Ok(true)
}

impl Store {
    /// The sentiment of each message from the customer on a case, oldest first.
    pub async fn case_sentiment(&self, case_id: &str) -> Result<Vec<SentimentPoint>> {
        let mut conn = self.read();
        let case = crate::cases::load_case(&mut conn, case_id).await?;
        let rows = conn
            .fetch_all(
                q("SELECT m.public_id, s.score, s.label, s.rules, s.at FROM message_sentiments s JOIN case_messages m ON m.id = s.message_id WHERE s.case_id = $1 ORDER BY s.at, s.message_id")
                    .bind(case.key),
            )
            .await?;
        rows.iter()
            .map(|row| {
                let rules: String = row.get("rules")?;
                Ok(SentimentPoint {
                    message_id: row.get("public_id")?,
                    score: row.get("score")?,
                    label: row.get("label")?,
                    rules: serde_json::from_str(&rules).unwrap_or_default(),
                    at: Timestamp(row.get("at")?),
                })
            })
            .collect()
    }
}

/// What agent assist (坐席辅助) works from for a case.
#[derive(Debug, Clone, Default)]
pub struct AssistMaterial {
    /// The customer's last message on the case.
    pub last_message: Option<String>,
    /// Everything the customer wrote on the case (subject first), for classification.
    pub customer_text: String,
    pub communication_type: Option<kefu_domain::customers::CommunicationType>,
    /// Recent agent replies on other cases, each with the customer message it answered:
    /// (case id, the message, the reply).
    pub past_replies: Vec<(String, String, String)>,
    /// The case's last public messages, oldest first: (from the customer, text). Internal
    /// notes are not in it.
    pub transcript: Vec<(bool, String)>,
}

/// How many of a case's last public messages a drafted reply sees.
const TRANSCRIPT: usize = 20;

/// How many recent replies agent assist searches.
const PAST_REPLIES: i64 = 1000;

impl Store {
    pub async fn assist_material(&self, case_id: &str) -> Result<AssistMaterial> {
        let mut conn = self.read();
        let case = crate::cases::load_case(&mut conn, case_id).await?;
        let rows = conn
            .fetch_all(
                q("SELECT kind, body FROM case_messages WHERE case_id = $1 AND kind IN ('inbound', 'outbound') ORDER BY id")
                    .bind(case.key),
            )
            .await?;
        let mut bodies = Vec::with_capacity(rows.len());
        let mut transcript = Vec::with_capacity(rows.len());
        for row in &rows {
            let body = row.get::<String>("body")?;
            let inbound = row.get::<String>("kind")? == "inbound";
            if inbound {
                bodies.push(body.clone());
            }
            transcript.push((inbound, body));
        }
        let transcript = transcript.split_off(transcript.len().saturating_sub(TRANSCRIPT));
        let row = conn
            .fetch_one(
                q("SELECT communication_type FROM customers WHERE public_id = $1")
                    .bind(case.customer_id.as_str()),
            )
            .await?;
        let communication_type = row
            .get::<Option<String>>("communication_type")?
            .and_then(|t| kefu_domain::customers::CommunicationType::parse(&t).ok());
        let rows = conn
            .fetch_all(
                q("SELECT c.public_id, o.body AS reply, (SELECT i.body FROM case_messages i WHERE i.case_id = o.case_id AND i.kind = 'inbound' AND i.id < o.id ORDER BY i.id DESC LIMIT 1) AS asked FROM case_messages o JOIN cases c ON c.id = o.case_id WHERE o.kind = 'outbound' AND o.case_id <> $1 ORDER BY o.id DESC LIMIT $2")
                    .bind(case.key)
                    .bind(PAST_REPLIES),
            )
            .await?;
        let mut past_replies = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(asked) = row.get::<Option<String>>("asked")? {
                past_replies.push((row.get("public_id")?, asked, row.get("reply")?));
            }
        }
        Ok(AssistMaterial {
            last_message: bodies.last().cloned(),
            customer_text: std::iter::once(case.subject.clone())
                .chain(bodies)
                .collect::<Vec<_>>()
                .join("\n"),
            communication_type,
            past_replies,
            transcript,
        })
    }
}
