//! The node's HTTP surface: the client API under `/api/v1`, health and metrics, the console,
//! merged with the peer RPC routes of `cluster`. One port per node.

mod actions;
pub mod admin;
mod annual_plan;
pub mod backup;
mod bulk;
mod bureaus;
pub mod catalogue;
mod cluster_view;
mod complaints;
mod console;
mod console_snapshot;
mod departments;
mod entities;
mod escalations;
mod export;
pub(crate) mod health;
mod intake;
mod item_list;
mod me;
mod people;
mod presence;
pub(crate) mod programme;
mod public;
mod register;
pub(crate) mod request;
mod response_metrics;
mod risk;
mod search;
mod site_records;
mod stations;
pub(crate) mod tasks;
mod write;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use config::limits::{CONCURRENT_REQUESTS_MAX, REQUEST_TIMEOUT};
use tokio::sync::Semaphore;

pub use console::{asset as console_asset, index as console_page, phone as phone_page, phone_asset, wall as wall_page};

use crate::api::ApiError;
use crate::state::AppState;
use crate::telemetry::Telemetry;

/// `GET /api/v1/openapi.json`: the document of the catalogue, made once.
async fn openapi_document() -> Response {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = DOCUMENT.get_or_init(|| crate::openapi::document(&catalogue::operations()).to_string());
    ([(axum::http::header::CONTENT_TYPE, "application/json")], text.clone()).into_response()
}

pub fn router(state: AppState, group_secret: cluster::raft::GroupSecret) -> Router {
    // The REST operations, from the one list the OpenAPI document is generated from.
    let rest = catalogue::operations()
        .into_iter()
        .fold(Router::new(), |router, operation| router.route(operation.path, operation.handler))
        .route_layer(middleware::from_fn_with_state(state.clone(), departments_keep_to_their_routes));
    let api = rest
        .route("/", get(console::index))
        .route("/console/{file}", get(console::asset))
        .route("/wall", get(console::wall))
        .route("/m/", get(console::phone))
        .route("/m/{file}", get(console::phone_asset))
        .route(crate::openapi::OPENAPI_PATH, get(openapi_document))
        .route("/ws", get(crate::push::node_backend::upgrade))
        .merge(crate::federation::peer_api::router())
        .merge(crate::kept_files::replication::router())
        .merge(crate::reference::router())
        // After every route: it applies to the routes present when it is set. axum still adds
        // the `Allow` header.
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            ApiError::MethodNotAllowed(format!(
                "this route does not take {method}; the Allow header lists what it takes"
            ))
        })
        .fallback(|| async { ApiError::NoRoute })
        .with_state(state.clone())
        .layer(middleware::from_fn_with_state(Arc::new(Semaphore::new(CONCURRENT_REQUESTS_MAX)), limit))
        .layer(middleware::from_fn_with_state(state.telemetry.clone(), count_request))
        .layer(middleware::from_fn_with_state(group_secret.clone(), crate::write_path::believe_hops_only_from_members))
        .layer(middleware::from_fn_with_state(state.clone(), cors))
        .layer(middleware::from_fn(no_store));
    let peer = cluster::raft::peer_api::router(
        state.raft.clone(),
        state.node_id,
        group_secret,
        state.store.clone(),
        state.peers.member_reads(),
    );
    api.merge(peer)
}

/// What another department's inspector (`Role::Department`) may call: who they are, their
/// team's joint inspections and their files, their department's part, the departments, the
/// bureau tree's names, the members to reconnect to, and their own session. The bureau's own data (its other tasks' lists
/// are filtered already; campaigns, proofs, inspectors, entities, metrics, accounts…) is not
/// theirs, so every other route answers 403 before its handler runs.
const DEPARTMENT_ROUTES: [(&str, &str); 14] = [
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/cluster"),
    ("POST", "/api/v1/me/password"),
    ("GET", "/api/v1/tasks"),
    ("GET", "/api/v1/tasks/{id}"),
    ("GET", "/api/v1/tasks/{id}/checklist"),
    ("GET", "/api/v1/tasks/{id}/attachments/{sha256}"),
    ("GET", "/api/v1/tasks/{id}/site_records/{number}/document"),
    ("POST", "/api/v1/tasks/{id}/department-part"),
    ("GET", "/api/v1/departments"),
    ("GET", "/api/v1/bureaus"),
    ("GET", "/api/v1/console/snapshot"),
    ("POST", "/api/v1/sessions/renew"),
    ("POST", "/api/v1/sessions/sign_out"),
];

