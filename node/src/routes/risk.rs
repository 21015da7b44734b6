//! The entities' risk files on the node (`ledger::campaign::risk_files`): the group's yearly cap
//! on inspections of one entity, read and set by the group's own command centre. A file itself
//! is read in the enterprise file (`entities`).
//!
//! `ProgrammeAction::RiskFiles` is proposed only when every member reads `risk-files-v1`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use ledger::campaign::risk_files::RiskFilesAction;
use ledger::campaign::ProgrammeAction;
use ledger::Action;

use super::request::parse_json;
use super::write::handle_write_of_feature;
use crate::api::risk::{InspectionCapJson, InspectionCapRequest};
use crate::reference::FEATURE_RISK_FILES;
use crate::state::AppState;

/// `GET /api/v1/programme/inspection-cap`: the cap and whether the files that count for it are
/// kept.
pub async fn cap(State(state): State<AppState>, headers: HeaderMap) -> Response {
    super::json_answer((|| {
        state.users.authenticate(&headers)?;
        Ok(InspectionCapJson::of(state.store.read().ledger.risk_files()))
    })())
}

/// `POST /api/v1/programme/inspection-cap`: sets or lifts the yearly cap.
pub async fn set_cap(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let feature = Some((FEATURE_RISK_FILES, "risk files and the yearly cap"));
    handle_write_of_feature(state, uri, headers, body, StatusCode::OK, feature, |state, actor, body, _| {
        // The cap holds for every campaign of the group.
        super::of_the_whole_group(state, actor.bureau, "the yearly cap", "set")?;
        let request: InspectionCapRequest = parse_json(body)?;
        let action = RiskFilesAction::SetCap { yearly_max: request.yearly_max };
        Ok(Action::Programme(Box::new(ProgrammeAction::RiskFiles(action))))
    })
    .await
}
