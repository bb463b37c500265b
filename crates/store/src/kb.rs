//! The knowledge base (知识库) and what the bot keeps: entries with every version, the
//! bot's thresholds, and the questions it could not answer, grouped so that admins see
//! which entries are missing.

use crate::audit;
use crate::customers::parse_label;
use crate::page::{Cursor, CursorKey, Page, PageRequest};
use crate::sql::{Builder, Conn, Row, q, q_dynamic};
use crate::{Actor, Result, Store, StoreError, new_public_id, parse_public_id};
use kefu_domain::kb::{KbKind, KbLanguage, KbStatus, check_text};
use kefu_domain::{DomainError, Labelled, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KbEntry {
    pub id: String,
    pub kind: KbKind,
    /// The standard question (标准问), or an article's title.
    pub question: String,
    /// Other ways customers ask it (相似问法).
    pub similar: Vec<String>,
    /// The answer, or an article's body.
    pub answer: String,
    pub category: String,
    pub language: KbLanguage,
    pub status: KbStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKbEntry {
    /// `faq` (default) or `article`.
    pub kind: Option<KbKind>,
    pub question: String,
    #[serde(default)]
    pub similar: Vec<String>,
    pub answer: String,
    pub category: Option<String>,
    /// `zh` or `en`; from the question's script when left out.
    pub language: Option<KbLanguage>,
    /// `draft` (default), `published` or `archived`.
    pub status: Option<KbStatus>,
}

/// A change to an entry: fields left out stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KbEntryPatch {
    pub kind: Option<KbKind>,
    pub question: Option<String>,
    pub similar: Option<Vec<String>>,
    pub answer: Option<String>,
    pub category: Option<String>,
    pub language: Option<KbLanguage>,
    pub status: Option<KbStatus>,
}

/// One saved version of an entry.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KbVersion {
    pub version: i64,
    pub question: String,
    pub similar: Vec<String>,
    pub answer: String,
    pub category: String,
    pub language: KbLanguage,
    pub status: KbStatus,
    pub edited_by: Option<String>,
    pub edited_at: Timestamp,
}

#[derive(Debug, Clone, Default)]
pub struct KbFilter {
    pub status: Option<KbStatus>,
    pub kind: Option<KbKind>,
    pub language: Option<KbLanguage>,
    pub category: Option<String>,
}

/// The bot's thresholds (see `kefu_bot::bot::Thresholds`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BotSettings {
    /// Answer when the confidence in the best entry is at least this (0–1).
    pub answer_threshold: f64,
    /// Otherwise offer the top 3 when the chance that one of them is right is at least
    /// this (0–1); below it, hand over to a person.
    pub clarify_threshold: f64,
    #[serde(default)]
    pub version: i64,
}

impl Default for BotSettings {
    fn default() -> Self {
        BotSettings {
            answer_threshold: 0.75,
            clarify_threshold: 0.35,
            version: 0,
        }
    }
}

/// A question the bot could not answer, with how often it (or the same words) came.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Unanswered {
    /// The question in normalised form: what groups repeats.
    pub normalized: String,
    /// The first message seen with these words.
    pub example: String,
    pub language: String,
    /// The entry that came closest, and how sure the bot was of it.
    pub best_entry_id: Option<String>,
    pub best_confidence: f64,
    pub times: i64,
    pub first_seen_at: Timestamp,
    pub last_seen_at: Timestamp,
}

/// A published FAQ entry, as the bot indexes it.
#[derive(Debug, Clone)]
pub struct PublishedFaq {
    pub id: String,
    pub question: String,
    pub similar: Vec<String>,
    pub answer: String,
}

const ENTRY_SELECT: &str = "SELECT e.id, e.public_id, e.kind, e.question, e.similar_questions, e.answer, e.category, e.language, e.status, e.created_at, e.updated_at, e.version FROM kb_entries e";

fn similar_of(row: &Row) -> Result<Vec<String>> {
    let text: String = row.get("similar_questions")?;
    serde_json::from_str(&text).map_err(|e| StoreError::Database(format!("stored similar: {e}")))
}

fn entry_from_row(row: &Row) -> Result<KbEntry> {
    Ok(KbEntry {
        id: row.get("public_id")?,
        kind: parse_label(row, "kind")?,
        question: row.get("question")?,
        similar: similar_of(row)?,
        answer: row.get("answer")?,
        category: row.get("category")?,
        language: parse_label(row, "language")?,
        status: parse_label(row, "status")?,
        created_at: Timestamp(row.get("created_at")?),
        updated_at: Timestamp(row.get("updated_at")?),
        version: row.get("version")?,
    })
}

