//! A draw committed in bounded parts: one verifiable draw of up to
//! `DRAW_IN_PARTS_INSPECTIONS_MAX` inspections (a province's), in entries that stay small.
//!
//! The accepting node computes the whole draw once, as for a draw in one entry, and proposes:
//! - `BeginDrawInParts`, the header: the result less its inspections (seed, population,
//!   strata, recusals), and for each part of `DRAW_PART_INSPECTIONS` inspections its SHA-256
//!   and how many it draws for each stratum. The ledger checks what it can of the whole here:
//!   the seed follows from the inputs frozen with the beacon, the floor, the quotas, and that
//!   the parts' counts add up to each stratum's quota.
//! - `RecordDrawPart` for each part in order: checked against the header's hash and counts,
//!   each inspection by the rules of a draw (`draw_rules::InspectionRules`), an entity once in
//!   the whole draw; its inspection tasks are created in the same entry.
//!
//! Any leader takes the parts up where they stand (the node's `programme::draw_parts`), drawing
//! again from the same frozen inputs and directory: a part is recorded once (a second proposal
//! of it is `NothingToRecord`), and the parts can only be the ones the header named. Once the
//! last part is in, the campaign is drawn. The core keeps, per campaign drawn this way, the
//! header's digests and the ranges of its tasks, never the inspections (those are the tasks): a
//! province's year of draws costs the core a few kilobytes each. The proof is the record with
//! the digests: `xietong draw verify` draws again from the directory file and compares the
//! summary and every part's digest.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::draw_rules::{check_summary, InspectionRules, QuotaTally};
use super::*;
use crate::apply::Ledger;
use crate::command::{conflict, Actor, Applied, CommandResult, ConflictCode, Rejection};
use crate::task::TaskId;
use crate::validate::{self, invalid};

/// Inspections in one part: one entry of inspection tasks stays around a megabyte.
pub const DRAW_PART_INSPECTIONS: usize = 2_000;
/// Inspections of one draw in parts: a province's campaign over its whole register.
pub const DRAW_IN_PARTS_INSPECTIONS_MAX: usize = 200_000;
/// Parts of one draw.
pub const DRAW_PARTS_MAX: usize = DRAW_IN_PARTS_INSPECTIONS_MAX.div_ceil(DRAW_PART_INSPECTIONS);

/// A draw's result less its inspections: what a header commits and a campaign drawn in parts
/// keeps in its record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawSummary {
    pub seed: String,
    pub entities_in_scope: u64,
    pub eligible: u64,
    pub strata: Vec<Stratum>,
    pub recusals: Vec<Recusal>,
}

impl DrawSummary {
    pub fn of(result: &DrawResult) -> DrawSummary {
        DrawSummary {
            seed: result.seed.clone(),
            entities_in_scope: result.entities_in_scope,
            eligible: result.eligible,
            strata: result.strata.clone(),
            recusals: result.recusals.clone(),
        }
    }

    pub fn with_inspections(self, inspections: Vec<DrawnInspection>) -> DrawResult {
        DrawResult {
            seed: self.seed,
            entities_in_scope: self.entities_in_scope,
            eligible: self.eligible,
            strata: self.strata,
            inspections,
            recusals: self.recusals,
        }
    }
}

/// One part as the header names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartDigest {
    /// `part_sha256` of its inspections.
    pub sha256: String,
    /// Inspections it draws by each stratum's quota, in the order of the summary's strata.
    pub quota_counts: Vec<u64>,
    pub inspections: u32,
    /// Inspections drawn to bring the draw up to the 3% floor.
    pub top_ups: u32,
}

/// What `BeginDrawInParts` commits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawHeader {
    pub campaign: u64,
    pub summary: DrawSummary,
    pub parts: Vec<PartDigest>,
    pub ack_deadline_ms: u64,
    pub complete_deadline_ms: u64,
}

impl DrawHeader {
    /// The header of `result`, split into parts of `DRAW_PART_INSPECTIONS`.
    pub fn of(campaign: u64, result: &DrawResult, ack_deadline_ms: u64, complete_deadline_ms: u64) -> DrawHeader {
        let parts =
            result.inspections.chunks(DRAW_PART_INSPECTIONS).map(|part| part_digest(&result.strata, part)).collect();
        DrawHeader { campaign, summary: DrawSummary::of(result), parts, ack_deadline_ms, complete_deadline_ms }
    }

