//! The JSON of the live entity register (`ledger::campaign::register`): the registration
//! system's batches of changes and their answers per change, the register's state, and its
//! journal read back for audit (and for making a freeze's file again).

use ledger::campaign::register::{ChangeKind, ChangeOutcome, JournalEntry, RegisterChange, RegisteredEntity};
use ledger::campaign::RiskClass;
use ledger::{Regions, Uscc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::time::format_ms;
use super::ApiError;

/// The kind of a credit-risk classification on the wire (the ledger keeps one kind per class).
pub const CLASSIFY: &str = "classify";

/// An entity as a change leaves it: a directory row's fields without the USCC.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisteredEntityJson {
    pub name: String,
    /// GB/T 2260 code of the registering region.
    pub region_code: String,
    /// Lower-case industry code (a-z, 0-9, _).
    pub industry: String,
    /// Lower-case credit status code (`normal`, `abnormal_list`, …).
    pub credit_status: String,
    #[serde(default)]
    pub address: String,
}

/// One change from the registration system.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterChangeJson {
    /// The registration system's id of the change: delivered again, it is recorded once.
    pub id: String,
    /// `establish` (设立), `amend` (变更), `revoke` (吊销) or `deregister` (注销) from the
    /// registration system; `classify` (信用风险分类) from the provincial credit-risk system.
    pub kind: String,
    pub uscc: String,
    /// The entity after an establishment or amendment; absent for the other kinds.
    #[serde(default)]
    pub entity: Option<RegisteredEntityJson>,
    /// A classification's class: `high`, `normal` or `low`; absent (or null) withdraws the
    /// entity's class. Only with `classify`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_class: Option<String>,
}

impl RegisterChangeJson {
    /// The change, its words parsed (the ledger checks the rest).
    pub fn parse(self, regions: &Regions) -> Result<RegisterChange, ApiError> {
        let kind = if self.classifies() {
            let class = self
                .risk_class
                .as_deref()
                .map(|text| super::parse_enum("risk_class", text, RiskClass::parse, RiskClass::names))
                .transpose()?;
            ChangeKind::classifying(class)
        } else {
            if self.risk_class.is_some() {
                return Err(ApiError::invalid_field("risk_class", "only a `classify` change carries a risk class"));
            }
            let registrations = ChangeKind::ALL.iter().filter(|kind| kind.classification().is_none());
            let known = registrations.map(|kind| kind.as_str()).collect::<Vec<_>>().join(", ");
            ChangeKind::parse(&self.kind)
                .filter(|kind| kind.classification().is_none())
                .ok_or_else(|| ApiError::invalid_field("kind", format!("one of {known}, {CLASSIFY}")))?
        };
        let uscc = Uscc::parse(&self.uscc)
            .map_err(|e| ApiError::Invalid { code: "invalid_uscc", message: format!("uscc: {e}") })?;
        let entity = self
            .entity
            .map(|entity| {
                Ok::<_, ApiError>(RegisteredEntity {
                    region: super::parse_bureau(regions, "entity.region_code", &entity.region_code)?,
                    name: entity.name,
                    industry: entity.industry,
                    credit_status: entity.credit_status,
                    address: entity.address,
                })
            })
            .transpose()?;
        Ok(RegisterChange { id: self.id, kind, uscc, entity })
    }

    /// Whether it is the credit-risk system's classification.
    pub fn classifies(&self) -> bool {
        self.kind == CLASSIFY
    }

    fn of(change: &RegisterChange) -> RegisterChangeJson {
        let classification = change.kind.classification();
        RegisterChangeJson {
            id: change.id.clone(),
            kind: if classification.is_some() { CLASSIFY.to_owned() } else { change.kind.as_str().to_owned() },
            risk_class: classification.flatten().map(|class| class.as_str().to_owned()),
            uscc: change.uscc.as_str().to_owned(),
            entity: change.entity.as_ref().map(|entity| RegisteredEntityJson {
                name: entity.name.clone(),
                region_code: entity.region.to_string(),
                industry: entity.industry.clone(),
                credit_status: entity.credit_status.clone(),
                address: entity.address.clone(),
            }),
        }
    }
}

/// `POST /api/v1/register/changes`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterChangesRequest {
    /// 1 to 1,000 changes, in the order the registration system made them.
    pub changes: Vec<serde_json::Value>,
}

/// What became of one change, in request order.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ChangeResultJson {
    /// The change's `id`, when it had a readable one.
    pub id: Option<String>,
    /// `recorded`, `repeat` (recorded before: `seq` is its number) or `refused`.
    pub outcome: String,
    /// Its number in the register's journal.
    pub seq: Option<u64>,
    pub error: Option<super::error::ErrorDetail>,
}

impl ChangeResultJson {
    /// The answer to change `id` the ledger gave `outcome`.
    pub fn of(id: Option<String>, outcome: ChangeOutcome) -> ChangeResultJson {
        let (outcome, seq, error) = match outcome {
            ChangeOutcome::Recorded { seq } => ("recorded", Some(seq), None),
            ChangeOutcome::Repeat { seq } => ("repeat", Some(seq), None),
            ChangeOutcome::Refused(rejection) => ("refused", None, Some(ApiError::from(rejection).detail())),
        };
        ChangeResultJson { id, outcome: outcome.into(), seq, error }
    }
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct RegisterChangesResponse {
    pub results: Vec<ChangeResultJson>,
    /// Changes the journal holds now.
    pub journal_length: u64,
}

/// A directory version and where it stands to the journal.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct RegisterVersionJson {
    pub number: u64,
    pub sha256: String,
    pub entities: u64,
    /// It takes in the journal's changes 1 to `through`; absent for a version imported before
    /// the register was fed (nothing is frozen from it).
    pub through: Option<u64>,
    /// The version it was frozen from; absent for one imported whole.
    pub frozen_from: Option<u64>,
    pub at: String,
}

/// `GET /api/v1/register`: the register as it stands.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct RegisterJson {
    pub journal_length: u64,
    /// Changes the current version does not take in yet: the next draw freezes them in.
    pub pending_changes: Option<u64>,
    /// Newest first.
    pub versions: Vec<RegisterVersionJson>,
}

/// One change of the journal.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct JournalEntryJson {
    pub seq: u64,
    pub change: RegisterChangeJson,
    pub source: String,
    pub recorded_at: String,
}

impl JournalEntryJson {
    pub fn of(entry: &JournalEntry) -> JournalEntryJson {
        JournalEntryJson {
            seq: entry.seq,
            change: RegisterChangeJson::of(&entry.change),
            source: entry.source.clone(),
            recorded_at: format_ms(entry.recorded_ms),
        }
    }
}

/// `GET /api/v1/register/changes?after=N&limit=M`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct JournalJson {
    pub entries: Vec<JournalEntryJson>,
    pub journal_length: u64,
    /// Where to go on from (`after`), when more follow.
    pub next_after: Option<u64>,
}