async fn load_entry(conn: &mut Conn, public_id: &str) -> Result<(i64, KbEntry)> {
    let id = parse_public_id("knowledge-base entry", public_id)?;
    let row = conn
        .fetch_optional(q_dynamic(format!("{ENTRY_SELECT} WHERE e.public_id = $1")).bind(id))
        .await?
        .ok_or_else(|| StoreError::not_found("knowledge-base entry", public_id))?;
    Ok((row.get("id")?, entry_from_row(&row)?))
}

async fn save_version(conn: &mut Conn, key: i64, entry: &KbEntry, actor: &Actor) -> Result<()> {
    conn.execute(
        q("INSERT INTO kb_entry_versions (entry_id, version, question, similar_questions, answer, category, language, status, edited_by, edited_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind(key)
            .bind(entry.version)
            .bind(entry.question.as_str())
            .bind(serde_json::to_string(&entry.similar).unwrap_or_else(|_| "[]".into()))
            .bind(entry.answer.as_str())
            .bind(entry.category.as_str())
            .bind(entry.language.as_str())
            .bind(entry.status.as_str())
            .bind(actor.user_id)
            .bind(entry.updated_at.0),
    )
    .await?;
    Ok(())
}

/// `zh` when Chinese characters are at least a fifth of the letters, else `en`.
fn language_of(text: &str) -> KbLanguage {
    if kefu_domain::text::language_of(text) == "zh" {
        KbLanguage::Zh
    } else {
        KbLanguage::En
    }
}

impl Store {
    /// Adds an entry (a draft unless said) and its first version.
    pub async fn create_kb_entry(&self, actor: &Actor, input: NewKbEntry) -> Result<KbEntry> {
        let now = self.now_ms();
        let text = check_text(
            &input.question,
            &input.similar,
            &input.answer,
            input.category.as_deref().unwrap_or(""),
        )?;
        let language = input
            .language
            .unwrap_or_else(|| language_of(&text.question));
        let mut conn = self.write().await?;
        let id = new_public_id();
        conn.execute(
            q("INSERT INTO kb_entries (public_id, kind, question, similar_questions, answer, category, language, status, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)")
                .bind(id.as_str())
                .bind(input.kind.unwrap_or(KbKind::Faq).as_str())
                .bind(text.question.as_str())
                .bind(serde_json::to_string(&text.similar).unwrap_or_else(|_| "[]".into()))
                .bind(text.answer.as_str())
                .bind(text.category.as_str())
                .bind(language.as_str())
                .bind(input.status.unwrap_or(KbStatus::Draft).as_str())
                .bind(actor.user_id)
                .bind(now),
        )
        .await?;
        let (key, entry) = load_entry(&mut conn, &id).await?;
        save_version(&mut conn, key, &entry, actor).await?;
        audit::record(
            &mut conn,
            actor,
            now,
            "create",
            "kb_entry",
            &id,
            None,
            serde_json::to_value(&entry).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        Ok(entry)
    }

    /// Changes an entry; every change is a new version (`expected_version` from If-Match).
    pub async fn update_kb_entry(
        &self,
        actor: &Actor,
        entry_id: &str,
        patch: KbEntryPatch,
        expected_version: Option<i64>,
    ) -> Result<KbEntry> {
        let now = self.now_ms();
        let mut conn = self.write().await?;
        let (key, before) = load_entry(&mut conn, entry_id).await?;
        if let Some(expected) = expected_version
            && expected != before.version
        {
            return Err(StoreError::VersionMismatch {
                entity: "knowledge-base entry",
                expected,
                current: before.version,
            });
        }
        let text = check_text(
            patch.question.as_deref().unwrap_or(&before.question),
            patch.similar.as_deref().unwrap_or(&before.similar),
            patch.answer.as_deref().unwrap_or(&before.answer),
            patch.category.as_deref().unwrap_or(&before.category),
        )?;
        // A conditional update: two editors who read the same version cannot both win.
        let changed = conn
            .execute(
                q("UPDATE kb_entries SET kind = $1, question = $2, similar_questions = $3, answer = $4, category = $5, language = $6, status = $7, updated_at = $8, version = version + 1 WHERE id = $9 AND version = $10")
                    .bind(patch.kind.unwrap_or(before.kind).as_str())
                    .bind(text.question.as_str())
                    .bind(serde_json::to_string(&text.similar).unwrap_or_else(|_| "[]".into()))
                    .bind(text.answer.as_str())
                    .bind(text.category.as_str())
                    .bind(patch.language.unwrap_or(before.language).as_str())
                    .bind(patch.status.unwrap_or(before.status).as_str())
                    .bind(now)
                    .bind(key)
                    .bind(before.version),
            )
            .await?;
        if changed == 0 {
            let (_, current) = load_entry(&mut conn, entry_id).await?;
            return Err(StoreError::VersionMismatch {
                entity: "knowledge-base entry",
                expected: before.version,
                current: current.version,
            });
        }
        let (_, after) = load_entry(&mut conn, entry_id).await?;
        save_version(&mut conn, key, &after, actor).await?;
        audit::record(
            &mut conn,
            actor,
            now,
            "update",
            "kb_entry",
            entry_id,
            serde_json::to_value(&before).ok().as_ref(),
            serde_json::to_value(&after).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        Ok(after)
    }

    pub async fn kb_entry(&self, entry_id: &str) -> Result<KbEntry> {
        let mut conn = self.read();
        Ok(load_entry(&mut conn, entry_id).await?.1)
    }

    /// Every version of an entry, newest first.
    pub async fn kb_entry_versions(&self, entry_id: &str) -> Result<Vec<KbVersion>> {
        let mut conn = self.read();
        let (key, _) = load_entry(&mut conn, entry_id).await?;
        let rows = conn
            .fetch_all(
                q("SELECT v.version, v.question, v.similar_questions, v.answer, v.category, v.language, v.status, u.public_id AS editor, v.edited_at FROM kb_entry_versions v LEFT JOIN users u ON u.id = v.edited_by WHERE v.entry_id = $1 ORDER BY v.version DESC")
                    .bind(key),
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(KbVersion {
                    version: row.get("version")?,
                    question: row.get("question")?,
                    similar: similar_of(row)?,
                    answer: row.get("answer")?,
                    category: row.get("category")?,
                    language: parse_label(row, "language")?,
                    status: parse_label(row, "status")?,
                    edited_by: row.get("editor")?,
                    edited_at: Timestamp(row.get("edited_at")?),
                })
            })
            .collect()
    }

    /// Lists entries, oldest first.
    pub async fn kb_entries(&self, filter: &KbFilter, page: &PageRequest) -> Result<Page<KbEntry>> {
        let limit = page.limit()?;
        let mut builder = Builder::new(ENTRY_SELECT);
        builder.push(" WHERE 1 = 1");
        if let Some(status) = filter.status {
            builder.and("e.status = $?", status.as_str());
        }
        if let Some(kind) = filter.kind {
            builder.and("e.kind = $?", kind.as_str());
        }
        if let Some(language) = filter.language {
            builder.and("e.language = $?", language.as_str());
        }
        if let Some(category) = &filter.category {
            builder.and("e.category = $?", category.trim());
        }
        if let Some(cursor) = &page.cursor {
            let cursor = Cursor::decode(cursor, "kb")?;
            builder.and("e.id > $?", cursor.id);
        }
        builder.push(&format!(" ORDER BY e.id LIMIT {}", limit + 1));
        let rows = self.read().fetch_all(builder.query()).await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            items.push((row.get::<i64>("id")?, entry_from_row(row)?));
        }
        let page = audit::finish_page(items, limit, |(id, _)| Cursor {
            k: CursorKey::Int(*id),
            id: *id,
            s: "kb".into(),
        });
        Ok(Page {
            items: page.items.into_iter().map(|(_, e)| e).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// Published FAQ entries, for the bot's index.
    pub async fn published_faq(&self) -> Result<Vec<PublishedFaq>> {
        let rows = self
            .read()
            .fetch_all(q(
                "SELECT public_id, question, similar_questions, answer FROM kb_entries WHERE status = 'published' AND kind = 'faq' ORDER BY id",
            ))
            .await?;
        rows.iter()
            .map(|row| {
                Ok(PublishedFaq {
                    id: row.get("public_id")?,
                    question: row.get("question")?,
                    similar: similar_of(row)?,
                    answer: row.get("answer")?,
                })
            })
            .collect()
    }

    /// A value that changes whenever any entry changes: the bot rebuilds its index when
    /// it does (on every node, since it is read from the database).
    pub async fn kb_signature(&self) -> Result<(i64, i64, i64)> {
        let row = self
            .read()
            .fetch_one(q(
                "SELECT COUNT(*) AS n, COALESCE(MAX(updated_at), 0) AS latest, CAST(COALESCE(SUM(version), 0) AS BIGINT) AS versions FROM kb_entries",
            ))
            .await?;
        Ok((row.get("n")?, row.get("latest")?, row.get("versions")?))
    }

    pub async fn bot_settings(&self) -> Result<BotSettings> {
        let row = self
            .read()
            .fetch_optional(q(
                "SELECT answer_threshold, clarify_threshold, version FROM bot_settings WHERE id = 1",
            ))
            .await?;
        Ok(match row {
            Some(row) => BotSettings {
                answer_threshold: row.get("answer_threshold")?,
                clarify_threshold: row.get("clarify_threshold")?,
                version: row.get("version")?,
            },
            None => BotSettings::default(),
        })
    }

    /// Sets the bot's thresholds (`expected_version` from If-Match; 0 before the first).
    pub async fn set_bot_settings(
        &self,
        actor: &Actor,
        settings: BotSettings,
        expected_version: Option<i64>,
    ) -> Result<BotSettings> {
        let now = self.now_ms();
        for (field, value) in [
            ("answer_threshold", settings.answer_threshold),
            ("clarify_threshold", settings.clarify_threshold),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(DomainError::invalid(field, "is a probability between 0 and 1").into());
            }
        }
        let mut conn = self.write().await?;
        let before = self.bot_settings_in(&mut conn).await?;
        if let Some(expected) = expected_version
            && expected != before.version
        {
            return Err(StoreError::VersionMismatch {
                entity: "bot settings",
                expected,
                current: before.version,
            });
        }
        conn.execute(
            q("INSERT INTO bot_settings (id, answer_threshold, clarify_threshold, updated_at, version) VALUES (1, $1, $2, $3, 1) ON CONFLICT (id) DO UPDATE SET answer_threshold = $1, clarify_threshold = $2, updated_at = $3, version = bot_settings.version + 1")
                .bind(settings.answer_threshold)
                .bind(settings.clarify_threshold)
                .bind(now),
        )
        .await?;
        let after = self.bot_settings_in(&mut conn).await?;
        audit::record(
            &mut conn,
            actor,
            now,
            "update",
            "bot_settings",
            "bot",
            serde_json::to_value(before).ok().as_ref(),
            serde_json::to_value(after).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        Ok(after)
    }

    async fn bot_settings_in(&self, conn: &mut Conn) -> Result<BotSettings> {
        let row = conn
            .fetch_optional(q(
                "SELECT answer_threshold, clarify_threshold, version FROM bot_settings WHERE id = 1",
            ))
            .await?;
        Ok(match row {
            Some(row) => BotSettings {
                answer_threshold: row.get("answer_threshold")?,
                clarify_threshold: row.get("clarify_threshold")?,
                version: row.get("version")?,
            },
            None => BotSettings::default(),
        })
    }

    /// Counts a question the bot could not answer under its normalised words.
    pub async fn record_unanswered(
        &self,
        normalized: &str,
        example: &str,
        language: &str,
        best_entry_id: Option<&str>,
        best_confidence: f64,
    ) -> Result<()> {
        let now = self.now_ms();
        let normalized: String = normalized.chars().take(500).collect();
        if normalized.is_empty() {
            return Ok(());
        }
        let example: String = example.trim().chars().take(2000).collect();
        let mut conn = self.write().await?;
        let best = match best_entry_id {
            Some(id) => conn
                .fetch_optional(q("SELECT id FROM kb_entries WHERE public_id = $1").bind(id))
                .await?
                .map(|row| row.get::<i64>("id"))
                .transpose()?,
            None => None,
        };
        conn.execute(
            q("INSERT INTO bot_unanswered (normalized, example, language, best_entry_id, best_confidence, times, first_seen_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $6) ON CONFLICT (normalized) DO UPDATE SET times = bot_unanswered.times + 1, last_seen_at = $6, best_entry_id = $4, best_confidence = $5")
                .bind(normalized.as_str())
                .bind(example.as_str())
                .bind(language)
                .bind(best)
                .bind(best_confidence)
                .bind(now),
        )
        .await?;
        conn.commit().await?;
        Ok(())
    }

    /// Unanswered questions, most asked first (at most 2,000).
    pub async fn unanswered(&self, limit: u32) -> Result<Vec<Unanswered>> {
        let rows = self
            .read()
            .fetch_all(
                q("SELECT u.normalized, u.example, u.language, e.public_id AS best, u.best_confidence, u.times, u.first_seen_at, u.last_seen_at FROM bot_unanswered u LEFT JOIN kb_entries e ON e.id = u.best_entry_id ORDER BY u.times DESC, u.id LIMIT $1")
                    .bind(i64::from(limit.clamp(1, 2000))),
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Unanswered {
                    normalized: row.get("normalized")?,
                    example: row.get("example")?,
                    language: row.get("language")?,
                    best_entry_id: row.get("best")?,
                    best_confidence: row.get("best_confidence")?,
                    times: row.get("times")?,
                    first_seen_at: Timestamp(row.get("first_seen_at")?),
                    last_seen_at: Timestamp(row.get("last_seen_at")?),
                })
            })
            .collect()
    }
}
