//! Conversations with the bot over HTTP: a channel (the chat widget, an IM gateway)
//! starts one per customer visit and posts each message; the bot keeps count of its
//! clarifications, understands "2" after offering three questions, and on handover
//! opens a case whose note tells the person taking over what happened. Later messages
//! go to that case.

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::JsonBody;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kefu_domain::cases::MessageKind;
use kefu_store::cases::NewMessage;
use kefu_store::conversations::{BotConversation, BotTranscript, NewBotConversation};
use kefu_store::users::Principal;
use serde::{Deserialize, Serialize};

/// Starts a conversation between a customer and the bot: `{"customer_id", "channel"?}`.
#[utoipa::path(post, path = "/api/v1/bot/conversations", tag = "kb", request_body = NewBotConversation,
    responses((status = 201, body = BotConversation), (status = 422, body = ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    body: JsonBody<NewBotConversation>,
) -> ApiResult<(StatusCode, Json<BotConversation>)> {
    let conversation = state.store.start_bot_conversation(body.value).await?;
    Ok((StatusCode::CREATED, Json(conversation)))
}

/// A conversation with every turn: the customer's words and the bot's replies with
/// what the bot knew (intent, confidence, matches, sentiment, why it handed over).
#[utoipa::path(get, path = "/api/v1/bot/conversations/{id}", tag = "kb", params(("id" = String, Path)),
    responses((status = 200, body = BotTranscript), (status = 404, body = ErrorBody)))]
pub async fn transcript(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<BotTranscript>> {
    Ok(Json(state.store.bot_transcript(&id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversationMessage {
    /// What the customer wrote (at most 10,000 characters).
    pub text: String,
}

/// The answer to a customer's message in a conversation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConversationReply {
    pub conversation: BotConversation,
    /// The bot's reply; absent once a person has the conversation (the message was
    /// added to the case instead, as `case_message_id`).
    #[schema(value_type = Option<Object>)]
    pub reply: Option<kefu_bot::bot::Reply>,
    pub case_message_id: Option<String>,
}

/// The customer's next message. While the bot has the conversation it replies
/// (`reply`); when it hands over, the conversation names the case opened for a person;
/// after that, messages are added to the case.
#[utoipa::path(post, path = "/api/v1/bot/conversations/{id}/messages", tag = "kb", request_body = ConversationMessage, params(("id" = String, Path)),
    responses((status = 200, body = ConversationReply), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn message(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: JsonBody<ConversationMessage>,
) -> ApiResult<Json<ConversationReply>> {
    let text = body.value.text;
    let actor = principal.actor();
    let current = state.store.bot_conversation_state(&id).await?;
    if let Some(case_id) = current.conversation.case_id.clone() {
        // A person has it: the message belongs on the case.
        let message = state
            .store
            .add_message(
                &actor,
                &case_id,
                NewMessage {
                    kind: MessageKind::Inbound,
                    body: text,
                    channel: Some(current.conversation.channel),
                    content_type: None,
                },
            )
            .await?;
        return Ok(Json(ConversationReply {
            conversation: current.conversation,
            reply: None,
            case_message_id: Some(message.id),
        }));
    }
    kefu_domain::required_text("text", &text, kefu_store::conversations::MAX_TURN_CHARS)?;
    let bot = state.bot().await?;
    let said = text.clone();
    let reply = tokio::task::spawn_blocking(move || {
        let mut reply = bot.respond(
            &said,
            kefu_bot::bot::Conversation {
                clarifications: current.conversation.clarifications,
                earlier_contacts: current.earlier_contacts,
                offered: current.offered,
            },
        );
        bot.read_for_handoff(&mut reply, &said);
        reply
    })
    .await
    .map_err(ApiError::internal)?;
    let conversation = state
        .store
        .record_bot_exchange(&actor, &id, &text, &reply)
        .await?;
    crate::routes::kb::note_if_unanswered(&state, &text, &reply).await?;
    Ok(Json(ConversationReply {
        conversation,
        reply: Some(reply),
        case_message_id: None,
    }))
}

/// What the bot handed over on this case: each conversation's transcript, with the
/// reason, intent, confidence, sentiment and matches on the bot's turns.
#[utoipa::path(get, path = "/api/v1/cases/{id}/handoff", tag = "kb", params(("id" = String, Path)),
    responses((status = 200, body = Vec<BotTranscript>), (status = 404, body = ErrorBody)))]
pub async fn case_handoff(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<BotTranscript>>> {
    Ok(Json(state.store.case_handoffs(&id).await?))
}
