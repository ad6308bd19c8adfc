//! The route table. **API boundary**: every HTTP path Nimbus serves is listed here.

mod convex;
mod crons;
mod docs;
mod documents;
mod functions;
mod images;
mod journal;
mod ndjson;
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

pub(crate) mod table;

use std::sync::LazyLock;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::middleware;
use nimbus_browser::page::AnswerDoc;
use table::{Content, Doc, Methods, Operation, ParamType, Table, delete, doc, get, post, put};

use crate::auth;
use crate::convex_wire::ApiCall;
use crate::envelope;
use crate::keep_alive;
use crate::request_id;
use crate::sandbox_wire::{CreateSandboxBody, NetworkUpdateBody};
use crate::schedule_wire::{CreateCron, CreateJob, PatchCron};
use crate::service_wire::{EmptyBody, RestartBody, ServiceBody};
use crate::session_wire::{CloseBody, ExecBody, InputBody, OpenSessionBody, RenewBody, ResizeBody, SignalBody};
use crate::state::AppState;
use crate::wire::{
    Accepted, CookieSessionBody, CreateTenant, DocumentAnswer, DocumentPage, Health, IdAnswer, InsertDocument,
    JobCreated, PaginatedQueryBody, PatchDocument, QueryAnswer, QueryBody, Rotated, TenantList,
};

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
    let table = table();
    let guard = auth::Guard { auth: state.auth.clone(), exemptions: std::sync::Arc::new(table.exemptions()) };
    table
        .into_router(&state)
        .fallback(envelope::fallback)
        // Bodies are bounded by `RawBody` itself, which reports the limit in the envelope.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(guard, auth::guard))
        .with_state(state)
}

/// Every operation the router serves, with its description (the OpenAPI document's source).
pub(crate) fn operations() -> Vec<Operation> {
    table().into_operations()
}

/// `GET /openapi.json`: the OpenAPI document, generated once from [`operations`].
async fn openapi_document() -> impl axum::response::IntoResponse {
    static DOCUMENT: LazyLock<String> = LazyLock::new(|| crate::openapi::document_text(&operations()));
    ([(axum::http::header::CONTENT_TYPE, "application/json")], DOCUMENT.as_str())
}

/// `POST /api/sessions/{id}/page/{operation}`: one route per page operation, each with its
/// body's schema (an operation that does not exist is the router's 404).
fn page_operations(session: &str, table: Table) -> Table {
    nimbus_browser::page::OPERATIONS.iter().fold(table, |table, operation| {
        let mut id = String::from("page");
        id.extend(operation.name.chars().take(1).flat_map(char::to_uppercase));
        id.push_str(&operation.name[1..]);
        let answer = match operation.answer {
            AnswerDoc::Json(schema) => Content::Json(schema),
            AnswerDoc::Binary(media_type) => Content::Bytes(media_type),
        };
        let doc = doc(id, operation.summary).json_schema(operation.body).optional_body().answer(
            200,
            "The operation's answer.",
            answer,
        );
        table.at(&format!("{session}/page/{}", operation.name), post(sessions::page, doc))
    })
}

