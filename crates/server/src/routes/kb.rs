//! The knowledge base (知识库) and the bot (智能客服) over HTTP: entries and their
//! versions, the bot's thresholds, the questions it could not answer, and the bot itself
//! for text channels (`POST /api/v1/bot/messages`).

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{JsonBody, Params, if_match, with_etag};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Json};
use kefu_domain::Labelled;
use kefu_domain::kb::{KbKind, KbLanguage, KbStatus};
use kefu_store::kb::*;
use kefu_store::page::{Page, PageRequest};
use kefu_store::users::Principal;
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KbQuery {
    pub status: Option<KbStatus>,
    pub kind: Option<KbKind>,
    pub language: Option<KbLanguage>,
    pub category: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Knowledge-base entries, oldest first.
#[utoipa::path(get, path = "/api/v1/kb/entries", tag = "kb", params(KbQuery), responses((status = 200, body = Page<KbEntry>)))]
pub async fn entries(
    State(state): State<AppState>,
    Params(query): Params<KbQuery>,
) -> ApiResult<Json<Page<KbEntry>>> {
    let filter = KbFilter {
        status: query.status,
        kind: query.kind,
        language: query.language,
        category: query.category,
    };
    let page = PageRequest {
        limit: query.limit,
        cursor: query.cursor,
    };
    Ok(Json(state.store.kb_entries(&filter, &page).await?))
}

/// Adds an entry: `{"question", "similar": […], "answer"}` at least; a draft unless
/// `status` says otherwise, its language read from the question unless given.
#[utoipa::path(post, path = "/api/v1/kb/entries", tag = "kb", request_body = NewKbEntry,
    responses((status = 201, body = KbEntry), (status = 422, body = ErrorBody)))]
pub async fn create_entry(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: JsonBody<NewKbEntry>,
) -> ApiResult<Response> {
    let entry = state
        .store
        .create_kb_entry(&principal.actor(), body.value)
        .await?;
    Ok(with_etag(StatusCode::CREATED, entry.version, &entry))
}

#[utoipa::path(get, path = "/api/v1/kb/entries/{id}", tag = "kb", params(("id" = String, Path)),
    responses((status = 200, body = KbEntry), (status = 404, body = ErrorBody)))]
pub async fn entry(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let entry = state.store.kb_entry(&id).await?;
    Ok(with_etag(StatusCode::OK, entry.version, &entry))
}

/// Changes an entry (fields left out stay); every change is a new version. Send
/// `If-Match` with the version you read.
#[utoipa::path(patch, path = "/api/v1/kb/entries/{id}", tag = "kb", request_body = KbEntryPatch, params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = KbEntry), (status = 404, body = ErrorBody), (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_entry(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody<KbEntryPatch>,
) -> ApiResult<Response> {
    let expected = if_match(&headers)?;
    let entry = state
        .store
        .update_kb_entry(&principal.actor(), &id, body.value, expected)
        .await?;
    Ok(with_etag(StatusCode::OK, entry.version, &entry))
}

/// Every saved version of an entry, newest first.
#[utoipa::path(get, path = "/api/v1/kb/entries/{id}/versions", tag = "kb", params(("id" = String, Path)),
    responses((status = 200, body = Vec<KbVersion>), (status = 404, body = ErrorBody)))]
