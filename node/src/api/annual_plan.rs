//! The JSON of the annual random-inspection plan (年度随机抽查工作计划,
//! `ledger::campaign::annual_plan`): the plan with its batches, proposals and versions for the
//! bureaus, the requests that change it, its progress, and its public shape (`Public*`: the
//! batches as published, never who proposed what or the internal notes).

use ledger::campaign::annual_plan::{AnnualPlan, Batch, BatchSpec, PlanStep, PlanVersion, Proposal};
use ledger::campaign::plan_handdown::{HandedDownPlan, PlanHandDown};
use ledger::reference::Day;
use ledger::{BureauCode, Regions};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::time::format_ms;
use super::{bureau_json as bureau, region_name, ApiError};

/// A batch as a request gives it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub name: String,
    /// Item codes of the inspection-item list.
    pub items: Vec<String>,
    /// The region whose entities the batch draws from.
    #[schemars(schema_with = "crate::api::schema::region_code")]
    pub scope: String,
    /// How many entities it plans to inspect.
    pub entities: u64,
    /// The period, as dates within the plan's year (`2027-03-01`).
    pub starts: String,
    pub ends: String,
    /// For a proposal: what the proposing bureau says; for the province: why it adds or
    /// adjusts (required once the plan is published).
    #[serde(default)]
    pub reason: String,
    /// For the province: the proposal this batch takes up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_proposal: Option<u32>,
}

impl BatchRequest {
    pub fn spec(&self, regions: &Regions) -> Result<BatchSpec, ApiError> {
        let day = |field: &str, text: &str| {
            Day::parse(text)
                .ok_or_else(|| ApiError::invalid_field(field, format!("{text:?} is not a date like 2027-03-01")))
        };
        Ok(BatchSpec {
            name: self.name.clone(),
            items: self.items.clone(),
            scope: super::parse_bureau(regions, "scope", &self.scope)?,
            entities: self.entities,
            starts: day("starts", &self.starts)?,
            ends: day("ends", &self.ends)?,
        })
    }
}

/// `POST …/batches/{batch}/withdraw`, with the reason.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawBatchRequest {
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct BatchSpecJson {
    pub name: String,
    pub items: Vec<String>,
    pub scope: String,
    pub scope_name: String,
    pub entities: u64,
    pub starts: String,
    pub ends: String,
}

impl BatchSpecJson {
    fn of(regions: &Regions, spec: &BatchSpec) -> BatchSpecJson {
        BatchSpecJson {
            name: spec.name.clone(),
            items: spec.items.clone(),
            scope: bureau(spec.scope),
            scope_name: region_name(regions, spec.scope),
            entities: spec.entities,
            starts: spec.starts.to_string(),
            ends: spec.ends.to_string(),
        }
    }
}

/// What a batch has come to: its campaigns, the inspections they drew, completed and published.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BatchProgressJson {
    pub campaigns: u64,
    pub drawn: u64,
    pub completed: u64,
    pub published: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct BatchJson {
    pub number: u32,
    #[serde(flatten)]
    pub spec: BatchSpecJson,
    pub from_proposal: Option<u32>,
    pub withdrawn: bool,
    pub listed_in: u32,
    pub changed_in: u32,
    /// Its campaigns, by id.
    pub campaigns: Vec<u64>,
    pub progress: BatchProgressJson,
    /// The progress per city (or per bureau above a city) carrying it out.
    pub by_bureau: Vec<BureauProgressJson>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct BureauProgressJson {
    pub bureau: String,
    pub name: String,
    #[serde(flatten)]
    pub progress: BatchProgressJson,
}

/// What a change of the plan answers: the version it made and the plan after it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct PlanChangeJson {
    pub version: PlanVersionJson,
    pub plan: AnnualPlanJson,
}

/// A proposal relayed from a city's own group to the group keeping the province's plan: the
/// plan's version it made there and its number among the proposals.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct RelayedProposalJson {
    /// The group that keeps the plan (bureau code).
    pub relayed_to: String,
    pub version: u32,
    pub proposal: u32,
}

