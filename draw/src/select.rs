//! The draw (双随机): which entities are inspected, for which items, by which inspectors; a
//! deterministic function of the committed inputs and the directory file, so anyone holding
//! both can recompute it.
//!
//! Entities: every entity in scope gets a rank, the first 8 bytes of SHA-256(seed, 0x01, USCC)
//! (ties, about one in 10^12 draws of ten million, go to the earlier line of the pinned file).
//! A stratum is an item and a risk class; it draws its quota (the class's ratio of its
//! population, rounded up) of lowest ranks. Because the rank does not depend on the item, an
//! entity in several items' strata tends to be drawn for all of them, and the items that fall on
//! one entity become one joint inspection (对同一市场主体的多个检查事项应一次性完成). If the
//! inspections fall under 3% of the eligible entities, the lowest-ranked undrawn entities top
//! them up.
//!
//! Inspectors: those of the entity's own bureau in the pool, ranked by SHA-256(seed, 0x02,
//! USCC, id); passed over when they lack every item's expertise, were on the entity's last team
//! (rotation), or declared a conflict (a recusal on record). The team first takes, in rank order,
//! someone for each item's expertise not yet covered, then (in the office-and-stations mode) an
//! office member and a station member if missing, then fills up by rank.

use std::collections::{BTreeMap, HashMap, HashSet};

use ledger::campaign::departments::is_department_inspector;
use ledger::campaign::{
    ceil_ratio, hex, DrawInputs, DrawResult, DrawnInspection, EntityHistory, InspectionItem, Inspector, InspectorMode,
    Recusal, RiskClass, Stratum, DRAW_RATIO_FLOOR_BP,
};
use ledger::{BureauCode, Regions, Subject, Uscc};
use sha2::{Digest, Sha256};

use crate::directory::{self, EntityRow, ScopeCache};
use crate::risk::RiskScorer;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DrawError {
    #[error(
        "the directory file is not the one the campaign names: its SHA-256 is {actual}, the campaign's {expected}"
    )]
    WrongDirectory { expected: String, actual: String },
    #[error("the directory file is damaged: {0}")]
    Directory(String),
    #[error("no team for {uscc} (bureau {bureau}): {reason}")]
    NoTeam { uscc: String, bureau: BureauCode, reason: String },
    #[error("a campaign has at most 32 items")]
    TooManyItems,
}

/// The inspections of one run of drawn entities, with the recusals on record for them.
type InspectionRun = (Vec<DrawnInspection>, Vec<Recusal>);

/// An eligible entity, kept small: a province's directory has millions.
#[derive(Clone, Copy)]
struct Candidate {
    rank: u64,
    /// Byte offset of its line in the file; the line is parsed again if it is drawn.
    offset: usize,
    class: RiskClass,
    /// The items that apply to it, one bit per item in the campaign's order.
    items: u32,
}

