//! kefu's HTTP server: the REST API under `/api/v1`, its OpenAPI document and docs.
//!
//! `server` is the only crate that speaks HTTP. Every route is declared once in
//! [`routes`] with the access it needs; the router and the permission tests are both
//! built from that table, so a route cannot exist without its check.

pub mod auth;
pub mod background;
pub mod draft;
pub mod error;
pub mod extract;
pub mod routes;
pub mod state;
mod tracking_page;

pub use auth::Access;
pub use state::{AppState, ServerConfig};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use error::{ApiError, ErrorCode};
use kefu_domain::access::Permission::*;
use routes::routing;
use routes::{
    admin, automations, cases, complaints, conversations, customers, intents, kb, reports,
    satisfaction, system, timeline,
};
use std::future::Future;
use utoipa::OpenApi;

/// The largest JSON body accepted.
pub const JSON_LIMIT: usize = 1024 * 1024;

/// One row of the route table.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

/// Every route: method, path, who may call it, and its handler.
pub fn routes() -> Vec<(RouteSpec, MethodRouter<AppState>)> {
    use Access::{Authenticated, Permission as P, Public};
    let r =
        |method: Method, path: &'static str, access: Access, handler: MethodRouter<AppState>| {
            (
                RouteSpec {
                    method,
                    path,
                    access,
                },
                handler,
            )
        };
    vec![
        r(Method::GET, "/api/v1/health", Public, get(system::health)),
        r(
            Method::GET,
            "/api/v1/openapi.json",
            Public,
            get(system::openapi),
        ),
        r(Method::GET, "/api/docs", Public, get(system::docs)),
        r(
            Method::GET,
            "/api/docs/{file}",
            Public,
            get(system::docs_asset),
        ),
        r(
            Method::POST,
            "/api/v1/auth/login",
            Public,
            post(auth::login),
        ),
        r(
            Method::POST,
            "/api/v1/auth/logout",
            Authenticated,
            post(auth::logout),
        ),
        r(Method::GET, "/api/v1/me", Authenticated, get(auth::whoami)),
        r(
            Method::GET,
            "/api/v1/customers",
            P(CustomersRead),
            get(customers::list),
        ),
        r(
            Method::POST,
            "/api/v1/customers",
            P(CustomersWrite),
            post(customers::create),
        ),
        r(
            Method::GET,
            "/api/v1/customers/{id}",
            P(CustomersRead),
            get(customers::get),
        ),
        r(
            Method::PATCH,
            "/api/v1/customers/{id}",
            P(CustomersWrite),
            patch(customers::update),
        ),
        r(
            Method::DELETE,
            "/api/v1/customers/{id}",
            P(CustomersDelete),
            delete(customers::delete),
        ),
        r(
            Method::POST,
            "/api/v1/customers/{id}/contacts",
            P(CustomersWrite),
            post(customers::add_contact),
        ),
        r(
            Method::DELETE,
            "/api/v1/customers/{id}/contacts/{contact_id}",
            P(CustomersWrite),
            delete(customers::remove_contact),
        ),
        r(
            Method::GET,
            "/api/v1/customers/{id}/lifecycle",
            P(CustomersRead),
            get(customers::lifecycle_history),
        ),
        r(
            Method::POST,
            "/api/v1/customers/{id}/lifecycle",
            P(CustomersWrite),
            post(customers::transition),
        ),
        r(
            Method::POST,
            "/api/v1/customers/{id}/transactions",
            P(CustomersWrite),
            post(customers::add_transaction),
        ),
        r(
            Method::POST,
            "/api/v1/customers/{id}/win-back-attempts",
            P(CustomersWrite),
            post(customers::add_win_back_attempt),
        ),
        r(
            Method::GET,
            "/api/v1/customers/{id}/timeline",
            P(TimelineRead),
            get(timeline::customer_timeline),
        ),
        r(
            Method::POST,
            "/api/v1/customers/{id}/timeline",
            P(TimelineWrite),
            post(customers::record_touchpoint),
        ),
        r(
            Method::GET,
            "/api/v1/custom-fields",
            P(CustomersRead),
            get(customers::custom_fields),
        ),
        r(
            Method::POST,
            "/api/v1/custom-fields",
            P(SettingsManage),
            post(customers::define_custom_field),
        ),
        r(Method::GET, "/api/v1/cases", P(CasesRead), get(cases::list)),
        r(
            Method::POST,
            "/api/v1/cases",
            P(CasesWrite),
            post(cases::create),
        ),
        r(
            Method::GET,
            "/api/v1/cases/{id}",
            P(CasesRead),
            get(cases::get),
        ),
        r(
            Method::PATCH,
            "/api/v1/cases/{id}",
            P(CasesWrite),
            patch(cases::update),
        ),
        r(
            Method::GET,
            "/api/v1/cases/{id}/messages",
            P(CasesRead),
            get(cases::messages),
        ),
        r(
            Method::POST,
            "/api/v1/cases/{id}/messages",
            P(CasesWrite),
            post(cases::add_message),
        ),
        r(
            Method::GET,
            "/api/v1/cases/{id}/transitions",
            P(CasesRead),
            get(cases::transitions),
        ),
        r(
            Method::POST,
            "/api/v1/cases/{id}/transitions",
            P(CasesWrite),
            post(cases::transition),
        ),
        r(
            Method::GET,
            "/api/v1/cases/{id}/transfers",
            P(CasesRead),
            get(cases::transfers),
        ),
        r(
            Method::POST,
            "/api/v1/cases/{id}/transfers",
            P(CasesWrite),
            post(cases::transfer),
        ),
        r(
            Method::POST,
            "/api/v1/cases/{id}/merge",
            P(CasesMerge),
            post(cases::merge),
        ),
        r(
            Method::GET,
            "/api/v1/cases/{id}/attachments",
            P(CasesRead),
            get(cases::attachments),
        ),
        r(
            Method::POST,
            "/api/v1/cases/{id}/attachments",
            P(CasesWrite),
            post(cases::upload).layer(DefaultBodyLimit::max(
                kefu_store::cases::MAX_ATTACHMENT_BYTES,
            )),
        ),
        r(
            Method::GET,
            "/api/v1/attachments/{id}",
            P(CasesRead),
            get(cases::download),
        ),
        r(
            Method::GET,
            "/api/v1/complaints",
            P(CasesRead),
            get(complaints::list),
        ),
        r(
            Method::GET,
            "/api/v1/cases/{id}/complaint",
            P(CasesRead),
            get(complaints::get),
        ),
        r(
            Method::POST,
            "/api/v1/cases/{id}/complaint",
            P(CasesWrite),
            post(complaints::record),
        ),
        r(
            Method::PATCH,
            "/api/v1/cases/{id}/complaint",
            P(CasesWrite),
            patch(complaints::update),
        ),
        r(
            Method::POST,
            "/api/v1/cases/{id}/complaint/steps",
            P(CasesWrite),
            post(complaints::step),
        ),
        r(
            Method::POST,
            "/api/v1/cases/{id}/complaint/appeals",
            Authenticated,
            post(complaints::appeal),
        ),
        r(
            Method::GET,
            "/api/v1/appeals",
            P(ComplaintsReview),
            get(complaints::appeals),
        ),
        r(
            Method::POST,
            "/api/v1/appeals/{id}/decision",
            P(ComplaintsReview),
            post(complaints::decide_appeal),
        ),
        r(
            Method::GET,
            "/api/v1/complaint-rules",
            P(CasesRead),
            get(complaints::rules),
        ),
        r(
            Method::POST,
            "/api/v1/complaint-rules",
            P(SettingsManage),
            post(complaints::publish_rules),
        ),
        r(
            Method::GET,
            "/api/v1/promises",
            P(CasesRead),
            get(complaints::promises),
        ),
        r(
            Method::POST,
            "/api/v1/cases/{id}/promises",
            P(CasesWrite),
            post(complaints::add_promise),
        ),
        r(
            Method::POST,
            "/api/v1/promises/{id}/status",
            P(CasesWrite),
            post(complaints::settle_promise),
        ),
        r(
            Method::POST,
            "/api/v1/cases/{id}/tracking-link",
            P(CasesWrite),
            post(complaints::tracking_link),
        ),
        r(
            Method::DELETE,
            "/api/v1/cases/{id}/tracking-link",
            P(CasesWrite),
            delete(complaints::revoke_tracking_link),
        ),
        r(
            Method::GET,
            "/api/v1/track/{token}",
            Public,
            get(complaints::track),
        ),
        r(
            Method::GET,
            "/track/{token}",
            Public,
            get(complaints::track_page),
        ),
        r(
            Method::GET,
            "/api/v1/calendars",
            P(TeamsRead),
            get(complaints::calendars),
        ),
        r(
            Method::POST,
            "/api/v1/calendars",
            P(SettingsManage),
            post(complaints::create_calendar),
        ),
        r(
            Method::PUT,
            "/api/v1/calendars/{id}",
            P(SettingsManage),
            put(complaints::update_calendar),
        ),
        r(
            Method::PUT,
            "/api/v1/teams/{id}/calendar",
            P(TeamsManage),
            put(complaints::set_team_calendar),
        ),
        r(
            Method::GET,
            "/api/v1/sla-policies",
            P(CasesRead),
            get(complaints::sla_policies),
        ),
        r(
            Method::POST,
            "/api/v1/sla-policies",
            P(SettingsManage),
            post(complaints::create_sla_policy),
        ),
        r(
            Method::GET,
            "/api/v1/cases/{id}/sla",
            P(CasesRead),
            get(complaints::case_sla),
        ),
        r(
            Method::GET,
            "/api/v1/cases/{id}/satisfaction",
            P(CasesRead),
            get(satisfaction::case_satisfaction),
        ),
        r(
            Method::POST,
            "/api/v1/cases/{id}/satisfaction",
            P(CasesWrite),
            post(satisfaction::record_satisfaction),
        ),
        r(
            Method::GET,
            "/api/v1/follow-ups",
            P(CasesRead),
            get(satisfaction::follow_ups),
        ),
        r(
            Method::POST,
            "/api/v1/follow-ups/{id}/done",
            P(CasesWrite),
            post(satisfaction::complete_follow_up),
        ),
        r(
            Method::GET,
            "/api/v1/survey/{token}",
            Public,
            get(satisfaction::survey),
        ),
        r(
            Method::POST,
            "/api/v1/survey/{token}",
            Public,
            post(satisfaction::answer_survey),
        ),
        r(
            Method::GET,
            "/survey/{token}",
            Public,
            get(satisfaction::survey_page),
        ),
        r(
            Method::POST,
            "/survey/{token}",
            Public,
            post(satisfaction::survey_submit),
        ),
        r(
            Method::GET,
            "/api/v1/cases/{id}/assist",
            P(CasesRead),
            get(kb::assist),
        ),
        r(
            Method::POST,
            "/api/v1/cases/{id}/assist/draft",
            P(CasesWrite),
            post(kb::draft),
        ),
        r(
            Method::GET,
            "/api/v1/cases/{id}/complaint/suggestion",
            P(CasesRead),
            get(kb::complaint_suggestion),
        ),
        r(
            Method::GET,
            "/api/v1/cases/{id}/sentiment",
            P(CasesRead),
            get(cases::sentiment),
        ),
        r(
            Method::GET,
            "/api/v1/kb/entries",
            P(KbRead),
            get(kb::entries),
        ),
        r(
            Method::POST,
            "/api/v1/kb/entries",
            P(KbWrite),
            post(kb::create_entry),
        ),
        r(
            Method::GET,
            "/api/v1/kb/entries/{id}",
            P(KbRead),
            get(kb::entry),
        ),
        r(
            Method::PATCH,
            "/api/v1/kb/entries/{id}",
            P(KbWrite),
            patch(kb::update_entry),
        ),
        r(
            Method::GET,
            "/api/v1/kb/entries/{id}/versions",
            P(KbRead),
            get(kb::versions),
        ),
        r(
            Method::GET,
            "/api/v1/bot/settings",
            P(KbRead),
            get(kb::settings),
        ),
        r(
            Method::PUT,
            "/api/v1/bot/settings",
            P(SettingsManage),
            put(kb::set_settings),
        ),
        r(
            Method::GET,
            "/api/v1/bot/unanswered",
            P(KbRead),
            get(kb::unanswered),
        ),
        r(
            Method::POST,
            "/api/v1/bot/messages",
            P(BotUse),
            post(kb::message),
        ),
        r(
            Method::POST,
            "/api/v1/bot/conversations",
            P(BotUse),
            post(conversations::start),
        ),
        r(
            Method::GET,
            "/api/v1/bot/conversations/{id}",
            P(BotUse),
            get(conversations::transcript),
        ),
        r(
            Method::POST,
            "/api/v1/bot/conversations/{id}/messages",
            P(BotUse),
            post(conversations::message),
        ),
        r(
            Method::GET,
            "/api/v1/bot/intents",
            P(KbRead),
            get(intents::list),
        ),
        r(
            Method::POST,
            "/api/v1/bot/intents",
            P(KbWrite),
            post(intents::create),
        ),
        r(
            Method::GET,
            "/api/v1/bot/intents/{name}/examples",
            P(KbRead),
            get(intents::examples),
        ),
        r(
            Method::POST,
            "/api/v1/bot/intents/{name}/examples",
            P(KbWrite),
            post(intents::add_examples),
        ),
        r(
            Method::DELETE,
            "/api/v1/bot/intents/examples/{id}",
            P(KbWrite),
            delete(intents::delete_example),
        ),
        r(
            Method::GET,
            "/api/v1/cases/{id}/handoff",
            P(CasesRead),
            get(conversations::case_handoff),
        ),
        r(
            Method::GET,
            "/api/v1/automations",
            P(CasesRead),
            get(automations::automations),
        ),
        r(
            Method::POST,
            "/api/v1/automations",
            P(SettingsManage),
            post(automations::create_automation),
        ),
        r(
            Method::PUT,
            "/api/v1/automations/{id}",
            P(SettingsManage),
            put(automations::update_automation),
        ),
        r(
            Method::GET,
            "/api/v1/cases/{id}/automations",
            P(CasesRead),
            get(automations::case_firings),
        ),
        r(
            Method::GET,
            "/api/v1/reports/complaints",
            P(ReportsRead),
            get(reports::complaints),
        ),
        r(
            Method::GET,
            "/api/v1/reports/response-times",
            P(ReportsRead),
            get(reports::response_times),
        ),
        r(
            Method::GET,
            "/api/v1/reports/complaint-pyramid",
            P(ReportsRead),
            get(reports::pyramid),
        ),
        r(
            Method::GET,
            "/api/v1/reports/first-contact-resolution",
            P(ReportsRead),
            get(reports::first_contact_resolution),
        ),
        r(
            Method::GET,
            "/api/v1/reports/service-matrix",
            P(ReportsRead),
            get(reports::service_matrix),
        ),
        r(
            Method::GET,
            "/api/v1/notifications",
            P(NotificationsOwn),
            get(complaints::notifications),
        ),
        r(
            Method::POST,
            "/api/v1/notifications/{id}/read",
            P(NotificationsOwn),
            post(complaints::read_notification),
        ),
        r(
            Method::GET,
            "/api/v1/teams/{id}/routing",
            P(TeamsRead),
            get(routing::team_settings),
        ),
        r(
            Method::PUT,
            "/api/v1/teams/{id}/routing",
            P(TeamsManage),
            put(routing::set_team_settings),
        ),
        r(
            Method::GET,
            "/api/v1/teams/{id}/queue",
            P(TeamsRead),
            get(routing::queue),
        ),
        r(
            Method::POST,
            "/api/v1/teams/{id}/queue/assign-next",
            P(TeamsManage),
            post(routing::assign_next),
        ),
        r(
            Method::GET,
            "/api/v1/teams/{id}/agents",
            P(TeamsRead),
            get(routing::team_agents),
        ),
        r(
            Method::GET,
            "/api/v1/users/{id}/routing",
            P(TeamsRead),
            get(routing::agent_profile),
        ),
        r(
            Method::PUT,
            "/api/v1/users/{id}/routing",
            P(TeamsManage),
            put(routing::set_agent_profile),
        ),
        r(
            Method::POST,
            "/api/v1/users/{id}/routing/pause",
            P(TeamsManage),
            post(routing::pause),
        ),
        r(
            Method::POST,
            "/api/v1/users/{id}/routing/resume",
            P(TeamsManage),
            post(routing::resume),
        ),
        r(
            Method::GET,
            "/api/v1/users/{id}/stress",
            P(TeamsManage),
            get(routing::stress),
        ),
        r(
            Method::PUT,
            "/api/v1/me/availability",
            P(CasesWrite),
            put(routing::set_my_availability),
        ),
        r(
            Method::GET,
            "/api/v1/stress-flags",
            P(TeamsManage),
            get(routing::stress_flags),
        ),
        r(
            Method::POST,
            "/api/v1/stress-flags/{id}/acknowledge",
            P(TeamsManage),
            post(routing::acknowledge_stress_flag),
        ),
        r(
            Method::GET,
            "/api/v1/cases/{id}/routing",
            P(CasesRead),
            get(routing::case_routing),
        ),
        r(
            Method::PUT,
            "/api/v1/cases/{id}/skills",
            P(CasesWrite),
            put(routing::set_case_skills),
        ),
        r(
            Method::GET,
            "/api/v1/timeline",
            P(TimelineRead),
            get(timeline::list),
        ),
        r(
            Method::GET,
            "/api/v1/audit",
            P(AuditRead),
            get(timeline::audit),
        ),
        r(
            Method::GET,
            "/api/v1/teams",
            P(TeamsRead),
            get(admin::teams),
        ),
        r(
            Method::POST,
            "/api/v1/teams",
            P(TeamsManage),
            post(admin::create_team),
        ),
        r(
            Method::GET,
            "/api/v1/teams/{id}",
            P(TeamsRead),
            get(admin::team),
        ),
        r(
            Method::PATCH,
            "/api/v1/teams/{id}",
            P(TeamsManage),
            patch(admin::update_team),
        ),
        r(
            Method::GET,
            "/api/v1/users",
            P(TeamsRead),
            get(admin::users),
        ),
        r(
            Method::POST,
            "/api/v1/users",
            P(UsersManage),
            post(admin::create_user),
        ),
        r(
            Method::GET,
            "/api/v1/users/{id}",
            P(TeamsRead),
            get(admin::user),
        ),
        r(
            Method::PATCH,
            "/api/v1/users/{id}",
            P(UsersManage),
            patch(admin::update_user),
        ),
        r(
            Method::GET,
            "/api/v1/tokens",
            P(TokensManage),
            get(admin::tokens),
        ),
        r(
            Method::POST,
            "/api/v1/tokens",
            P(TokensManage),
            post(admin::create_token),
        ),
        r(
            Method::DELETE,
            "/api/v1/tokens/{id}",
            P(TokensManage),
            delete(admin::revoke_token),
        ),
    ]
}

