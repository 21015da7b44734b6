//! The verifiable double-random draw (双随机) of inspection campaigns: the entity directory
//! file, risk classes, the selection of entities and inspectors, and its verification.
//!
//! **Architecture invariant:** pure functions of their inputs (the committed `DrawInputs` from
//! the ledger and the bytes of the directory file): no clock, no randomness, no IO, so a draw
//! recomputed anywhere gives the committed result.

pub mod directory;
pub mod generate;
pub mod register;
pub mod risk;
pub mod select;
pub mod verify;

pub use select::{draw, DrawError};
pub use verify::{verify, verify_in_parts, Mismatch, Verified};

#[cfg(test)]
mod joint_tests;
#[cfg(test)]
mod risk_tests;
#[cfg(test)]
mod tests;
