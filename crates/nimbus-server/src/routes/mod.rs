//! The route table. **API boundary**: every HTTP path Nimbus serves is listed here.

mod convex;
mod crons;
mod docs;
mod documents;
mod functions;
mod images;
mod journal;
mod network;
mod ports;
pub(crate) mod query;
mod sandboxes;
mod schedule;
mod schema;
mod secrets;
mod services;
mod sessions;
mod system;
mod tenants;
mod ws;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{any, delete, get, post, put};

use crate::auth;
use crate::envelope;
use crate::keep_alive;
use crate::request_id;
use crate::state::AppState;

/// Builds the router with its middleware: outermost, what is left of the request body once the
/// answer is ready (read, or the close announced, so that an early answer on any route keeps the
/// connection usable); then request ids and the envelope guarantee (outside the route table, so
/// they also see the method router's own 405 answers with their `Allow` header); then the origin
/// policy and authentication.
pub fn router(state: AppState) -> Router {
    Router::new()
        .fallback_service(routes(state))
        .layer(middleware::from_fn(request_id::assign))
        .layer(middleware::from_fn(keep_alive::finish_request_body))
}

fn routes(state: AppState) -> Router {
    let tenant = "/api/tenants/{tenant_id}";
    let session = "/api/sessions/{session_id}";
    let deployment = "/convex/{tenant_id}";
    Router::new()
        .route("/health", get(system::health))
        .route("/errors", get(system::errors))
        .route("/llms.txt", get(docs::llms))
        .route("/llms-full.txt", get(docs::llms_full))
        .route("/docs/{*page}", get(docs::page))
        .route("/ui/auth/session", post(system::cookie_session))
        .route("/api/system/capabilities", get(system::capabilities))
        .route("/api/system/token/rotate", post(system::rotate_token))
        .route("/api/system/shutdown", post(system::shutdown))
        .route("/api/images", get(images::list).delete(images::remove))
        .route("/api/images/import", post(images::import))
        .route("/ws", get(ws::upgrade))
        .route("/api/tenants", get(tenants::list).post(tenants::create))
        .route(tenant, delete(tenants::delete))
        .route(&format!("{tenant}/documents"), post(documents::insert))
        .route(&format!("{tenant}/documents/{{table}}"), get(documents::list))
        .route(
            &format!("{tenant}/documents/{{table}}/{{document_id}}"),
            get(documents::get).patch(documents::patch).delete(documents::delete),
        )
        .route(&format!("{tenant}/query"), post(query::run))
        .route(&format!("{tenant}/functions"), get(functions::list).put(functions::deploy))
        .route(&format!("{tenant}/functions/call"), post(functions::call))
        .route(&format!("{tenant}/realtime/stats"), get(ws::stats))
        .route(&format!("{tenant}/query/paginated"), post(query::paginated))
        .route(&format!("{tenant}/schema"), get(schema::list))
        .route(&format!("{tenant}/schema/{{table}}"), get(schema::get).put(schema::put).delete(schema::delete))
        .route(&format!("{tenant}/sandboxes"), get(sandboxes::list).post(sandboxes::create))
        .route(&format!("{tenant}/sandboxes/{{sandbox_id}}"), get(sandboxes::get).delete(sandboxes::delete))
        .route(&format!("{tenant}/sandboxes/{{sandbox_id}}/stop"), post(sandboxes::stop))
        .route(&format!("{tenant}/sandboxes/{{sandbox_id}}/logs"), get(sandboxes::logs))
        .route(&format!("{tenant}/sandboxes/{{sandbox_id}}/network"), put(network::update))
        .route(&format!("{tenant}/sandboxes/{{sandbox_id}}/egress"), get(network::log))
        .route(&format!("{tenant}/sandboxes/{{sandbox_id}}/ports/{{port}}"), any(ports::proxy))
        .route(&format!("{tenant}/sandboxes/{{sandbox_id}}/ports/{{port}}/"), any(ports::proxy))
        .route(&format!("{tenant}/sandboxes/{{sandbox_id}}/ports/{{port}}/{{*path}}"), any(ports::proxy))
        .route(&format!("{tenant}/services"), get(services::list).post(services::create))
        .route(
            &format!("{tenant}/services/{{service_name}}"),
            get(services::get).put(services::update).delete(services::delete),
        )
        .route(&format!("{tenant}/services/{{service_name}}/definition"), get(services::definition))
        .route(&format!("{tenant}/services/{{service_name}}/start"), post(services::start))
        .route(&format!("{tenant}/services/{{service_name}}/stop"), post(services::stop))
        .route(&format!("{tenant}/services/{{service_name}}/restart"), post(services::restart))
        .route(&format!("{tenant}/secrets"), get(secrets::list))
        .route(&format!("{tenant}/secrets/{{name}}"), put(secrets::put).delete(secrets::delete))
        .route("/api/sessions", get(sessions::list).post(sessions::open))
        .route(session, get(sessions::get))
        .route(&format!("{session}/close"), post(sessions::close))
        .route(&format!("{session}/renew"), post(sessions::renew))
        .route(&format!("{session}/channels/{{channel}}/stream"), get(sessions::stream))
        .route(&format!("{session}/channels/{{channel}}/input"), post(sessions::input))
        .route(&format!("{session}/channels/{{channel}}/ws"), get(sessions::ws))
        .route(&format!("{session}/channels/stdio/resize"), post(sessions::resize))
        .route(&format!("{session}/exec"), post(sessions::exec))
        .route(&format!("{session}/processes"), get(sessions::processes))
        .route(&format!("{session}/processes/{{process_id}}"), get(sessions::process))
        .route(&format!("{session}/processes/{{process_id}}/stream"), get(sessions::stream))
        .route(&format!("{session}/processes/{{process_id}}/ws"), get(sessions::ws))
        .route(&format!("{session}/processes/{{process_id}}/input"), post(sessions::input))
        .route(&format!("{session}/processes/{{process_id}}/signal"), post(sessions::process_signal))
        .route(&format!("{session}/processes/{{process_id}}/resize"), post(sessions::resize))
        .route(
            &format!("{session}/files"),
            get(sessions::files_get).put(sessions::files_put).delete(sessions::files_delete),
        )
        .route(&format!("{session}/files/list"), get(sessions::files_list))
        .route(&format!("{session}/files/stat"), get(sessions::files_stat))
        .route(&format!("{tenant}/journal"), get(journal::page))
        .route(&format!("{tenant}/journal/bootstrap"), get(journal::bootstrap))
        .route(&format!("{tenant}/schedule"), get(schedule::list).post(schedule::create))
        .route(&format!("{tenant}/schedule/{{job_id}}"), get(schedule::get).delete(schedule::cancel))
        .route(&format!("{tenant}/schedule/history/{{job_id}}"), get(schedule::history))
        .route(&format!("{tenant}/crons"), get(crons::list).post(crons::create))
        .route(&format!("{tenant}/crons/{{cron_name}}"), get(crons::get).patch(crons::patch).delete(crons::delete))
        .route(&format!("{tenant}/crons/{{cron_name}}/runs"), get(crons::runs))
        .route(&format!("{deployment}/query"), post(convex::query))
        .route(&format!("{deployment}/mutation"), post(convex::mutation))
        .route(&format!("{deployment}/action"), post(convex::action))
        .route(&format!("{deployment}/query/paginated"), post(convex::paginated))
        .route(&format!("{deployment}/schedule/run_after"), post(convex::run_after))
        .route(&format!("{deployment}/schedule/run_at"), post(convex::run_at))
        .route(&format!("{deployment}/schedule/{{job_id}}"), delete(convex::cancel))
        .route(&format!("{deployment}/ws"), get(convex::ws))
        .route(&format!("{deployment}/api/query"), post(convex::api_query))
        .route(&format!("{deployment}/api/mutation"), post(convex::api_mutation))
        .route(&format!("{deployment}/api/action"), post(convex::api_action))
        .fallback(envelope::fallback)
        // Bodies are bounded by `RawBody` itself, which reports the limit in the envelope.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(state.auth.clone(), auth::guard))
        .with_state(state)
}

/// The realtime registry, rendering results as the data routes render documents.
pub fn realtime_registry(
    engine: std::sync::Arc<nimbus_engine::Engine>,
    functions: &std::sync::Arc<crate::functions::NimbusFunctions>,
) -> std::sync::Arc<nimbus_realtime::Realtime> {
    nimbus_realtime::Realtime::new(
        engine,
        std::sync::Arc::new(|documents| serde_json::Value::from(documents::documents_json(documents)).to_string()),
        std::sync::Arc::new(crate::functions::SubscriptionRunner(std::sync::Arc::downgrade(functions))),
    )
}
