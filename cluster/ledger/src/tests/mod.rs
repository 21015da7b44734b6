//! The ledger's tests, pure and in process: the transition table and the policy exhaustively
//! (`transitions`), federation between two ledgers (`federation`), machine intake (`intake`),
//! random histories (`proptests`), the inspection-item list (`item_list`), reference data through the log (`reference`), stations below the counties
//! (`organisation`) and what a hostile peer group can send (`trust`).

mod annual_plan;
mod federation;
mod intake;
mod item_list;
mod organisation;
mod proptests;
mod reference;
mod register;
mod transitions;
mod trust;

/// Replays `log` on a ledger whose records are kept in a `MemoryRecords`, checkpointing as a
/// node does: the changes are sealed every `every` commands and written `every / 2` commands
/// later (a checkpoint in progress while more commands apply), and every third checkpoint the
/// ledger is reopened from its core and the records, as after a restart.
pub fn replay_with_checkpoints(log: &[crate::Command], every: usize) -> crate::Ledger {
    let records = std::sync::Arc::new(crate::MemoryRecords::default());
    let mut ledger = crate::Ledger::new();
    ledger.set_records(records.clone());
    let mut written = 0;
    for (position, command) in log.iter().enumerate() {
        let _ = ledger.apply(command);
        if position % every == 0 && !ledger.checkpoint_in_progress() {
            let sealed = ledger.seal();
            records.write(&sealed);
        }
        if position % every == every / 2 && ledger.checkpoint_in_progress() {
            ledger.checkpoint_written();
            written += 1;
            if written % 3 == 0 {
                let sealed = ledger.seal();
                records.write(&sealed);
                ledger.checkpoint_written();
                ledger = crate::Ledger::from_core(&ledger.encode_core(), records.clone()).expect("the core decodes");
            }
        }
    }
    ledger
}
