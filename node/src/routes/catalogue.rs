//! The REST API's one list of operations. The router is built from it and the OpenAPI document
//! (`GET /api/v1/openapi.json`, `crate::openapi`) is generated from it, with the request and
//! response schemas derived from the Rust types the handlers use, so the document cannot drift
//! from the routes. Routes that are not REST (the console's files, the WebSocket, peer RPC) are
//! added beside it in `routes::router`.

use axum::http::{Method, StatusCode};
use axum::routing::{get, post, MethodRouter};
use schemars::{JsonSchema, Schema, SchemaGenerator};

use super::{
    actions, annual_plan, bulk, item_list, presence, programme, public, register, request, response_metrics, risk,
    tasks,
};
use super::{
    admin, backup, bureaus, cluster_view, complaints, console_snapshot, departments, entities, escalations, export,
    health, intake, me, people, search, stations,
};
use crate::api::annual_plan::{
    AnnualPlanJson, BatchRequest, FiledPlansJson, PlanChangeJson, PublicAnnualPlanJson, WithdrawBatchRequest,
};
use crate::api::departments::{
    DepartmentInspectorsRequest, DepartmentJson, DepartmentPartRequest, DepartmentRequest, DepartmentsJson,
};
use crate::api::inspection::{
    CampaignJson, CampaignRequest, CampaignsJson, ConflictJson, ConflictRequest, DirectoryVersionJson,
    DirectoryVersionsJson, DrawRequest, EnrolledInspectorsJson, InspectorJson, InspectorRequest, InspectorsJson,
    PublicCampaignsJson, PublicResultsJson, RetireRequest,
};
use crate::api::item_list::{
    AdoptNationalRequest, DeclareMattersRequest, InspectionItemJson, ItemListJson, ItemListVersionJson, ItemRequest,
    PublicItemListJson, RetireItemRequest,
};
use crate::api::organisation::{
    LinkInspectorRequest, OwnPasswordRequest, PeopleJson, PersonJson, PersonNoteRequest, PersonRequest,
    RenamePersonRequest, RenameStationRequest, ResetPasswordRequest, RolesRequest, SessionJson, SignInRequest,
    StationAreasRequest, StationJson, StationNoteRequest, StationRequest, StationsJson,
};
use crate::api::register::{JournalJson, RegisterChangesRequest, RegisterChangesResponse, RegisterJson};
use crate::api::risk::{InspectionCapJson, InspectionCapRequest};
use crate::api::{
    ActionRequest, BureauTreeJson, ClusterView, ComplaintRequest, CreateTaskRequest, EntityFileJson, EscalationsJson,
    ExportPageJson, MeJson, ReporterIdentityJson, SearchJson, TaskJson, TaskPage,
};
use crate::intake::{IntakeRequest, IntakeResponse};
use crate::reference;
use crate::state::AppState;

pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

fn csv_text(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({"type": "string", "description": draw::directory::HEADER})
}

fn calendar_text(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({"type": "string", "description": "a calendar file in the format of config/calendar/cn.toml"})
}

fn binary_file(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({"type": "string", "format": "binary", "description": "a JPEG or PNG image or a PDF"})
}

fn regions_text(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({"type": "string", "description": "code,name,level,parent_code"})
}

/// Who may call an operation (the access policy itself is in `auth` and the ledger).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// No token: probes and scrapers.
    Anyone,
    /// A user token (command centre, operator, leadership), within its bureau scope.
    User,
    /// A platform operator (`[[admins]]`).
    Admin,
    /// A machine intake source (`[[sources]]`).
    Source,
    /// A data-sharing consumer (`[[consumers]]`).
    Consumer,
    /// A registration system feeding the entity register (`[[register_feeds]]`).
    Registration,
}

/// Bytes of no one type (a backup; an attachment, whose real type its answer names).
const OCTETS: &str = "application/octet-stream";

