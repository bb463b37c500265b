//! Intents (意图) the admins teach the bot: new intents with labels in both languages,
//! and examples for any intent, built-in or added. The server's intent model is trained
//! from the built-in seeds plus these, and rebuilt when [`Store::intents_signature`]
//! changes.

use crate::audit;
use crate::sql::{Conn, q};
use crate::{Actor, Result, Store, StoreError, new_public_id, parse_public_id};
use kefu_bot::intent::AdminIntent;
use kefu_domain::{DomainError, Timestamp, required_text};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// At most this many examples in one request.
pub const MAX_EXAMPLES_PER_REQUEST: usize = 1000;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BotIntent {
    /// `order_status`, `membership`: lower case, digits and `_`.
    pub name: String,
    pub label_zh: String,
    pub label_en: String,
    /// Shipped with kefu (its seed examples cannot be removed) or added by an admin.
    pub builtin: bool,
    /// Seed examples shipped with kefu.
    pub seed_examples: u32,
    /// Examples admins added.
    pub examples: u32,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBotIntent {
    pub name: String,
    pub label_zh: String,
    pub label_en: String,
    #[serde(default)]
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IntentExample {
    pub id: String,
    pub intent: String,
    pub text: String,
    /// `zh` or `en`, from the text.
    pub language: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIntentExamples {
    pub examples: Vec<String>,
}

fn check_name(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        // `/bot/intents/examples/{id}` is a path of its own.
        && name != "examples";
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "name",
            "1–64 characters: lower-case letters, digits and `_`, starting with a letter",
        )
        .into())
    }
}

fn is_builtin(name: &str) -> bool {
    kefu_bot::intent::builtin().iter().any(|s| s.name == name)
}

async fn custom_exists(conn: &mut Conn, name: &str) -> Result<bool> {
    Ok(conn
        .fetch_optional(q("SELECT id FROM bot_intents WHERE name = $1").bind(name))
        .await?
        .is_some())
}

impl Store {
    /// Every intent, built-in first, with how many examples each has.
    pub async fn bot_intents(&self) -> Result<Vec<BotIntent>> {
        let mut conn = self.read();
        let counts = conn
            .fetch_all(q(
                "SELECT intent, COUNT(*) AS n FROM bot_intent_examples WHERE deleted_at IS NULL GROUP BY intent",
            ))
            .await?;
        let mut count = std::collections::HashMap::new();
        for row in &counts {
            let intent: String = row.get("intent")?;
            let n: i64 = row.get("n")?;
            count.insert(intent, u32::try_from(n).unwrap_or(u32::MAX));
        }
        let mut out: Vec<BotIntent> = kefu_bot::intent::builtin()
            .into_iter()
            .map(|seed| BotIntent {
                examples: count.get(&seed.name).copied().unwrap_or(0),
                seed_examples: u32::try_from(seed.examples.len()).unwrap_or(u32::MAX),
                name: seed.name,
                label_zh: seed.zh,
                label_en: seed.en,
                builtin: true,
            })
            .collect();
        let rows = conn
            .fetch_all(q(
                "SELECT name, label_zh, label_en FROM bot_intents ORDER BY id",
            ))
            .await?;
        for row in &rows {
            let name: String = row.get("name")?;
            out.push(BotIntent {
                examples: count.get(&name).copied().unwrap_or(0),
                seed_examples: 0,
                name,
                label_zh: row.get("label_zh")?,
                label_en: row.get("label_en")?,
                builtin: false,
            });
        }
        Ok(out)
    }