/// The route table without handlers (for tests and docs).
pub fn route_table() -> Vec<RouteSpec> {
    routes().into_iter().map(|(spec, _)| spec).collect()
}

/// Builds the application.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for (spec, handler) in routes() {
        let access = spec.access;
        let guarded = handler.route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            move |State(state): State<AppState>, request: Request, next: Next| {
                auth::guard(state, access, request, next)
            },
        ));
        router = router.route(spec.path, guarded);
    }
    router
        .fallback(|| async {
            ApiError::new(ErrorCode::NotFound, "no such resource").into_response_owned()
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "the resource does not support this method",
            )
            .into_response_owned()
        })
        .layer(DefaultBodyLimit::max(JSON_LIMIT))
        .with_state(state)
}

impl ApiError {
    fn into_response_owned(self) -> axum::response::Response {
        axum::response::IntoResponse::into_response(self)
    }
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

#[derive(OpenApi)]
#[openapi(
    info(title = "kefu 客服 API", description = "The REST API of kefu, a self-hosted customer service platform. Authenticate with `Authorization: Bearer <token>` (create one with `kefu token create`) or a session cookie from `/api/v1/auth/login` plus the `X-CSRF-Token` header for changes. Errors are `{\"error\": {\"code\", \"message\", \"field\"}}` with the codes of the ErrorCode schema."),
    paths(
        system::health, system::openapi, auth::login, auth::logout, auth::whoami,
        customers::list, customers::create, customers::get, customers::update, customers::delete,
        customers::add_contact, customers::remove_contact, customers::transition, customers::lifecycle_history,
        customers::add_transaction, customers::add_win_back_attempt, customers::record_touchpoint,
        customers::custom_fields, customers::define_custom_field,
        cases::list, cases::create, cases::get, cases::update, cases::messages, cases::add_message,
        cases::transitions, cases::transition, cases::transfers, cases::transfer, cases::merge,
        cases::attachments, cases::upload, cases::download, cases::sentiment,
        timeline::list, timeline::customer_timeline, timeline::audit,
        admin::teams, admin::create_team, admin::team, admin::update_team,
        admin::users, admin::create_user, admin::user, admin::update_user,
        admin::tokens, admin::create_token, admin::revoke_token,
        complaints::list, complaints::get, complaints::record, complaints::update, complaints::step,
        complaints::appeal, complaints::appeals, complaints::decide_appeal,
        complaints::rules, complaints::publish_rules,
        complaints::promises, complaints::add_promise, complaints::settle_promise,
        complaints::tracking_link, complaints::revoke_tracking_link, complaints::track,
        complaints::notifications, complaints::read_notification,
        complaints::calendars, complaints::create_calendar, complaints::update_calendar,
        complaints::set_team_calendar, complaints::sla_policies, complaints::create_sla_policy,
        complaints::case_sla,
        satisfaction::case_satisfaction, satisfaction::record_satisfaction,
        satisfaction::follow_ups, satisfaction::complete_follow_up,
        satisfaction::survey, satisfaction::answer_survey,
        reports::complaints, reports::response_times, reports::pyramid,
        reports::first_contact_resolution, reports::service_matrix,
        automations::automations, automations::create_automation, automations::update_automation,
        automations::case_firings,
        kb::entries, kb::create_entry, kb::entry, kb::update_entry, kb::versions,
        kb::settings, kb::set_settings, kb::unanswered, kb::message, kb::assist, kb::draft,
        kb::complaint_suggestion,
        conversations::start, conversations::transcript, conversations::message,
        conversations::case_handoff,
        intents::list, intents::create, intents::examples, intents::add_examples,
        intents::delete_example,
        routing::team_settings, routing::set_team_settings, routing::queue, routing::assign_next,
        routing::team_agents, routing::agent_profile, routing::set_agent_profile,
        routing::pause, routing::resume, routing::stress, routing::set_my_availability,
        routing::stress_flags, routing::acknowledge_stress_flag,
        routing::case_routing, routing::set_case_skills,
    ),
    components(schemas(error::ErrorBody, error::ErrorCode)),
    modifiers(&BearerAuth),
    tags(
        (name = "customers", description = "The customer archive (客户档案)"),
        (name = "cases", description = "Cases (工单)"),
        (name = "timeline", description = "Touchpoints (接触点)"),
        (name = "audit", description = "The audit log"),
        (name = "kb", description = "The knowledge base (知识库) and the bot (智能客服): entries with similar questions and versions, thresholds, unanswered questions, the bot's replies"),
        (name = "automations", description = "Automation rules (自动化规则): when an event and conditions, then actions"),
        (name = "reports", description = "Reports (报表) as JSON for charts"),
        (name = "satisfaction", description = "Follow-ups (回访) and satisfaction (满意度): CSAT requests and answers"),
        (name = "routing", description = "Routing (工单分配) and agent stress (压力管理): team queues, strategies, capacity, skills, availability, pauses, stress flags"),
        (name = "sla", description = "Service levels (服务时限): business calendars, SLA policies, clocks"),
        (name = "complaints", description = "Complaint handling (投诉处理): the record, the flow and its escalation, appeals, rules, promises, tracking links, notifications"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

/// The OpenAPI document as pretty JSON (what `/api/v1/openapi.json` serves and what
/// `docs/openapi.json` holds).
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    /// `docs/openapi.json` is the committed copy of the document; regenerate it with
    /// `KEFU_UPDATE_OPENAPI=1 cargo test -p kefu-server openapi_document_is_committed`.
    #[test]
    fn openapi_document_is_committed() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
        let generated = super::openapi_json() + "\n";
        if std::env::var_os("KEFU_UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &generated).expect("write docs/openapi.json");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json is out of date: run KEFU_UPDATE_OPENAPI=1 cargo test -p kefu-server openapi_document_is_committed"
        );
    }

    #[test]
    fn openapi_is_version_3_1() {
        let document: serde_json::Value =
            serde_json::from_str(&super::openapi_json()).expect("valid JSON");
        assert_eq!(document["openapi"], "3.1.0");
        assert!(
            document["components"]["schemas"]["ErrorCode"]["enum"]
                .as_array()
                .is_some_and(|codes| codes.len() == super::error::ErrorCode::ALL.len())
        );
    }

    /// The document lists the names the API sends (`technical_support`), not the Rust
    /// variant names (`TechnicalSupport`).
    #[test]
    fn vocabularies_are_documented_by_their_wire_names() {
        use kefu_domain::Labelled;
        fn names<T: Labelled>() -> serde_json::Value {
            T::ALL.iter().map(|v| v.as_str()).collect()
        }
        let document: serde_json::Value =
            serde_json::from_str(&super::openapi_json()).expect("valid JSON");
        let schemas = &document["components"]["schemas"];
        for (schema, expected) in [
            ("CaseKind", names::<kefu_domain::cases::CaseKind>()),
            ("Severity", names::<kefu_domain::complaints::Severity>()),
            (
                "ComplaintStage",
                names::<kefu_domain::complaints::ComplaintStage>(),
            ),
            (
                "LifecycleState",
                names::<kefu_domain::customers::LifecycleState>(),
            ),
            ("Channel", names::<kefu_domain::timeline::Channel>()),
        ] {
            assert_eq!(schemas[schema]["enum"], expected, "{schema}");
            let serialised =
                serde_json::to_value(kefu_domain::cases::CaseKind::TechnicalSupport).expect("json");
            assert_eq!(serialised, "technical_support");
        }
    }
}