pub async fn versions(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<KbVersion>>> {
    Ok(Json(state.store.kb_entry_versions(&id).await?))
}

/// The bot's thresholds.
#[utoipa::path(get, path = "/api/v1/bot/settings", tag = "kb", responses((status = 200, body = BotSettings)))]
pub async fn settings(State(state): State<AppState>) -> ApiResult<Response> {
    let settings = state.store.bot_settings().await?;
    Ok(with_etag(StatusCode::OK, settings.version, &settings))
}

/// Sets the bot's thresholds: `{"answer_threshold", "clarify_threshold"}`, each 0–1.
#[utoipa::path(put, path = "/api/v1/bot/settings", tag = "kb", request_body = BotSettings, params(("If-Match" = Option<String>, Header)),
    responses((status = 200, body = BotSettings), (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_settings(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: JsonBody<BotSettings>,
) -> ApiResult<Response> {
    let expected = if_match(&headers)?;
    let settings = state
        .store
        .set_bot_settings(&principal.actor(), body.value, expected)
        .await?;
    Ok(with_etag(StatusCode::OK, settings.version, &settings))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UnansweredQuery {
    /// At most this many groups (1–500, default 50).
    pub limit: Option<u32>,
}

/// Questions the bot could not answer, one group per topic: the wordings of the same
/// question together (near-duplicates by TF-IDF similarity), most asked first.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct UnansweredGroup {
    /// The most asked wording.
    pub example: String,
    pub language: String,
    /// How often any wording was asked.
    pub times: i64,
    /// The entry that came closest to the most asked wording.
    pub best_entry_id: Option<String>,
    pub best_confidence: f64,
    pub first_seen_at: kefu_domain::Timestamp,
    pub last_seen_at: kefu_domain::Timestamp,
    /// Every wording, most asked first.
    pub questions: Vec<Unanswered>,
}

/// The gaps in the knowledge base: questions the bot handed over for want of an
/// answer, grouped by topic, most asked first — what to write entries for.
#[utoipa::path(get, path = "/api/v1/bot/unanswered", tag = "kb", params(UnansweredQuery), responses((status = 200, body = Vec<UnansweredGroup>)))]
pub async fn unanswered(
    State(state): State<AppState>,
    Params(query): Params<UnansweredQuery>,
) -> ApiResult<Json<Vec<UnansweredGroup>>> {
    let questions = state.store.unanswered(2000).await?;
    let limit = query.limit.unwrap_or(50).clamp(1, 500) as usize;
    let groups = tokio::task::spawn_blocking(move || {
        let texts: Vec<&str> = questions.iter().map(|q| q.normalized.as_str()).collect();
        let indexes = kefu_bot::group::group(&texts, kefu_bot::group::THRESHOLD);
        let mut questions: Vec<Option<Unanswered>> = questions.into_iter().map(Some).collect();
        let mut groups: Vec<UnansweredGroup> = indexes
            .into_iter()
            .filter_map(|members| {
                let members: Vec<Unanswered> = members
                    .iter()
                    .filter_map(|&i| questions[i].take())
                    .collect();
                let first = members.first()?;
                Some(UnansweredGroup {
                    example: first.example.clone(),
                    language: first.language.clone(),
                    times: members.iter().map(|q| q.times).sum(),
                    best_entry_id: first.best_entry_id.clone(),
                    best_confidence: first.best_confidence,
                    first_seen_at: members.iter().map(|q| q.first_seen_at).min()?,
                    last_seen_at: members.iter().map(|q| q.last_seen_at).max()?,
                    questions: members,
                })
            })
            .collect();
        groups.sort_by_key(|g| std::cmp::Reverse(g.times));
        groups.truncate(limit);
        groups
    })
    .await
    .map_err(crate::error::ApiError::internal)?;
    Ok(Json(groups))
}

/// A customer's message to the bot.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BotMessage {
    /// What the customer wrote (at most 2,000 characters are read).
    pub text: String,
    /// Clarifying questions the bot has already asked in a row in this conversation.
    #[serde(default)]
    pub clarifications: u32,
    /// Earlier messages from this customer about the same matter.
    #[serde(default)]
    pub earlier_contacts: u32,
}

/// The bot's reply to one message: `outcome` is `answer`, `clarify` (the top 3 questions
/// in `text` and `matches`), `handoff` (with `handoff_reason`), `small_talk` or
/// `no_text`; with the intent, the confidence, the sentiment and the rules that fired,
/// for the person who takes over. Questions handed over for want of an answer are
/// counted in `/api/v1/bot/unanswered`.
#[utoipa::path(post, path = "/api/v1/bot/messages", tag = "kb", request_body = BotMessage,
    responses((status = 200, description = "The bot's reply", body = Object), (status = 422, body = ErrorBody)))]
pub async fn message(
    State(state): State<AppState>,
    body: JsonBody<BotMessage>,
) -> ApiResult<Json<kefu_bot::bot::Reply>> {
    let message = body.value;
    let bot = state.bot().await?;
    let text = message.text.clone();
    let reply = tokio::task::spawn_blocking(move || {
        let mut reply = bot.respond(
            &text,
            kefu_bot::bot::Conversation {
                clarifications: message.clarifications,
                earlier_contacts: message.earlier_contacts,
                offered: Vec::new(),
            },
        );
        bot.read_for_handoff(&mut reply, &text);
        reply
    })
    .await
    .map_err(crate::error::ApiError::internal)?;
    note_if_unanswered(&state, &message.text, &reply).await?;
    Ok(Json(reply))
}

