//! The console's files, embedded in the binary from `console/` (no build step).

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::api::ApiError;

const INDEX_HTML: &str = include_str!("../../../console/index.html");
const APP_JS: &str = include_str!("../../../console/app.js");
const I18N_JS: &str = include_str!("../../../console/i18n.js");
const METRICS_JS: &str = include_str!("../../../console/metrics.js");
const CAMPAIGNS_JS: &str = include_str!("../../../console/campaigns.js");
const ITEM_LIST_JS: &str = include_str!("../../../console/item_list.js");
const REGISTER_JS: &str = include_str!("../../../console/register.js");
const BULK_JS: &str = include_str!("../../../console/bulk.js");
const ANNUAL_PLAN_JS: &str = include_str!("../../../console/annual_plan.js");
const STATIONS_JS: &str = include_str!("../../../console/stations.js");
const PEOPLE_JS: &str = include_str!("../../../console/people.js");
const SITE_RECORDS_JS: &str = include_str!("../../../console/site_records.js");
const STYLE_CSS: &str = include_str!("../../../console/style.css");
const WALL_HTML: &str = include_str!("../../../console/wall.html");
const PHONE_HTML: &str = include_str!("../../../console/m.html");
const PHONE_JS: &str = include_str!("../../../console/m.js");
const PHONE_WORKER_JS: &str = include_str!("../../../console/m-sw.js");
const WALL_JS: &str = include_str!("../../../console/wall.js");
const WALL_CSS: &str = include_str!("../../../console/wall.css");
/// The header (and the wall page's meta tag) naming the build that serves the page: a wall left
/// running reloads itself when its node answers with another.
pub const BUILD_HEADER: &str = "x-xietong-build";

/// The console's pages may not be framed by another site (click-jacking, with the token in
/// the page's storage).
pub const NO_FRAMING: [(header::HeaderName, &str); 2] =
    [(header::CONTENT_SECURITY_POLICY, "frame-ancestors 'self'"), (header::X_FRAME_OPTIONS, "SAMEORIGIN")];

pub async fn index() -> Response {
    let [csp, frames] = NO_FRAMING;
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache"), csp, frames], INDEX_HTML)
        .into_response()
}

fn build() -> String {
    format!("{} {}", crate::VERSION, crate::COMMIT)
}

/// `GET /wall`: the wall screen (大屏), stamped with the build that serves it.
pub async fn wall() -> Response {
    let [csp, frames] = NO_FRAMING;
    let build = build();
    let page = WALL_HTML.replace("{{BUILD}}", &build);
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
        (header::CACHE_CONTROL, "no-cache".to_owned()),
        (csp.0, csp.1.to_owned()),
        (frames.0, frames.1.to_owned()),
        (header::HeaderName::from_static(BUILD_HEADER), build),
    ];
    (headers, page).into_response()
}

/// `GET /m/`: the inspectors' phone page (`console/m.html`), which works offline once loaded.
pub async fn phone() -> Response {
    let [csp, frames] = NO_FRAMING;
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache"), csp, frames], PHONE_HTML)
        .into_response()
}

/// `GET /m/{file}`: the phone page's script and its service worker (served under `/m/`, so its
/// scope is the page's).
pub async fn phone_asset(Path(file): Path<String>) -> Response {
    let body = match file.as_str() {
        "app.js" => PHONE_JS,
        "sw.js" => PHONE_WORKER_JS,
        _ => return ApiError::NoRoute.into_response(),
    };
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], body)
        .into_response()
}

pub async fn asset(Path(file): Path<String>) -> Response {
    let (content_type, body) = match file.as_str() {
        "app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "i18n.js" => ("text/javascript; charset=utf-8", I18N_JS),
        "metrics.js" => ("text/javascript; charset=utf-8", METRICS_JS),
        "campaigns.js" => ("text/javascript; charset=utf-8", CAMPAIGNS_JS),
        "item_list.js" => ("text/javascript; charset=utf-8", ITEM_LIST_JS),
        "bulk.js" => ("text/javascript; charset=utf-8", BULK_JS),
        "register.js" => ("text/javascript; charset=utf-8", REGISTER_JS),
        "annual_plan.js" => ("text/javascript; charset=utf-8", ANNUAL_PLAN_JS),
        "stations.js" => ("text/javascript; charset=utf-8", STATIONS_JS),
        "people.js" => ("text/javascript; charset=utf-8", PEOPLE_JS),
        "site_records.js" => ("text/javascript; charset=utf-8", SITE_RECORDS_JS),
        "style.css" => ("text/css; charset=utf-8", STYLE_CSS),
        "wall.js" => ("text/javascript; charset=utf-8", WALL_JS),
        "wall.css" => ("text/css; charset=utf-8", WALL_CSS),
        _ => return ApiError::NoRoute.into_response(),
    };
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}
