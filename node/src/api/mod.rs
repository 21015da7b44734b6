//! The client API contract: the JSON shapes of requests and responses under `/api/v1`, and
//! their conversion to and from ledger types. `loadtest` and `tests` use these same types, so
//! the contract has one definition.

pub mod annual_plan;
pub mod console;
pub mod departments;
pub mod error;
pub mod headers;
pub mod inspection;
pub mod item_list;
pub mod organisation;
pub mod register;
pub mod risk;
pub mod schema;
pub mod site_record;
pub mod time;

use ledger::{self, BureauCode, Regions, Task, Uscc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use error::{ApiError, ErrorBody};

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::optional_uscc")]
    pub uscc: Option<String>,
    pub name: String,
    #[schemars(schema_with = "crate::api::schema::region_code")]
    pub region_code: String,
    #[serde(default)]
    pub address: String,
    /// The region's Chinese name; filled in responses, ignored in requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_name: Option<String>,
}

/// `POST /api/v1/tasks`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTaskRequest {
    #[schemars(schema_with = "crate::api::schema::creatable_task_kind")]
    pub kind: String,
    #[schemars(schema_with = "crate::api::schema::severity")]
    pub severity: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub subject: SubjectJson,
    #[schemars(schema_with = "crate::api::schema::source")]
    pub source: String,
    /// Defaults to the caller's bureau.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::optional_unit_code")]
    pub origin_bureau: Option<String>,
    /// Intended assignee; `dispatch` gives the task to it and starts the clocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::optional_unit_code")]
    pub assignee_bureau: Option<String>,
}

/// The body of `POST /api/v1/tasks/{id}/{action}`. Which fields apply depends on the action:
/// dispatch takes `assignee_bureau` and optional deadlines; complete takes `outcome`; return and
/// cancel need a `note` saying why. `version` is the task version the action was decided on.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    #[serde(default)]
    pub note: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::optional_unit_code")]
    pub assignee_bureau: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::optional_timestamp")]
    pub ack_deadline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::optional_timestamp")]
    pub complete_deadline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::optional_outcome")]
    pub outcome: Option<String>,
    /// For designate: the group (its bureau's code) that is to handle a disputed lead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::optional_region_code")]
    pub group: Option<String>,
    /// For assign: the lead handler's person number (主办).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead: Option<u64>,
    /// For assign: the supporting handlers' person numbers (协办).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supporting: Option<Vec<u64>>,
    /// For record_on_site: the on-site record (现场检查记录).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<site_record::SiteRecordRequest>,
    /// For hand_down: the station of the assignee county to hand the task to, or the county
    /// itself to take it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::optional_unit_code")]
    pub unit: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct TimelineEntryJson {
    pub version: u64,
    pub at: String,
    pub action: String,
    /// Who acted: a users-file name, or a person as `person:<id>:<name>`.
    pub actor: String,
    /// Their name to show: a person's name as it was then, or the user's.
    pub actor_name: String,
    /// The person's number, when a person acted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_person: Option<u64>,
    pub actor_bureau: String,
    pub note: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee_bureau: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The lead handler when the entry was made (who a reminder or escalation names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<HandlerJson>,
}

/// A task as the API shows it. Times are RFC 3339 UTC.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct TaskJson {
    pub id: u64,
    #[schemars(schema_with = "crate::api::schema::task_kind")]
    pub kind: String,
    #[schemars(schema_with = "crate::api::schema::severity")]
    pub severity: String,
    pub title: String,
    pub description: String,
    pub subject: SubjectJson,
    pub source: String,
    pub origin_bureau: String,
    /// The origin bureau's name (GB/T 2260), also for a bureau outside the caller's tree.
    pub origin_bureau_name: Option<String>,
    pub assignee_bureau: Option<String>,
    /// The assignee bureau's name, also when it lies in another group's jurisdiction.
    pub assignee_bureau_name: Option<String>,
    #[schemars(schema_with = "crate::api::schema::task_state")]
    pub state: String,
    pub version: u64,
    pub ack_deadline: Option<String>,
    pub complete_deadline: Option<String>,
    #[schemars(schema_with = "crate::api::schema::timestamp")]
    pub created_at: String,
    pub updated_at: String,
    pub dispatched_at: Option<String>,
    pub acked_at: Option<String>,
    pub completed_at: Option<String>,
    pub closed_at: Option<String>,
    pub outcome: Option<String>,
    /// The deadline of the earliest clock that runs now (`Task::running_clocks`: ack,
    /// completion, a complaint's or a publication's), which a console counts down: the task is
    /// overdue once it has passed. A time, not a verdict, so a pushed task never goes stale.
    pub running_deadline: Option<String>,
    /// The completion deadline a pending extension request asks for.
    pub extension_requested_deadline: Option<String>,
    pub extensions_granted: u32,
    /// Reminders sent about the deadline that is overdue now (催办次数).
    pub reminders_sent: u32,
    /// Bureaus the task was escalated to (升级).
    pub escalated_to: Vec<String>,
    /// Since when the completion clock is paused (中止), if it is.
    pub paused_since: Option<String>,
    /// Handed to another group (dispatched down to a bureau it hosts, or forwarded to the
    /// group with jurisdiction): this record follows the task there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover: Option<HandoverJson>,
    /// Arrived from another group, which follows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_from: Option<ReceivedJson>,
    /// The subject lies outside this group's jurisdiction and no configured group covers it.
    #[serde(default)]
    pub jurisdiction_unrouted: bool,
    /// Registered by machine intake: the signals that went into it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intake: Option<IntakeJson>,
    /// A complaint or tip-off: its clocks and decisions. Who reported is never part of a task
    /// (see `GET /api/v1/tasks/{id}/reporter`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complaint: Option<ComplaintJson>,
    /// A drawn inspection (双随机抽查): campaign, items, team, result publication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inspection: Option<inspection::InspectionJson>,
    /// The actions the task's state and handling leave open now, by the side of the task that
    /// takes them (`ledger::policy`): a console shows a user the actions of the sides it stands
    /// on. The ledger decides again when the action arrives.
    pub actions: OpenActionsJson,
    /// The station of the assignee county working the task (下派), when it was handed down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handling_unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handling_unit_name: Option<String>,
    /// The lead handler (主办), when one holds the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_handler: Option<HandlerJson>,
    /// Supporting handlers (协办).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supporting_handlers: Vec<HandlerJson>,
    /// A drawn inspection's team as people (inspectors linked to accounts): only they enter
    /// its result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub team: Vec<HandlerJson>,
    /// On-site records (现场检查记录), numbered from 1; their files are at
    /// `/api/v1/tasks/{id}/attachments/{sha256}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub site_records: Vec<site_record::SiteRecordJson>,
    pub timeline: Vec<TimelineEntryJson>,
}

