//! Reference data on a node: the region table and working-day calendar its group's ledger
//! committed (`ledger::reference`), which every handler decides with, and the operators' routes
//! that adopt new versions through the log:
//!
//! - `GET /admin/v1/reference`: the versions of both tables;
//! - `POST /admin/v1/reference/calendar`: a calendar file (the TOML of `config/calendar/cn.toml`);
//! - `POST /admin/v1/reference/regions`: a region file (the CSV of `cluster/ledger/data/regions.csv`).
//!
//! `?dry_run=true` checks a file against the committed version and proposes nothing; `?note=`
//! is kept with the version. An adoption is proposed only when every member of the group runs a
//! build that reads it (`GET /raft/features`): an older build cannot decode the entry and would
//! stop applying.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use config::calendar::{WorkCalendar, YearSpec};
use ledger::reference::{Adoption, CalendarTable, CalendarYear, Day, ReferenceAction};
use ledger::{Action, Actor, BureauCode, Command, Regions, Role};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::ApiError;
use crate::state::AppState;
use crate::write_path::{propose_or_relay, relay_if_follower, OriginalRequest, WriteOutcome};

pub const REFERENCE_PATH: &str = "/admin/v1/reference";
pub const CALENDAR_PATH: &str = "/admin/v1/reference/calendar";
pub const REGIONS_PATH: &str = "/admin/v1/reference/regions";
/// What a member answers about the formats it reads; the group's secret opens it.
pub const FEATURES_PATH: &str = "/raft/features";
/// The feature a build that reads adoptions names.
pub const FEATURE_REFERENCE: &str = "reference-v1";
/// The feature a build that reads organisation commands (stations) names.
pub const FEATURE_ORGANISATION: &str = "organisation-v1";
/// On-site records (`ledger::site_record`): the `record_on_site` action and a task's records.
pub const FEATURE_SITE_RECORDS: &str = "site-records-v1";
/// A campaign's 3% floor on the total drawn, any class above 0% (`ledger::campaign::check_spec`).
pub const FEATURE_DRAW_FLOOR_ON_TOTAL: &str = "draw-floor-on-total-v1";
/// Changes of the inspection-item list (`ledger::campaign::item_list`).
pub const FEATURE_ITEM_LIST: &str = "item-list-v1";
/// The follow-up of an inspection's finding (`ProgrammeAction::OpenFollowUp`).
pub const FEATURE_FOLLOW_UP: &str = "follow-up-v1";
/// Annual plans and campaigns in their batches (`ledger::campaign::annual_plan`).
pub const FEATURE_ANNUAL_PLAN: &str = "annual-plan-v1";
/// The live entity register: its base imported, its feed of changes, freezes and beacons fixed
/// on it (`ledger::campaign::register`).
pub const FEATURE_REGISTER_FEED: &str = "register-feed-v1";
/// Draws committed in parts (`ledger::campaign::draw_parts`).
pub const FEATURE_DRAW_IN_PARTS: &str = "draw-in-parts-v1";
/// The entities' risk files and the yearly cap (`ledger::campaign::risk_files`).
pub const FEATURE_RISK_FILES: &str = "risk-files-v1";
/// Annual plans filed with the parent group (`ledger::campaign::plan_filing`).
pub const FEATURE_PLAN_FILING: &str = "plan-filing-v1";
/// Joint inspections with other departments (`ledger::campaign::departments`), and the store
/// format 10 whose core keeps them.
pub const FEATURE_DEPARTMENTS: &str = "departments-v1";
/// Province plans handed down to city groups and their progress reported up
/// (`ledger::campaign::plan_handdown`), and the store format 11 whose core keeps them.
pub const FEATURE_PLAN_HANDDOWN: &str = "plan-handdown-v1";
/// Every feature this build reads.
pub(crate) const FEATURES_READ: [&str; 13] = [
    FEATURE_REFERENCE,
    FEATURE_ORGANISATION,
    FEATURE_SITE_RECORDS,
    FEATURE_DRAW_FLOOR_ON_TOTAL,
    FEATURE_ITEM_LIST,
    FEATURE_FOLLOW_UP,
    FEATURE_ANNUAL_PLAN,
    FEATURE_REGISTER_FEED,
    FEATURE_DRAW_IN_PARTS,
    FEATURE_RISK_FILES,
    FEATURE_PLAN_FILING,
    FEATURE_DEPARTMENTS,
    FEATURE_PLAN_HANDDOWN,
];
/// A region file is about 100 KB, a calendar a few KB: a bound well above both.
pub const REFERENCE_FILE_BYTES_MAX: usize = 1024 * 1024;
/// What a member's answer about the formats it reads may take.
const FEATURES_ANSWER_BYTES_MAX: usize = 16 * 1024;
/// How long a member has to say what it reads before an adoption is refused.
const FEATURES_TIMEOUT: Duration = Duration::from_secs(5);