/// A campaign's place in the plan: `{"year": 2027, "number": 1}`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRefJson {
    pub year: i32,
    pub number: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ProposalJson {
    pub number: u32,
    pub bureau: String,
    pub bureau_name: String,
    #[serde(flatten)]
    pub spec: BatchSpecJson,
    pub note: String,
    pub by: String,
    pub at: String,
    pub taken_as: Option<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct PlanVersionJson {
    pub number: u32,
    /// `proposed`, `batch_added`, `batch_adjusted`, `batch_withdrawn` or `published`.
    pub change: String,
    /// The batch or proposal it concerns.
    pub subject: Option<u32>,
    pub by: String,
    pub bureau: String,
    pub at: String,
    pub reason: String,
}

impl PlanVersionJson {
    pub fn of(version: &PlanVersion) -> PlanVersionJson {
        let (change, subject) = match version.step {
            PlanStep::Proposed { proposal } => ("proposed", Some(proposal)),
            PlanStep::BatchSet { batch, new: true } => ("batch_added", Some(batch)),
            PlanStep::BatchSet { batch, new: false } => ("batch_adjusted", Some(batch)),
            PlanStep::BatchWithdrawn { batch } => ("batch_withdrawn", Some(batch)),
            PlanStep::Published => ("published", None),
        };
        PlanVersionJson {
            number: version.number,
            change: change.to_owned(),
            subject,
            by: version.by.clone(),
            bureau: bureau(version.bureau),
            at: format_ms(version.at_ms),
            reason: version.reason.clone(),
        }
    }
}

/// `GET /api/v1/annual-plans/{year}`: the caller's province's plan of the year.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct AnnualPlanJson {
    pub province: String,
    pub province_name: String,
    pub year: i32,
    pub published_at: Option<String>,
    pub batches: Vec<BatchJson>,
    pub proposals: Vec<ProposalJson>,
    pub versions: Vec<PlanVersionJson>,
    /// The version the parent group took, once filed there (报上级备案); absent in a group with
    /// no parent, or before the first filing.
    pub filed: Option<FilingJson>,
    /// In a city group: the province's plan as the group keeping it handed it down (下达). The
    /// batches' campaigns and progress are this group's; proposals and versions stay there.
    pub handed_down: Option<HandedDownJson>,
    /// In the group keeping the plan: the city groups it went down to, the version each took
    /// and when each last reported its progress (counted in the batches' progress).
    pub handed_down_to: Vec<HandedDownToJson>,
}

impl AnnualPlanJson {
    /// The plan with each batch's progress, in total and per bureau (`progress(batch)`).
    pub fn of(
        regions: &Regions,
        plan: &AnnualPlan,
        progress: impl Fn(&Batch) -> (BatchProgressJson, Vec<BureauProgressJson>),
    ) -> AnnualPlanJson {
        AnnualPlanJson {
            province: bureau(plan.province),
            province_name: region_name(regions, plan.province),
            year: plan.year,
            published_at: plan.published_at_ms.map(format_ms),
            batches: plan
                .batches
                .iter()
                .map(|batch| {
                    let (progress, by_bureau) = progress(batch);
                    BatchJson {
                        number: batch.number,
                        spec: BatchSpecJson::of(regions, &batch.spec),
                        from_proposal: batch.from_proposal,
                        withdrawn: batch.withdrawn,
                        listed_in: batch.listed_in,
                        changed_in: batch.changed_in,
                        campaigns: batch.campaigns.clone(),
                        progress,
                        by_bureau,
                    }
                })
                .collect(),
            proposals: plan.proposals.iter().map(|p| ProposalJson::of(regions, p)).collect(),
            versions: plan.versions.iter().map(PlanVersionJson::of).collect(),
            filed: None,
            handed_down: None,
            handed_down_to: Vec::new(),
        }
    }
}

impl ProposalJson {
    fn of(regions: &Regions, proposal: &Proposal) -> ProposalJson {
        ProposalJson {
            number: proposal.number,
            bureau: bureau(proposal.bureau),
            bureau_name: region_name(regions, proposal.bureau),
            spec: BatchSpecJson::of(regions, &proposal.spec),
            note: proposal.note.clone(),
            by: proposal.by.clone(),
            at: format_ms(proposal.at_ms),
            taken_as: proposal.taken_as,
        }
    }
}

/// A batch as published.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct PublicBatchJson {
    pub number: u32,
    pub name: String,
    pub items: Vec<String>,
    pub scope_name: String,
    pub entities: u64,
    pub starts: String,
    pub ends: String,
}

/// `GET /public/v1/annual-plans/{province}/{year}`: a published plan's current batches, and
/// when it was published and last adjusted.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct PublicAnnualPlanJson {
    pub province: String,
    pub province_name: String,
    pub year: i32,
    pub published_at: String,
    /// The last adjustment after publication, if any (调整).
    pub adjusted_at: Option<String>,
    pub batches: Vec<PublicBatchJson>,
}

