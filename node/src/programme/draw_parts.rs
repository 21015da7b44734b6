//! Draws committed in parts, on the node (`ledger::campaign::draw_parts`): the draw route
//! proposes the header and then the parts in order; if leadership moves meanwhile, the new
//! leader takes the parts up (`run`), drawing again from the ledger's frozen inputs and the
//! directory file (the same draw: it is a pure function of them), and the ledger takes only the
//! parts the header named. One driver per campaign on a node (`Drivers`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ledger::campaign::draw_parts::{DrawPlacement, DRAW_PART_INSPECTIONS};
use ledger::campaign::{DrawInputs, DrawResult, ProgrammeAction};
use ledger::{Action, Actor, Command, Rejection, Role};
use tokio_util::sync::CancellationToken;

use crate::api::time;
use crate::api::ApiError;
use crate::batcher::ProposeError;
use crate::kept_files::{replication, Shelf};
use crate::state::AppState;

/// How often a leader looks for draws whose parts are not all in.
const RESUME_EVERY: Duration = Duration::from_secs(1);
/// The longest wait before taking up again a draw whose parts could not be taken up (its
/// directory unavailable, a part refused): the wait doubles from `RESUME_EVERY` up to this.
const RESUME_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The user named on parts a leader takes up for a draw another leader began.
const RESUMER_USER: &str = "system:draw-parts";

/// The campaigns whose parts this node proposes now.
#[derive(Clone, Default)]
pub struct Drivers(Arc<Mutex<BTreeSet<u64>>>);

/// Campaign `id`'s parts are this holder's to propose until it is dropped.
pub struct Driving {
    drivers: Drivers,
    id: u64,
}

impl Drivers {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<u64>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Campaign `id`'s parts, unless another task of this node proposes them already.
    pub fn take(&self, id: u64) -> Option<Driving> {
        self.lock().insert(id).then(|| Driving { drivers: self.clone(), id })
    }
}

impl Drop for Driving {
    fn drop(&mut self) {
        self.drivers.lock().remove(&self.id);
    }
}

