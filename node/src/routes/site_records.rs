//! `GET /api/v1/tasks/{id}/checklist`: the checklist an on-site record of the task is made
//! against (its inspection's items and their check points), for the inspector's form. The
//! record itself is the task action `record_on_site` (`actions`); its files are
//! `crate::attachments`; its printed document is `document`.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};

use super::request::parse_task_id;
use crate::api::site_record::ChecklistJson;
use crate::api::ApiError;
use crate::documents::site_record::Particulars;
use crate::state::AppState;

pub async fn checklist(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    super::json_answer((|| -> Result<ChecklistJson, ApiError> {
        let user = state.users.authenticate(&headers)?;
        let id = parse_task_id(&id)?;
        let task = super::tasks::visible_task(&state, &user.actor, id)?;
        let replica = state.store.read();
        Ok(crate::programme::checklist::of_task(state.programme.list_in_force(&replica.ledger), &task))
    })())
}

/// `GET /api/v1/tasks/{id}/site_records/{number}/document`: the record as its printed
/// document (`crate::documents::site_record`), for whoever can see the task.
pub async fn document(
    State(state): State<AppState>,
    Path((id, number)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let answer = async {
        let user = state.users.authenticate(&headers)?;
        let id = parse_task_id(&id)?;
        let number: u32 = number
            .parse()
            .map_err(|_| ApiError::invalid_field("number", "a record is numbered 1, 2, … within its task"))?;
        let task = super::tasks::visible_task(&state, &user.actor, id)?;
        let record = task
            .field_work
            .site_records
            .iter()
            .find(|record| record.number == number)
            .cloned()
            .ok_or_else(|| ApiError::NotFound(format!("task {id} has no on-site record {number}")))?;
        let mut particulars = particulars_of(&state, &task);
        // The place to render first: a node without the font answers before it fetches anything,
        // and fetched photos wait in memory only for a render that will run.
        let permit = state.documents.permit().await?;
        // Fetched at once (from the object store each is a round trip), within the document's
        // image budget.
        let images = crate::documents::site_record::images_to_draw(&record);
        let fetches = images.iter().map(|image| crate::attachments::obtain(&state, &image.sha256));
        for (image, fetched) in images.iter().zip(futures_util::future::join_all(fetches).await) {
            match fetched {
                Ok(bytes) => {
                    particulars.files.insert(image.sha256.clone(), std::sync::Arc::new(bytes));
                }
                // Listed by hash, not drawn: the document still serves as the record's print.
                Err(e) => tracing::warn!(task = id.0, sha256 = %image.sha256, "attachment not drawn: {e:?}"),
            }
        }
        let pdf = permit
            .render(move |font, index| crate::documents::site_record::render(&record, &particulars, font, index))
            .await?;
        let file_name = format!("site-record-{}-{number}.pdf", id.0);
        Ok::<_, ApiError>((
            [
                (header::CONTENT_TYPE, "application/pdf".to_owned()),
                (header::CONTENT_DISPOSITION, format!("inline; filename=\"{file_name}\"")),
                (header::CACHE_CONTROL, "private, no-store".to_owned()),
            ],
            pdf,
        ))
    };
    answer.await.map_or_else(IntoResponse::into_response, IntoResponse::into_response)
}

/// What the document shows beside the record: the inspecting bureau, the firm, the task and
/// the inspectors' names from the directory.
fn particulars_of(state: &AppState, task: &ledger::Task) -> Particulars {
    let regions = state.regions();
    let bureau_code = task.handling.assignee_bureau.unwrap_or(task.origin_bureau);
    let bureau =
        regions.name(bureau_code).map_or_else(|| bureau_code.to_string(), |name| format!("{name}市场监督管理局"));
    let inspection = task.inspection.as_ref();
    let inspectors = {
        let replica = state.store.read();
        let programme = replica.ledger.programme();
        inspection
            .map(|inspection| &inspection.inspectors[..])
            .unwrap_or_default()
            .iter()
            .map(|badge| {
                let name = programme.inspector(badge).map(|inspector| inspector.name.clone()).unwrap_or_default();
                (badge.clone(), name)
            })
            .collect()
    };
    Particulars {
        bureau,
        task_id: task.id.0,
        task_title: task.title.clone(),
        campaign: inspection.map(|inspection| inspection.campaign_name.clone()),
        firm_name: task.subject.name.clone(),
        firm_uscc: task.subject.uscc.as_ref().map(|uscc| uscc.as_str().to_owned()),
        firm_address: task.subject.address.clone(),
        inspectors,
        files: Default::default(),
    }
}
