//! The public routes (一公开): no token, read-only, rate-limited; the campaigns that were drawn
//! with their item lists, and the published inspection results by entity or campaign, plus the
//! public page (`/public`). They answer only the `Public*` JSON types, built field by field from
//! what the rules publish: no risk class, no inspector, no draw input, no internal note.

use axum::extract::State;
use axum::http::{header, HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use ledger::campaign::PublicResult;
use ledger::{TaskId, Uscc};
use serde::Deserialize;

use crate::api::inspection::{PublicCampaignJson, PublicCampaignsJson, PublicResultJson, PublicResultsJson};
use crate::api::ApiError;
use crate::public_budget::UNKNOWN_CLIENT;
use crate::server::{peer_address, Peer};
use crate::state::AppState;

/// Results per page of the public listing.
pub const PUBLIC_PAGE_MAX: usize = 100;
const PUBLIC_PAGE_DEFAULT: usize = 20;
/// Inspection tasks looked at for one page at most: a filter that matches rarely still answers
/// quickly (under the lock `apply` needs), with a cursor to go on from.
const PUBLIC_SCAN_MAX: usize = 10_000;
/// Campaigns per page of the public listing.
pub const PUBLIC_CAMPAIGNS_PAGE_MAX: usize = 100;
const PUBLIC_CAMPAIGNS_PAGE_DEFAULT: usize = 20;

/// Spends one request of the caller's budget and of the node's (`crate::public_budget`).
pub(crate) fn within_budget(state: &AppState, peer: Peer, headers: &HeaderMap) -> Result<(), ApiError> {
    let budget = &state.public_budget;
    let client = match peer_address(peer) {
        Some(peer) => budget.client_address(peer.ip(), headers),
        None => UNKNOWN_CLIENT,
    };
    budget.take(client, tokio::time::Instant::now().into_std()).map_err(|wait| ApiError::RateLimited {
        message: "too many requests to the public routes; retry shortly".into(),
        retry_after_secs: wait.as_secs().max(1),
    })
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignsQuery {
    /// `next_cursor` of the previous page: campaigns numbered below it.
    #[serde(default)]
    pub cursor: Option<u64>,
    #[serde(default)]
    pub limit: Option<usize>,
}

fn page_limit(limit: Option<usize>, default: usize, max: usize) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(default);
    if limit == 0 || limit > max {
        return Err(ApiError::Invalid { code: "invalid_limit", message: format!("limit is 1 to {max}") });
    }
    Ok(limit)
}

/// Drawn campaigns, newest first, a page at a time.
pub async fn campaigns(State(state): State<AppState>, peer: Peer, headers: HeaderMap, uri: Uri) -> Response {
    super::json_answer((|| {
        within_budget(&state, peer, &headers)?;
        let query: CampaignsQuery = serde_urlencoded::from_str(uri.query().unwrap_or(""))
            .map_err(|e| ApiError::Invalid { code: "invalid_query", message: e.to_string() })?;
        let limit = page_limit(query.limit, PUBLIC_CAMPAIGNS_PAGE_DEFAULT, PUBLIC_CAMPAIGNS_PAGE_MAX)?;
        let replica = state.store.read();
        let ledger = &replica.ledger;
        let drawn = ledger
            .programme()
            .campaigns()
            .filter(|campaign| query.cursor.is_none_or(|cursor| campaign.id < cursor))
            .filter_map(|campaign| campaign.draw.as_ref().map(|d| (campaign, d)));
        let mut campaigns = Vec::new();
        let mut next_cursor = None;
        for (campaign, draw) in drawn {
            if campaigns.len() == limit {
                next_cursor = campaigns.last().map(|c: &PublicCampaignJson| c.id);
                break;
            }
            let tasks = ledger.drawn_tasks(campaign.id);
            let published =
                tasks.iter().filter_map(|id| ledger.task(*id)).filter(|t| PublicResult::of(t).is_some()).count();
            let inspections = tasks.len() as u64;
            campaigns.push(PublicCampaignJson::of(&state.regions(), campaign, draw, inspections, published));
        }
        Ok(PublicCampaignsJson { campaigns, next_cursor })
    })())
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResultsQuery {
    /// Results about this entity.
    #[serde(default)]
    #[schemars(schema_with = "crate::api::schema::optional_uscc")]
    pub uscc: Option<String>,
    /// Results of this campaign.
    #[serde(default)]
    pub campaign: Option<u64>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<u64>,
    #[serde(default)]
    pub limit: Option<usize>,
}

pub async fn results(State(state): State<AppState>, peer: Peer, headers: HeaderMap, uri: Uri) -> Response {
    super::json_answer((|| {
        within_budget(&state, peer, &headers)?;
        let query: ResultsQuery = serde_urlencoded::from_str(uri.query().unwrap_or(""))
            .map_err(|e| ApiError::Invalid { code: "invalid_query", message: e.to_string() })?;
        let uscc = query
            .uscc
            .as_deref()
            .map(|text| {
                Uscc::parse(text).map_err(|e| ApiError::Invalid { code: "invalid_uscc", message: format!("uscc: {e}") })
            })
            .transpose()?;
        let limit = page_limit(query.limit, PUBLIC_PAGE_DEFAULT, PUBLIC_PAGE_MAX)?;
        let replica = state.store.read();
        let ledger = &replica.ledger;
        // Only drawn inspections can have a public result: the campaign's, or every drawn one's,
        // newest first below the cursor (never a scan of all tasks).
        let mut candidates: Vec<TaskId> = ledger
            .programme()
            .campaigns()
            .filter(|campaign| query.campaign.is_none_or(|id| campaign.id == id))
            .filter(|campaign| campaign.draw.is_some())
            .flat_map(|campaign| ledger.drawn_tasks(campaign.id))
            .filter(|id| query.cursor.is_none_or(|cursor| id.0 < cursor))
            .collect();
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        let mut results = Vec::new();
        let mut next_cursor = None;
        let mut last_seen = None;
        for (scanned, task) in candidates.iter().filter_map(|id| ledger.task(*id)).enumerate() {
            if results.len() == limit || scanned == PUBLIC_SCAN_MAX {
                next_cursor = last_seen;
                break;
            }
            last_seen = Some(task.id.0);
            let Some(result) = PublicResult::of(&task) else { continue };
            if uscc.as_ref().is_some_and(|u| result.uscc.as_ref() != Some(u))
                || query.campaign.is_some_and(|c| c != result.campaign)
            {
                continue;
            }
            results.push(PublicResultJson::of(&state.regions(), ledger.departments(), &result));
        }
        Ok(PublicResultsJson { results, next_cursor })
    })())
}

/// The public page: a search over the published results, in Chinese.
pub async fn page(State(state): State<AppState>, peer: Peer, headers: HeaderMap) -> Response {
    if let Err(error) = within_budget(&state, peer, &headers) {
        return error.into_response();
    }
    let [csp, frames] = super::console::NO_FRAMING;
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), csp, frames], include_str!("../../../console/public.html"))
        .into_response()
}
