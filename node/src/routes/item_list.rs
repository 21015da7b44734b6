//! The inspection-item list (随机抽查事项清单) routes: the list in force for the bureaus (the
//! current items campaigns choose from, and the whole list with its versions), the changes
//! (adopting the national list this deployment ships, a province's additions, revisions and
//! retirements, each with its reason), and the list on the public side (公示).
//!
//! Every change is `ProgrammeAction::ItemList`, which a build before it cannot decode: it is
//! proposed only when every member reads `item-list-v1`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use ledger::campaign::item_list::ItemListAction;
use ledger::campaign::ProgrammeAction;
use ledger::Action;

use super::public::within_budget;
use super::request::parse_json;
use super::write::handle_write_of_feature;
use crate::api::item_list::{
    AdoptNationalRequest, DeclareMattersRequest, InspectionItemJson, ItemListJson, ItemRequest, PublicItemListJson,
    RetireItemRequest,
};
use crate::api::ApiError;
use crate::reference::FEATURE_ITEM_LIST;
use crate::server::Peer;
use crate::state::AppState;

const CHANGES: Option<(&str, &str)> = Some((FEATURE_ITEM_LIST, "changes of the inspection-item list"));

fn change(action: ItemListAction) -> Action {
    Action::Programme(Box::new(ProgrammeAction::ItemList(Box::new(action))))
}

/// `GET /api/v1/inspection-items`: the items a new campaign may choose from.
pub async fn current_items(State(state): State<AppState>, headers: HeaderMap) -> Response {
    super::json_answer((|| {
        state.users.authenticate(&headers)?;
        let regions = state.regions();
        let replica = state.store.read();
        let list = state.programme.list_in_force(&replica.ledger);
        let current = list.items().filter(|listed| !listed.retired);
        let departments = replica.ledger.departments();
        Ok(current.map(|listed| InspectionItemJson::of(&regions, departments, listed)).collect::<Vec<_>>())
    })())
}

/// `GET /api/v1/inspection-item-list`: the whole list, retired items included, and its history.
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    super::json_answer((|| {
        let user = state.users.authenticate(&headers)?;
        let regions = state.regions();
        let replica = state.store.read();
        let list = state.programme.list_in_force(&replica.ledger);
        Ok(ItemListJson::of(&regions, replica.ledger.departments(), list, user.actor.bureau))
    })())
}

/// `POST /api/v1/inspection-item-list/national`: adopt the national list as this deployment
/// ships it (again, after an upgrade brought a new one: the changes become one version).
pub async fn adopt_national(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    handle_write_of_feature(state, uri, headers, body, StatusCode::CREATED, CHANGES, |state, actor, body, _| {
        super::of_the_whole_group(state, actor.bureau, "the item list", "adopt")?;
        let request: AdoptNationalRequest = if body.is_empty() { AdoptNationalRequest::default() } else { parse_json(body)? };
        let items = state.programme.shipped_national_list();
        if let Some(lawless) = items.iter().find(|item| item.basis.trim().is_empty()) {
            return Err(ApiError::Conflict {
                code: "item_without_basis",
                message: format!(
                    "item {} of the configured list has no legal basis (`basis` in the inspection file); the list is adopted only with every item's",
                    lawless.code
                ),
            });
        }
        Ok(change(ItemListAction::AdoptNational { items, reason: request.reason }))
    })
    .await
}

/// `POST /api/v1/inspection-item-list/matters`: the province's count of its enforcement
/// inspection matters, the denominator of the list's coverage.
pub async fn declare_matters(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    handle_write_of_feature(state, uri, headers, body, StatusCode::CREATED, CHANGES, |_, _, body, _| {
        let request: DeclareMattersRequest = parse_json(body)?;
        Ok(change(ItemListAction::DeclareMatters { total: request.total, reason: request.reason }))
    })
    .await
}

/// `POST /api/v1/inspection-items`: a province's addition.
pub async fn add(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    handle_write_of_feature(state, uri, headers, body, StatusCode::CREATED, CHANGES, |_, _, body, _| {
        let (item, reason) = parse_json::<ItemRequest>(body)?.parse()?;
        Ok(change(ItemListAction::Add { item: Box::new(item), reason }))
    })
    .await
}

/// `POST /api/v1/inspection-items/{item}/revise`: the province's addition, whole, as it is to
/// read from now on.
pub async fn revise(
    State(state): State<AppState>,
    Path(code): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle_write_of_feature(state, uri, headers, body, StatusCode::OK, CHANGES, move |_, _, body, _| {
        let (item, reason) = parse_json::<ItemRequest>(body)?.parse()?;
        if item.code != code {
            return Err(ApiError::invalid_field("code", format!("the body names {}, the path {code}", item.code)));
        }
        Ok(change(ItemListAction::Revise { item: Box::new(item), reason }))
    })
    .await
}

/// `POST /api/v1/inspection-items/{item}/retire`: a province's addition taken off the list.
pub async fn retire(
    State(state): State<AppState>,
    Path(code): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle_write_of_feature(state, uri, headers, body, StatusCode::OK, CHANGES, move |_, _, body, _| {
        let request: RetireItemRequest = parse_json(body)?;
        Ok(change(ItemListAction::Retire { code, reason: request.reason }))
    })
    .await
}

/// `GET /public/v1/inspection-items`: the list's current items, published (公示).
pub async fn public_items(State(state): State<AppState>, peer: Peer, headers: HeaderMap) -> Response {
    super::json_answer((|| {
        within_budget(&state, peer, &headers)?;
        let regions = state.regions();
        let replica = state.store.read();
        Ok(PublicItemListJson::of(
            &regions,
            replica.ledger.departments(),
            state.programme.list_in_force(&replica.ledger),
        ))
    })())
}
