//! What every handler shares.

use kefu_store::Store;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<ServerConfig>,
    bot: Arc<tokio::sync::Mutex<Option<CachedBot>>>,
}

/// The bot built from the published knowledge base, the intents and the thresholds, with
/// what it was built from: rebuilt when any of them changes (read from the database, so every node sees
/// every edit).
struct CachedBot {
    signature: ((i64, i64, i64), (i64, i64, i64), i64),
    bot: Arc<kefu_bot::bot::Bot>,
}

/// Server settings that do not belong to the store.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// Mark the session cookie `Secure` (when kefu is served over HTTPS).
    pub secure_cookies: bool,
    /// The optional reply-drafting model server (off when `None`).
    pub draft: Option<crate::draft::DraftConfig>,
}

impl AppState {
    pub fn new(store: Store, config: ServerConfig) -> AppState {
        AppState {
            store,
            config: Arc::new(config),
            bot: Arc::new(tokio::sync::Mutex::new(None)),
        }
    }

    /// The bot for the knowledge base as it is now.
    pub async fn bot(&self) -> Result<Arc<kefu_bot::bot::Bot>, crate::error::ApiError> {
        let settings = self.store.bot_settings().await?;
        let signature = (
            self.store.kb_signature().await?,
            self.store.intents_signature().await?,
            settings.version,
        );
        // One builder at a time; the others wait for its result instead of building too.
        let mut cached = self.bot.lock().await;
        if let Some(c) = cached.as_ref()
            && c.signature == signature
        {
            return Ok(c.bot.clone());
        }
        let entries: Vec<kefu_bot::faq::FaqEntry> = self
            .store
            .published_faq()
            .await?
            .into_iter()
            .map(|e| kefu_bot::faq::FaqEntry {
                id: e.id,
                question: e.question,
                similar: e.similar,
                answer: e.answer,
            })
            .collect();
        let (intents, examples) = self.store.intent_training_data().await?;
        let bot = tokio::task::spawn_blocking(move || {
            let faq = kefu_bot::faq::FaqIndex::build(entries)?;
            Ok::<_, kefu_bot::faq::IndexError>(kefu_bot::bot::Bot {
                faq,
                intents: kefu_bot::intent::IntentModel::with_admin(
                    &intents,
                    &examples,
                    kefu_bot::embed::shipped(),
                ),
                sentiment: kefu_bot::sentiment::SentimentModel::shipped(),
                thresholds: kefu_bot::bot::Thresholds {
                    answer: settings.answer_threshold as f32,
                    clarify: settings.clarify_threshold as f32,
                },
            })
        })
        .await
        .map_err(crate::error::ApiError::internal)?
        .map_err(crate::error::ApiError::internal)?;
        let bot = Arc::new(bot);
        *cached = Some(CachedBot {
            signature,
            bot: bot.clone(),
        });
        Ok(bot)
    }
}