    pub fn inspections(&self) -> u64 {
        self.parts.iter().map(|part| u64::from(part.inspections)).sum()
    }
}

/// SHA-256 over a version tag and the part's inspections (their `codec` encoding).
pub fn part_sha256(inspections: &[DrawnInspection]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"xietong-draw-part-v1\0");
    hasher.update(crate::codec::encode(&inspections).expect("inspections always encode"));
    hex(&hasher.finalize())
}

/// A part's digest: its hash and how many it draws for each of `strata`.
pub fn part_digest(strata: &[Stratum], inspections: &[DrawnInspection]) -> PartDigest {
    let mut tally = QuotaTally::default();
    inspections.iter().for_each(|inspection| tally.count(inspection));
    PartDigest {
        sha256: part_sha256(inspections),
        quota_counts: strata.iter().map(|stratum| tally.drawn(&stratum.item, stratum.class)).collect(),
        inspections: inspections.len() as u32,
        top_ups: inspections.iter().filter(|inspection| inspection.top_up).count() as u32,
    }
}

/// Where a drawn inspection is worked, decided by the accepting node from the topology (the
/// ledger knows none): here, or handed to the group that hosts its bureau, as a dispatch whose
/// tracking record stays here (the organiser reviews and publishes it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DrawPlacement {
    Here,
    HandedTo { to_group: BureauCode, from_group: BureauCode },
}

/// Consecutive task ids one part created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRange {
    pub first: TaskId,
    pub count: u32,
}

impl TaskRange {
    pub fn ids(self) -> impl Iterator<Item = TaskId> {
        (self.first.0..self.first.0 + u64::from(self.count)).map(TaskId)
    }
}

/// A draw whose header is committed and whose parts are coming in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drawing {
    pub header: DrawHeader,
    pub drawn_by: String,
    pub began_at_ms: u64,
    /// The tasks of each part recorded, in order: as many as parts recorded.
    pub tasks: Vec<TaskRange>,
    /// The entities drawn so far (an entity once per draw).
    entities: BTreeSet<Uscc>,
}

impl Drawing {
    /// The part to record next.
    pub fn next_part(&self) -> usize {
        self.tasks.len()
    }
}

/// What the core keeps of a campaign drawn in parts (its record keeps the summary).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawnInParts {
    pub parts: Vec<PartDigest>,
    pub tasks: Vec<TaskRange>,
}

impl DrawnInParts {
    pub fn inspections(&self) -> u64 {
        self.parts.iter().map(|part| u64::from(part.inspections)).sum()
    }

    pub fn top_ups(&self) -> u64 {
        self.parts.iter().map(|part| u64::from(part.top_ups)).sum()
    }
}

/// The draws in parts, under way and done. The ledger core's last field (store format 8).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawsInParts {
    drawing: BTreeMap<u64, Drawing>,
    drawn: BTreeMap<u64, DrawnInParts>,
}

/// A ledger core of store format 7 (written before draws in parts) in this build's format:
/// they are the core's last field, so a format 7 core ends where this one's start.
pub fn core_of_format_7(core: &[u8]) -> Vec<u8> {
    let none = crate::codec::encode(&DrawsInParts::default()).expect("no draws encode");
    [core, none.as_slice()].concat()
}