/// Keeps another department's inspector to `DEPARTMENT_ROUTES`. The route is looked at first,
/// so the routes a console calls all day cost nothing here; outside them only a person's
/// session can carry the role, looked up without counting it or spending the caller's budget
/// (the handler does both).
async fn departments_keep_to_their_routes(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !open_to_departments(&request) && session_role(&state, &request) == Some(ledger::Role::Department) {
        return ApiError::Forbidden(
            "another department's inspector reads their team's joint inspections and enters their part, nothing else"
                .into(),
        )
        .into_response();
    }
    next.run(request).await
}

fn open_to_departments(request: &Request) -> bool {
    let method = request.method().as_str();
    let route = request.extensions().get::<axum::extract::MatchedPath>().map(|path| path.as_str());
    DEPARTMENT_ROUTES.iter().any(|(m, path)| *m == method && Some(*path) == route)
}

fn session_role(state: &AppState, request: &Request) -> Option<ledger::Role> {
    crate::auth::bearer(request.headers()).ok().and_then(|token| state.users.session_role(token))
}

/// The API's and the admin routes' answers hold personal data (reporters, inspectors, whole
/// backups) and the state of one moment: no cache, in a browser or a proxy, may keep them.
async fn no_store(request: Request, next: Next) -> Response {
    let private = request.uri().path().starts_with("/api/") || request.uri().path().starts_with("/admin/");
    let mut response = next.run(request).await;
    if private {
        response
            .headers_mut()
            .insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    }
    response
}

/// A read route's answer: the body as JSON, or the error.
/// What the group keeps as a whole (its entity register, its item list, its yearly cap, the
/// plans filed with it) is for the centres whose scope covers the group's (its own, or one
/// above), never a city's: a token works on every group's nodes, and the ledger does not know
/// which group it is, so the rule is kept here. `what` is the thing, `verb` what `bureau` wanted
/// to do with it.
fn of_the_whole_group(state: &AppState, bureau: ledger::BureauCode, what: &str, verb: &str) -> Result<(), ApiError> {
    if state.regions().is_within(state.group_bureau, bureau) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "{what} is group {}'s: bureau {bureau} may not {verb} it (only the group's own command centre)",
            state.group_bureau
        )))
    }
}

fn json_answer<T: serde::Serialize>(result: Result<T, ApiError>) -> Response {
    match result {
        Ok(body) => axum::Json(body).into_response(),
        Err(error) => error.into_response(),
    }
}

/// Counts every answered request by its route pattern (never the raw path: ids would make
/// unbounded label values), method and status, and times it.
async fn count_request(State(telemetry): State<Arc<Telemetry>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = method_label(request.method());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    telemetry.http_duration.with_label_values(&[&route]).observe(started.elapsed().as_secs_f64());
    telemetry.http_requests.with_label_values(&[&route, method, response.status().as_str()]).inc();
    response
}

/// The method as a metric label, from a fixed set: a client may send any token as a method,
/// and each distinct label value would be a series kept for the life of the process.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// The routes that move a whole entity directory (a province's is gigabytes) or draw over one:
/// bounded by `TRANSFER_TIMEOUT`, not `REQUEST_TIMEOUT` (and a body that stalls is given up
/// after `TRANSFER_IDLE_TIMEOUT`, `kept_files::transfer`).
const TRANSFER_ROUTES: [&str; 5] = [
    "/api/v1/directories/entities",
    "/api/v1/directories/entities/{sha256}",
    backup::DIRECTORY_PATH,
    "/raft/directories/{sha256}",
    "/api/v1/campaigns/{id}/draw",
];