/// Counts a question the bot handed over for want of an answer.
pub(crate) async fn note_if_unanswered(
    state: &AppState,
    text: &str,
    reply: &kefu_bot::bot::Reply,
) -> ApiResult<()> {
    if reply.handoff_reason == Some(kefu_bot::bot::HandoffReason::NotUnderstood) {
        let normalized = kefu_bot::normalize::normalize(text);
        state
            .store
            .record_unanswered(
                &normalized,
                text,
                reply.language,
                reply.matches.first().map(|m| m.id.as_str()),
                f64::from(reply.confidence),
            )
            .await?;
    }
    Ok(())
}

/// A suggested reply for the agent.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SuggestedReply {
    /// `faq` (a knowledge-base answer) or `past_reply` (what an agent wrote to a similar
    /// message on another case).
    pub source: &'static str,
    /// The knowledge-base entry or the case it comes from.
    pub from_id: String,
    /// The question or customer message it answered.
    pub matched: String,
    pub reply: String,
    /// Similarity of the customer's message to `matched`, 0–1.
    pub similarity: f32,
}

/// The communication strategy for the customer's type (DOMAIN.md §5).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Strategy {
    pub communication_type: String,
    pub en: &'static str,
    pub zh: &'static str,
}

/// What agent assist offers for a case's last customer message.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Assist {
    pub message: Option<String>,
    pub suggestions: Vec<SuggestedReply>,
    pub strategy: Option<Strategy>,
    #[schema(value_type = Object)]
    pub intent: Option<kefu_bot::intent::IntentGuess>,
    #[schema(value_type = Object)]
    pub sentiment: Option<kefu_bot::sentiment::Sentiment>,
}

/// Agent assist (坐席辅助) for a case: replies suggested from the top knowledge-base
/// answers and from agents' replies to similar messages, the customer's intent and
/// sentiment, and the strategy for their communication type when it is known.
#[utoipa::path(get, path = "/api/v1/cases/{id}/assist", tag = "kb", params(("id" = String, Path)),
    responses((status = 200, body = Assist), (status = 404, body = ErrorBody)))]
pub async fn assist(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Assist>> {
    let material = state.store.assist_material(&id).await?;
    let bot = state.bot().await?;
    let strategy = material.communication_type.map(|t| {
        let (en, zh) = t.strategy();
        Strategy {
            communication_type: t.as_str().to_string(),
            en,
            zh,
        }
    });
    let Some(message) = material.last_message.clone() else {
        return Ok(Json(Assist {
            message: None,
            suggestions: Vec::new(),
            strategy,
            intent: None,
            sentiment: None,
        }));
    };
    let assist = tokio::task::spawn_blocking(move || {
        let mut suggestions = Vec::new();
        for m in bot.faq.search(&message, 3).matches {
            if let Some(entry) = bot.faq.entry(&m.id) {
                suggestions.push(SuggestedReply {
                    source: "faq",
                    from_id: m.id.clone(),
                    matched: m.question,
                    reply: entry.answer.clone(),
                    similarity: m.score,
                });
            }
        }
        // Past replies: the messages they answered, indexed like FAQ questions.
        let entries = material
            .past_replies
            .iter()
            .enumerate()
            .map(|(i, (_, asked, reply))| kefu_bot::faq::FaqEntry {
                id: i.to_string(),
                question: asked.clone(),
                similar: Vec::new(),
                answer: reply.clone(),
            })
            .collect();
        if let Ok(index) = kefu_bot::faq::FaqIndex::build(entries) {
            for m in index.search(&message, 3).matches {
                let Some((case_id, _, reply)) =
                    m.id.parse::<usize>()
                        .ok()
                        .and_then(|i| material.past_replies.get(i))
                else {
                    continue;
                };
                if m.score >= 0.3 {
                    suggestions.push(SuggestedReply {
                        source: "past_reply",
                        from_id: case_id.clone(),
                        matched: m.question,
                        reply: reply.clone(),
                        similarity: m.score,
                    });
                }
            }
        }
        Assist {
            intent: bot.intents.classify(&message),
            sentiment: Some(kefu_bot::sentiment::analyse(
                &bot.sentiment,
                &message,
                kefu_bot::sentiment::Context::default(),
            )),
            message: Some(message),
            suggestions,
            strategy,
        }
    })
    .await
    .map_err(crate::error::ApiError::internal)?;
    Ok(Json(assist))
}

/// Suggested classification for a complaint (投诉预分类) from what the customer wrote on
/// the case: cause, severity and behaviour type, each with its evidence, for the agent
/// to confirm when recording the complaint.
#[utoipa::path(get, path = "/api/v1/cases/{id}/complaint/suggestion", tag = "complaints", params(("id" = String, Path)),
    responses((status = 200, description = "cause, severity and behaviour with evidence", body = Object), (status = 404, body = ErrorBody)))]
