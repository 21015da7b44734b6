//! `GET /api/v1/metrics/response?bureau=440000&from=2026-11-01&to=2026-11-30&by=child&format=csv`:
//! the response metrics of a bureau and its subtree over a period of Beijing dates (tasks
//! dispatched in it), in total and per child bureau, day or week, as JSON or CSV for reports.
//! Command and leadership users read their bureau's subtree; an operator its own bureau.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::{BureauCode, Regions, Role};
use serde::{Deserialize, Serialize};

use crate::api::item_list::CoverageJson;
use crate::api::{self, time, ApiError};
use crate::programme::register_counts::RegisterCounts;
use crate::response_metrics::{Breakdown, Figures, Report, Row};
use crate::state::AppState;
use ledger::response::beijing_day;

/// The longest period one report covers.
pub const PERIOD_DAYS_MAX: u32 = 3 * 366;
/// The period when none is given: the last 30 days, today included.
const DEFAULT_PERIOD_DAYS: u32 = 30;
/// Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;

/// The JSON answer: the figures of the whole period and one row per child bureau, day or week.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ResponseReportJson {
    pub bureau: String,
    /// The period as asked (absent: the default period ending today, Beijing time).
    pub from: Option<String>,
    pub to: Option<String>,
    /// `child`, `day` or `week`.
    pub by: String,
    pub total: Figures,
    pub rows: Vec<Row>,
    /// 随机抽查事项覆盖率: the item list's current items open to the bureau, of its
    /// province's declared enforcement inspection matters (absent before they are declared).
    pub item_list_coverage: Option<CoverageJson>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Query {
    #[schemars(schema_with = "crate::api::schema::optional_unit_code")]
    bureau: Option<String>,
    #[schemars(schema_with = "crate::api::schema::optional_date")]
    from: Option<String>,
    #[schemars(schema_with = "crate::api::schema::optional_date")]
    to: Option<String>,
    #[schemars(schema_with = "crate::api::schema::optional_breakdown")]
    by: Option<String>,
    #[schemars(schema_with = "crate::api::schema::optional_report_format")]
    format: Option<String>,
}

fn parse_date(field: &str, text: &str) -> Result<u32, ApiError> {
    let bad = || ApiError::invalid_field(field, format!("{text:?} is not a date like 2026-11-27"));
    let mut parts = text.splitn(3, '-');
    let mut number = |digits: usize| {
        parts
            .next()
            .filter(|p| p.len() == digits && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<i32>().ok())
    };
    let (year, month, day) = (number(4).ok_or_else(bad)?, number(2).ok_or_else(bad)?, number(2).ok_or_else(bad)?);
    let month = ::time::Month::try_from(u8::try_from(month).map_err(|_| bad())?).map_err(|_| bad())?;
    let date =
        ::time::Date::from_calendar_date(year, month, u8::try_from(day).map_err(|_| bad())?).map_err(|_| bad())?;
    u32::try_from(date.to_julian_day() - UNIX_EPOCH_JULIAN_DAY)
        .map_err(|_| ApiError::invalid_field(field, "lies before 1970"))
}

