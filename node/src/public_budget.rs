//! What the public routes (一公开) may cost a node. They need no token, so two budgets bound
//! them: one for every caller together, which bounds the node's cost, and one per client, so
//! that one caller (a scraper, a script gone wrong) cannot spend everybody's share and lock the
//! citizens out.
//!
//! A client is its address: the connection's peer, or, when the peer is a trusted proxy (a
//! console gateway or a reverse proxy in front of the node, `trusted_proxies` in the node's
//! config), the nearest address in `X-Forwarded-For` that is not one. Only the hops that trusted
//! proxies appended are believed: a client cannot name itself somebody else. An IPv6 client is
//! its /64, since one host commonly holds a whole /64.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use config::limits::{PUBLIC_CLIENTS_TRACKED_MAX, PUBLIC_REQUESTS_PER_CLIENT_PER_SECOND, PUBLIC_REQUESTS_PER_SECOND};

use crate::rate::TokenBucket;

/// The header proxies append the address they saw a request from to.
pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// How often a full client table is swept of idle clients at most: a flood from many
/// addresses must not turn every request into a sweep.
const CLIENT_SWEEP_INTERVAL: Duration = Duration::from_millis(100);
/// What a refused new client is told when the table is full of active clients.
const CLIENTS_FULL_RETRY: Duration = Duration::from_secs(1);

/// Whose budget a request spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum ClientKey {
    V4(Ipv4Addr),
    /// The first 64 bits of the address.
    V6Net(u64),
}