fn rank(seed: &[u8; 32], domain: u8, parts: &[&[u8]]) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(seed);
    hasher.update([domain]);
    for part in parts {
        hasher.update(part);
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

const ENTITY_DOMAIN: u8 = 1;
const INSPECTOR_DOMAIN: u8 = 2;

/// Computes the draw of `inputs` over the directory file `directory`.
/// `regions` is the group's table, which decides the scope and the regional risk points.
pub fn draw(regions: &Regions, inputs: &DrawInputs, directory: &[u8]) -> Result<DrawResult, DrawError> {
    let spec = &inputs.spec;
    if spec.items.len() > 32 {
        return Err(DrawError::TooManyItems);
    }
    let seed = inputs.seed();
    let classes = drawn_classes(spec);
    // Pass 1, on every core over slices of the file, while one more thread hashes it: rank and
    // classify every eligible entity. Only a file with the pinned hash is drawn from, and that
    // file was checked at import: rows are split, not checked again.
    let body = directory::body_offset(directory);
    let (actual, ranked) = std::thread::scope(|scope| {
        let hash = scope.spawn(|| directory::sha256_hex(directory));
        let workers: Vec<_> = directory::slices(directory, body, directory::workers())
            .into_iter()
            .map(|(start, end, first_line)| {
                scope.spawn(move || rank_slice(inputs, regions, &seed, directory, start, end, first_line))
            })
            .collect();
        let ranked: Vec<Result<(Vec<Candidate>, u64), DrawError>> =
            workers.into_iter().map(|w| w.join().expect("a drawing thread")).collect();
        (hash.join().expect("the hashing thread"), ranked)
    });
    if actual != spec.entity_directory {
        return Err(DrawError::WrongDirectory { expected: spec.entity_directory.clone(), actual });
    }
    let mut candidates = Vec::new();
    let mut entities_in_scope = 0u64;
    for slice in ranked {
        let (slice_candidates, in_scope) = slice?;
        candidates.extend(slice_candidates);
        entities_in_scope += in_scope;
    }
    // Rank order once: every stratum is then a filtered prefix walk.
    candidates.sort_unstable_by_key(|c| (c.rank, c.offset));

    // Pass 2: each stratum (item, class) takes its quota of lowest ranks: one pass counts the
    // populations, one walks the candidates in rank order filling the quotas.
    let class_slot = |class: RiskClass| RiskClass::ALL.iter().position(|c| *c == class).expect("a class");
    let mut populations = vec![[0u64; 3]; spec.items.len()];
    for candidate in &candidates {
        for (bit, counts) in populations.iter_mut().enumerate() {
            if candidate.items & (1 << bit) != 0 {
                counts[class_slot(candidate.class)] += 1;
            }
        }
    }
    let quotas: Vec<[u64; 3]> = populations
        .iter()
        .map(|counts| {
            let mut quotas = [0; 3];
            for class in &classes {
                quotas[class_slot(*class)] = ceil_ratio(counts[class_slot(*class)], spec.ratios.of(*class));
            }
            quotas
        })
        .collect();
    let mut taken = vec![[0u64; 3]; spec.items.len()];
    let mut drawn: BTreeMap<usize, u32> = BTreeMap::new(); // candidate index → items drawn for
    for (index, candidate) in candidates.iter().enumerate() {
        let slot = class_slot(candidate.class);
        for bit in 0..spec.items.len() {
            if candidate.items & (1 << bit) != 0 && taken[bit][slot] < quotas[bit][slot] {
                taken[bit][slot] += 1;
                *drawn.entry(index).or_default() |= 1 << bit;
            }
        }
    }
    let mut strata = Vec::new();
    for (bit, item) in spec.items.iter().enumerate() {
        for class in &classes {
            let slot = class_slot(*class);
            let (population, quota) = (populations[bit][slot], quotas[bit][slot]);
            strata.push(Stratum { item: item.code.clone(), class: *class, population, quota });
        }
    }
    // The 3% floor over the eligible entities, topped up by rank.
    let eligible = candidates.len() as u64;
    let floor = ceil_ratio(eligible, DRAW_RATIO_FLOOR_BP) as usize;
    let missing = floor.saturating_sub(drawn.len());
    let top_up: Vec<usize> = (0..candidates.len()).filter(|i| !drawn.contains_key(i)).take(missing).collect();

    // Pass 3, on every core over runs of the drawn entities: their inspections and teams.
    let teams = TeamDrawer::new(inputs, &seed);
    let chosen = drawn
        .into_iter()
        .map(|(i, items)| (i, items, false))
        .chain(top_up.into_iter().map(|i| (i, candidates[i].items, true)));
    let mut chosen: Vec<(usize, u32, bool)> = chosen.collect();
    chosen.sort_unstable_by_key(|(index, _, _)| *index);
    let run = chosen.len().div_ceil(directory::workers()).max(1);
    let runs: Vec<Result<InspectionRun, DrawError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = chosen
            .chunks(run)
            .map(|run| {
                let (teams, candidates) = (&teams, &candidates);
                scope.spawn(move || {
                    let mut inspections = Vec::with_capacity(run.len());
                    let mut recusals = Vec::new();
                    for (index, items, top_up) in run {
                        inspections.push(inspection(
                            inputs,
                            teams,
                            directory,
                            candidates[*index],
                            *items,
                            *top_up,
                            &mut recusals,
                        )?);
                    }
                    Ok((inspections, recusals))
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("a drawing thread")).collect()
    });
    let mut inspections = Vec::with_capacity(chosen.len());
    let mut recusals = Vec::new();
    for run in runs {
        let (run_inspections, run_recusals) = run?;
        inspections.extend(run_inspections);
        recusals.extend(run_recusals);
    }
    Ok(DrawResult { seed: hex(&seed), entities_in_scope, eligible, strata, inspections, recusals })
}

fn drawn_classes(spec: &ledger::campaign::CampaignSpec) -> Vec<RiskClass> {
    RiskClass::ALL.iter().copied().filter(|c| spec.risk_classes.is_empty() || spec.risk_classes.contains(c)).collect()
}

/// Pass 1 over `directory[start..end]`: the eligible entities with their ranks, classes and
/// items, and how many entities lie in scope.
fn rank_slice(
    inputs: &DrawInputs,
    regions: &Regions,
    seed: &[u8; 32],
    directory: &[u8],
    start: usize,
    end: usize,
    first_line: u64,
) -> Result<(Vec<Candidate>, u64), DrawError> {
    let spec = &inputs.spec;
    let histories: HashMap<&str, &EntityHistory> = inputs.histories.iter().map(|h| (h.uscc.as_str(), h)).collect();
    // Entities inspected as often as the year allows are in scope but not eligible.
    let capped: HashSet<&str> =
        inputs.year_cap.iter().flat_map(|cap| cap.reached.iter().map(|uscc| uscc.as_str())).collect();
    let mut scope = ScopeCache::new(regions, spec.scope_region);
    let mut scorer = RiskScorer::new(regions, &spec.scoring);
    let classes = drawn_classes(spec);
    let mut candidates = Vec::new();
    let mut entities_in_scope = 0u64;
    let text = std::str::from_utf8(&directory[start..end]).map_err(|e| DrawError::Directory(e.to_string()))?;
    let mut offset = start;
    for (i, line) in text.split('\n').enumerate() {
        let line_start = offset;
        offset += line.len() + 1;
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let row = directory::fields(line)
            .ok_or_else(|| DrawError::Directory(format!("line {}: not a directory row", first_line + i as u64)))?;
        if !scope.contains(row.region) {
            continue;
        }
        entities_in_scope += 1;
        if !capped.is_empty() && capped.contains(row.uscc) {
            continue;
        }
        if !spec.industries.is_empty() && !spec.industries.iter().any(|i| i == row.industry) {
            continue;
        }
        let history = if histories.is_empty() { None } else { histories.get(row.uscc).copied() };
        let class = scorer.class(&row, history);
        if !classes.contains(&class) {
            continue;
        }
        let items = item_mask(&spec.items, row.industry);
        if items == 0 {
            continue;
        }
        let rank = rank(seed, ENTITY_DOMAIN, &[row.uscc.as_bytes()]);
        candidates.push(Candidate { rank, offset: line_start, class, items });
    }
    Ok((candidates, entities_in_scope))
}

/// One drawn entity's inspection: its row read again, its items, its team.
fn inspection(
    inputs: &DrawInputs,
    teams: &TeamDrawer<'_>,
    directory: &[u8],
    candidate: Candidate,
    items: u32,
    top_up: bool,
    recusals: &mut Vec<Recusal>,
) -> Result<DrawnInspection, DrawError> {
    let spec = &inputs.spec;
    let line = &directory[candidate.offset..];
    let end = line.iter().position(|b| *b == b'\n').unwrap_or(line.len());
    let text =
        std::str::from_utf8(&line[..end]).map_err(|e| DrawError::Directory(e.to_string()))?.trim_end_matches('\r');
    let row =
        directory::fields(text).ok_or_else(|| DrawError::Directory("a drawn row is not a directory row".into()))?;
    let uscc = Uscc::parse(row.uscc).map_err(|e| DrawError::Directory(format!("uscc {}: {e}", row.uscc)))?;
    let items: Vec<&InspectionItem> =
        spec.items.iter().enumerate().filter(|(bit, _)| items & (1 << bit) != 0).map(|(_, item)| item).collect();
    let team = teams.team(&row, &items, recusals)?;
    Ok(DrawnInspection {
        subject: Subject {
            uscc: Some(uscc),
            name: row.name.to_owned(),
            region_code: row.region,
            address: row.address.to_owned(),
        },
        industry: row.industry.to_owned(),
        risk_class: candidate.class,
        items: items.iter().map(|item| item.code.clone()).collect(),
        inspectors: team,
        bureau: row.region,
        top_up,
    })
}

fn item_mask(items: &[InspectionItem], industry: &str) -> u32 {
    items.iter().enumerate().filter(|(_, item)| item.applies_to(industry)).fold(0, |mask, (bit, _)| mask | 1 << bit)
}

/// Draws teams from the pool, by the entity's bureau.
struct TeamDrawer<'a> {
    seed: &'a [u8; 32],
    size: usize,
    mode: &'a InspectorMode,
    by_bureau: HashMap<BureauCode, Vec<&'a Inspector>>,
    conflicts: HashSet<(&'a str, &'a str)>,
    last_teams: HashMap<&'a str, &'a [String]>,
}

impl<'a> TeamDrawer<'a> {
    fn new(inputs: &'a DrawInputs, seed: &'a [u8; 32]) -> TeamDrawer<'a> {
        let mut by_bureau: HashMap<BureauCode, Vec<&Inspector>> = HashMap::new();
        for inspector in &inputs.pool {
            by_bureau.entry(inspector.bureau).or_default().push(inspector);
        }
        TeamDrawer {
            seed,
            size: inputs.spec.inspectors_per_inspection as usize,
            mode: &inputs.spec.inspector_mode,
            by_bureau,
            conflicts: inputs.conflicts.iter().map(|(id, uscc)| (id.as_str(), uscc.as_str())).collect(),
            last_teams: inputs.histories.iter().map(|h| (h.uscc.as_str(), h.last_team.as_slice())).collect(),
        }
    }

    fn team(
        &self,
        row: &EntityRow<'_>,
        items: &[&InspectionItem],
        recusals: &mut Vec<Recusal>,
    ) -> Result<Vec<String>, DrawError> {
        let no_team = |reason: String| DrawError::NoTeam { uscc: row.uscc.to_owned(), bureau: row.region, reason };
        let last_team = self.last_teams.get(row.uscc).copied().unwrap_or_default();
        let mut ranked: Vec<(u64, &'a Inspector)> = Vec::new();
        for inspector in self.by_bureau.get(&row.region).map(Vec::as_slice).unwrap_or_default() {
            if !items.iter().any(|item| inspector.expertise.contains(&item.expertise))
                || last_team.contains(&inspector.id)
            {
                continue;
            }
            if self.conflicts.contains(&(inspector.id.as_str(), row.uscc)) {
                recusals.push(Recusal {
                    uscc: Uscc::parse(row.uscc).expect("parsed"),
                    inspector: inspector.id.clone(),
                    reason: "declared conflict of interest (利害关系回避)".into(),
                });
                continue;
            }
            let rank = rank(self.seed, INSPECTOR_DOMAIN, &[row.uscc.as_bytes(), inspector.id.as_bytes()]);
            ranked.push((rank, inspector));
        }
        ranked.sort_unstable_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));

        let mut needs: Vec<Need> = Vec::new();
        for item in items {
            if !needs.contains(&Need::Expertise(&item.expertise)) {
                needs.push(Need::Expertise(&item.expertise));
            }
        }
        if *self.mode == InspectorMode::OfficeAndStations {
            needs.extend([Need::Office, Need::Station]);
        }
        if ranked.len() < self.size {
            return Err(no_team(format!(
                "{} eligible inspectors, a team needs {} (never alone)",
                ranked.len(),
                self.size
            )));
        }
        if let Some(need) = needs.iter().find(|need| !ranked.iter().any(|(_, i)| need.met_by(i))) {
            return Err(no_team(format!("nobody eligible {}", need.describe())));
        }
        // The first feasible team in rank order: each slot takes the lowest-ranked inspector
        // with whom the rest of the needs can still be met by the remaining slots.
        let candidates: Vec<&Inspector> = ranked.iter().map(|(_, i)| *i).collect();
        let mut team: Vec<&'a Inspector> = Vec::with_capacity(self.size);
        while team.len() < self.size {
            let slots_after = self.size - team.len() - 1;
            let next = ranked.iter().map(|(_, i)| *i).find(|candidate| {
                if team.iter().any(|t| t.id == candidate.id) {
                    return false;
                }
                team.push(candidate);
                let feasible = completable(&needs, &team, &candidates, slots_after);
                team.pop();
                feasible
            });
            match next {
                Some(inspector) => team.push(inspector),
                None => {
                    return Err(no_team(format!(
                        "no team of {} meets every item's expertise and the mode's mix",
                        self.size
                    )))
                }
            }
        }
        Ok(team.into_iter().map(|i| i.id.clone()).collect())
    }
}

