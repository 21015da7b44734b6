//! `TestFederation`: several groups of real nodes with one topology, optionally with every link
//! between two groups running through a `FaultProxy`, so a test can cut, blackhole or delay it.

use std::collections::BTreeMap;
use std::time::Duration;

use node::api::{TaskJson, TaskPage};

use crate::fault_proxy::FaultProxy;
use crate::{free_addrs, wait_until, ClusterOptions, TestCluster};

pub const GZ_COMMAND_TOKEN: &str = "demo-gz-command-0003";
pub const ZJ_COMMAND_TOKEN: &str = "demo-zj-command-0011";
pub const XIHU_OPERATOR_TOKEN: &str = "demo-xihu-op-0012";

#[derive(Clone, Debug)]
pub struct GroupSpec {
    pub bureau: &'static str,
    pub size: u64,
    /// The other groups this one knows; `None` means all of them.
    pub knows: Option<Vec<&'static str>>,
}

impl GroupSpec {
    pub fn new(bureau: &'static str, size: u64) -> GroupSpec {
        GroupSpec { bureau, size, knows: None }
    }

    pub fn knowing(mut self, groups: &[&'static str]) -> GroupSpec {
        self.knows = Some(groups.to_vec());
        self
    }
}

#[derive(Clone, Debug)]
pub struct FederationOptions {
    pub groups: Vec<GroupSpec>,
    /// Route every link between groups through a fault proxy.
    pub proxied: bool,
    pub forward_stuck_after_ms: u64,
    pub reconcile_every_ms: u64,
    /// How often a city group's leader counts and reports its progress on plans handed down.
    pub plan_progress_every_ms: u64,
    /// Users added to every group's demo users (TOML `[[users]]` entries).
    pub extra_users_toml: Option<String>,
    /// `[limits]` of every node of every group (TOML body).
    pub limits_toml: Option<String>,
}

impl FederationOptions {
    pub fn new(groups: Vec<GroupSpec>) -> FederationOptions {
        FederationOptions {
            groups,
            proxied: false,
            forward_stuck_after_ms: 60_000,
            reconcile_every_ms: 1_000,
            plan_progress_every_ms: 500,
            extra_users_toml: None,
            limits_toml: None,
        }
    }
}

pub struct TestFederation {
    pub groups: BTreeMap<&'static str, TestCluster>,
    /// (from group, to group) → one proxy per member of `to`, in member order.
    pub proxies: BTreeMap<(&'static str, &'static str), Vec<FaultProxy>>,
    pub http: reqwest::Client,
}

fn link_token(from: &str, to: &str) -> String {
    format!("test-peer-token-{from}-to-{to}")
}

impl TestFederation {
    pub async fn start(options: FederationOptions) -> TestFederation {
        let addrs: BTreeMap<&str, Vec<String>> =
            options.groups.iter().map(|g| (g.bureau, free_addrs(g.size as usize))).collect();
        let mut proxies = BTreeMap::new();
        if options.proxied {
            for from in &options.groups {
                for to in options.groups.iter().filter(|to| to.bureau != from.bureau) {
                    let mut link = Vec::new();
                    for upstream in &addrs[to.bureau] {
                        let listen = free_addrs(1).remove(0);
                        link.push(FaultProxy::start(&listen, upstream).await);
                    }
                    proxies.insert((from.bureau, to.bureau), link);
                }
            }
        }
        let mut groups = BTreeMap::new();
        for spec in &options.groups {
            let mut topology = String::new();
            for other in &options.groups {
                let known =
                    other.bureau == spec.bureau || spec.knows.as_ref().is_none_or(|list| list.contains(&other.bureau));
                if !known {
                    continue;
                }
                let member_addrs: Vec<String> = match proxies.get(&(spec.bureau, other.bureau)) {
                    Some(link) => link.iter().map(|p: &FaultProxy| p.addr.clone()).collect(),
                    None => addrs[other.bureau].clone(),
                };
                topology.push_str(&format!("[[groups]]\nbureau = \"{}\"\nmembers = [", other.bureau));
                for (index, addr) in member_addrs.iter().enumerate() {
                    topology.push_str(&format!("{{ id = {}, addr = \"{addr}\" }}, ", index + 1));
                }
                topology.push_str("]\n\n");
                if other.bureau != spec.bureau {
                    // A group holds in plain text only the tokens it sends with; it knows the
                    // ones it receives by their hash.
                    for (from, to) in [(spec.bureau, other.bureau), (other.bureau, spec.bureau)] {
                        let token = link_token(from, to);
                        let credential = if from == spec.bureau {
                            format!("token = \"{token}\"")
                        } else {
                            format!("token_sha256 = \"{}\"", config::token_hash(&token))
                        };
                        topology.push_str(&format!("[[links]]\nfrom = \"{from}\"\nto = \"{to}\"\n{credential}\n\n"));
                    }
                }
            }
            topology.push_str(&format!(
                "[federation]\nforward_stuck_after_ms = {}\nreconcile_every_ms = {}\nplan_progress_every_ms = {}\n",
                options.forward_stuck_after_ms, options.reconcile_every_ms, options.plan_progress_every_ms
            ));
            let cluster = TestCluster::start_with(ClusterOptions {
                size: spec.size,
                bureau: spec.bureau.to_owned(),
                addrs: Some(addrs[spec.bureau].clone()),
                topology_toml: Some(topology),
                extra_users_toml: options.extra_users_toml.clone(),
                limits_toml: options.limits_toml.clone(),
                ..ClusterOptions::default()
            })
            .await;
            groups.insert(spec.bureau, cluster);
        }
        let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client");
        TestFederation { groups, proxies, http }
    }

