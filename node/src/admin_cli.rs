//! `xietong admin`: membership operations against a running group, through a node's admin API
//! (`node::routes::admin`). Any node of the group will do; a follower forwards to the leader.

use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

/// Adding a learner waits until it has caught up; give that time.
const ADMIN_CALL_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(clap::Args, Debug, Clone)]
pub struct AdminArgs {
    /// host:port of any node of the group.
    #[arg(long, default_value = "127.0.0.1:8440")]
    pub node: String,
    /// A platform operator's token (`[[admins]]` in the users file).
    #[arg(long, env = "XIETONG_ADMIN_TOKEN")]
    pub token: String,
    #[command(subcommand)]
    pub operation: AdminOperation,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum AdminOperation {
    /// Show the group's voters, learners, their addresses and the leader.
    Members,
    /// Add a node (already started with its config) as a learner; returns once it caught up.
    AddLearner {
        #[arg(long)]
        id: u64,
        #[arg(long)]
        addr: String,
    },
    /// Make a learner a voter.
    Promote {
        #[arg(long)]
        id: u64,
    },
    /// Remove a node (voter or learner) from the group.
    Remove {
        #[arg(long)]
        id: u64,
    },
}

pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().timeout(ADMIN_CALL_TIMEOUT).build()?;
    let base = format!("http://{}/admin/v1/members", args.node);
    let request = match &args.operation {
        AdminOperation::Members => http.get(&base),
        AdminOperation::AddLearner { id, addr } => {
            http.post(format!("{base}/learners")).json(&json!({"id": id, "addr": addr}))
        }
        AdminOperation::Promote { id } => http.post(format!("{base}/promote")).json(&json!({"id": id})),
        AdminOperation::Remove { id } => http.post(format!("{base}/remove")).json(&json!({"id": id})),
    };
    let response = request.bearer_auth(&args.token).send().await.with_context(|| format!("calling {}", args.node))?;
    let status = response.status();
    let body: Value = response.json().await.context("reading the answer")?;
    println!("{}", serde_json::to_string_pretty(&body)?);
    anyhow::ensure!(status.is_success(), "the node refused: {status}");
    Ok(())
}