impl DrawsInParts {
    /// The invariants between the draws in parts and the programme, for `Ledger::check_invariants`.
    pub(crate) fn check(&self, programme: &Programme, next_task_id: u64) -> Result<(), String> {
        for (id, drawing) in &self.drawing {
            check_header_shape(&drawing.header).map_err(|rejection| format!("campaign {id}'s header: {rejection}"))?;
            let campaign = programme.campaign(*id).ok_or(format!("campaign {id} is drawn in parts but missing"))?;
            if campaign.draw.is_some() || !programme.sealed_inputs.contains_key(id) {
                return Err(format!("campaign {id} is drawn in parts while drawn, or without frozen inputs"));
            }
            if drawing.header.campaign != *id || drawing.tasks.len() >= drawing.header.parts.len() {
                return Err(format!("campaign {id}'s draw in parts is filed wrong or complete"));
            }
        }
        for (id, drawn) in &self.drawn {
            let campaign = programme.campaign(*id).ok_or(format!("campaign {id} was drawn in parts but missing"))?;
            let record = campaign.draw.as_ref().ok_or(format!("campaign {id} was drawn in parts but has no draw"))?;
            if !record.result.inspections.is_empty() || !record.tasks.is_empty() || self.drawing.contains_key(id) {
                return Err(format!("campaign {id} drawn in parts keeps its inspections in its tasks only"));
            }
            if drawn.tasks.len() != drawn.parts.len() {
                return Err(format!("campaign {id} has one task range per part"));
            }
        }
        let ranges = self.drawing.values().flat_map(|d| &d.tasks).chain(self.drawn.values().flat_map(|d| &d.tasks));
        for range in ranges {
            if range.first.0 == 0 || range.first.0 + u64::from(range.count) > next_task_id {
                return Err(format!("a draw's task range from {} is not of tasks created", range.first));
            }
        }
        Ok(())
    }
}

impl Ledger {
    /// Campaign `id`'s draw in parts under way.
    pub fn drawing_in_parts(&self, id: u64) -> Option<&Drawing> {
        self.draws_in_parts.drawing.get(&id)
    }

    /// The campaigns whose draw in parts is under way.
    pub fn draws_under_way(&self) -> impl Iterator<Item = &Drawing> {
        self.draws_in_parts.drawing.values()
    }

    /// What the core keeps of campaign `id`'s draw, when it was drawn in parts.
    pub fn drawn_in_parts(&self, id: u64) -> Option<&DrawnInParts> {
        self.draws_in_parts.drawn.get(&id)
    }

    /// The inspection tasks of campaign `id`'s draw, in the draw's order (either kind of draw).
    pub fn drawn_tasks(&self, id: u64) -> Vec<TaskId> {
        if let Some(drawn) = self.draws_in_parts.drawn.get(&id) {
            return drawn.tasks.iter().flat_map(|range| range.ids()).collect();
        }
        self.programme.campaign(id).and_then(|c| c.draw.as_ref()).map(|draw| draw.tasks.clone()).unwrap_or_default()
    }

    /// Whether campaign `campaign`'s draw (either kind, under way or done) made task `task`.
    pub fn draw_made(&self, campaign: u64, task: TaskId) -> bool {
        let in_ranges = |ranges: &[TaskRange]| {
            ranges.iter().any(|range| range.first <= task && task.0 < range.first.0 + u64::from(range.count))
        };
        if let Some(drawing) = self.draws_in_parts.drawing.get(&campaign) {
            return in_ranges(&drawing.tasks);
        }
        if let Some(drawn) = self.draws_in_parts.drawn.get(&campaign) {
            return in_ranges(&drawn.tasks);
        }
        self.programme.campaign(campaign).and_then(|c| c.draw.as_ref()).is_some_and(|draw| draw.tasks.contains(&task))
    }

    /// How many inspections campaign `id`'s draw made (either kind of draw).
    pub fn drawn_inspections(&self, id: u64) -> u64 {
        if let Some(drawn) = self.draws_in_parts.drawn.get(&id) {
            return drawn.inspections();
        }
        self.programme.campaign(id).and_then(|c| c.draw.as_ref()).map_or(0, |d| d.result.inspections.len() as u64)
    }

    /// Whether campaign `id` has a draw in parts under way (no draw in one entry may then be
    /// recorded).
    pub(super) fn is_drawing_in_parts(&self, id: u64) -> bool {
        self.draws_in_parts.drawing.contains_key(&id)
    }

