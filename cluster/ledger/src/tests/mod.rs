//! The ledger's tests, pure and in process: the transition table and the policy exhaustively
//! (`transitions`), federation between two ledgers (`federation`), machine intake (`intake`),
//! random histories (`proptests`) and what a hostile peer group can send (`trust`).

mod federation;
mod intake;
mod proptests;
mod transitions;
mod trust;