/// The committed calendar made ready for working-day arithmetic, kept while its version is
/// the committed one.
#[derive(Clone, Default)]
pub struct CalendarCache(Arc<Mutex<Option<CalendarOfVersion>>>);

/// A committed calendar's version and the calendar made of it.
type CalendarOfVersion = (u32, Arc<WorkCalendar>);

impl AppState {
    /// The region table the group's ledger decides with now. Takes no lock of the replica's,
    /// so a handler may ask while it reads the ledger.
    pub fn regions(&self) -> Arc<Regions> {
        self.store.reference_now().regions
    }

    /// The working-day calendar the group's ledger committed, for the deadlines this node
    /// stamps (a leader's stamp is what every replica applies).
    pub fn calendar(&self) -> Arc<WorkCalendar> {
        let now = self.store.reference_now();
        let (version, table) = (now.calendar_version, now.calendar);
        let mut cached = self.calendar_cache.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*cached {
            Some((cached_version, calendar)) if *cached_version == version => calendar.clone(),
            _ => {
                let calendar = Arc::new(work_calendar(&table));
                *cached = Some((version, calendar.clone()));
                calendar
            }
        }
    }
}

fn date_of(day: Day) -> time::Date {
    let month = time::Month::try_from(day.month() as u8).expect("a committed day has a real month");
    time::Date::from_calendar_date(day.year(), month, day.day() as u8).expect("a committed day is a real date")
}

fn day_of(date: time::Date) -> Option<Day> {
    Day::new(date.year(), u32::from(u8::from(date.month())), u32::from(date.day()))
}

/// The calendar of a committed table. The ledger checked it by the rules `WorkCalendar` checks
/// (years consecutive, days in their year, make-up days on weekends), so it converts.
pub fn work_calendar(table: &CalendarTable) -> WorkCalendar {
    let years = table
        .years
        .iter()
        .map(|year| YearSpec {
            year: year.year,
            source: year.source.clone(),
            provisional: year.provisional,
            holidays: year.holidays.iter().copied().map(date_of).collect(),
            workdays: year.workdays.iter().copied().map(date_of).collect(),
        })
        .collect();
    WorkCalendar::from_years(years).expect("the ledger checks a calendar by the rules WorkCalendar checks")
}

