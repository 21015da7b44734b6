//! `xietong check config FILE`: reads a node's or a gateway's configuration and every file it
//! names exactly as a start would (without touching a data directory or a port), and checks
//! what a start does not refuse but production must not have: tokens in plain text, a group
//! secret others can read, tokens crossing the network without TLS. Prints one line per
//! finding; fails when any is an error.

use std::path::{Path, PathBuf};

use config::ConfigKind;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    #[command(subcommand)]
    pub what: CheckWhat,
}

#[derive(clap::Subcommand, Debug)]
pub enum CheckWhat {
    /// Check a node's or a gateway's configuration file and the files it names.
    Config {
        file: PathBuf,
        /// Accept tokens in plain text in the users file (a development or test setup).
        #[arg(long)]
        allow_plaintext_tokens: bool,
    },
}

/// What the check found about one thing.
#[derive(Debug, PartialEq, Eq)]
pub enum Finding {
    Error(String),
    Warning(String),
}

/// Runs the check, prints its findings, and answers whether the file passed (no errors).
pub fn run(args: CheckArgs) -> bool {
    let CheckWhat::Config { file, allow_plaintext_tokens } = args.what;
    let (summary, findings) = check_config(&file, allow_plaintext_tokens);
    for finding in &findings {
        match finding {
            Finding::Error(text) => println!("error: {text}"),
            Finding::Warning(text) => println!("warning: {text}"),
        }
    }
    let passed = !findings.iter().any(|f| matches!(f, Finding::Error(_)));
    match (passed, summary) {
        (true, Some(summary)) => println!("ok: {summary}"),
        _ => println!("{}: not a configuration to start with", file.display()),
    }
    passed
}

/// A summary of what the file configures (when it could be read), and the findings.
pub fn check_config(file: &Path, allow_plaintext_tokens: bool) -> (Option<String>, Vec<Finding>) {
    let mut findings = Vec::new();
    let kind = match ConfigKind::of_file(file) {
        Ok(kind) => kind,
        Err(error) => return (None, vec![Finding::Error(error.to_string())]),
    };
    let (summary, users, listens, tls) = match kind {
        ConfigKind::Node => {
            let (config, users) = match config::NodeConfig::load(file) {
                Ok(loaded) => loaded,
                Err(error) => return (None, vec![Finding::Error(error.to_string())]),
            };
            // Against the compiled table: a code the group adopted later is checked at start.
            if let Err(error) = crate::runtime::NodeFiles::load(&config, &users, ledger::Regions::compiled()) {
                findings.push(Finding::Error(format!("{error:#}")));
            }
            private_file(&config.group.secret_file, "the group secret", &mut findings);
            if let Some(topology) = &config.topology_file {
                private_file(topology, "the peer tokens of the topology", &mut findings);
            }
            if let Some(tls) = &config.tls {
                private_file(&tls.key_file, "the TLS private key", &mut findings);
            }
            if let Some(fanout) = &config.fanout {
                redis_url(&fanout.redis, &mut findings);
            }
            if let Err(error) = crate::runtime::raft_config(&config) {
                findings.push(Finding::Error(format!("[raft]: {error:#}")));
            }
            for (file, what) in
                [(&config.deadlines_file, "deadlines_file"), (&config.inspection_file, "inspection_file")]
            {
                if file.is_none() {
                    findings.push(Finding::Warning(format!(
                        "no {what}: the development policy built into the binary applies"
                    )));
                }
            }
            let summary = format!(
                "node {} of group {} on {} ({} members)",
                config.id,
                config.group.bureau,
                config.listen,
                config.group.members.len()
            );
            (summary, users, config.listen.clone(), config.tls.is_some())
        }
        ConfigKind::Gateway => {
            let (config, users) = match config::gateway::GatewayConfig::load(file) {
                Ok(loaded) => loaded,
                Err(error) => return (None, vec![Finding::Error(error.to_string())]),
            };
            if let Err(error) = crate::transport::Transport::from_config(config.tls.as_ref()) {
                findings.push(Finding::Error(format!("TLS: {error:#}")));
            }
            if let Err(error) = crate::auth::Users::from_config(&users, None) {
                findings.push(Finding::Error(error));
            }
            if let Some(tls) = &config.tls {
                private_file(&tls.key_file, "the TLS private key", &mut findings);
            }
            redis_url(&config.redis, &mut findings);
            let summary = format!(
                "gateway {} of group {} on {} ({} nodes)",
                config.name,
                config.group.bureau,
                config.listen,
                config.group.nodes.len()
            );
            (summary, users, config.listen.clone(), config.tls.is_some())
        }
    };
    let holders = users.plaintext_token_holders();
    if !holders.is_empty() && !allow_plaintext_tokens {
        let named: Vec<&str> = holders.iter().take(5).map(String::as_str).collect();
        findings.push(Finding::Error(format!(
            "the users file holds {} tokens in plain text ({}{}); production files hold token_sha256 \
             (--allow-plaintext-tokens for a development setup)",
            holders.len(),
            named.join(", "),
            if holders.len() > named.len() { ", …" } else { "" }
        )));
    }
    if !tls && !is_loopback(&listens) {
        findings.push(Finding::Warning(format!(
            "{listens} is reachable from other machines and [tls] is not set: tokens and personal data \
             cross the network in clear"
        )));
    }
    (Some(summary), findings)
}

fn is_loopback(listen: &str) -> bool {
    let host = listen.rsplit_once(':').map_or(listen, |(host, _)| host);
    host == "localhost" || listen.parse::<std::net::SocketAddr>().is_ok_and(|addr| addr.ip().is_loopback())
}

/// A secret (the group secret lets its holder act as a member; peer tokens act as the group; a
/// private key is the node's identity): readable by the process's user alone.
fn private_file(path: &Path, what: &str, findings: &mut Vec<Finding>) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(path) {
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            findings.push(Finding::Error(format!(
                "{} has mode {mode:o}: others can read {what} (chmod 600)",
                path.display()
            )));
        }
    }
}

fn redis_url(url: &str, findings: &mut Vec<Finding>) {
    if let Err(error) = redis::Client::open(url) {
        findings.push(Finding::Error(format!("redis {url:?}: {error}")));
    }
}