    /// Adds an intent, with examples if given, in one transaction.
    pub async fn create_bot_intent(&self, actor: &Actor, input: NewBotIntent) -> Result<BotIntent> {
        let now = self.now_ms();
        check_name(&input.name)?;
        let label_zh = required_text("label_zh", &input.label_zh, 100)?;
        let label_en = required_text("label_en", &input.label_en, 100)?;
        let examples = checked_examples(&input.examples)?;
        let mut conn = self.write().await?;
        if is_builtin(&input.name) || custom_exists(&mut conn, &input.name).await? {
            return Err(StoreError::conflict(
                "intent_exists",
                Some("name"),
                format!("there is already an intent `{}`", input.name),
            ));
        }
        conn.execute(
            q("INSERT INTO bot_intents (name, label_zh, label_en, created_at) VALUES ($1, $2, $3, $4)")
                .bind(input.name.as_str())
                .bind(label_zh.as_str())
                .bind(label_en.as_str())
                .bind(now),
        )
        .await?;
        let added = insert_examples(&mut conn, actor, &input.name, &examples, now).await?;
        audit::record(
            &mut conn,
            actor,
            now,
            "create",
            "bot_intent",
            &input.name,
            None,
            Some(&json!({"label_zh": label_zh, "label_en": label_en, "examples": examples})),
        )
        .await?;
        conn.commit().await?;
        Ok(BotIntent {
            name: input.name,
            label_zh,
            label_en,
            builtin: false,
            seed_examples: 0,
            examples: u32::try_from(added.len()).unwrap_or(u32::MAX),
        })
    }

    /// Adds examples to an intent; ones it already has are left as they are. Returns
    /// the examples added.
    pub async fn add_intent_examples(
        &self,
        actor: &Actor,
        intent: &str,
        texts: &[String],
    ) -> Result<Vec<IntentExample>> {
        let now = self.now_ms();
        let examples = checked_examples(texts)?;
        if examples.is_empty() {
            return Err(DomainError::invalid("examples", "give at least one example").into());
        }
        let mut conn = self.write().await?;
        if !is_builtin(intent) && !custom_exists(&mut conn, intent).await? {
            return Err(StoreError::not_found("intent", intent));
        }
        let added = insert_examples(&mut conn, actor, intent, &examples, now).await?;
        if !added.is_empty() {
            let texts: Vec<&str> = added.iter().map(|e| e.text.as_str()).collect();
            audit::record(
                &mut conn,
                actor,
                now,
                "add_examples",
                "bot_intent",
                intent,
                None,
                Some(&json!({ "examples": texts })),
            )
            .await?;
        }
        conn.commit().await?;
        Ok(added)
    }