    pub(super) fn begin_draw_in_parts(&mut self, stamp_ms: u64, actor: &Actor, header: &DrawHeader) -> CommandResult {
        let regions = self.regions();
        let id = header.campaign;
        let campaign = self.programme.campaigns.get(&id).ok_or_else(|| Rejection::NoSuch(format!("campaign {id}")))?;
        super::checks::command_over(&regions, actor, campaign.spec.bureau, "draw campaigns")?;
        if campaign.draw.is_some() {
            return Err(conflict(ConflictCode::CampaignDrawn, format!("campaign {id} is drawn already")));
        }
        if let Some(drawing) = self.draws_in_parts.drawing.get(&id) {
            return if drawing.header == *header {
                // A retry, or another leader taking up the same draw: it goes on from its parts.
                Err(Rejection::NothingToRecord(format!("campaign {id}'s draw is begun; its parts are coming in")))
            } else {
                Err(conflict(ConflictCode::CampaignDrawn, format!("campaign {id} is being drawn")))
            };
        }
        validate::dispatch(
            &regions,
            campaign.spec.bureau,
            campaign.spec.bureau,
            stamp_ms,
            header.ack_deadline_ms,
            header.complete_deadline_ms,
        )?;
        check_header_shape(header)?;
        let inputs = self.programme.sealed_inputs.get(&id).ok_or_else(|| {
            conflict(ConflictCode::NoBeacon, format!("campaign {id} has no beacon yet: a second person fixes it first"))
        })?;
        check_summary(inputs, &header.summary, header.inspections())?;
        for (position, stratum) in header.summary.strata.iter().enumerate() {
            let drawn: u64 = header.parts.iter().map(|part| part.quota_counts[position]).sum();
            if drawn != stratum.quota {
                return Err(invalid("draw", "the result breaks a rule of the draw: each stratum drew its quota"));
            }
        }
        let drawing = Drawing {
            header: header.clone(),
            drawn_by: actor.user.clone(),
            began_at_ms: stamp_ms,
            tasks: Vec::new(),
            entities: BTreeSet::new(),
        };
        self.draws_in_parts.drawing.insert(id, drawing);
        let campaign = self.programme.campaigns.get(&id).expect("found above").clone();
        Ok(Applied::of_record(ProgrammeRecord::Campaign(campaign), Vec::new()))
    }

    pub(super) fn record_draw_part(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        id: u64,
        part: u32,
        inspections: &[DrawnInspection],
        placements: &[DrawPlacement],
    ) -> CommandResult {
        let regions = self.regions();
        let campaign = self.programme.campaigns.get(&id).ok_or_else(|| Rejection::NoSuch(format!("campaign {id}")))?;
        // The group's own process takes up a draw a command centre began (after a failover);
        // the parts can only be those its header named.
        if actor.role != crate::command::Role::System {
            super::checks::command_over(&regions, actor, campaign.spec.bureau, "draw campaigns")?;
        }
        if self.draws_in_parts.drawn.contains_key(&id) {
            return Err(Rejection::NothingToRecord(format!("campaign {id} is drawn: every part is recorded")));
        }
        let drawing = self.draws_in_parts.drawing.get(&id).ok_or_else(|| {
            Rejection::NotYet(format!("campaign {id} has no draw in parts begun: its header comes first"))
        })?;
        let part = part as usize;
        match part.cmp(&drawing.next_part()) {
            std::cmp::Ordering::Less => {
                return Err(Rejection::NothingToRecord(format!("part {part} of campaign {id}'s draw is recorded")))
            }
            std::cmp::Ordering::Greater => {
                return Err(Rejection::NotYet(format!(
                    "part {} of campaign {id}'s draw comes before part {part}",
                    drawing.next_part()
                )))
            }
            std::cmp::Ordering::Equal => {}
        }
        let named = &drawing.header.parts[part];
        if part_digest(&drawing.header.summary.strata, inspections) != *named {
            return Err(invalid("inspections", format!("not the part {part} the draw's header named")));
        }
        if placements.len() != inspections.len() {
            return Err(invalid("placements", "one placement per inspection"));
        }
        for (inspection, placement) in inspections.iter().zip(placements) {
            if let DrawPlacement::HandedTo { to_group, from_group } = placement {
                // A dispatch down the tree, to the group whose tree holds the bureau.
                let down = to_group != from_group
                    && regions.is_within(*to_group, *from_group)
                    && regions.is_within(inspection.bureau, *to_group);
                if !down {
                    return Err(invalid(
                        "placements",
                        format!(
                            "bureau {} is not handed from group {from_group} down to group {to_group}",
                            inspection.bureau
                        ),
                    ));
                }
            }
        }
        let inputs = self.programme.sealed_inputs.get(&id).expect("checked: a draw under way has frozen inputs");
        let rules = InspectionRules::new(&regions, &self.departments, inputs);
        let mut entities = BTreeSet::new();
        for inspection in inspections {
            rules.check(inspection)?;
            let uscc = inspection.subject.uscc.as_ref().expect("checked: every drawn entity has a USCC");
            if drawing.entities.contains(uscc) || !entities.insert(uscc) {
                return Err(invalid(
                    "draw",
                    "the result breaks a rule of the draw: an entity is inspected once per draw",
                ));
            }
        }

        // Every check passed: the part's tasks, in the draw's order.
        let spec = inputs.spec.clone();
        let (ack_deadline_ms, complete_deadline_ms) =
            (drawing.header.ack_deadline_ms, drawing.header.complete_deadline_ms);
        let mut tasks = Vec::with_capacity(inspections.len());
        for (inspection, placement) in inspections.iter().zip(placements) {
            tasks.push(self.draw_inspection_task(
                stamp_ms,
                actor,
                id,
                &spec,
                inspection,
                ack_deadline_ms,
                complete_deadline_ms,
                placement,
            ));
        }
        let range = TaskRange { first: tasks[0].id, count: tasks.len() as u32 };
        assert!(range.ids().eq(tasks.iter().map(|task| task.id)), "one part's tasks take consecutive ids");
        let drawing = self.draws_in_parts.drawing.get_mut(&id).expect("found above");
        drawing.tasks.push(range);
        drawing.entities.extend(inspections.iter().filter_map(|i| i.subject.uscc.clone()));
        if drawing.next_part() == drawing.header.parts.len() {
            self.finish_draw_in_parts(id);
        }
        let campaign = self.programme.campaigns.get(&id).expect("found above").clone();
        Ok(Applied::of_record(ProgrammeRecord::Campaign(campaign), tasks))
    }