/// What a team must have among its members.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need<'a> {
    /// Someone with an item's expertise.
    Expertise(&'a str),
    /// Someone from the bureau's office (office-and-stations mode).
    Office,
    /// Someone from a station (office-and-stations mode).
    Station,
}

impl Need<'_> {
    fn met_by(&self, inspector: &Inspector) -> bool {
        match self {
            Need::Expertise(expertise) => inspector.expertise.iter().any(|e| e == expertise),
            // Another department's inspector is neither the bureau's office nor a station.
            Need::Office => inspector.station.is_none() && !is_department_inspector(inspector),
            Need::Station => inspector.station.is_some() && !is_department_inspector(inspector),
        }
    }

    fn describe(&self) -> String {
        match self {
            Need::Expertise(expertise) => format!("has the expertise `{expertise}`"),
            Need::Office => "is from the bureau's office".into(),
            Need::Station => "is from a station".into(),
        }
    }
}

/// Whether at most `slots` more of `candidates` can meet the needs `team` leaves open. A search
/// over the first open need's candidates: teams have at most 8 members and a bureau's pool a few
/// dozen, so it stays small.
fn completable(needs: &[Need<'_>], team: &[&Inspector], candidates: &[&Inspector], slots: usize) -> bool {
    let Some(open) = needs.iter().find(|need| !team.iter().any(|member| need.met_by(member))) else {
        return true;
    };
    if slots == 0 {
        return false;
    }
    candidates.iter().filter(|c| open.met_by(c) && !team.iter().any(|t| t.id == c.id)).any(|candidate| {
        let mut extended = team.to_vec();
        extended.push(candidate);
        completable(needs, &extended, candidates, slots - 1)
    })
}