/// The table of a calendar file an operator gave, for the ledger to check and keep.
pub fn calendar_table(calendar: &WorkCalendar) -> Result<CalendarTable, String> {
    let days = |dates: &mut dyn Iterator<Item = time::Date>| -> Result<Vec<Day>, String> {
        dates
            .map(|date| day_of(date).ok_or_else(|| format!("{date} lies outside the years a calendar covers")))
            .collect()
    };
    let years = calendar
        .years()
        .map(|(year, schedule)| {
            Ok(CalendarYear {
                year,
                source: schedule.source.clone(),
                provisional: schedule.provisional,
                holidays: days(&mut schedule.holidays())?,
                workdays: days(&mut schedule.workdays())?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let table = CalendarTable { years };
    table.check()?;
    Ok(table)
}

// --- The admin routes. ---

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AdoptionJson {
    pub version: u32,
    /// The log index from which it applies.
    pub index: u64,
    pub adopted_at_ms: u64,
    pub adopted_by: String,
    pub sha256: String,
    pub note: String,
}

impl AdoptionJson {
    fn of(adoption: &Adoption) -> AdoptionJson {
        AdoptionJson {
            version: adoption.number,
            index: adoption.index,
            adopted_at_ms: adoption.stamp_ms,
            adopted_by: adoption.by.clone(),
            sha256: ledger::campaign::hex(&adoption.sha256),
            note: adoption.note.clone(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RegionTableJson {
    /// The committed version (0: the table compiled in).
    pub version: u32,
    /// Codes known, retired ones included; codes new records may name.
    pub known: usize,
    pub active: usize,
    pub versions: Vec<AdoptionJson>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CalendarJson {
    pub version: u32,
    pub first_year: i32,
    pub last_year: i32,
    /// The last year whose schedule is published (not provisional).
    pub last_confirmed_year: Option<i32>,
    pub versions: Vec<AdoptionJson>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReferenceJson {
    pub regions: RegionTableJson,
    pub calendar: CalendarJson,
}

fn reference_json(state: &AppState) -> ReferenceJson {
    let replica = state.store.read();
    let reference = replica.ledger.reference();
    let regions = reference.regions();
    let (calendar_version, calendar) = reference.calendar();
    ReferenceJson {
        regions: RegionTableJson {
            version: reference.region_versions().last().map_or(0, |adoption| adoption.number),
            known: regions.len(),
            active: regions.regions().filter(|region| !region.retired).count(),
            versions: reference.region_versions().iter().map(AdoptionJson::of).collect(),
        },
        calendar: CalendarJson {
            version: calendar_version,
            first_year: calendar.first_year(),
            last_year: calendar.last_year(),
            last_confirmed_year: calendar.last_confirmed_year(),
            versions: reference.calendar_versions().map(AdoptionJson::of).collect(),
        },
    }
}

pub async fn show(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.users.authenticate_admin(&headers) {
        Ok(_) => Json(reference_json(&state)).into_response(),
        Err(error) => error.into_response(),
    }
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdoptQuery {
    /// Check the file against the committed version and propose nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Kept with the version: why, from which notice.
    #[serde(default)]
    pub note: String,
}

/// What an adoption (or its dry run) answers.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AdoptedJson {
    /// True when nothing was proposed (`dry_run`).
    pub dry_run: bool,
    /// What the file changes against the committed version, in words.
    pub changes: Vec<String>,
    pub reference: ReferenceJson,
}

/// One adoption route: authenticate, relay to the leader, read the file, check it, and unless
/// it is a dry run make sure every member reads adoptions before proposing.
async fn adopt(
    state: AppState,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
    query: AdoptQuery,
    read: impl FnOnce(&AppState, &str, [u8; 32], String) -> Result<(ReferenceAction, Vec<String>), ApiError>,
) -> Result<Response, ApiError> {
    let admin = state.users.authenticate_admin(&headers)?;
    let bytes = axum::body::to_bytes(body, REFERENCE_FILE_BYTES_MAX)
        .await
        .map_err(|_| ApiError::TooLarge(format!("a reference file has at most {REFERENCE_FILE_BYTES_MAX} bytes")))?;
    let original = OriginalRequest { uri, headers, body: bytes.clone() };
    if let Some(response) = relay_if_follower(&state, &original).await {
        return Ok(response);
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::Invalid { code: "invalid_reference_file", message: "the file is not UTF-8".into() })?;
    let sha256: [u8; 32] = Sha256::digest(&bytes).into();
    let (action, changes) = read(&state, text, sha256, query.note)?;
    if query.dry_run {
        return Ok(Json(AdoptedJson { dry_run: true, changes, reference: reference_json(&state) }).into_response());
    }
    members_read(&state, FEATURE_REFERENCE, "reference data adoptions").await?;
    tracing::info!(%admin, ?changes, "adopting reference data");
    let actor = Actor { user: format!("admin:{admin}"), bureau: state.group_bureau, role: Role::System };
    let command = Command {
        stamp_ms: crate::api::time::now_ms(),
        actor,
        idempotency: None,
        action: Action::Reference(Box::new(action)),
    };
    match propose_or_relay(&state, &original, command).await? {
        WriteOutcome::Relayed(response) => Ok(response),
        WriteOutcome::Local(Err(rejection)) => Err(rejection.into()),
        WriteOutcome::Local(Ok(_)) => {
            Ok((StatusCode::CREATED, Json(AdoptedJson { dry_run: false, changes, reference: reference_json(&state) }))
                .into_response())
        }
    }
}

pub async fn adopt_calendar(
    State(state): State<AppState>,
    Query(query): Query<AdoptQuery>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let answer = adopt(state, uri, headers, body, query, |state, text, sha256, note| {
        let invalid = |message: String| ApiError::Invalid { code: "invalid_calendar", message };
        let calendar = WorkCalendar::parse(text).map_err(|e| invalid(e.to_string()))?;
        let table = calendar_table(&calendar).map_err(invalid)?;
        let (version, current) = state.store.read().ledger.reference().calendar();
        if table == *current {
            return Err(ApiError::Conflict {
                code: "nothing_to_record",
                message: format!("this calendar is calendar version {version}, the committed one"),
            });
        }
        let today = Day::beijing_of_ms(crate::api::time::now_ms());
        current.may_be_followed_by(&table, today).map_err(invalid)?;
        let mut changes = vec![format!(
            "covers {}-{} (now {}-{})",
            table.first_year(),
            table.last_year(),
            current.first_year(),
            current.last_year()
        )];
        for year in &table.years {
            match current.years.iter().find(|old| old.year == year.year) {
                None => changes.push(format!("adds {}", year.year)),
                Some(old) if old != year => changes.push(format!("changes {}", year.year)),
                Some(_) => {}
            }
        }
        Ok((ReferenceAction::AdoptCalendar { table, sha256, note }, changes))
    })
    .await;
    answer.unwrap_or_else(IntoResponse::into_response)
}

pub async fn adopt_regions(
    State(state): State<AppState>,
    Query(query): Query<AdoptQuery>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let answer = adopt(state, uri, headers, body, query, |state, text, sha256, note| {
        let invalid = |message: String| ApiError::Invalid { code: "invalid_regions", message };
        let rows = Regions::parse_csv(text).map_err(invalid)?;
        // The table the ledger would make of the file, by the ledger's own rules.
        let (current, next) = {
            let replica = state.store.read();
            let reference = replica.ledger.reference();
            (reference.regions().clone(), reference.regions_after(&rows).map_err(invalid)?)
        };
        // The bureaus this group serves and its users work for must stay active.
        let in_use: std::collections::BTreeSet<BureauCode> =
            std::iter::once(state.group_bureau).chain(state.users.bureaus()).collect();
        if let Some(code) = in_use.iter().find(|code| !next.is_active(**code)) {
            return Err(ApiError::Conflict {
                code: "bureau_in_use",
                message: format!("the file retires {code}, which this group or one of its users is configured with"),
            });
        }
        let mut changes = Vec::new();
        for region in next.regions() {
            match current.region(region.code) {
                None => changes.push(format!("adds {} {}", region.code, region.name)),
                Some(old) if old.retired && !region.retired => {
                    changes.push(format!("restores {} {}", region.code, region.name))
                }
                Some(old) if !old.retired && region.retired => {
                    changes.push(format!("retires {} {}", region.code, region.name))
                }
                Some(old) if old.name != region.name => {
                    changes.push(format!("renames {} {} to {}", region.code, old.name, region.name))
                }
                Some(_) => {}
            }
        }
        if changes.is_empty() {
            return Err(ApiError::Conflict {
                code: "nothing_to_record",
                message: "this region table is the committed one".into(),
            });
        }
        Ok((ReferenceAction::AdoptRegions { rows, sha256, note }, changes))
    })
    .await;
    answer.unwrap_or_else(IntoResponse::into_response)
}

// --- What members read. ---

#[derive(Debug, Serialize, Deserialize)]
pub struct FeaturesJson {
    /// The member that answers (absent from builds before it said so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<u64>,
    /// The build's version.
    pub version: String,
    /// The formats beyond the peer format this build reads.
    pub reads: Vec<String>,
}

pub fn router() -> Router<AppState> {
    Router::new().route(FEATURES_PATH, get(features))
}

async fn features(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(refused) = state.admit_member(&headers) {
        return refused.into_response();
    }
    Json(FeaturesJson {
        node: Some(state.node_id),
        version: crate::VERSION.into(),
        reads: FEATURES_READ.map(String::from).to_vec(),
    })
    .into_response()
}

/// Asks member `id` at `addr` what it reads, keeps the answer (`crate::member_features`) and
/// gives it; `None` when it did not answer.
pub(crate) async fn ask_member_features(state: &AppState, id: u64, addr: &str) -> Option<Vec<String>> {
    let url = format!("{}{FEATURES_PATH}", state.transport.base_url(&state.peers.route(id, addr)));
    let request = state.relay_http.get(url).bearer_auth(state.group_secret.bearer()).timeout(FEATURES_TIMEOUT);
    let mut response = request.send().await.ok().filter(|response| response.status().is_success())?;
    // An answer is a few hundred bytes: read no more than `FEATURES_ANSWER_BYTES_MAX`.
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        body.extend_from_slice(&chunk);
        if body.len() > FEATURES_ANSWER_BYTES_MAX {
            return None;
        }
    }
    let answer: FeaturesJson = serde_json::from_slice(&body).ok()?;
    // A build that names itself must be the member asked (not whatever answers at its address).
    if answer.node.is_some_and(|node| node != id) {
        tracing::warn!(node = id, answered = ?answer.node, "another node answered for a member");
        return None;
    }
    state.member_features.learn(id, addr, &answer.reads);
    Some(answer.reads)
}

/// Refuses (409 `members_not_upgraded`) unless every other member of the group, voters and
/// learners, reads `feature` (`what`, for the message): it said so when last asked
/// (`crate::member_features` asks every member at least every minute, so a member away keeps
/// counting), or says so now. A build before the feature answers without it, or 404, and
/// could not decode the entry.
pub async fn members_read(state: &AppState, feature: &str, what: &str) -> Result<(), ApiError> {
    let unknown: Vec<(u64, String)> = crate::member_features::other_members(state)
        .into_iter()
        .filter(|(id, addr)| !state.member_features.reads(*id, addr, feature))
        .collect();
    let asks = unknown.iter().map(|(id, addr)| async move {
        let reads = ask_member_features(state, *id, addr).await.is_some_and(|reads| reads.iter().any(|r| r == feature));
        (!reads).then(|| format!("node {id} ({addr})"))
    });
    let behind: Vec<String> = futures_util::future::join_all(asks).await.into_iter().flatten().collect();
    if behind.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Conflict {
            code: "members_not_upgraded",
            message: format!(
                "{} cannot read {what} (an older build, or never reached since this node started knowing it): upgrade every member first",
                behind.join(", ")
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256_hex(bytes: &[u8]) -> String {
        ledger::campaign::hex(&Sha256::digest(bytes))
    }

    /// Version 0 of both tables is what a follower replaying from the first entry starts from,
    /// on any build: the files are frozen, and the ledger's calendar is the file's.
    #[test]
    fn version_0_is_frozen() {
        let regions = include_bytes!("../../cluster/ledger/data/regions.csv");
        assert_eq!(sha256_hex(regions), "c2fb3a6ad356d54d655d864b3a1ccb58d52dee4f44e559702950532a92481d4e");
        let calendar = include_bytes!("../../config/calendar/cn.toml");
        assert_eq!(sha256_hex(calendar), "60f6e23076c966606353beab7f20381d32b9facac2d495dcac4f47ac913d5d21");
        let china = WorkCalendar::china();
        assert_eq!(calendar_table(&china).expect("converts"), ledger::reference::calendar_v0());
        let back = calendar_table(&work_calendar(&ledger::reference::calendar_v0())).expect("converts");
        assert_eq!(back, ledger::reference::calendar_v0(), "the two conversions are inverse");
        assert_eq!(Regions::parse_csv(std::str::from_utf8(regions).expect("utf-8")).expect("parses").len(), 3_211);
    }

    /// The ledger checks a calendar by the rules `WorkCalendar` checks: what one accepts the
    /// other does (so a committed calendar always converts).
    #[test]
    fn calendar_rules_agree() {
        let base = ledger::reference::calendar_v0();
        let mut cases = vec![base.clone()];
        let mut weekday_workday = base.clone();
        weekday_workday.years[1].workdays.push(Day::parse("2027-03-03").expect("a day"));
        cases.push(weekday_workday);
        let mut both = base.clone();
        both.years[1].workdays.push(Day::parse("2027-01-02").expect("a Saturday"));
        both.years[1].holidays.insert(1, Day::parse("2027-01-02").expect("a Saturday"));
        cases.push(both);
        let mut gap = base.clone();
        gap.years[1].year = 2028;
        cases.push(gap);
        for table in cases {
            let years = table
                .years
                .iter()
                .map(|year| YearSpec {
                    year: year.year,
                    source: year.source.clone(),
                    provisional: year.provisional,
                    holidays: year.holidays.iter().copied().filter(|d| d.year() == year.year).map(date_of).collect(),
                    workdays: year.workdays.iter().copied().filter(|d| d.year() == year.year).map(date_of).collect(),
                })
                .collect();
            assert_eq!(table.check().is_ok(), WorkCalendar::from_years(years).is_ok(), "{table:?}");
        }
    }
}