impl ClientKey {
    fn of(address: IpAddr) -> ClientKey {
        match address {
            IpAddr::V4(v4) => ClientKey::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::V4(v4),
                None => ClientKey::V6Net((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

struct Buckets {
    node: TokenBucket,
    clients: HashMap<ClientKey, TokenBucket>,
    swept_at: Option<Instant>,
}

pub struct PublicBudget {
    trusted_proxies: Vec<IpAddr>,
    /// Requests per second of one client.
    per_client: f64,
    buckets: Mutex<Buckets>,
}

impl PublicBudget {
    pub fn new(trusted_proxies: Vec<IpAddr>) -> PublicBudget {
        PublicBudget::with_rates(trusted_proxies, PUBLIC_REQUESTS_PER_SECOND, PUBLIC_REQUESTS_PER_CLIENT_PER_SECOND)
    }

    fn with_rates(trusted_proxies: Vec<IpAddr>, per_node: u32, per_client: u32) -> PublicBudget {
        assert!(per_client <= per_node, "one client never gets more than the node allows");
        PublicBudget {
            trusted_proxies,
            per_client: f64::from(per_client),
            buckets: Mutex::new(Buckets {
                node: TokenBucket::new(f64::from(per_node)),
                clients: HashMap::new(),
                swept_at: None,
            }),
        }
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.trusted_proxies.contains(&address)
    }

    /// The client a request comes from: `peer`, or, through trusted proxies, the address the
    /// last of them saw (see the module's comment).
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let hops: Vec<&str> = headers
            .get_all(FORWARDED_FOR)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            if !self.trusts(client) {
                break;
            }
            match hop.parse::<IpAddr>() {
                Ok(address) => client = address,
                // A hop a trusted proxy wrote that is no address: the proxy is the client.
                Err(_) => break,
            }
        }
        client
    }

    /// Spends one request of `client`'s budget and of the node's, or says how long to wait.
    /// The client's own budget is checked first, so a refused flood does not drain the node's.
    pub fn take(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().expect("the public budget lock is never poisoned");
        let key = ClientKey::of(client);
        if !buckets.clients.contains_key(&key) && buckets.clients.len() >= PUBLIC_CLIENTS_TRACKED_MAX {
            sweep_idle_clients(&mut buckets, now);
            if buckets.clients.len() >= PUBLIC_CLIENTS_TRACKED_MAX {
                return Err(CLIENTS_FULL_RETRY);
            }
        }
        buckets.clients.entry(key).or_insert_with(|| TokenBucket::new(self.per_client)).take(1, now)?;
        buckets.node.take(1, now)
    }
}

/// Forgets the clients whose buckets have refilled: they were idle for a second or more, and a
/// fresh bucket is the same as theirs.
fn sweep_idle_clients(buckets: &mut Buckets, now: Instant) {
    if buckets.swept_at.is_some_and(|at| now.saturating_duration_since(at) < CLIENT_SWEEP_INTERVAL) {
        return;
    }
    buckets.swept_at = Some(now);
    buckets.clients.retain(|_, bucket| !bucket.is_full(now));
}

/// An address that is nobody's in particular, for a request without a peer (never from the
/// server loop, which always records one).
pub const UNKNOWN_CLIENT: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).expect("a header value"));
        }
        headers
    }

    #[test]
    fn one_client_over_its_share_is_refused_and_another_is_still_served() {
        let budget = PublicBudget::with_rates(Vec::new(), 100, 10);
        let now = Instant::now();
        for _ in 0..10 {
            assert!(budget.take(ip("192.0.2.1"), now).is_ok());
        }
        let wait = budget.take(ip("192.0.2.1"), now).expect_err("over its share");
        assert!(wait <= Duration::from_millis(101), "{wait:?}");
        assert!(budget.take(ip("192.0.2.2"), now).is_ok(), "another client is not affected");
        assert!(budget.take(ip("192.0.2.1"), now + Duration::from_millis(200)).is_ok(), "refilled");
    }

    #[test]
    fn the_node_budget_bounds_all_clients_together() {
        let budget = PublicBudget::with_rates(Vec::new(), 20, 10);
        let now = Instant::now();
        let served = (0..30u8).filter(|n| budget.take(IpAddr::V4(Ipv4Addr::new(192, 0, 2, *n)), now).is_ok()).count();
        assert_eq!(served, 20);
    }

    #[test]
    fn an_ipv6_client_is_its_slash_64() {
        let budget = PublicBudget::with_rates(Vec::new(), 100, 2);
        let now = Instant::now();
        assert!(budget.take(ip("2001:db8:1:2::1"), now).is_ok());
        assert!(budget.take(ip("2001:db8:1:2::ffff"), now).is_ok());
        assert!(budget.take(ip("2001:db8:1:2:abcd::7"), now).is_err(), "the same /64");
        assert!(budget.take(ip("2001:db8:1:3::1"), now).is_ok(), "the next /64 is someone else");
        assert_eq!(ClientKey::of(ip("::ffff:192.0.2.9")), ClientKey::of(ip("192.0.2.9")));
    }

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        let budget = PublicBudget::with_rates(vec![ip("10.0.0.1"), ip("10.0.0.2")], 100, 10);
        // An untrusted peer's header is its own claim: ignored.
        assert_eq!(budget.client_address(ip("198.51.100.7"), &forwarded(&["203.0.113.5"])), ip("198.51.100.7"));
        // A trusted proxy: the address it saw.
        assert_eq!(budget.client_address(ip("10.0.0.1"), &forwarded(&["203.0.113.5"])), ip("203.0.113.5"));
        // Through two trusted proxies, with a forged hop the client put in front.
        let headers = forwarded(&["192.0.2.66, 203.0.113.5", "10.0.0.2"]);
        assert_eq!(budget.client_address(ip("10.0.0.1"), &headers), ip("203.0.113.5"));
        // A trusted proxy without the header, or with garbage, is the client itself.
        assert_eq!(budget.client_address(ip("10.0.0.1"), &HeaderMap::new()), ip("10.0.0.1"));
        assert_eq!(budget.client_address(ip("10.0.0.1"), &forwarded(&["unknown"])), ip("10.0.0.1"));
    }

    #[test]
    fn a_full_table_forgets_idle_clients_and_refuses_new_ones_while_all_are_active() {
        let budget = PublicBudget::with_rates(Vec::new(), 1_000_000, 10);
        let start = Instant::now();
        let client = |n: usize| IpAddr::V6(Ipv6Addr::from((n as u128 + 1) << 64));
        for n in 0..PUBLIC_CLIENTS_TRACKED_MAX {
            budget.take(client(n), start).expect("room for a new client");
        }
        let newcomer = client(PUBLIC_CLIENTS_TRACKED_MAX);
        assert_eq!(budget.take(newcomer, start), Err(CLIENTS_FULL_RETRY), "every tracked client is active");
        assert!(budget.take(client(0), start).is_ok(), "a tracked client is still served");
        let later = start + Duration::from_secs(2);
        assert!(budget.take(newcomer, later).is_ok(), "idle clients were forgotten");
        assert_eq!(budget.buckets.lock().unwrap().clients.len(), 1);
    }
}
