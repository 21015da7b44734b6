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
            if let Err(error) = crate::runtime::NodeFiles::load(&config, &users) {
                findings.push(Finding::Error(format!("{error:#}")));
            }
            secret_file_private(&config.group.secret_file, &mut findings);
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
            if let Err(error) = crate::auth::Users::from_config(&users) {
                findings.push(Finding::Error(error));
            }
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
    listen.parse::<std::net::SocketAddr>().is_ok_and(|addr| addr.ip().is_loopback())
}

/// The group secret lets its holder act as a member: readable by the node's user alone.
fn secret_file_private(path: &Path, findings: &mut Vec<Finding>) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(path) {
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            findings.push(Finding::Error(format!(
                "{} has mode {mode:o}: others can read the group secret (chmod 600)",
                path.display()
            )));
        }
    }
}