    pub fn group(&self, bureau: &str) -> &TestCluster {
        &self.groups[bureau]
    }

    pub fn group_mut(&mut self, bureau: &str) -> &mut TestCluster {
        self.groups.get_mut(bureau).expect("a group of the federation")
    }

    /// The token group `from` presents to group `to`.
    pub fn peer_token(from: &str, to: &str) -> String {
        link_token(from, to)
    }

    /// Every proxy on the links between `a` and `b`, both directions.
    pub fn links_between(&self, a: &str, b: &str) -> Vec<&FaultProxy> {
        let mut links = self.links_from(a, b);
        links.extend(self.links_from(b, a));
        links
    }

    /// The proxies on the link from `from` to `to` only: what `from`'s nodes call `to` through.
    pub fn links_from(&self, from: &str, to: &str) -> Vec<&FaultProxy> {
        self.proxies.iter().filter(|((f, t), _)| *f == from && *t == to).flat_map(|(_, link)| link.iter()).collect()
    }

    /// Every task a user sees on node `node` of `group`, all pages.
    pub async fn tasks(&self, group: &str, node: u64, token: &str) -> Result<Vec<TaskJson>, String> {
        let cluster = self.group(group);
        let mut tasks = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = cluster.url(node, "/api/v1/tasks?limit=500");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let response = self.http.get(url).bearer_auth(token).send().await.map_err(|e| e.to_string())?;
            let page: TaskPage = response.json().await.map_err(|e| e.to_string())?;
            tasks.extend(page.tasks);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(tasks),
            }
        }
    }

    pub async fn task(&self, group: &str, node: u64, token: &str, id: u64) -> Result<TaskJson, String> {
        let url = self.group(group).url(node, &format!("/api/v1/tasks/{id}"));
        let response = self.http.get(url).bearer_auth(token).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("task {id} at {group}: {}", response.status()));
        }
        response.json().await.map_err(|e| e.to_string())
    }

    /// The tasks of `group` (seen by `token` on any running node) that arrived as `forward_id`.
    pub async fn arrivals(&self, group: &str, token: &str, forward_id: &str) -> Result<Vec<TaskJson>, String> {
        let node = self.group(group).running().next().ok_or("no node running")?;
        let tasks = self.tasks(group, node, token).await?;
        Ok(tasks.into_iter().filter(|t| t.received_from.as_ref().is_some_and(|r| r.forward_id == forward_id)).collect())
    }

    /// Waits until the origin's record of task `id` satisfies `check`, read on a running node.
    pub async fn wait_for_record(
        &self,
        what: &str,
        group: &str,
        token: &str,
        id: u64,
        check: impl Fn(&TaskJson) -> bool,
    ) -> TaskJson {
        wait_until(what, Duration::from_secs(60), || async {
            let node = self.group(group).running().next().ok_or("no node running")?;
            let task = self.task(group, node, token, id).await?;
            if check(&task) {
                Ok(task)
            } else {
                Err(format!("state {} handover {:?} v{}", task.state, task.handover, task.version))
            }
        })
        .await
    }

    /// Waits until exactly one task arrived at `group` for `forward_id` and the origin holds its
    /// receipt; checks both once more after a further reconcile round so a late duplicate
    /// would show. Returns (the origin's record, the target's task).
    pub async fn wait_exactly_once(
        &self,
        origin: &str,
        origin_token: &str,
        origin_task: u64,
        target: &str,
        target_token: &str,
    ) -> (TaskJson, TaskJson) {
        let record = self
            .wait_for_record("the origin's receipt", origin, origin_token, origin_task, |t| {
                t.handover.as_ref().is_some_and(|h| h.delivered)
            })
            .await;
        let handover = record.handover.clone().expect("delivered");
        let arrivals = wait_until("the forward at its target", Duration::from_secs(30), || async {
            let arrivals = self.arrivals(target, target_token, &handover.forward_id).await?;
            if arrivals.is_empty() {
                Err("none yet".to_owned())
            } else {
                Ok(arrivals)
            }
        })
        .await;
        assert_eq!(arrivals.len(), 1, "exactly one task for {} at {target}", handover.forward_id);
        assert_eq!(Some(arrivals[0].id), handover.target_task_id, "the receipt names the task made there");
        // Receipts of this group's own courier (a relay's receipts are mirrored here too).
        let receipts =
            record.timeline.iter().filter(|e| e.action == "forward_delivered" && e.actor_bureau == origin).count();
        assert_eq!(receipts, 1, "one receipt at the origin: {:?}", record.timeline);
        (record, arrivals.into_iter().next().expect("one"))
    }
}
