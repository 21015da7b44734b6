//! Machine intake on the node side: the configured sources (credential, bureau, rate, grouping),
//! the signal JSON of `POST /api/v1/intake`, and turning a signal into the ledger's `Signal`
//! with its grouping key. The route is `routes::intake`.

use std::sync::Mutex;

use config::SourceConfig;
use ledger::{BureauCode, NewTask, Routing, Severity, Signal, Source, TaskKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::{self, time, ApiError, SubjectJson};

/// Signals in one intake request (one ledger entry).
pub const SIGNALS_PER_BATCH_MAX: usize = 500;
/// A batch of 500 signals with long descriptions and evidence lists.
pub const INTAKE_BODY_BYTES_MAX: usize = 8 * 1024 * 1024;
/// A source-side category of the matter (e.g. `counterfeit`, `price`), used for grouping.
pub const MATTER_CHARS_MAX: usize = 64;

/// A configured source, ready to use.
pub struct IntakeSource {
    pub name: String,
    pub bureau: BureauCode,
    pub group_by: Vec<String>,
    pub window_ms: u64,
    pub task_source: Source,
    pub bucket: Mutex<crate::rate::TokenBucket>,
}

impl IntakeSource {
    /// A source of the users file; `known` checks its bureau code (the group's table).
    pub fn from_config(
        config: &SourceConfig,
        known: impl Fn(&str) -> Option<BureauCode>,
    ) -> Result<IntakeSource, String> {
        let bureau = known(&config.bureau)
            .ok_or_else(|| format!("source {}: {} is not a region code", config.name, config.bureau))?;
        let task_source = Source::parse(&config.task_source)
            .ok_or_else(|| format!("source {}: task_source is one of {}", config.name, Source::names()))?;
        Ok(IntakeSource {
            name: config.name.clone(),
            bureau,
            group_by: config.group_by.clone(),
            window_ms: config.window_minutes * 60_000,
            task_source,
            bucket: Mutex::new(crate::rate::TokenBucket::new(f64::from(config.signals_per_second))),
        })
    }
}

/// One signal of `POST /api/v1/intake`.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalJson {
    pub source_id: String,
    #[schemars(schema_with = "crate::api::schema::creatable_task_kind")]
    pub kind: String,
    #[schemars(schema_with = "crate::api::schema::severity")]
    pub severity: String,
    /// The source's category of the matter; signals group by it when the source says so.
    #[serde(default)]
    pub matter: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub subject: SubjectJson,
    /// When the source observed it (RFC 3339).
    #[schemars(schema_with = "crate::api::schema::timestamp")]
    pub observed_at: String,
    #[serde(default)]
    pub evidence: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntakeRequest {
    /// Each item should be a signal (`SignalJson`). The batch is answered item by item: an item
    /// that is not a well-formed signal is refused in the answer, and the others go on.
    pub signals: Vec<serde_json::Value>,
}

/// The same request when every signal is well-formed: decoded straight into signals, without
/// the generic `Value` step (the common case, and a large share of the work per batch).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WellFormedIntakeRequest {
    pub signals: Vec<SignalJson>,
}

/// What became of one signal, in request order.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SignalResult {
    /// The signal's `source_id`, when it had a readable one.
    pub source_id: Option<String>,
    /// `created`, `merged`, `repeat` or `refused`.
    pub outcome: String,
    pub task_id: Option<u64>,
    pub error: Option<api::error::ErrorDetail>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct IntakeResponse {
    pub results: Vec<SignalResult>,
}

/// The grouping key: SHA-256 over the named fields and their values, so only signals that
/// agree on every field the source groups by share a key.
fn group_key(source: &IntakeSource, signal: &SignalJson) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for field in &source.group_by {
        let value = match field.as_str() {
            "subject.uscc" => signal.subject.uscc.as_deref().unwrap_or(""),
            "subject.name" => signal.subject.name.trim(),
            "subject.region_code" => signal.subject.region_code.as_str(),
            "kind" => signal.kind.as_str(),
            "matter" => signal.matter.as_str(),
            "title" => signal.title.trim(),
            other => unreachable!("config refuses grouping field {other}"),
        };
        hasher.update(field.as_bytes());
        hasher.update([0x1f]);
        hasher.update(value.as_bytes());
        hasher.update([0x1e]);
    }
    hasher.finalize().into()
}

/// Decodes one signal of a batch that was not well-formed as a whole.
pub fn decode_signal(value: serde_json::Value) -> Result<SignalJson, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::Invalid { code: "invalid_signal", message: e.to_string() })
}

/// Checks one decoded signal and builds the ledger's `Signal`; the ledger checks the fields
/// again when it applies.
pub fn parse_signal(
    regions: &ledger::Regions,
    source: &IntakeSource,
    json: SignalJson,
    route: impl Fn(TaskKind, BureauCode) -> Routing,
) -> Result<Signal, ApiError> {
    if json.matter.chars().count() > MATTER_CHARS_MAX {
        return Err(ApiError::invalid_field("matter", format!("at most {MATTER_CHARS_MAX} characters")));
    }
    let kind = api::parse_enum("kind", &json.kind, TaskKind::parse, TaskKind::names)?;
    // A monitoring signal registers a lead or an alert; inspections come only from draws.
    if kind == TaskKind::Inspection {
        return Err(ApiError::Invalid {
            code: "inspection_by_draw_only",
            message: "a signal never registers an inspection (双随机抽查): only a campaign's draw makes one".into(),
        });
    }
    let subject = api::parse_subject(regions, &json.subject)?;
    let observed_ms = time::parse_ms(&json.observed_at).ok_or_else(|| {
        ApiError::invalid_field("observed_at", format!("{:?} is not an RFC 3339 time", json.observed_at))
    })?;
    let task = NewTask {
        kind,
        severity: api::parse_enum("severity", &json.severity, Severity::parse, Severity::names)?,
        title: json.title.clone(),
        description: json.description.clone(),
        routing: route(kind, subject.region_code),
        subject,
        source: source.task_source,
        origin_bureau: source.bureau,
        assignee_bureau: None,
    };
    Ok(Signal {
        source_id: json.source_id.clone(),
        group_key: group_key(source, &json),
        window_ms: source.window_ms,
        observed_ms,
        task,
        evidence: json.evidence,
    })
}