pub async fn complaint_suggestion(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<kefu_bot::complaint::ComplaintSuggestion>> {
    let material = state.store.assist_material(&id).await?;
    let text = material.customer_text;
    let suggestion = tokio::task::spawn_blocking(move || {
        kefu_bot::complaint::suggest(&kefu_bot::sentiment::SentimentModel::shipped(), &text, 0)
    })
    .await
    .map_err(crate::error::ApiError::internal)?;
    Ok(Json(suggestion))
}

/// How close a knowledge-base question must be to the message for its answer to be given
/// to the drafting model as a fact (as assist asks of past replies).
const DRAFT_MIN_SIMILARITY: f32 = 0.3;

/// A reply drafted by the configured model server, for the agent to edit and send.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct DraftReply {
    pub draft: String,
    /// The model that wrote it, as the server named it.
    pub model: String,
    /// The knowledge-base entries whose answers the model was given.
    pub from_faq: Vec<String>,
}

/// Drafts a reply to the case's last customer message with the optional model server
/// (an OpenAI-compatible endpoint beside kefu, off unless configured): the model sees the
/// case's last public messages, the top knowledge-base answers, the customer's
/// communication strategy and the message's sentiment. Nothing is sent to the customer.
#[utoipa::path(post, path = "/api/v1/cases/{id}/assist/draft", tag = "kb", params(("id" = String, Path)),
    responses((status = 200, body = DraftReply),
        (status = 404, body = ErrorBody),
        (status = 409, description = "no drafting model server is configured (`unsupported`), or the case has no customer message (`conflict`)", body = ErrorBody),
        (status = 502, description = "the model server failed (`draft_failed`)", body = ErrorBody)))]
pub async fn draft(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<DraftReply>> {
    let Some(config) = state.config.draft.clone() else {
        return Err(crate::error::ApiError::new(
            crate::error::ErrorCode::Unsupported,
            "reply drafting is off: no model server is configured (draft_endpoint and draft_model in kefu.toml, or KEFU_DRAFT_ENDPOINT and KEFU_DRAFT_MODEL)",
        ));
    };
    let material = state.store.assist_material(&id).await?;
    let Some(message) = material.last_message.clone() else {
        return Err(crate::error::ApiError::new(
            crate::error::ErrorCode::Conflict,
            "the case has no message from the customer to reply to",
        ));
    };
    let bot = state.bot().await?;
    let reading = tokio::task::spawn_blocking(move || {
        let mut from_faq = Vec::new();
        let mut knowledge = Vec::new();
        // Only answers close enough to the question: the model is told they are facts.
        for m in bot.faq.search(&message, 3).matches {
            if let Some(entry) = bot.faq.entry(&m.id)
                && m.score >= DRAFT_MIN_SIMILARITY
                && !entry.answer.trim().is_empty()
            {
                from_faq.push(m.id.clone());
                knowledge.push(entry.answer.clone());
            }
        }
        let sentiment = kefu_bot::sentiment::analyse(
            &bot.sentiment,
            &message,
            kefu_bot::sentiment::Context::default(),
        );
        let language = kefu_bot::normalize::language_of(&message);
        let label = match (language, sentiment.label) {
            ("zh", kefu_bot::sentiment::Label::Positive) => "正面",
            ("zh", kefu_bot::sentiment::Label::Neutral) => "中性",
            ("zh", kefu_bot::sentiment::Label::Negative) => "负面",
            ("zh", kefu_bot::sentiment::Label::Angry) => "愤怒",
            (_, label) => label.as_str(),
        };
        (from_faq, knowledge, label, language)
    })
    .await
    .map_err(crate::error::ApiError::internal)?;
    let (from_faq, knowledge, sentiment, language) = reading;
    let strategy = material.communication_type.map(|t| {
        let (en, zh) = t.strategy();
        if language == "zh" { zh } else { en }
    });
    let messages = crate::draft::prompt(
        language,
        &material.transcript,
        &knowledge,
        strategy,
        Some(sentiment),
    );
    match crate::draft::complete(&config, &messages).await {
        Ok(draft) => Ok(Json(DraftReply {
            draft: draft.text,
            model: draft.model,
            from_faq,
        })),
        Err(e) => {
            tracing::warn!(case = %id, error = %e.0, "reply draft failed");
            Err(crate::error::ApiError::new(
                crate::error::ErrorCode::DraftFailed,
                e.0,
            ))
        }
    }
}