pub async fn response(State(state): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    // Only a signed-in caller makes the node count the register.
    let user = match state.users.authenticate(&headers) {
        Ok(user) => user.clone(),
        Err(error) => return error.into_response(),
    };
    let register = state.programme.register_counts.current(&state).await;
    let answer = (|| {
        let query: Query = super::request::parse_query(raw)?;
        let bureau = match &query.bureau {
            Some(text) => api::parse_bureau(&state.regions(), "bureau", text)?,
            None => user.actor.bureau,
        };
        let allowed = match user.actor.role {
            Role::Command | Role::Leadership => state.regions().is_within(bureau, user.actor.bureau),
            Role::Operator => bureau == user.actor.bureau,
            _ => false,
        };
        if !allowed {
            return Err(ApiError::Forbidden(format!(
                "bureau {} cannot read the metrics of {bureau}",
                user.actor.bureau
            )));
        }
        let today = beijing_day(time::now_ms());
        let to = query.to.as_deref().map(|t| parse_date("to", t)).transpose()?.unwrap_or(today);
        let from = query
            .from
            .as_deref()
            .map(|t| parse_date("from", t))
            .transpose()?
            .unwrap_or(to.saturating_sub(DEFAULT_PERIOD_DAYS - 1));
        if from > to || to - from >= PERIOD_DAYS_MAX {
            return Err(ApiError::invalid_field(
                "from",
                format!("the period runs forwards and spans at most {PERIOD_DAYS_MAX} days"),
            ));
        }
        let by = match query.by.as_deref().unwrap_or("child") {
            "child" => Breakdown::Child,
            "day" => Breakdown::Day,
            "week" => Breakdown::Week,
            other => {
                return Err(ApiError::Invalid {
                    code: "invalid_enum",
                    message: format!("by: {other:?} is not one of child, day, week"),
                })
            }
        };
        let regions = state.regions();
        let mut report = state.response_metrics.report(&regions, bureau, from, to, by, time::now_ms());
        if let Some(register) = &register {
            with_register(&mut report, &regions, register, bureau, by);
        }
        match query.format.as_deref().unwrap_or("json") {
            "json" => Ok(Json(ResponseReportJson {
                bureau: bureau.to_string(),
                from: query.from.clone(),
                to: query.to.clone(),
                by: query.by.clone().unwrap_or_else(|| "child".to_owned()),
                total: report.total,
                rows: report.rows,
                item_list_coverage: {
                    let replica = state.store.read();
                    CoverageJson::of(&regions, replica.ledger.item_list(), bureau)
                },
            })
            .into_response()),
            "csv" => Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv(&report)).into_response()),
            other => Err(ApiError::Invalid {
                code: "invalid_enum",
                message: format!("format: {other:?} is not one of json, csv"),
            }),
        }
    })();
    answer.unwrap_or_else(IntoResponse::into_response)
}

/// Puts the register's size and the share of it inspected into the total (the bureau's) and,
/// broken down by child bureau, into each row.
fn with_register(report: &mut Report, regions: &Regions, register: &RegisterCounts, bureau: BureauCode, by: Breakdown) {
    report.total = std::mem::take(&mut report.total).with_register(register.within(regions, bureau));
    if by != Breakdown::Child {
        return;
    }
    for row in &mut report.rows {
        // The bureau's own row holds its own tasks: the entities registered at its own code.
        let entities = match regions.parse_known(&row.key) {
            Some(code) if code == bureau => register.at(code),
            Some(code) => register.within(regions, code),
            None => continue,
        };
        row.figures = std::mem::take(&mut row.figures).with_register(entities);
    }
}

/// One line per row and a total line, the columns named as in the JSON.
/// The report as CSV that Excel on a Chinese Windows opens as it is: UTF-8 with a byte-order
/// mark (without one Excel reads GBK and shows mojibake), fields quoted where needed.
fn csv(report: &Report) -> String {
    let figures_json = |figures: &Figures| serde_json::to_value(figures).expect("figures encode");
    let columns = Figures::COLUMNS;
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    let header = ["key", "name"].into_iter().chain(columns.iter().copied());
    let mut write = |record: Vec<String>| writer.write_record(&record).expect("writing to memory");
    write(header.map(str::to_owned).collect());
    let line = |key: &str, name: &str, figures: &Figures| {
        let values = figures_json(figures);
        let cells = columns.iter().map(|c| match &values[*c] {
            serde_json::Value::Null => String::new(),
            value => value.to_string(),
        });
        [key.to_owned(), name.to_owned()].into_iter().chain(cells).collect::<Vec<String>>()
    };
    for row in &report.rows {
        write(line(&row.key, row.name.as_deref().unwrap_or(""), &row.figures));
    }
    write(line("total", "", &report.total));
    let bytes = writer.into_inner().expect("writing to memory");
    let text = String::from_utf8(bytes).expect("written from strings");
    format!("\u{feff}{text}")
}
