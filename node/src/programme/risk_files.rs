//! Turning the entities' risk files on (`ledger::campaign::risk_files`): the leader proposes
//! `RiskFilesAction::Keep` once every member reads `risk-files-v1`. That one entry files every
//! task of history; from it on each event changes its entity's file, and beacons read the files.

use std::time::Duration;

use ledger::campaign::risk_files::RiskFilesAction;
use ledger::campaign::ProgrammeAction;
use ledger::{Action, Actor, Command, Rejection, Role};
use tokio_util::sync::CancellationToken;

use crate::api::time;
use crate::reference::FEATURE_RISK_FILES;
use crate::state::AppState;

/// How often a leader whose group keeps no risk files yet asks whether it may turn them on.
const TRY_EVERY: Duration = Duration::from_secs(2);
/// The wait after an attempt failed (a member on an older build): it doubles up to this.
const TRY_BACKOFF_MAX: Duration = Duration::from_secs(300);
/// The user named on the entry.
const KEEPER_USER: &str = "system:risk-files";

/// On the leader, turns the risk files on when they are not and every member reads them; ends
/// once they are kept (or at `shutdown`).
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let mut wait = TRY_EVERY;
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => return,
        }
        if state.store.read().ledger.risk_files().kept() {
            return;
        }
        if state.leading_term().is_none() {
            wait = TRY_EVERY;
            continue;
        }
        if let Err(error) = crate::reference::members_read(&state, FEATURE_RISK_FILES, "risk files").await {
            wait = (wait * 2).min(TRY_BACKOFF_MAX);
            tracing::info!(?error, wait_s = wait.as_secs(), "risk files wait for every member to read them");
            continue;
        }
        let command = Command {
            stamp_ms: time::now_ms(),
            actor: Actor { user: KEEPER_USER.to_owned(), bureau: state.group_bureau, role: Role::System },
            idempotency: None,
            action: Action::Programme(Box::new(ProgrammeAction::RiskFiles(RiskFilesAction::Keep))),
        };
        let started = std::time::Instant::now();
        match state.batcher.propose(command).await {
            Ok(Ok(_)) | Ok(Err(Rejection::NothingToRecord(_))) => {
                let files = state.store.read().ledger.risk_files().count();
                tracing::info!(files, took_ms = started.elapsed().as_millis() as u64, "risk files kept from now on");
                return;
            }
            Ok(Err(rejection)) => {
                tracing::error!(%rejection, "turning the risk files on was refused");
                wait = (wait * 2).min(TRY_BACKOFF_MAX);
            }
            Err(error) => {
                tracing::warn!(?error, "turning the risk files on did not commit");
                wait = TRY_EVERY;
            }
        }
    }
}