/// What a successful call answers.
pub enum Answer {
    Json(StatusCode, SchemaFn),
    /// JSON, or CSV with `format=csv`.
    JsonOrCsv(SchemaFn),
    Text(&'static str),
    /// Bytes of this media type.
    Binary(&'static str),
    /// 204, no body.
    Empty,
}

pub struct Operation {
    pub method: Method,
    /// Axum's path syntax, which is also OpenAPI's: `/api/v1/tasks/{id}`.
    pub path: &'static str,
    pub summary: &'static str,
    pub caller: Caller,
    pub query: Option<SchemaFn>,
    pub body: Option<SchemaFn>,
    /// The body's media type: JSON, or CSV for the entity directory.
    pub body_type: &'static str,
    /// The route takes an `Idempotency-Key` header.
    pub idempotent: bool,
    pub answer: Answer,
    pub handler: MethodRouter<AppState>,
}

/// Shorthand for the common case: a JSON answer with 200.
fn ok(schema: SchemaFn) -> Answer {
    Answer::Json(StatusCode::OK, schema)
}

fn op(method: Method, path: &'static str, summary: &'static str, caller: Caller, answer: Answer) -> Operation {
    let handler = MethodRouter::new();
    Operation {
        method,
        path,
        summary,
        caller,
        query: None,
        body: None,
        body_type: "application/json",
        idempotent: false,
        answer,
        handler,
    }
}

impl Operation {
    fn query(mut self, schema: SchemaFn) -> Operation {
        self.query = Some(schema);
        self
    }

    fn body(mut self, schema: SchemaFn) -> Operation {
        self.body = Some(schema);
        self
    }

    fn csv_body(self) -> Operation {
        self.text_body("text/csv", csv_text)
    }

    fn text_body(mut self, media_type: &'static str, schema: SchemaFn) -> Operation {
        self.body = Some(schema);
        self.body_type = media_type;
        self
    }

    fn idempotent(mut self) -> Operation {
        self.idempotent = true;
        self
    }

    fn handler(mut self, handler: MethodRouter<AppState>) -> Operation {
        self.handler = handler;
        self
    }
}

pub fn operations() -> Vec<Operation> {
    use Caller::{Admin, Anyone, Consumer, Registration, Source, User};
    vec![
        op(
            Method::POST,
            "/api/v1/tasks",
            "Register a task",
            User,
            Answer::Json(StatusCode::CREATED, schema::<TaskJson>),
        )
        .body(schema::<CreateTaskRequest>)
        .idempotent()
        .handler(post(tasks::create)),
        op(Method::GET, "/api/v1/tasks", "List the tasks in the caller's scope", User, ok(schema::<TaskPage>))
            .query(schema::<tasks::ListQuery>)
            .handler(get(tasks::list)),
        op(
            Method::GET,
            "/api/v1/entities/{uscc}",
            "The enterprise file: every task about one market entity, in the caller's scope",
            User,
            ok(schema::<EntityFileJson>),
        )
        .query(schema::<entities::EntityQuery>)
        .handler(get(entities::file)),
        op(
            Method::GET,
            "/api/v1/search",
            "Search the tasks in the caller's scope by USCC, enterprise name or title",
            User,
            ok(schema::<SearchJson>),
        )
        .query(schema::<search::SearchQuery>)
        .handler(get(search::search)),
        op(Method::GET, "/api/v1/tasks/{id}", "One task with its timeline", User, ok(schema::<TaskJson>))
            .query(schema::<request::ConsistencyQuery>)
            .handler(get(tasks::detail)),
        op(Method::POST, "/api/v1/tasks/{id}/{action}", "Act on a task", User, ok(schema::<TaskJson>))
            .body(schema::<ActionRequest>)
            .idempotent()
            .handler(post(actions::act)),
        op(
            Method::POST,
            "/api/v1/tasks/bulk/{action}",
            "One action on a selection of tasks, committed in bounded entries, answered per task",
            User,
            ok(schema::<bulk::BulkActionJson>),
        )
        .body(schema::<bulk::BulkActionRequest>)
        .idempotent()
        .handler(post(bulk::bulk)),
        op(
            Method::POST,
            "/api/v1/tasks/{id}/department-part",
            "Enter a department's part of a joint inspection's result (its inspector on the team)",
            User,
            ok(schema::<TaskJson>),
        )
        .body(schema::<DepartmentPartRequest>)
        .idempotent()
        .handler(post(departments::enter_part)),
        op(
            Method::GET,
            "/api/v1/tasks/{id}/checklist",
            "The checklist an on-site record of the task is made against",
            User,
            ok(schema::<crate::api::site_record::ChecklistJson>),
        )
        .handler(get(super::site_records::checklist)),
        op(
            Method::GET,
            "/api/v1/tasks/{id}/attachments/{sha256}",
            "A photo, signature or document an on-site record of the task names",
            User,
            Answer::Binary(OCTETS),
        )
        .handler(get(crate::attachments::download)),
        op(
            Method::GET,
            "/api/v1/tasks/{id}/site_records/{number}/document",
            "An on-site record as its printed document (现场检查笔录, PDF), its digest on every page",
            User,
            Answer::Binary("application/pdf"),
        )
        .handler(get(super::site_records::document)),
        op(
            Method::POST,
            "/api/v1/attachments",
            "Keep a photo, signature or document for an on-site record (JPEG, PNG or PDF by content; on a majority of the nodes)",
            User,
            Answer::Json(StatusCode::CREATED, schema::<crate::attachments::AttachmentJson>),
        )
        .text_body("application/octet-stream", binary_file)
        .handler(post(crate::attachments::upload)),
        op(
            Method::GET,
            "/api/v1/tasks/{id}/reporter",
            "Who reported a complaint or tip-off (registering centre only; logged)",
            User,
            ok(schema::<ReporterIdentityJson>),
        )
        .handler(get(complaints::reporter)),
        op(
            Method::POST,
            "/api/v1/complaints",
            "Register a complaint or tip-off",
            User,
            Answer::Json(StatusCode::CREATED, schema::<TaskJson>),
        )
        .body(schema::<ComplaintRequest>)
        .idempotent()
        .handler(post(complaints::register)),
        op(Method::GET, "/api/v1/cluster", "This node's view of its group", User, ok(schema::<ClusterView>))
            .handler(get(cluster_view::cluster)),
        op(Method::GET, "/api/v1/me", "Who the token belongs to", User, ok(schema::<MeJson>))
            .query(schema::<request::ConsistencyQuery>)
            .handler(get(me::me)),
        op(
            Method::GET,
            "/api/v1/presence",
            "Who has a console open, per bureau",
            User,
            ok(schema::<presence::PresenceJson>),
        )
        .query(schema::<presence::PresenceQuery>)
        .handler(get(presence::presence)),
        op(
            Method::GET,
            "/api/v1/console/snapshot",
            "A console's snapshot (for gateways)",
            User,
            ok(schema::<crate::api::console::ServerMessage<TaskJson>>),
        )
        .query(schema::<console_snapshot::SnapshotQuery>)
        .handler(get(console_snapshot::console_snapshot)),
        op(Method::GET, "/api/v1/bureaus", "The bureau tree below a root", User, ok(schema::<BureauTreeJson>))
            .query(schema::<bureaus::BureausQuery>)
            .handler(get(bureaus::bureaus)),
        op(
            Method::POST,
            "/api/v1/sessions",
            "Sign in with a login and password: a session token",
            Anyone,
            Answer::Json(StatusCode::CREATED, schema::<SessionJson>),
        )
        .body(schema::<SignInRequest>)
        .handler(post(people::sign_in)),
        op(Method::POST, "/api/v1/sessions/renew", "Renew the caller's session", User, ok(schema::<SessionJson>))
            .handler(post(people::renew)),
        op(Method::POST, "/api/v1/sessions/sign_out", "Sign out everywhere", User, Answer::Empty)
            .handler(post(people::sign_out)),
        op(Method::GET, "/api/v1/people", "The accounts of a unit (and below)", User, ok(schema::<PeopleJson>))
            .query(schema::<people::PeopleQuery>)
            .handler(get(people::people)),
        op(
            Method::POST,
            "/api/v1/people",
            "Create an account",
            User,
            Answer::Json(StatusCode::CREATED, schema::<PersonJson>),
        )
        .body(schema::<PersonRequest>)
        .handler(post(people::create)),
        op(Method::GET, "/api/v1/people/{person}", "An account and its history", User, ok(schema::<PersonJson>))
            .handler(get(people::person)),
        op(Method::POST, "/api/v1/people/{person}/rename", "Rename an account", User, ok(schema::<PersonJson>))
            .body(schema::<RenamePersonRequest>)
            .handler(post(people::rename)),
        op(Method::POST, "/api/v1/people/{person}/roles", "Set an account's roles", User, ok(schema::<PersonJson>))
            .body(schema::<RolesRequest>)
            .handler(post(people::set_roles)),
        op(
            Method::POST,
            "/api/v1/people/{person}/password",
            "Reset an account's password",
            User,
            ok(schema::<PersonJson>),
        )
        .body(schema::<ResetPasswordRequest>)
        .handler(post(people::reset_password)),
        op(
            Method::POST,
            "/api/v1/people/{person}/disable",
            "Disable an account (with the reason): its sessions end",
            User,
            ok(schema::<PersonJson>),
        )
        .body(schema::<PersonNoteRequest>)
        .handler(post(people::disable)),
        op(Method::POST, "/api/v1/people/{person}/enable", "Enable an account again", User, ok(schema::<PersonJson>))
            .body(schema::<PersonNoteRequest>)
            .handler(post(people::enable)),
        op(
            Method::POST,
            "/api/v1/people/{person}/inspector",
            "Link an account to an inspector of the directory (for good)",
            User,
            ok(schema::<PersonJson>),
        )
        .body(schema::<LinkInspectorRequest>)
        .handler(post(people::link_inspector)),
        op(Method::POST, "/api/v1/me/password", "Change one's own password", User, ok(schema::<PersonJson>))
            .body(schema::<OwnPasswordRequest>)
            .handler(post(people::own_password)),
        op(Method::GET, "/api/v1/stations", "The stations within a bureau", User, ok(schema::<StationsJson>))
            .query(schema::<stations::StationsQuery>)
            .handler(get(stations::stations)),
        op(
            Method::POST,
            "/api/v1/stations",
            "Enrol a station of a county bureau",
            User,
            Answer::Json(StatusCode::CREATED, schema::<StationJson>),
        )
        .body(schema::<StationRequest>)
        .handler(post(stations::enrol)),
        op(Method::GET, "/api/v1/stations/{station}", "A station and its history", User, ok(schema::<StationJson>))
            .handler(get(stations::station)),
        op(Method::POST, "/api/v1/stations/{station}/rename", "Rename a station", User, ok(schema::<StationJson>))
            .body(schema::<RenameStationRequest>)
            .handler(post(stations::rename)),
        op(
            Method::POST,
            "/api/v1/stations/{station}/areas",
            "Set the areas a station covers",
            User,
            ok(schema::<StationJson>),
        )
        .body(schema::<StationAreasRequest>)
        .handler(post(stations::set_areas)),
        op(
            Method::POST,
            "/api/v1/stations/{station}/close",
            "Close a station (with the reason)",
            User,
            ok(schema::<StationJson>),
        )
        .body(schema::<StationNoteRequest>)
        .handler(post(stations::close)),
        op(
            Method::POST,
            "/api/v1/stations/{station}/reopen",
            "Reopen a closed station",
            User,
            ok(schema::<StationJson>),
        )
        .body(schema::<StationNoteRequest>)
        .handler(post(stations::reopen)),
        op(Method::GET, "/api/v1/escalations", "Lateness per assignee bureau", User, ok(schema::<EscalationsJson>))
            .query(schema::<escalations::EscalationsQuery>)
            .handler(get(escalations::escalations)),
        op(Method::POST, "/api/v1/intake", "Machine intake of signals", Source, ok(schema::<IntakeResponse>))
            .body(schema::<IntakeRequest>)
            .handler(post(intake::intake)),
        op(
            Method::GET,
            "/api/v1/export",
            "Committed task events for data sharing",
            Consumer,
            ok(schema::<ExportPageJson>),
        )
        .query(schema::<export::ExportQuery>)
        .handler(get(export::export)),
        op(
            Method::GET,
            "/api/v1/metrics/response",
            "Response metrics of a bureau",
            User,
            Answer::JsonOrCsv(schema::<response_metrics::ResponseReportJson>),
        )
        .query(schema::<response_metrics::Query>)
        .handler(get(response_metrics::response)),
        op(Method::GET, "/healthz", "Liveness", Anyone, Answer::Text("text/plain")).handler(get(health::healthz)),
        op(Method::GET, "/readyz", "Readiness: a leader is known", Anyone, Answer::Text("text/plain"))
            .handler(get(health::readyz)),
        op(Method::GET, "/metrics", "Prometheus metrics", Anyone, Answer::Text("text/plain"))
            .handler(get(health::metrics)),
        op(Method::GET, admin::MEMBERS_PATH, "The group's members", Admin, ok(schema::<admin::MembersJson>))
            .handler(get(admin::list)),
        op(
            Method::POST,
            "/admin/v1/members/learners",
            "Add a node as a learner",
            Admin,
            ok(schema::<admin::MembersJson>),
        )
        .body(schema::<admin::AddLearnerRequest>)
        .handler(post(admin::add_learner)),
        op(
            Method::POST,
            "/admin/v1/members/promote",
            "Make a learner a voter",
            Admin,
            ok(schema::<admin::MembersJson>),
        )
        .body(schema::<admin::MemberRequest>)
        .handler(post(admin::promote)),
        op(Method::POST, "/admin/v1/members/remove", "Remove a node", Admin, ok(schema::<admin::MembersJson>))
            .body(schema::<admin::MemberRequest>)
            .handler(post(admin::remove)),
        op(
            Method::GET,
            reference::REFERENCE_PATH,
            "The versions of the region table and the calendar",
            Admin,
            ok(schema::<reference::ReferenceJson>),
        )
        .handler(get(reference::show)),
        op(
            Method::POST,
            reference::CALENDAR_PATH,
            "Adopt a working-day calendar",
            Admin,
            Answer::Json(StatusCode::CREATED, schema::<reference::AdoptedJson>),
        )
        .query(schema::<reference::AdoptQuery>)
        .text_body("application/toml", calendar_text)
        .handler(post(reference::adopt_calendar)),
        op(
            Method::POST,
            reference::REGIONS_PATH,
            "Adopt a region table",
            Admin,
            Answer::Json(StatusCode::CREATED, schema::<reference::AdoptedJson>),
        )
        .query(schema::<reference::AdoptQuery>)
        .text_body("text/csv", regions_text)
        .handler(post(reference::adopt_regions)),
        op(Method::GET, backup::BACKUP_PATH, "A backup of the group's ledger", Admin, Answer::Binary(OCTETS))
            .handler(get(backup::backup)),
        op(
            Method::GET,
            backup::DIRECTORY_PATH,
            "A committed entity directory file, kept with a backup",
            Admin,
            Answer::Text("text/csv"),
        )
        .handler(get(backup::directory_file)),
        op(
            Method::GET,
            backup::ATTACHMENT_PATH,
            "An on-site record's attachment, kept with a backup",
            Admin,
            Answer::Binary(OCTETS),
        )
        .handler(get(backup::attachment_file)),
        // The "double random, one public" programme.
        op(
            Method::POST,
            "/api/v1/directories/entities",
            "Import the entity directory (CSV; kept on a majority of the nodes, its version committed)",
            User,
            Answer::Json(StatusCode::CREATED, schema::<DirectoryVersionJson>),
        )
        .csv_body()
        .handler(post(programme::import_directory)),
        op(
            Method::GET,
            "/api/v1/directories/entities",
            "The entity directory's versions, newest first",
            User,
            ok(schema::<DirectoryVersionsJson>),
        )
        .handler(get(programme::directory_versions)),
        op(
            Method::GET,
            "/api/v1/directories/entities/{sha256}",
            "A committed entity directory file",
            User,
            Answer::Text("text/csv"),
        )
        .handler(get(programme::directory_file)),
        op(
            Method::POST,
            "/api/v1/register/changes",
            "Changes from the registration system (establish, amend, revoke, deregister), answered per change",
            Registration,
            ok(schema::<RegisterChangesResponse>),
        )
        .body(schema::<RegisterChangesRequest>)
        .handler(post(register::feed_changes)),
        op(
            Method::GET,
            "/api/v1/register/changes",
            "The entity register's journal of changes, in order, a page at a time",
            User,
            ok(schema::<JournalJson>),
        )
        .query(schema::<register::JournalQuery>)
        .handler(get(register::journal)),
        op(
            Method::GET,
            "/api/v1/register",
            "The entity register: its journal's length and the directory versions made from it",
            User,
            ok(schema::<RegisterJson>),
        )
        .handler(get(register::register)),
        op(
            Method::GET,
            "/api/v1/inspectors",
            "The inspector directory of a subtree",
            User,
            ok(schema::<InspectorsJson>),
        )
        .query(schema::<programme::InspectorsQuery>)
        .handler(get(programme::inspectors)),
        op(
            Method::POST,
            "/api/v1/inspectors",
            "Enrol an inspector",
            User,
            Answer::Json(StatusCode::CREATED, schema::<InspectorJson>),
        )
        .body(schema::<InspectorRequest>)
        .idempotent()
        .handler(post(programme::enrol)),
        op(
            Method::POST,
            "/api/v1/inspectors/roster",
            "Enrol a bureau's roster of inspectors (CSV: id,name,bureau,station,expertise,qualified), all or none",
            User,
            Answer::Json(StatusCode::CREATED, schema::<EnrolledInspectorsJson>),
        )
        .csv_body()
        .idempotent()
        .handler(post(programme::enrol_roster)),
        op(
            Method::POST,
            "/api/v1/inspectors/{inspector}/retire",
            "Retire an inspector",
            User,
            ok(schema::<InspectorJson>),
        )
        .body(schema::<RetireRequest>)
        .idempotent()
        .handler(post(programme::retire)),
        op(
            Method::POST,
            "/api/v1/inspectors/{inspector}/conflicts",
            "Declare an inspector's conflict of interest with an entity",
            User,
            Answer::Json(StatusCode::CREATED, schema::<ConflictJson>),
        )
        .body(schema::<ConflictRequest>)
        .idempotent()
        .handler(post(programme::declare_conflict)),
        op(
            Method::GET,
            "/api/v1/departments",
            "The other departments of joint inspections, with their items and inspectors",
            User,
            ok(schema::<DepartmentsJson>),
        )
        .handler(get(departments::list)),
        op(
            Method::POST,
            "/api/v1/departments",
            "Register a department for joint inspections (the group's own command centre)",
            User,
            Answer::Json(StatusCode::CREATED, schema::<DepartmentJson>),
        )
        .body(schema::<DepartmentRequest>)
        .idempotent()
        .handler(post(departments::register)),
        op(
            Method::POST,
            "/api/v1/departments/{department}/items",
            "List a department's item on the group's item list (code D-<code>-…, expertise dept:<code>)",
            User,
            Answer::Json(StatusCode::CREATED, schema::<ItemListVersionJson>),
        )
        .body(schema::<ItemRequest>)
        .idempotent()
        .handler(post(departments::list_item)),
        op(
            Method::POST,
            "/api/v1/departments/{department}/inspectors",
            "Enrol a department's inspectors, all or none",
            User,
            Answer::Json(StatusCode::CREATED, schema::<EnrolledInspectorsJson>),
        )
        .body(schema::<DepartmentInspectorsRequest>)
        .idempotent()
        .handler(post(departments::enrol_inspectors)),
        op(
            Method::GET,
            "/api/v1/programme/inspection-cap",
            "The group's yearly cap on drawn inspections of one entity, and whether its risk files are kept",
            User,
            ok(schema::<InspectionCapJson>),
        )
        .handler(get(risk::cap)),
        op(
            Method::POST,
            "/api/v1/programme/inspection-cap",
            "Set or lift the yearly cap (the group's own command centre)",
            User,
            ok(schema::<InspectionCapJson>),
        )
        .body(schema::<InspectionCapRequest>)
        .idempotent()
        .handler(post(risk::set_cap)),
        op(
            Method::GET,
            "/api/v1/inspection-items",
            "The current items of the inspection-item list, which campaigns choose from",
            User,
            ok(schema::<Vec<InspectionItemJson>>),
        )
        .handler(get(item_list::current_items)),
        op(
            Method::POST,
            "/api/v1/inspection-items",
            "Add an item to the list (a provincial bureau, with its legal basis)",
            User,
            Answer::Json(StatusCode::CREATED, schema::<ItemListVersionJson>),
        )
        .body(schema::<ItemRequest>)
        .idempotent()
        .handler(post(item_list::add)),
        op(
            Method::POST,
            "/api/v1/inspection-items/{item}/revise",
            "Revise a province's addition (by that province)",
            User,
            ok(schema::<ItemListVersionJson>),
        )
        .body(schema::<ItemRequest>)
        .idempotent()
        .handler(post(item_list::revise)),
        op(
            Method::POST,
            "/api/v1/inspection-items/{item}/retire",
            "Take a province's addition off the list (by that province)",
            User,
            ok(schema::<ItemListVersionJson>),
        )
        .body(schema::<RetireItemRequest>)
        .idempotent()
        .handler(post(item_list::retire)),
        op(
            Method::GET,
            "/api/v1/inspection-item-list",
            "The whole inspection-item list, retired items included, with its versions",
            User,
            ok(schema::<ItemListJson>),
        )
        .handler(get(item_list::list)),
        op(
            Method::POST,
            "/api/v1/inspection-item-list/national",
            "Adopt the national list this deployment ships (again after an upgrade)",
            User,
            Answer::Json(StatusCode::CREATED, schema::<ItemListVersionJson>),
        )
        .body(schema::<AdoptNationalRequest>)
        .idempotent()
        .handler(post(item_list::adopt_national)),
        op(
            Method::POST,
            "/api/v1/inspection-item-list/matters",
            "Declare the province's count of enforcement inspection matters (the list's coverage)",
            User,
            Answer::Json(StatusCode::CREATED, schema::<ItemListVersionJson>),
        )
        .body(schema::<DeclareMattersRequest>)
        .idempotent()
        .handler(post(item_list::declare_matters)),
        op(Method::GET, "/api/v1/annual-plans/{year}", "The caller's province's annual plan, with progress", User, ok(schema::<AnnualPlanJson>))
            .handler(get(annual_plan::plan)),
        op(
            Method::GET,
            "/api/v1/annual-plans/{year}/filed",
            "The annual plans the group's child groups filed with it (the level above's view)",
            User,
            ok(schema::<FiledPlansJson>),
        )
        .handler(get(annual_plan::filed)),
        op(
            Method::POST,
            "/api/v1/annual-plans/{year}/proposals",
            "Propose a batch to the province's plan (a city or county)",
            User,
            Answer::Json(StatusCode::CREATED, schema::<PlanChangeJson>),
        )
        .body(schema::<BatchRequest>)
        .idempotent()
        .handler(post(annual_plan::propose)),
        op(
            Method::POST,
            "/api/v1/annual-plans/{year}/batches",
            "Add a batch to the plan (the province), perhaps from a proposal",
            User,
            Answer::Json(StatusCode::CREATED, schema::<PlanChangeJson>),
        )
        .body(schema::<BatchRequest>)
        .idempotent()
        .handler(post(annual_plan::add_batch)),
        op(
            Method::POST,
            "/api/v1/annual-plans/{year}/batches/{batch}",
            "Adjust a batch (with the reason once the plan is published)",
            User,
            ok(schema::<PlanChangeJson>),
        )
        .body(schema::<BatchRequest>)
        .idempotent()
        .handler(post(annual_plan::adjust_batch)),
        op(
            Method::POST,
            "/api/v1/annual-plans/{year}/batches/{batch}/withdraw",
            "Withdraw a batch, with the reason",
            User,
            ok(schema::<PlanChangeJson>),
        )
        .body(schema::<WithdrawBatchRequest>)
        .idempotent()
        .handler(post(annual_plan::withdraw_batch)),
        op(Method::POST, "/api/v1/annual-plans/{year}/publish", "Publish the plan", User, ok(schema::<PlanChangeJson>))
            .idempotent()
            .handler(post(annual_plan::publish)),
        op(
            Method::GET,
            "/public/v1/annual-plans",
            "The published annual plans (public)",
            Anyone,
            ok(schema::<crate::api::annual_plan::PublicAnnualPlansJson>),
        )
        .handler(get(annual_plan::public_plans)),
        op(
            Method::GET,
            "/public/v1/annual-plans/{province}/{year}",
            "A published annual plan (public)",
            Anyone,
            ok(schema::<PublicAnnualPlanJson>),
        )
        .handler(get(annual_plan::public_plan)),
        op(
            Method::GET,
            "/public/v1/inspection-items",
            "The inspection-item list (public)",
            Anyone,
            ok(schema::<PublicItemListJson>),
        )
        .handler(get(item_list::public_items)),
        op(
            Method::POST,
            "/api/v1/campaigns",
            "Plan an inspection campaign",
            User,
            Answer::Json(StatusCode::CREATED, schema::<CampaignJson>),
        )
        .body(schema::<CampaignRequest>)
        .idempotent()
        .handler(post(programme::create_campaign)),
        op(Method::GET, "/api/v1/campaigns", "Campaigns visible to the caller", User, ok(schema::<CampaignsJson>))
            .handler(get(programme::campaigns)),
        op(Method::GET, "/api/v1/campaigns/{id}", "One campaign", User, ok(schema::<CampaignJson>))
            .handler(get(programme::campaign)),
        op(
            Method::GET,
            "/api/v1/campaigns/{id}/proof",
            "The committed draw record that `xietong draw verify` checks",
            User,
            ok(schema::<serde_json::Value>),
        )
        .handler(get(programme::proof)),
        op(
            Method::POST,
            "/api/v1/campaigns/{id}/draw",
            "Fix the beacon (a second person, once) and draw",
            User,
            Answer::Json(StatusCode::CREATED, schema::<CampaignJson>),
        )
        .body(schema::<DrawRequest>)
        .handler(post(programme::draw)),
        op(Method::GET, "/public/v1/campaigns", "Drawn campaigns (public)", Anyone, ok(schema::<PublicCampaignsJson>))
            .query(schema::<public::CampaignsQuery>)
            .handler(get(public::campaigns)),
        op(
            Method::GET,
            "/public/v1/results",
            "Published inspection results (public)",
            Anyone,
            ok(schema::<PublicResultsJson>),
        )
        .query(schema::<public::ResultsQuery>)
        .handler(get(public::results)),
        op(Method::GET, "/public", "The public results page", Anyone, Answer::Text("text/html"))
            .handler(get(public::page)),
    ]
}
