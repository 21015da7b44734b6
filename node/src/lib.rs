//! The `xietong` node: one member of a bureau group, serving the client API, the console and
//! peer RPC on one port; plus the local topology launcher (`xietong up`) and its demo feed.

pub mod admin_cli;
pub mod api;
pub mod attachments;
mod auth;
mod batcher;
pub mod certificate;
pub mod check_cli;
pub mod data_dir_lock;
mod deadline_policy;
mod deadline_watch;
pub mod demo;
mod demo_people;
mod demo_programme;
pub mod documents;
pub mod draw_cli;
pub mod fanout;
pub mod federation;
pub mod fuzz_entry;
pub mod gateway;
pub mod intake;
pub mod kept_files;
pub mod logging;
mod member_features;
pub mod openapi;
pub mod presence;
pub mod programme;
pub mod public_budget;
pub mod push;
#[cfg(test)]
mod random_ledger;
pub mod rate;
mod read_path;
pub mod readiness;
pub mod reference;
pub mod response_metrics;
pub mod routes;
pub mod runtime;
pub mod search;
mod server;
pub mod sessions;
mod state;
mod synthesize;
pub mod task_query;
pub mod telemetry;
pub mod transport;
pub mod up;
mod write_path;

pub use api::headers::IDEMPOTENCY as IDEMPOTENCY_HEADER;

/// The release this binary is (the workspace's version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit it was built from (see `build.rs`).
pub const COMMIT: &str = env!("XIETONG_COMMIT");
/// `xietong --version`: both.
pub const BUILD_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("XIETONG_COMMIT"), ")");