    /// The last part is in: the campaign is drawn, its record keeping the summary and the
    /// inputs, the core the parts' hashes and task ranges.
    fn finish_draw_in_parts(&mut self, id: u64) {
        let drawing = self.draws_in_parts.drawing.remove(&id).expect("a draw under way");
        let inputs = self.programme.sealed_inputs.remove(&id).expect("a draw under way has frozen inputs");
        let header = drawing.header;
        let record = DrawRecord {
            inputs,
            result: header.summary.with_inspections(Vec::new()),
            ack_deadline_ms: header.ack_deadline_ms,
            complete_deadline_ms: header.complete_deadline_ms,
            drawn_at_ms: drawing.began_at_ms,
            drawn_by: drawing.drawn_by,
            tasks: Vec::new(),
        };
        let campaign = self.programme.campaigns.get_mut(&id).expect("a draw under way is of a campaign");
        Arc::make_mut(campaign).draw = Some(Box::new(record));
        let drawn = DrawnInParts { parts: header.parts, tasks: drawing.tasks };
        self.draws_in_parts.drawn.insert(id, drawn);
    }
}

/// A header's own shape: hashes, part sizes and counts, within the limits.
fn check_header_shape(header: &DrawHeader) -> Result<(), Rejection> {
    if header.parts.is_empty() || header.parts.len() > DRAW_PARTS_MAX {
        return Err(Rejection::LimitReached(format!(
            "a draw in parts has 1 to {DRAW_PARTS_MAX} parts ({} given): at most {DRAW_IN_PARTS_INSPECTIONS_MAX} inspections",
            header.parts.len()
        )));
    }
    let last = header.parts.len() - 1;
    for (position, part) in header.parts.iter().enumerate() {
        let full = part.inspections as usize == DRAW_PART_INSPECTIONS;
        let sized = if position == last {
            part.inspections >= 1 && part.inspections as usize <= DRAW_PART_INSPECTIONS
        } else {
            full
        };
        if !sized || !is_hex_sha256(&part.sha256) || part.quota_counts.len() != header.summary.strata.len() {
            return Err(invalid("parts", format!("part {position} is not a part of {DRAW_PART_INSPECTIONS} inspections (the last fewer) with its hash and counts")));
        }
        if part.top_ups > part.inspections || part.quota_counts.iter().any(|count| *count > u64::from(part.inspections))
        {
            return Err(invalid("parts", format!("part {position} counts more than its inspections")));
        }
    }
    Ok(())
}