/// A person handling a task: their number and name (as when named).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HandlerJson {
    pub id: u64,
    pub name: String,
}

impl HandlerJson {
    fn of(handler: &ledger::task::HandlerRef) -> HandlerJson {
        HandlerJson { id: handler.id.0, name: handler.name.clone() }
    }
}

/// The open actions of a task by side: each a name of `POST /api/v1/tasks/{id}/{action}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct OpenActionsJson {
    /// A command user over the task's origin bureau.
    pub dispatcher: Vec<String>,
    /// The assignee bureau's operator, or a command user above the assignee.
    pub assignee: Vec<String>,
    /// The desk (command or operator) of the bureau that registered the complaint.
    pub desk: Vec<String>,
}

impl OpenActionsJson {
    pub fn of(task: &Task) -> OpenActionsJson {
        let mut open = OpenActionsJson::default();
        for action in ledger::policy::open_actions(task) {
            let side = match action.side() {
                ledger::Side::Dispatcher => &mut open.dispatcher,
                ledger::Side::Assignee => &mut open.assignee,
                ledger::Side::Desk => &mut open.desk,
            };
            side.push(action.as_str().to_owned());
        }
        open
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ComplaintJson {
    /// `complaint` (投诉) or `tip_off` (举报).
    pub channel: String,
    pub real_name: bool,
    /// Accept or refuse by then (受理期限).
    pub accept_deadline: String,
    /// `accepted` or `refused`, once decided.
    pub decision: Option<String>,
    pub decided_at: Option<String>,
    /// Tell the real-name reporter the decision by then.
    pub notify_deadline: Option<String>,
    pub notified_at: Option<String>,
}

/// `POST /api/v1/complaints`: a complaint or tip-off taken by a bureau's desk.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComplaintRequest {
    #[schemars(schema_with = "crate::api::schema::complaint_channel")]
    pub channel: String,
    #[serde(default)]
    pub real_name: bool,
    #[serde(default)]
    pub reporter: ReporterJson,
    /// Defaults to `normal`.
    #[serde(default)]
    #[schemars(schema_with = "crate::api::schema::optional_severity")]
    pub severity: Option<String>,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub subject: SubjectJson,
}

/// Who reported. Required for a real-name report; optional contact otherwise.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReporterJson {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub id_number: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct IntakeJson {
    /// The source's name.
    pub source: String,
    /// Signals merged into the task, the first included.
    pub signals: u32,
    pub first_observed: String,
    pub last_observed: String,
    /// The latest signal's evidence links.
    pub evidence: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct HandoverJson {
    /// `{origin group}-{number}`, unique across groups.
    pub forward_id: String,
    pub to_group: String,
    /// The receiving group's bureau name (reference data, for consoles that do not know it).
    pub to_group_name: String,
    /// `dispatch`, `jurisdiction`, `dispute` or `designation`.
    pub purpose: String,
    /// The receiving group committed it (its receipt is recorded here).
    pub delivered: bool,
    pub delivered_at: Option<String>,
    /// The task's id in the receiving group.
    pub target_task_id: Option<u64>,
    /// Delivery has taken longer than the configured time.
    pub stuck: bool,
    /// The receiving group's task version this record reflects.
    pub mirrored_version: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ReceivedJson {
    pub forward_id: String,
    pub from_group: String,
    pub from_group_name: String,
    pub from_task_id: u64,
    pub purpose: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct TaskPage {
    pub tasks: Vec<TaskJson>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/entities/{uscc}`: the enterprise file (一企一档), everything the group knows of
/// one market entity that the caller may see: every task about it, of every kind and state,
/// newest first, paged. Reporters of complaints never appear in it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct EntityFileJson {
    #[schemars(schema_with = "crate::api::schema::uscc")]
    pub uscc: String,
    /// The names the entity carries on the tasks of this page, newest first, each once.
    pub names: Vec<String>,
    pub tasks: Vec<TaskJson>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// Its risk file (internal, never public), for command centres and leadership: absent when
    /// the group keeps none for it or it lies outside the caller's scope.
    pub risk: Option<risk::RiskFileJson>,
}

/// `GET /api/v1/search`: the tasks in the caller's scope that match, newest first.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct SearchJson {
    pub q: String,
    pub tasks: Vec<TaskJson>,
    /// More tasks matched than `limit`: narrow the query.
    pub more: bool,
    /// The log index the node's search index holds every change up to (a change after it may
    /// not be found yet; it is within a second on a node that keeps up).
    pub indexed_through: u64,
}

/// `GET /api/v1/cluster`: this node's view of its group.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ClusterView {
    pub group: String,
    pub node_id: u64,
    pub role: String,
    pub leader_id: Option<u64>,
    pub leader_addr: Option<String>,
    pub term: u64,
    pub members: Vec<MemberJson>,
    pub last_log_index: Option<u64>,
    pub commit_index: Option<u64>,
    pub applied_index: Option<u64>,
    /// SHA-256 of the ledger state at `applied_index`: equal on replicas that applied the same
    /// index. For command users and platform operators only (it costs a full encoding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Tasks in the ledger at `applied_index`; given with the digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_count: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct MemberJson {
    pub id: u64,
    pub addr: String,
}

/// `GET /api/v1/me`: who the token belongs to.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct MeJson {
    pub user: String,
    pub display_name: String,
    pub bureau: String,
    pub bureau_name: Option<String>,
    /// `command`, `operator` or `leadership`.
    pub role: String,
    /// Every task action with the side that takes it and whether it must say why: the ledger's
    /// policy, so a console asks for a reason exactly where the ledger requires one.
    pub actions: Vec<ActionRuleJson>,
    /// The account of a person signed in with a session; absent for a users-file token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<organisation::PersonJson>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ActionRuleJson {
    /// The action's route segment (`POST /api/v1/tasks/{id}/{action}`).
    pub name: String,
    /// `dispatcher`, `assignee` or `desk`.
    pub side: String,
    pub requires_note: bool,
}

impl ActionRuleJson {
    pub fn all() -> Vec<ActionRuleJson> {
        ledger::TaskAction::ALL
            .iter()
            .map(|action| ActionRuleJson {
                name: action.as_str().to_owned(),
                side: action.side().as_str().to_owned(),
                requires_note: action.requires_note(),
            })
            .collect()
    }
}

/// `GET /api/v1/bureaus`: the bureau tree below `root`, the root first.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct BureauTreeJson {
    pub root: String,
    pub bureaus: Vec<BureauJson>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct BureauJson {
    pub code: String,
    pub name: String,
    /// `national`, `province`, `prefecture`, `county` or `station`.
    pub level: String,
    pub parent: Option<String>,
    /// A closed station or a retired region: old tasks name it, new ones may not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retired: bool,
}

/// `GET /api/v1/escalations`: lateness per assignee bureau, the latest first.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct EscalationsJson {
    pub bureau: String,
    pub bureaus: Vec<LatenessJson>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct LatenessJson {
    pub bureau: String,
    pub name: Option<String>,
    pub open: u64,
    pub overdue_now: u64,
    pub escalated: u64,
    pub escalated_open: u64,
    pub reminders: u64,
}

/// `GET /api/v1/tasks/{id}/reporter`: who reported a complaint or tip-off (read is logged).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ReporterIdentityJson {
    pub task_id: u64,
    pub name: String,
    pub phone: String,
    pub id_number: String,
}

/// `GET /api/v1/export`: committed task events after `since`, in log order. (The route writes
/// this shape directly from pre-encoded tasks; the type is its contract.)
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ExportPageJson {
    pub events: Vec<ExportEventJson>,
    /// Pass as `since` for the next page.
    pub next_since: u64,
    /// Present when the page ended inside the changes of one index (read from the store): pass
    /// it as `after`, with `since`, for the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ExportEventJson {
    /// The log index of the entry that changed the task.
    pub index: u64,
    pub task: TaskJson,
}

pub(crate) fn bureau_json(code: BureauCode) -> String {
    code.to_string()
}

/// A region's name in the group's table (its code when the table does not know it).
pub(crate) fn region_name(regions: &Regions, code: BureauCode) -> String {
    regions.name(code).map_or_else(|| code.to_string(), str::to_owned)
}

/// A task as clients see it, its bureaus named by the group's table `regions`.
pub fn task_json(regions: &Regions, task: &Task) -> TaskJson {
    let at = |ms: Option<u64>| ms.map(time::format_ms);
    TaskJson {
        id: task.id.0,
        kind: task.kind.to_string(),
        severity: task.severity.to_string(),
        title: task.title.clone(),
        description: task.description.clone(),
        subject: SubjectJson {
            uscc: task.subject.uscc.as_ref().map(|u| u.as_str().to_owned()),
            name: task.subject.name.clone(),
            region_code: bureau_json(task.subject.region_code),
            address: task.subject.address.clone(),
            region_name: regions.name(task.subject.region_code).map(str::to_owned),
        },
        source: task.source.to_string(),
        origin_bureau: bureau_json(task.origin_bureau),
        origin_bureau_name: regions.name(task.origin_bureau).map(str::to_owned),
        assignee_bureau: task.handling.assignee_bureau.map(bureau_json),
        assignee_bureau_name: task.handling.assignee_bureau.and_then(|code| regions.name(code)).map(str::to_owned),
        state: task.handling.state.to_string(),
        version: task.version,
        ack_deadline: at(task.handling.ack_deadline_ms),
        complete_deadline: at(task.handling.complete_deadline_ms),
        created_at: time::format_ms(task.created_at_ms),
        updated_at: time::format_ms(task.updated_at_ms),
        dispatched_at: at(task.handling.dispatched_at_ms),
        acked_at: at(task.handling.acked_at_ms),
        completed_at: at(task.handling.completed_at_ms),
        closed_at: at(task.handling.closed_at_ms),
        outcome: task.handling.outcome.map(|o| o.to_string()),
        running_deadline: at(task.running_deadline_ms()),
        extension_requested_deadline: at(task.handling.extension_requested_deadline_ms),
        extensions_granted: task.handling.extensions_granted,
        reminders_sent: task.handling.reminders_sent,
        escalated_to: task.handling.escalated_to.iter().map(|b| b.to_string()).collect(),
        paused_since: at(task.handling.paused_since_ms),
        handling_unit: task.field_work.handlers.unit.map(bureau_json),
        handling_unit_name: task.field_work.handlers.unit.and_then(|code| regions.name(code)).map(str::to_owned),
        lead_handler: task.field_work.handlers.lead.as_ref().map(HandlerJson::of),
        supporting_handlers: task.field_work.handlers.supporting.iter().map(HandlerJson::of).collect(),
        team: task.field_work.handlers.team.iter().map(HandlerJson::of).collect(),
        site_records: {
            let needed = ledger::site_record::inspector_signatures_needed(task);
            task.field_work.site_records.iter().map(|record| site_record::SiteRecordJson::of(record, needed)).collect()
        },
        handover: task.remote.as_ref().map(|remote| HandoverJson {
            forward_id: remote.forward.to_string(),
            to_group: bureau_json(remote.to_group),
            to_group_name: region_name(regions, remote.to_group),
            purpose: remote.purpose.to_string(),
            delivered: remote.delivered.is_some(),
            delivered_at: remote.delivered.map(|(_, at_ms)| time::format_ms(at_ms)),
            target_task_id: remote.delivered.map(|(task, _)| task.0),
            stuck: remote.delivered.is_none()
                && task.timeline.iter().any(|entry| entry.action == ledger::TimelineAction::ForwardStuck),
            mirrored_version: remote.mirrored_version,
        }),
        received_from: task.received.as_ref().map(|received| ReceivedJson {
            forward_id: received.forward.to_string(),
            from_group: bureau_json(received.from_group),
            from_group_name: region_name(regions, received.from_group),
            from_task_id: received.from_task.0,
            purpose: received.purpose.to_string(),
        }),
        jurisdiction_unrouted: task.jurisdiction_unrouted,
        actions: OpenActionsJson::of(task),
        intake: task.intake.as_ref().map(|summary| IntakeJson {
            source: summary.source.clone(),
            signals: summary.signals,
            first_observed: time::format_ms(summary.first_observed_ms),
            last_observed: time::format_ms(summary.last_observed_ms),
            evidence: summary.evidence.clone(),
        }),
        complaint: task.complaint.as_ref().map(|record| ComplaintJson {
            channel: record.channel.to_string(),
            real_name: record.real_name,
            accept_deadline: time::format_ms(record.accept_deadline_ms),
            decision: record.decision.map(|(accepted, _)| if accepted { "accepted" } else { "refused" }.to_owned()),
            decided_at: record.decision.map(|(_, at_ms)| time::format_ms(at_ms)),
            notify_deadline: at(record.notify_deadline_ms),
            notified_at: at(record.notified_at_ms),
        }),
        inspection: task
            .inspection
            .as_ref()
            .map(|record| inspection::InspectionJson::of(record, &task.field_work, task.received.is_none())),
        timeline: task
            .timeline
            .iter()
            .map(|entry| {
                let person = ledger::organisation::person_of_actor_name(&entry.actor_user)
                    .map(|(id, name)| (id.0, name.to_owned()));
                TimelineEntryJson {
                    version: entry.version,
                    at: time::format_ms(entry.at_ms),
                    action: entry.action.to_string(),
                    actor_name: person.as_ref().map_or_else(|| entry.actor_user.clone(), |(_, name)| name.clone()),
                    actor_person: person.map(|(id, _)| id),
                    actor: entry.actor_user.clone(),
                    actor_bureau: bureau_json(entry.actor_bureau),
                    note: entry.note.clone(),
                    assignee_bureau: entry.assignee_bureau.map(bureau_json),
                    outcome: entry.outcome.map(|o| o.to_string()),
                    handler: task.field_work.handlers.lead_at(entry.version).map(HandlerJson::of),
                }
            })
            .collect(),
    }
}

/// Parses a closed-enum field, naming the accepted values on failure.
pub fn parse_enum<T>(
    field: &str,
    text: &str,
    parse: fn(&str) -> Option<T>,
    names: fn() -> String,
) -> Result<T, ApiError> {
    parse(text).ok_or_else(|| ApiError::Invalid {
        code: "invalid_enum",
        message: format!("{field}: {text:?} is not one of {}", names()),
    })
}

/// A bureau code from a request, known to the group's table `regions`.
pub fn parse_bureau(regions: &Regions, field: &str, text: &str) -> Result<BureauCode, ApiError> {
    if BureauCode::parse_unit(text).is_none() {
        return Err(ApiError::Invalid {
            code: "invalid_region_code",
            message: format!("{field}: {text:?} is not a 6-digit region code or a 9-digit station code"),
        });
    }
    regions.parse_known(text).ok_or_else(|| ApiError::Invalid {
        code: "invalid_region_code",
        message: format!("{field}: {text} is not a region code in GB/T 2260 or a station of this group"),
    })
}

/// A USCC given by a client, checked (GB 32100 check character).
pub fn parse_uscc(field: &str, text: &str) -> Result<Uscc, ApiError> {
    Uscc::parse(text)
        .map_err(|e| ApiError::Invalid { code: "invalid_uscc", message: format!("{field}: {text:?}: {e}") })
}

pub fn parse_subject(regions: &Regions, subject: &SubjectJson) -> Result<ledger::Subject, ApiError> {
    let uscc = match subject.uscc.as_deref() {
        None => None,
        Some(text) => Some(Uscc::parse(text).map_err(|e| ApiError::Invalid {
            code: "invalid_uscc",
            message: format!("subject.uscc: {text:?}: {e}"),
        })?),
    };
    Ok(ledger::Subject {
        uscc,
        name: subject.name.clone(),
        region_code: parse_bureau(regions, "subject.region_code", &subject.region_code)?,
        address: subject.address.clone(),
    })
}