/// The draw of `inputs` from the directory file they name, computed on the blocking pool and
/// checked by the ledger's rules of a draw: a draw in parts is proposed only when all of it
/// would be taken.
pub async fn draw_from(state: &AppState, inputs: DrawInputs) -> Result<DrawResult, ApiError> {
    let directory = replication::obtain_mapped(state, Shelf::Directories, &inputs.spec.entity_directory).await?;
    let regions = state.regions();
    let departments = state.store.read().ledger.departments().clone();
    let campaign = inputs.campaign;
    let started = std::time::Instant::now();
    let drawn = tokio::task::spawn_blocking(move || {
        let drawn = ::draw::draw(&regions, &inputs, &directory).map_err(|e| match e {
            ::draw::DrawError::NoTeam { .. } => ApiError::Conflict { code: "no_team", message: e.to_string() },
            other => ApiError::Internal(other.to_string()),
        })?;
        ledger::campaign::check_result(&regions, &departments, &inputs, &drawn).map_err(
            |rejection| match rejection {
                Rejection::Conflict { .. } => ApiError::from(rejection),
                other => ApiError::Internal(format!("the draw breaks the ledger's rules of a draw: {other}")),
            },
        )?;
        Ok::<_, ApiError>(drawn)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    tracing::info!(
        campaign,
        entities_in_scope = drawn.entities_in_scope,
        inspections = drawn.inspections.len(),
        drawn_ms = started.elapsed().as_millis() as u64,
        "drew a campaign"
    );
    Ok(drawn)
}

/// Proposes campaign `id`'s parts from the next one on, in order, from `drawn` (the draw as
/// this node computed it) or drawn again; `Ok` once the campaign is drawn. Stops at the first
/// part not taken: `NotLeader` when leadership moved (the new leader goes on).
pub async fn record_parts(
    state: &AppState,
    _driving: &Driving,
    id: u64,
    actor: &Actor,
    drawn: Option<Arc<DrawResult>>,
) -> Result<(), PartsStopped> {
    let mut drawn = drawn;
    loop {
        let next = match state.store.read().ledger.drawing_in_parts(id) {
            Some(drawing) => drawing.next_part(),
            None => return Ok(()),
        };
        let result = match &drawn {
            Some(result) => result.clone(),
            None => {
                let inputs = state.store.read().ledger.draw_inputs(id).map_err(ApiError::from)?;
                let result = Arc::new(draw_from(state, inputs).await?);
                drawn = Some(result.clone());
                result
            }
        };
        let Some(inspections) = result.inspections.chunks(DRAW_PART_INSPECTIONS).nth(next) else {
            return Err(PartsStopped::Refused(ApiError::Internal(format!(
                "campaign {id}'s draw has no part {next}: drawn again, it is not the draw begun"
            ))));
        };
        let regions = state.regions();
        let placements = inspections.iter().map(|inspection| placement(state, &regions, inspection.bureau)).collect();
        let action = ProgrammeAction::RecordDrawPart {
            campaign: id,
            part: next as u32,
            inspections: inspections.to_vec(),
            placements,
        };
        let parts = result.inspections.len().div_ceil(DRAW_PART_INSPECTIONS);
        let entry_bytes = ledger::codec::encode(&action).map_or(0, |bytes| bytes.len());
        let command = Command {
            stamp_ms: time::now_ms(),
            actor: actor.clone(),
            idempotency: None,
            action: Action::Programme(Box::new(action)),
        };
        let proposed = state.batcher.propose(command).await;
        if matches!(proposed, Ok(Ok(_))) {
            tracing::info!(campaign = id, part = next, parts, entry_bytes, "recorded a part of a draw");
        }
        match proposed {
            Ok(Ok(_)) if next + 1 < parts => tokio::time::sleep(state.draw_part_interval).await,
            Ok(Ok(_)) | Ok(Err(Rejection::NothingToRecord(_))) | Ok(Err(Rejection::NotYet(_))) => {}
            Ok(Err(rejection)) => {
                tracing::error!(campaign = id, part = next, %rejection, "a part of a draw was refused");
                return Err(PartsStopped::Refused(ApiError::from(rejection)));
            }
            Err(ProposeError::NotLeader) => return Err(PartsStopped::NotLeader),
            Err(error) => return Err(PartsStopped::Refused(error.into())),
        }
    }
}

/// Where an inspection of `bureau` is worked: here when this group hosts the bureau (or no
/// known group does), else handed to the group that does.
fn placement(state: &AppState, regions: &ledger::Regions, bureau: ledger::BureauCode) -> DrawPlacement {
    let federation = &state.federation;
    match federation.host_of(regions, bureau) {
        Some(host) if host != federation.group => {
            DrawPlacement::HandedTo { to_group: host, from_group: federation.group }
        }
        _ => DrawPlacement::Here,
    }
}

/// Why `record_parts` stopped before the campaign was drawn.
pub enum PartsStopped {
    /// This node no longer leads: the new leader takes the parts up.
    NotLeader,
    Refused(ApiError),
}

impl From<ApiError> for PartsStopped {
    fn from(error: ApiError) -> PartsStopped {
        PartsStopped::Refused(error)
    }
}

/// On the leader, takes up every draw whose parts are not all in and that no task of this node
/// proposes (a draw begun by a leader that died), until `shutdown`.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(RESUME_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Campaigns whose parts could not be taken up: when to try again, and the wait after that.
    let backoff: Arc<Mutex<BTreeMap<u64, (tokio::time::Instant, Duration)>>> = Arc::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        if state.leading_term().is_none() {
            continue;
        }
        let under_way: Vec<u64> = state.store.read().ledger.draws_under_way().map(|d| d.header.campaign).collect();
        let now = tokio::time::Instant::now();
        {
            let mut backoff = backoff.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            backoff.retain(|id, _| under_way.contains(id));
        }
        for id in under_way {
            let due = backoff.lock().unwrap_or_else(|p| p.into_inner()).get(&id).is_none_or(|(next, _)| *next <= now);
            if !due {
                continue;
            }
            let Some(driving) = state.programme.draw_drivers.take(id) else { continue };
            let (state, backoff) = (state.clone(), backoff.clone());
            tokio::spawn(async move {
                let actor = Actor { user: RESUMER_USER.to_owned(), bureau: state.group_bureau, role: Role::System };
                tracing::info!(campaign = id, "taking up the parts of a draw begun by another leader");
                let stopped = record_parts(&state, &driving, id, &actor, None).await;
                let mut backoff = backoff.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                match stopped {
                    Ok(()) => {
                        tracing::info!(campaign = id, "the draw's last part is in");
                        backoff.remove(&id);
                    }
                    Err(PartsStopped::NotLeader) => {}
                    Err(PartsStopped::Refused(error)) => {
                        let wait =
                            backoff.get(&id).map_or(RESUME_EVERY, |(_, wait)| (*wait * 2).min(RESUME_BACKOFF_MAX));
                        tracing::warn!(
                            campaign = id,
                            ?error,
                            wait_s = wait.as_secs(),
                            "the parts of a draw could not be taken up"
                        );
                        backoff.insert(id, (tokio::time::Instant::now() + wait, wait));
                    }
                }
            });
        }
    }
}
