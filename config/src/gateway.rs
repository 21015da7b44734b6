//! A console gateway's config (`xietong gateway --config FILE`): where it listens, which group's
//! Redis Stream it serves consoles from, the group's nodes (for snapshots and the REST API it
//! passes through), and the users file it checks console tokens against.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{invalid, is_six_digits, parse, read, ConfigError, UsersFile};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Shown to consoles in the welcome message (e.g. `gw1`).
    pub name: String,
    /// Loopback address and port it serves the console, `/ws` and the passed-through API on.
    pub listen: String,
    /// The same users file as the group's nodes, relative to this file.
    pub users_file: PathBuf,
    /// `redis://host:port/`, the one the group's nodes publish to (`[fanout]`).
    pub redis: String,
    /// The local address its calls to the group's nodes come from, when the host has several:
    /// the nodes list it in `trusted_proxies`, so they believe the client address it adds to
    /// `X-Forwarded-For` and budget public requests per client, not per gateway.
    #[serde(default)]
    pub source_address: Option<std::net::IpAddr>,
    pub group: GatewayGroup,
    /// TLS for what the gateway serves (consoles) and for its calls to the nodes, which then
    /// must serve TLS too (their `[tls]`): tokens never cross the network in clear.
    #[serde(default)]
    pub tls: Option<crate::TlsConfig>,
    #[serde(default)]
    pub log: crate::LogConfig,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayGroup {
    /// The group's bureau code: its stream is `xietong:{bureau}:events`.
    pub bureau: String,
    /// host:port of the group's nodes.
    pub nodes: Vec<String>,
}

impl GatewayConfig {
    pub fn load(path: &Path) -> Result<(GatewayConfig, UsersFile), ConfigError> {
        let mut config: GatewayConfig = parse(path, &read(path)?)?;
        let base = path.parent().unwrap_or(Path::new(".")).to_owned();
        let tls_files = config.tls.as_mut().map(|tls| [&mut tls.cert_file, &mut tls.key_file, &mut tls.ca_file]);
        for file in std::iter::once(&mut config.users_file).chain(tls_files.into_iter().flatten()) {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        if !is_six_digits(&config.group.bureau) {
            return Err(invalid("group.bureau", "must be a 6-digit region code"));
        }
        if config.group.nodes.is_empty() {
            return Err(invalid("group.nodes", "at least one node"));
        }
        let users = UsersFile::parse(&config.users_file, &read(&config.users_file)?)?;
        Ok((config, users))
    }
}
