//! The federation topology (`topology_file` of a node): which bureaus run their own group, the
//! members and addresses of each group this node knows, and the peer tokens between groups.
//!
//! A group need not know every other group: it must know its own and, to route what it cannot
//! place itself, its parent (the nearest ancestor group); it may know children and siblings
//! for direct routes. Which bureaus a group hosts follows from the tree: every bureau without a
//! group of its own is hosted by its nearest ancestor that has one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::{invalid, is_six_digits, parse, read, ConfigError, MemberConfig};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyFile {
    pub groups: Vec<GroupEntry>,
    /// Peer tokens: group `from` authenticates to group `to` with `token`. A group accepts from
    /// a peer only forwards, instructions and status reports. The sending group needs the token
    /// itself; a receiving group needs only its SHA-256 (`token_sha256`), so a group's own
    /// topology file holds in plain text only the tokens it sends with.
    #[serde(default)]
    pub links: Vec<LinkEntry>,
    #[serde(default)]
    pub federation: FederationTuning,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupEntry {
    /// The bureau whose command centre runs the group (6-digit region code).
    pub bureau: String,
    pub members: Vec<MemberConfig>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkEntry {
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub token_sha256: Option<String>,
}

/// One link's credential: the token when this file holds it (needed to send), and its hash
/// (enough to receive).
#[derive(Clone, Debug)]
pub struct LinkCredential {
    pub token: Option<String>,
    pub token_sha256: String,
}

/// Delivery timing between groups.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FederationTuning {
    /// A handover or instruction not receipted after this long alarms the origin's console.
    pub forward_stuck_after_ms: u64,
    /// How often the origin's leader asks the groups it handed tasks to for their state, in
    /// case a pushed status report was lost.
    pub reconcile_every_ms: u64,
    /// How often, at most, a city group's leader counts its progress on the province plans
    /// handed down to it and reports what changed to the group above.
    pub plan_progress_every_ms: u64,
}

impl Default for FederationTuning {
    fn default() -> FederationTuning {
        FederationTuning { forward_stuck_after_ms: 60_000, reconcile_every_ms: 2_000, plan_progress_every_ms: 30_000 }
    }
}

impl FederationTuning {
    pub fn forward_stuck_after(&self) -> Duration {
        Duration::from_millis(self.forward_stuck_after_ms)
    }

    pub fn reconcile_every(&self) -> Duration {
        Duration::from_millis(self.reconcile_every_ms)
    }
}

/// The topology as one node uses it, keyed by 6-digit codes as text.
#[derive(Clone, Debug, Default)]
pub struct Topology {
    /// Group bureau → member addresses.
    pub groups: BTreeMap<String, Vec<String>>,
    /// (from, to) → credential.
    pub links: BTreeMap<(String, String), LinkCredential>,
    pub tuning: FederationTuning,
}

impl Topology {
    pub fn load(path: &Path) -> Result<Topology, ConfigError> {
        let file: TopologyFile = parse(path, &read(path)?)?;
        Topology::from_file(file)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Topology, ConfigError> {
        Topology::from_file(parse(path, text)?)
    }

    fn from_file(file: TopologyFile) -> Result<Topology, ConfigError> {
        let mut groups = BTreeMap::new();
        for group in &file.groups {
            let field = format!("groups.{}", group.bureau);
            if !is_six_digits(&group.bureau) {
                return Err(invalid(&field, "bureau must be a 6-digit region code"));
            }
            if group.members.is_empty() || group.members.len() > crate::limits::GROUP_MEMBERS_MAX {
                return Err(invalid(&field, format!("1 to {} members", crate::limits::GROUP_MEMBERS_MAX)));
            }
            let ids: BTreeSet<u64> = group.members.iter().map(|m| m.id).collect();
            if ids.len() != group.members.len() {
                return Err(invalid(&field, "member ids must be distinct"));
            }
            let addrs = group.members.iter().map(|m| m.addr.clone()).collect();
            if groups.insert(group.bureau.clone(), addrs).is_some() {
                return Err(invalid(&field, "the group is listed twice"));
            }
        }
        let mut links = BTreeMap::new();
        let mut tokens = BTreeSet::new();
        for link in &file.links {
            let field = format!("links.{}-{}", link.from, link.to);
            if !is_six_digits(&link.from) || !is_six_digits(&link.to) || link.from == link.to {
                return Err(invalid(&field, "from and to must be two different 6-digit codes"));
            }
            let token_sha256 = crate::credential_hash(&field, &link.token, &link.token_sha256)?;
            if !tokens.insert(token_sha256.clone()) {
                return Err(invalid(&field, "every link needs its own token"));
            }
            let credential = LinkCredential { token: link.token.clone(), token_sha256 };
            if links.insert((link.from.clone(), link.to.clone()), credential).is_some() {
                return Err(invalid(&field, "the link is listed twice"));
            }
        }
        let tuning = &file.federation;
        if tuning.forward_stuck_after_ms == 0 || tuning.reconcile_every_ms == 0 || tuning.plan_progress_every_ms == 0 {
            return Err(invalid("federation", "times must be positive"));
        }
        Ok(Topology { groups, links, tuning: file.federation })
    }

    /// Checks that the node's own group is listed with the same members.
    pub fn check_own_group(&self, bureau: &str, members: &[MemberConfig]) -> Result<(), ConfigError> {
        let listed = self.groups.get(bureau).ok_or_else(|| invalid("topology", format!("lists no group {bureau}")))?;
        let own: Vec<String> = members.iter().map(|m| m.addr.clone()).collect();
        if *listed != own {
            return Err(invalid("topology", format!("group {bureau} has other members there than in the node file")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_GROUPS: &str = r#"
        [[groups]]
        bureau = "440000"
        members = [{ id = 1, addr = "127.0.0.1:7001" }]
        [[groups]]
        bureau = "440100"
        members = [{ id = 1, addr = "127.0.0.1:7101" }]
        [[links]]
        from = "440100"
        to = "440000"
        token = "peer-token-440100-440000"
    "#;

    #[test]
    fn a_topology_lists_groups_and_links() {
        let topology = Topology::parse(Path::new("t"), TWO_GROUPS).expect("valid");
        assert_eq!(topology.groups.len(), 2);
        let link = &topology.links[&("440100".into(), "440000".into())];
        assert_eq!(link.token.as_deref(), Some("peer-token-440100-440000"));
        assert_eq!(link.token_sha256, crate::token_hash("peer-token-440100-440000"));
        let hashed = TWO_GROUPS.replace(
            "token = \"peer-token-440100-440000\"",
            &format!("token_sha256 = \"{}\"", crate::token_hash("peer-token-440100-440000")),
        );
        let receiving_only = Topology::parse(Path::new("t"), &hashed).expect("a hash is enough to receive");
        assert_eq!(receiving_only.links[&("440100".into(), "440000".into())].token, None);
        assert_eq!(topology.tuning.forward_stuck_after_ms, 60_000);
    }

    #[test]
    fn bad_topologies_are_refused() {
        let short_token = TWO_GROUPS.replace("peer-token-440100-440000", "short");
        assert!(Topology::parse(Path::new("t"), &short_token).is_err());
        let twice =
            format!("{TWO_GROUPS}\n[[groups]]\nbureau = \"440000\"\nmembers = [{{ id = 1, addr = \"x:1\" }}]\n");
        assert!(Topology::parse(Path::new("t"), &twice).is_err());
        let self_link = TWO_GROUPS.replace("to = \"440000\"", "to = \"440100\"");
        assert!(Topology::parse(Path::new("t"), &self_link).is_err());
    }
}