/// The time a request to `path` has, wherever it is bounded (this node, a relay to the
/// leader, a gateway): `TRANSFER_TIMEOUT` on the routes of `TRANSFER_ROUTES`, `REQUEST_TIMEOUT`
/// elsewhere.
pub fn timeout_for_path(path: &str) -> std::time::Duration {
    let segments: Vec<&str> = path.split('/').collect();
    let matches = |route: &str| {
        let pattern: Vec<&str> = route.split('/').collect();
        pattern.len() == segments.len()
            && pattern.iter().zip(&segments).all(|(want, got)| want.starts_with('{') || want == got)
    };
    if TRANSFER_ROUTES.iter().any(|route| matches(route)) {
        config::limits::TRANSFER_TIMEOUT
    } else {
        REQUEST_TIMEOUT
    }
}

/// Caps concurrent API requests and bounds each one's time. A request over the cap waits for
/// a slot (bounded by the same timeout) instead of being served in parallel.
pub(crate) async fn limit(State(slots): State<Arc<Semaphore>>, request: Request, next: Next) -> Response {
    let timeout = timeout_for_path(request.uri().path());
    let work = async {
        let _slot = slots.acquire().await.expect("the semaphore is never closed");
        next.run(request).await
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(format!(
            "the request did not finish within {} s; a write may still commit, retry with the same Idempotency-Key",
            timeout.as_secs()
        ))
        .into_response(),
    }
}

/// The console reconnects to another node of the group when its node dies, and then calls that
/// node's API from the first node's page: the API answers pages served by the group's members
/// (the configured ones and the current membership), and nothing else. Other routes (metrics,
/// readiness, the OpenAPI document) send no CORS headers, so no other web page an intranet user
/// opens can read them through the user's browser.
async fn cors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    use axum::http::{header, HeaderValue, Method, StatusCode};
    let for_api = request.uri().path().starts_with("/api/v1/");
    let origin = request.headers().get(header::ORIGIN).cloned();
    let allowed = for_api && origin.as_ref().and_then(|o| o.to_str().ok()).is_some_and(|o| console_origin(&state, o));
    let preflight = for_api && request.method() == Method::OPTIONS;
    let mut response = if preflight { StatusCode::NO_CONTENT.into_response() } else { next.run(request).await };
    let headers = response.headers_mut();
    if for_api {
        headers.insert(header::VARY, HeaderValue::from_static("origin"));
    }
    if let (true, Some(origin)) = (allowed, origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        // What a console page may read of an answer besides the simple headers.
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("etag, location, retry-after, idempotent-replayed"),
        );
        if preflight {
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("authorization, content-type, idempotency-key, if-match"),
            );
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        }
    }
    response
}

/// Whether `origin` is a page served by a member of this group.
fn console_origin(state: &AppState, origin: &str) -> bool {
    let Some(host) = origin.strip_prefix(state.transport.scheme).and_then(|rest| rest.strip_prefix("://")) else {
        return false;
    };
    state.member_addrs.values().any(|addr| addr == host)
        || state.raft.metrics().borrow().membership_config.membership().nodes().any(|(_, node)| node.addr == host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_routes_that_move_directories_or_draw_have_the_transfer_timeout() {
        let transfer = config::limits::TRANSFER_TIMEOUT;
        assert_eq!(timeout_for_path("/api/v1/directories/entities"), transfer);
        assert_eq!(timeout_for_path(&format!("/api/v1/directories/entities/{}", "a".repeat(64))), transfer);
        assert_eq!(timeout_for_path("/api/v1/campaigns/12/draw"), transfer);
        assert_eq!(timeout_for_path(&format!("/raft/directories/{}", "b".repeat(64))), transfer);
        assert_eq!(timeout_for_path("/api/v1/campaigns/12"), REQUEST_TIMEOUT);
        assert_eq!(timeout_for_path("/api/v1/campaigns/12/draw/extra"), REQUEST_TIMEOUT);
        assert_eq!(timeout_for_path("/api/v1/tasks"), REQUEST_TIMEOUT);
        assert_eq!(timeout_for_path(&format!("/raft/attachments/{}", "c".repeat(64))), REQUEST_TIMEOUT);
    }
}