    /// An intent's examples added by admins, oldest first (at most 10,000).
    pub async fn intent_examples(&self, intent: &str) -> Result<Vec<IntentExample>> {
        let mut conn = self.read();
        if !is_builtin(intent) && !custom_exists(&mut conn, intent).await? {
            return Err(StoreError::not_found("intent", intent));
        }
        let rows = conn
            .fetch_all(
                q("SELECT public_id, intent, text, language, created_at FROM bot_intent_examples WHERE intent = $1 AND deleted_at IS NULL ORDER BY id LIMIT 10000")
                    .bind(intent),
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(IntentExample {
                    id: row.get("public_id")?,
                    intent: row.get("intent")?,
                    text: row.get("text")?,
                    language: row.get("language")?,
                    created_at: Timestamp(row.get("created_at")?),
                })
            })
            .collect()
    }

    /// Removes an example an admin added.
    pub async fn delete_intent_example(&self, actor: &Actor, public_id: &str) -> Result<()> {
        let now = self.now_ms();
        let id = parse_public_id("intent example", public_id)?;
        let mut conn = self.write().await?;
        let row = conn
            .fetch_optional(
                q("SELECT intent, text FROM bot_intent_examples WHERE public_id = $1 AND deleted_at IS NULL")
                    .bind(id.as_str()),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("intent example", public_id))?;
        let intent: String = row.get("intent")?;
        let text: String = row.get("text")?;
        conn.execute(
            q("UPDATE bot_intent_examples SET deleted_at = $1, version = version + 1 WHERE public_id = $2")
                .bind(now)
                .bind(id.as_str()),
        )
        .await?;
        audit::record(
            &mut conn,
            actor,
            now,
            "delete_example",
            "bot_intent",
            &intent,
            Some(&json!({ "example": text })),
            None,
        )
        .await?;
        conn.commit().await?;
        Ok(())
    }

    /// What the intent model learns besides the built-in seeds: the admins' intents and
    /// their examples (for built-in intents too).
    pub async fn intent_training_data(&self) -> Result<(Vec<AdminIntent>, Vec<(String, String)>)> {
        let mut conn = self.read();
        let rows = conn
            .fetch_all(q(
                "SELECT name, label_zh, label_en FROM bot_intents ORDER BY id",
            ))
            .await?;
        let intents = rows
            .iter()
            .map(|row| {
                Ok(AdminIntent {
                    name: row.get("name")?,
                    zh: row.get("label_zh")?,
                    en: row.get("label_en")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let rows = conn
            .fetch_all(q(
                "SELECT text, intent FROM bot_intent_examples WHERE deleted_at IS NULL ORDER BY id",
            ))
            .await?;
        let examples = rows
            .iter()
            .map(|row| Ok((row.get("text")?, row.get("intent")?)))
            .collect::<Result<Vec<_>>>()?;
        Ok((intents, examples))
    }

    /// Changes whenever an intent or an example is added or removed.
    pub async fn intents_signature(&self) -> Result<(i64, i64, i64)> {
        let row = self
            .read()
            .fetch_one(q(
                "SELECT (SELECT COUNT(*) FROM bot_intents) AS intents, COUNT(*) AS n, CAST(COALESCE(SUM(version), 0) AS BIGINT) AS versions FROM bot_intent_examples",
            ))
            .await?;
        Ok((row.get("intents")?, row.get("n")?, row.get("versions")?))
    }
}

fn checked_examples(texts: &[String]) -> Result<Vec<String>> {
    if texts.len() > MAX_EXAMPLES_PER_REQUEST {
        return Err(DomainError::invalid(
            "examples",
            format!("at most {MAX_EXAMPLES_PER_REQUEST} examples at a time"),
        )
        .into());
    }
    let mut out: Vec<String> = Vec::with_capacity(texts.len());
    for text in texts {
        let text = required_text("examples", text, 500)?;
        if !out.contains(&text) {
            out.push(text);
        }
    }
    Ok(out)
}

async fn insert_examples(
    conn: &mut Conn,
    actor: &Actor,
    intent: &str,
    examples: &[String],
    now: i64,
) -> Result<Vec<IntentExample>> {
    let mut added = Vec::new();
    for text in examples {
        let public_id = new_public_id();
        let language = kefu_domain::text::language_of(text);
        // A deleted example given again comes back.
        let existing = conn
            .fetch_optional(
                q("SELECT public_id, deleted_at FROM bot_intent_examples WHERE intent = $1 AND text = $2")
                    .bind(intent)
                    .bind(text.as_str()),
            )
            .await?;
        let id = match existing {
            Some(row) => {
                let deleted: Option<i64> = row.get("deleted_at")?;
                if deleted.is_none() {
                    continue;
                }
                let id: String = row.get("public_id")?;
                conn.execute(
                    q("UPDATE bot_intent_examples SET deleted_at = NULL, version = version + 1, created_at = $1 WHERE public_id = $2")
                        .bind(now)
                        .bind(id.as_str()),
                )
                .await?;
                id
            }
            None => {
                conn.execute(
                    q("INSERT INTO bot_intent_examples (public_id, intent, text, language, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                        .bind(public_id.as_str())
                        .bind(intent)
                        .bind(text.as_str())
                        .bind(language)
                        .bind(actor.user_id)
                        .bind(now),
                )
                .await?;
                public_id
            }
        };
        added.push(IntentExample {
            id,
            intent: intent.to_string(),
            text: text.clone(),
            language: language.to_string(),
            created_at: Timestamp(now),
        });
    }
    Ok(added)
}