/// The route table: every path, its handlers and their descriptions.
fn table() -> Table {
    use ParamType::{Boolean, Integer, String as Text};
    let tenant = "/api/tenants/{tenant_id}";
    let sandbox = &format!("{tenant}/sandboxes/{{sandbox_id}}");
    let service = &format!("{tenant}/services/{{service_name}}");
    let session = "/api/sessions/{session_id}";
    let process = &format!("{session}/processes/{{process_id}}");
    let deployment = "/convex/{tenant_id}";
    let ndjson = Content::Bytes(ndjson::MEDIA_TYPE);
    let upgrade = |id, summary| doc(id, summary).answer(101, "Switched to the WebSocket protocol.", Content::Empty);
    let created = |id, summary, what| doc(id, summary).answer(201, what, Content::AnyJson);
    let gone = |id, summary| doc(id, summary).answer(204, "Done.", Content::Empty);
    let page_token = |d: Doc| d.query("pageToken", Text, "The previous page's `nextPageToken`.");
    let wait_for = |d: Doc| {
        d.query("waitFor", Text, "Answer once the resource reaches this condition (e.g. `ready`).").query(
            "timeoutMs",
            Integer,
            "How long `waitFor` may wait.",
        )
    };
    let force = |d: Doc| d.query("force", Boolean, "Act even on a service's sandbox.");
    let ports = |variant: &str| {
        let documented = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE].map(|method| {
            let name = method.as_str();
            let id = format!("proxy{}{}{variant}", &name[..1], name[1..].to_ascii_lowercase());
            let doc = doc(id, "Forwards the request to the port the sandbox listens on.")
                .bytes("*/*")
                .optional_body()
                .answer(200, "The sandbox's own answer (any status).", Content::Bytes("*/*"));
            (method, doc)
        });
        Methods::any(ports::proxy, documented.into())
    };
    let stream = |id, summary| {
        doc(id, summary).query("follow", Boolean, "Keep the answer open for new output.").answer(
            200,
            "NDJSON frames.",
            ndjson,
        )
    };
    let input = |id, summary| doc(id, summary).json::<InputBody>().answer(202, "Accepted.", Content::Empty);
    let resize = |id, summary| doc(id, summary).json::<ResizeBody>().answer(202, "Accepted.", Content::Empty);
    page_operations(session, Table::default())
        .at(
            "/health",
            get(system::health, doc("health", "Whether the server is up.").open().answers::<Health>(200, "Up.")),
        )
        .at("/errors", get(system::errors, doc("errorCatalog", "The error catalog.").open()))
        .at("/openapi.json", get(openapi_document, doc("openapi", "This OpenAPI document.").open()))
        .at(
            "/llms.txt",
            get(
                docs::llms,
                doc("llmsTxt", "The docs index for agents.").open().answer(200, "Text.", Content::Bytes("text/plain")),
            ),
        )
        .at(
            "/llms-full.txt",
            get(
                docs::llms_full,
                doc("llmsFullTxt", "Every docs page in one text.").open().answer(
                    200,
                    "Text.",
                    Content::Bytes("text/plain"),
                ),
            ),
        )
        .at(
            "/docs/{*page}",
            get(
                docs::page,
                doc("docsPage", "One docs page (`quickstart.md`).").open().answer(
                    200,
                    "Markdown.",
                    Content::Bytes("text/markdown"),
                ),
            ),
        )
        .at(
            "/ui/auth/session",
            post(
                system::cookie_session,
                doc("cookieSession", "Trades the admin token for a session cookie.")
                    .token_in_body()
                    .json::<CookieSessionBody>()
                    .answers::<Health>(200, "The cookie is set."),
            ),
        )
        .at("/api/system/capabilities", get(system::capabilities, doc("capabilities", "What works today.")))
        .at(
            "/api/system/token/rotate",
            post(
                system::rotate_token,
                doc("rotateToken", "Replaces the admin token.")
                    .optional_json::<EmptyBody>()
                    .answers::<Rotated>(200, "Rotated."),
            ),
        )
        .at(
            "/api/system/shutdown",
            post(
                system::shutdown,
                doc("shutdown", "Stops the server gracefully.")
                    .optional_json::<EmptyBody>()
                    .answers::<Accepted>(200, "Stopping."),
            ),
        )
        .at(
            "/api/images",
            get(images::list, doc("listImages", "Stored images.")).delete(
                images::remove,
                gone("removeImage", "Removes an image.").query("reference", Text, "Reference or `sha256:` digest."),
            ),
        )
        .at(
            "/api/images/import",
            post(
                images::import,
                created("importImage", "Imports an OCI-layout or docker-archive tar.", "The imported images.")
                    .bytes("application/x-tar")
                    .query("reference", Text, "Name for images the archive leaves unnamed."),
            ),
        )
        .at(
            "/api/images/pull",
            post(
                images::pull,
                doc("pullImage", "Pulls an image from its registry.").json::<images::PullImage>().answer(
                    200,
                    "The image, or NDJSON progress.",
                    Content::AnyJson,
                ),
            ),
        )
        .at_service(
            "/mcp",
            crate::mcp::service,
            vec![(
                Method::POST,
                doc("mcp", "The MCP server (streamable HTTP, one JSON-RPC message per POST; docs/mcp.md).")
                    .any_json_body()
                    .answer(200, "The JSON-RPC answer.", Content::AnyJson)
                    .answer(202, "A notification or response, accepted.", Content::Empty),
            )],
        )
        .at(
            "/ws",
            get(
                ws::upgrade,
                upgrade("realtime", "The realtime WebSocket (`nimbus.v2`, `functions.v1`).")
                    .token_in_first_frame()
                    .query("tenant", Text, "The tenant."),
            ),
        )
        .at(
            "/api/tenants",
            get(tenants::list, doc("listTenants", "Tenant ids.").answers::<TenantList>(200, "The ids.")).post(
                tenants::create,
                doc("createTenant", "Creates a tenant.").json::<CreateTenant>().answers::<IdAnswer>(201, "Its id."),
            ),
        )
        .at(tenant, delete(tenants::delete, gone("deleteTenant", "Deletes a tenant and everything in it.")))
        .at(
            &format!("{tenant}/documents"),
            post(
                documents::insert,
                doc("insertDocument", "Inserts a document.")
                    .json::<InsertDocument>()
                    .answers::<IdAnswer>(201, "Its id."),
            ),
        )
        .at(
            &format!("{tenant}/documents/{{table}}"),
            get(
                documents::list,
                doc("listDocuments", "A table's documents by id.")
                    .answers::<DocumentPage>(200, "A page.")
                    .query("limit", Integer, "Page size.")
                    .query("cursor", Text, "The previous page's cursor."),
            ),
        )
        .at(
            &format!("{tenant}/documents/{{table}}/{{document_id}}"),
            get(documents::get, doc("getDocument", "One document.").answers::<DocumentAnswer>(200, "The document."))
                .patch(
                    documents::patch,
                    doc("patchDocument", "Replaces top-level fields.")
                        .json::<PatchDocument>()
                        .answers::<IdAnswer>(200, "Its id."),
                )
                .delete(documents::delete, gone("deleteDocument", "Deletes a document.")),
        )
        .at(
            &format!("{tenant}/query"),
            post(
                query::run,
                doc("query", "Runs a query.").json::<QueryBody>().answers::<QueryAnswer>(200, "The documents."),
            ),
        )
        .at(
            &format!("{tenant}/query/paginated"),
            post(
                query::paginated,
                doc("paginatedQuery", "Runs a query one page at a time.")
                    .json::<PaginatedQueryBody>()
                    .answers::<DocumentPage>(200, "A page."),
            ),
        )
        .at(
            &format!("{tenant}/functions"),
            get(functions::list, doc("listFunctions", "The deployed functions.")).put(
                functions::deploy,
                doc("deployFunctions", "Deploys a module set (atomic replace).").json::<functions::DeployBody>().query(
                    "dryRun",
                    Boolean,
                    "Check without deploying.",
                ),
            ),
        )
        .at(
            &format!("{tenant}/functions/call"),
            post(functions::call, doc("callFunction", "Calls a public function.").json::<functions::CallBody>()),
        )
        .at(
            &format!("{tenant}/realtime/stats"),
            get(ws::stats, doc("realtimeStats", "The tenant's realtime counters and delivery latency.")),
        )
        .at(&format!("{tenant}/schema"), get(schema::list, doc("listSchemas", "Tables with a schema.")))
        .at(
            &format!("{tenant}/schema/{{table}}"),
            get(schema::get, doc("getSchema", "A table's schema."))
                .put(schema::put, gone("putSchema", "Sets a table's schema.").any_json_body())
                .delete(schema::delete, gone("deleteSchema", "Removes a table's schema.")),
        )
        .at(
            &format!("{tenant}/sandboxes"),
            get(
                sandboxes::list,
                page_token(doc("listSandboxes", "The tenant's sandboxes."))
                    .query("labelKey", Text, "Only sandboxes with this label.")
                    .query("labelValue", Text, "… with this value."),
            )
            .post(
                sandboxes::create,
                created("createSandbox", "Creates and starts a sandbox.", "The sandbox.").json::<CreateSandboxBody>(),
            ),
        )
        .at(
            sandbox,
            get(sandboxes::get, wait_for(doc("getSandbox", "One sandbox."))).delete(
                sandboxes::delete,
                gone("deleteSandbox", "Stops and removes a sandbox.").query(
                    "gracePeriodMs",
                    Integer,
                    "Time between SIGTERM and SIGKILL.",
                ),
            ),
        )
        .at(
            &format!("{sandbox}/stop"),
            post(sandboxes::stop, doc("stopSandbox", "Stops a sandbox.").optional_json::<sandboxes::StopBody>()),
        )
        .at(
            &format!("{sandbox}/logs"),
            get(
                sandboxes::logs,
                stream("sandboxLogs", "The sandbox's output.").query(
                    "tail",
                    Integer,
                    "Start this many frames from the end.",
                ),
            ),
        )
        .at(
            &format!("{sandbox}/network"),
            put(
                network::update,
                doc("updateNetwork", "Replaces the egress rules (generation-checked).").json::<NetworkUpdateBody>(),
            ),
        )
        .at(
            &format!("{sandbox}/egress"),
            get(
                network::log,
                stream("egressLog", "The egress decision log.").query(
                    "tail",
                    Integer,
                    "Start this many entries from the end.",
                ),
            ),
        )
        .at(&format!("{sandbox}/ports/{{port}}"), ports(""))
        .at(&format!("{sandbox}/ports/{{port}}/"), ports("Root"))
        .at(&format!("{sandbox}/ports/{{port}}/{{*path}}"), ports("Path"))
        .at(
            &format!("{tenant}/services"),
            get(services::list, page_token(doc("listServices", "The tenant's services."))).post(
                services::create,
                wait_for(created("createService", "Creates a service.", "Its definition.").json::<ServiceBody>()),
            ),
        )
        .at(
            service,
            get(services::get, wait_for(doc("getService", "One service with its status.")))
                .put(
                    services::update,
                    wait_for(
                        doc("updateService", "Replaces the definition (generation-checked).").json::<ServiceBody>(),
                    ),
                )
                .delete(services::delete, force(gone("deleteService", "Deletes a service and its sandbox."))),
        )
        .at(
            &format!("{service}/definition"),
            get(services::definition, doc("serviceDefinition", "The stored definition.")),
        )
        .at(
            &format!("{service}/start"),
            post(
                services::start,
                wait_for(
                    doc("startService", "Starts a service.")
                        .answer(202, "Accepted.", Content::AnyJson)
                        .optional_json::<EmptyBody>(),
                ),
            ),
        )
        .at(
            &format!("{service}/stop"),
            post(
                services::stop,
                force(
                    doc("stopService", "Stops a service.")
                        .answer(202, "Accepted.", Content::AnyJson)
                        .optional_json::<EmptyBody>(),
                ),
            ),
        )
        .at(
            &format!("{service}/restart"),
            post(
                services::restart,
                wait_for(
                    doc("restartService", "Restarts a service.")
                        .answer(202, "Accepted.", Content::AnyJson)
                        .optional_json::<RestartBody>(),
                ),
            ),
        )
        .at(&format!("{tenant}/secrets"), get(secrets::list, doc("listSecrets", "Secret names (never values).")))
        .at(
            &format!("{tenant}/secrets/{{name}}"),
            put(
                secrets::put,
                doc("putSecret", "Sets a secret.")
                    .json::<secrets::PutSecretBody>()
                    .answer(201, "Created.", Content::AnyJson)
                    .answer(200, "Replaced.", Content::AnyJson),
            )
            .delete(secrets::delete, gone("deleteSecret", "Deletes a secret.")),
        )
        .at(
            "/api/sessions",
            get(
                sessions::list,
                page_token(doc("listSessions", "Open sessions.")).query("tenantId", Text, "Only this tenant's."),
            )
            .post(
                sessions::open,
                created("openSession", "Opens a session on a sandbox or service.", "The session.")
                    .json::<OpenSessionBody>(),
            ),
        )
        .at(session, get(sessions::get, doc("getSession", "One session.")))
        .at(
            &format!("{session}/close"),
            post(sessions::close, doc("closeSession", "Closes a session.").optional_json::<CloseBody>()),
        )
        .at(
            &format!("{session}/renew"),
            post(sessions::renew, doc("renewSession", "Extends a session's lease.").optional_json::<RenewBody>()),
        )
        .at(
            &format!("{session}/channels/{{channel}}/stream"),
            get(sessions::stream, stream("channelStream", "A channel's output.")),
        )
        .at(
            &format!("{session}/channels/{{channel}}/input"),
            post(sessions::input, input("channelInput", "Writes to a channel.")),
        )
        .at(
            &format!("{session}/channels/cdp/ws"),
            get(
                sessions::cdp_ws,
                upgrade("cdpWs", "The DevTools protocol, confined to the session's browser context."),
            ),
        )
        .at(
            &format!("{session}/channels/{{channel}}/ws"),
            get(sessions::ws, upgrade("channelWs", "A channel as a WebSocket.")),
        )
        .at(
            &format!("{session}/channels/stdio/resize"),
            post(sessions::resize, resize("resizeStdio", "Resizes the stdio terminal.")),
        )
        .at(
            &format!("{session}/exec"),
            post(
                sessions::exec,
                created("exec", "Starts a process.", "The process id.")
                    .json::<ExecBody>()
                    .query("wait", Boolean, "Answer when it exits.")
                    .answer(200, "The exited process.", Content::AnyJson),
            ),
        )
        .at(&format!("{session}/processes"), get(sessions::processes, doc("listProcesses", "The session's processes.")))
        .at(process, get(sessions::process, doc("getProcess", "One process.")))
        .at(&format!("{process}/stream"), get(sessions::stream, stream("processStream", "A process's output.")))
        .at(&format!("{process}/ws"), get(sessions::ws, upgrade("processWs", "A process as a WebSocket.")))
        .at(&format!("{process}/input"), post(sessions::input, input("processInput", "Writes to a process's stdin.")))
        .at(
            &format!("{process}/signal"),
            post(
                sessions::process_signal,
                doc("signalProcess", "Signals a process.").json::<SignalBody>().answer(
                    202,
                    "Accepted.",
                    Content::Empty,
                ),
            ),
        )
        .at(
            &format!("{process}/resize"),
            post(sessions::resize, resize("resizeProcess", "Resizes a process's terminal.")),
        )
        .at(
            &format!("{session}/files"),
            get(
                sessions::files_get,
                doc("readFile", "Reads a file.")
                    .query("path", Text, "The path inside the target.")
                    .query("offset", Integer, "First byte.")
                    .query("length", Integer, "At most this many bytes.")
                    .answer(200, "The bytes.", Content::Bytes("application/octet-stream")),
            )
            .put(
                sessions::files_put,
                gone("writeFile", "Writes a file.").bytes("application/octet-stream").query(
                    "path",
                    Text,
                    "The path inside the target.",
                ),
            )
            .delete(
                sessions::files_delete,
                gone("deleteFile", "Deletes a file or directory.").query("path", Text, "The path.").query(
                    "recursive",
                    Boolean,
                    "Directories with content.",
                ),
            ),
        )
        .at(
            &format!("{session}/files/list"),
            get(sessions::files_list, doc("listFiles", "Lists a directory.").query("path", Text, "The directory.")),
        )
        .at(
            &format!("{session}/files/stat"),
            get(sessions::files_stat, doc("statFile", "One path's metadata.").query("path", Text, "The path.")),
        )
        .at(
            &format!("{tenant}/journal"),
            get(
                journal::page,
                doc("journal", "The change journal.").query("after", Integer, "After this sequence.").query(
                    "limit",
                    Integer,
                    "Page size.",
                ),
            ),
        )
        .at(
            &format!("{tenant}/journal/bootstrap"),
            get(journal::bootstrap, doc("journalBootstrap", "A snapshot with its sequence.")),
        )
        .at(
            &format!("{tenant}/schedule"),
            get(schedule::list, doc("listJobs", "Pending jobs.")).post(
                schedule::create,
                doc("scheduleJob", "Schedules a job.").json::<CreateJob>().answers::<JobCreated>(201, "Its id."),
            ),
        )
        .at(
            &format!("{tenant}/schedule/{{job_id}}"),
            get(schedule::get, doc("getJob", "One job."))
                .delete(schedule::cancel, gone("cancelJob", "Cancels a pending job.")),
        )
        .at(
            &format!("{tenant}/schedule/history/{{job_id}}"),
            get(schedule::history, doc("jobHistory", "A job's executions.")),
        )
        .at(
            &format!("{tenant}/crons"),
            get(crons::list, doc("listCrons", "The tenant's crons.")).post(
                crons::create,
                doc("createCron", "Creates a cron.").json::<CreateCron>().answer(201, "Created.", Content::Empty),
            ),
        )
        .at(
            &format!("{tenant}/crons/{{cron_name}}"),
            get(crons::get, doc("getCron", "One cron."))
                .patch(crons::patch, doc("patchCron", "Changes a cron.").json::<PatchCron>())
                .delete(crons::delete, gone("deleteCron", "Deletes a cron.")),
        )
        .at(
            &format!("{tenant}/crons/{{cron_name}}/runs"),
            get(crons::runs, doc("cronRuns", "A cron's runs.").query("limit", Integer, "At most this many.")),
        )
        .at(
            &format!("{deployment}/query"),
            post(
                convex::query,
                doc("deploymentQuery", "Calls a query (deployment URL).").json::<functions::CallBody>(),
            ),
        )
        .at(
            &format!("{deployment}/mutation"),
            post(
                convex::mutation,
                doc("deploymentMutation", "Calls a mutation (deployment URL).").json::<functions::CallBody>(),
            ),
        )
        .at(
            &format!("{deployment}/action"),
            post(
                convex::action,
                doc("deploymentAction", "Calls an action (deployment URL).").json::<functions::CallBody>(),
            ),
        )
        .at(
            &format!("{deployment}/query/paginated"),
            post(
                convex::paginated,
                doc("deploymentPaginated", "A paginated query (deployment URL).").json::<convex::PaginatedBody>(),
            ),
        )
        .at(
            &format!("{deployment}/schedule/run_after"),
            post(
                convex::run_after,
                doc("deploymentRunAfter", "Schedules a function after a delay.")
                    .json::<convex::RunAfterBody>()
                    .answers::<JobCreated>(201, "The job id."),
            ),
        )
        .at(
            &format!("{deployment}/schedule/run_at"),
            post(
                convex::run_at,
                doc("deploymentRunAt", "Schedules a function at a time.")
                    .json::<convex::RunAtBody>()
                    .answers::<JobCreated>(201, "The job id."),
            ),
        )
        .at(
            &format!("{deployment}/schedule/{{job_id}}"),
            delete(convex::cancel, gone("deploymentCancel", "Cancels a scheduled function.")),
        )
        .at(
            &format!("{deployment}/ws"),
            get(convex::ws, upgrade("deploymentWs", "The realtime WebSocket (deployment URL).").token_in_first_frame()),
        )
        .at(
            &format!("{deployment}/api/query"),
            post(convex::api_query, convex_api("convexQuery", "Convex HTTP protocol: a query.")),
        )
        .at(
            &format!("{deployment}/api/mutation"),
            post(convex::api_mutation, convex_api("convexMutation", "Convex HTTP protocol: a mutation.")),
        )
        .at(
            &format!("{deployment}/api/action"),
            post(convex::api_action, convex_api("convexAction", "Convex HTTP protocol: an action.")),
        )
}

/// A Convex HTTP protocol call: a function failure is its own 560 answer, not an envelope.
fn convex_api(id: &'static str, summary: &'static str) -> Doc {
    doc(id, summary).json::<ApiCall>().answer(200, "The value.", Content::AnyJson).answer(
        560,
        "The function failed (Convex's own error shape).",
        Content::AnyJson,
    )
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