impl PublicAnnualPlanJson {
    /// `None` for a plan not published yet.
    pub fn of(regions: &Regions, plan: &AnnualPlan) -> Option<PublicAnnualPlanJson> {
        let published_ms = plan.published_at_ms?;
        let adjusted_ms = plan
            .versions
            .iter()
            .filter(|v| v.at_ms > published_ms && !matches!(v.step, PlanStep::Proposed { .. } | PlanStep::Published))
            .map(|v| v.at_ms)
            .max();
        Some(PublicAnnualPlanJson {
            province: bureau(plan.province),
            province_name: region_name(regions, plan.province),
            year: plan.year,
            published_at: format_ms(published_ms),
            adjusted_at: adjusted_ms.map(format_ms),
            batches: plan
                .batches
                .iter()
                .filter(|batch| !batch.withdrawn)
                .map(|batch| PublicBatchJson {
                    number: batch.number,
                    name: batch.spec.name.clone(),
                    items: batch.spec.items.clone(),
                    scope_name: region_name(regions, batch.spec.scope),
                    entities: batch.spec.entities,
                    starts: batch.spec.starts.to_string(),
                    ends: batch.spec.ends.to_string(),
                })
                .collect(),
        })
    }
}

/// `GET /public/v1/annual-plans`: the published plans the group holds, newest year first.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct PublicAnnualPlansJson {
    pub plans: Vec<PublicAnnualPlanJson>,
}

/// Which version of the plan the parent group took (报上级备案).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct FilingJson {
    /// The parent group (bureau code).
    pub with_group: String,
    pub with_group_name: String,
    pub version: u32,
    pub at: String,
}

impl FilingJson {
    pub fn of(regions: &Regions, filing: &ledger::campaign::plan_filing::Filing) -> FilingJson {
        FilingJson {
            with_group: bureau(filing.with_group),
            with_group_name: region_name(regions, filing.with_group),
            version: filing.version,
            at: format_ms(filing.at_ms),
        }
    }
}

/// A child group's plan as filed with this group: its batches at the version it sent.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct FiledPlanJson {
    pub from_group: String,
    pub province: String,
    pub province_name: String,
    pub year: i32,
    pub version: u32,
    pub published_at: String,
    pub filed_at: String,
    pub batches: Vec<FiledBatchJson>,
}

/// A batch of a filed plan.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct FiledBatchJson {
    pub number: u32,
    #[serde(flatten)]
    pub spec: BatchSpecJson,
    pub withdrawn: bool,
    /// Campaigns carrying it out in the province's group when the version was sent.
    pub campaigns: usize,
}

impl FiledPlanJson {
    pub fn of(regions: &Regions, filed: &ledger::campaign::plan_filing::FiledPlan) -> FiledPlanJson {
        let plan = &filed.plan;
        FiledPlanJson {
            from_group: bureau(filed.from_group),
            province: bureau(plan.province),
            province_name: region_name(regions, plan.province),
            year: plan.year,
            version: plan.version,
            published_at: format_ms(plan.published_at_ms),
            filed_at: format_ms(filed.filed_at_ms),
            batches: plan
                .batches
                .iter()
                .map(|batch| FiledBatchJson {
                    number: batch.number,
                    spec: BatchSpecJson::of(regions, &batch.spec),
                    withdrawn: batch.withdrawn,
                    campaigns: batch.campaigns.len(),
                })
                .collect(),
        }
    }
}

/// `GET /api/v1/annual-plans/{year}/filed`: the plans this group's child groups filed with it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct FiledPlansJson {
    pub year: i32,
    pub plans: Vec<FiledPlanJson>,
}

/// The copy of a province's plan a city group holds: who handed it down, which version, when.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct HandedDownJson {
    pub from_group: String,
    pub from_group_name: String,
    pub version: u32,
    pub received_at: String,
}

impl HandedDownJson {
    pub fn of(regions: &Regions, copy: &HandedDownPlan) -> HandedDownJson {
        HandedDownJson {
            from_group: bureau(copy.from_group),
            from_group_name: region_name(regions, copy.from_group),
            version: copy.plan.version,
            received_at: format_ms(copy.received_at_ms),
        }
    }
}

/// A city group the plan went down to.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct HandedDownToJson {
    pub group: String,
    pub group_name: String,
    /// The version it took, and when.
    pub version: u32,
    pub at: String,
    /// When its last progress report arrived (none before the first).
    pub reported_at: Option<String>,
}

impl HandedDownToJson {
    pub fn all(regions: &Regions, handdown: &PlanHandDown, province: BureauCode, year: i32) -> Vec<HandedDownToJson> {
        let reported: std::collections::BTreeMap<BureauCode, u64> =
            handdown.reports_of(province, year).map(|r| (r.from_group, r.received_at_ms)).collect();
        handdown
            .handed_of(province, year)
            .map(|(group, filing)| HandedDownToJson {
                group: bureau(group),
                group_name: region_name(regions, group),
                version: filing.version,
                at: format_ms(filing.at_ms),
                reported_at: reported.get(&group).copied().map(format_ms),
            })
            .collect()
    }
}
