//! TLS: a group whose nodes serve HTTPS (API, console, peer RPC) elects a leader, replicates
//! and forwards over TLS, and serves nothing in plain text.

use std::time::Duration;

use tests::{ClusterOptions, TestCluster, COMMAND_TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_runs_over_tls_and_refuses_plain_http() {
    // Electing a leader already needs votes over TLS between the nodes.
    let cluster = TestCluster::start_with(ClusterOptions { tls: true, ..ClusterOptions::default() }).await;
    let leader = cluster.wait_for_leader().await;
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    // A write through a follower is forwarded to the leader over TLS, then replicated.
    let task = cluster.create_task(follower, "加密通道", Some("440106")).await;
    assert_eq!(task.state, "dispatched");
    let view = cluster.wait_for_convergence().await;
    assert_eq!(view.task_count, Some(1));
    let console = cluster.http.get(cluster.url(leader, "/")).send().await.expect("console over https");
    assert_eq!(console.status(), 200);

    let plain = reqwest::Client::new()
        .get(format!("http://{}/api/v1/tasks", cluster.addr(leader)))
        .bearer_auth(COMMAND_TOKEN)
        .send()
        .await;
    assert!(plain.is_err(), "a plain-text request gets no answer from a TLS node: {plain:?}");
    // And a client that does not trust the group's CA cannot talk to it.
    let untrusting = reqwest::Client::new().get(cluster.url(leader, "/healthz")).send().await;
    assert!(untrusting.is_err(), "the certificate is checked: {untrusting:?}");

    // The operators' CLI speaks TLS given the group's authority, and only then.
    let ca = cluster.data_dir().join("ca.pem");
    let ca = ca.to_str().expect("a UTF-8 path");
    let node = cluster.addr(follower).to_owned();
    let base = ["--node", node.as_str(), "--token", tests::ADMIN_TOKEN];
    let members = tests::admin_offline(&[&base[..], &["--ca", ca, "members"]].concat()).expect("members over TLS");
    assert_eq!(members["voters"].as_array().map(Vec::len), Some(3), "{members}");
    assert!(tests::admin_offline(&[&base[..], &["members"]].concat()).is_err(), "plain http to a TLS node");
}

/// A gateway in front of a TLS group serves HTTPS and calls the nodes over TLS (finding 19 of
/// the security review: its calls were plain `http://`, so tokens crossed the network in clear).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_serves_and_calls_the_nodes_over_tls() {
    let redis = tests::redis_server::RedisServer::start().await;
    let options = ClusterOptions { tls: true, size: 1, fanout_redis: Some(redis.url()), ..ClusterOptions::default() };
    let cluster = TestCluster::start_with(options).await;
    let nodes = vec![cluster.addr(1).to_owned()];
    let gateway = tests::gateway::TestGateway::start_with(
        cluster.data_dir(),
        "gw-tls",
        &redis.url(),
        "440000",
        &nodes,
        Some(cluster.http.clone()),
    )
    .await;
    // The nodes answer only TLS: a pass-through that arrives went over it.
    let me = cluster.http.get(gateway.url("/api/v1/me")).bearer_auth(COMMAND_TOKEN).send().await.expect("me");
    assert_eq!(me.status(), 200);
    let plain = reqwest::Client::new().get(format!("http://{}/healthz", gateway.addr)).send().await;
    assert!(plain.is_err(), "the gateway serves no plain text under [tls]: {plain:?}");
    // The gateway exports when its certificate ends, like a node (rcgen's default, 4096-01-01).
    let metrics = cluster.http.get(gateway.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("xietong_tls_certificate_expires_at_timestamp_seconds 67090118400\n"), "{metrics}");
}

/// The certificate node `id` presents to a new connection (DER).
async fn served_certificate(cluster: &TestCluster, id: u64) -> Result<Vec<u8>, String> {
    let ca = std::fs::read(cluster.data_dir().join("ca.pem")).map_err(|e| e.to_string())?;
    // A client of its own each time: a pooled connection would keep the certificate it began with.
    let client = reqwest::Client::builder()
        .tls_info(true)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).map_err(|e| e.to_string())?)
        .build()
        .map_err(|e| e.to_string())?;
    let response = client.get(cluster.url(id, "/healthz")).send().await.map_err(|e| e.to_string())?;
    let info = response.extensions().get::<reqwest::tls::TlsInfo>().ok_or("no TLS info")?;
    info.peer_certificate().map(<[u8]>::to_vec).ok_or_else(|| "no peer certificate".to_owned())
}

/// A renewed certificate is presented after SIGHUP, without a restart; a node not told keeps
/// the one it has, and the group goes on over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_after_sighup_without_a_restart() {
    let cluster = TestCluster::start_with(ClusterOptions { tls: true, ..ClusterOptions::default() }).await;
    cluster.wait_for_leader().await;
    let before = served_certificate(&cluster, 1).await.expect("node 1's certificate");
    let renewed = tests::renew_test_certificate(cluster.data_dir());
    assert_ne!(before, renewed);
    cluster.reload_users(1); // SIGHUP
    tests::wait_until("node 1 presents the renewed certificate", Duration::from_secs(20), || async {
        match served_certificate(&cluster, 1).await? {
            served if served == renewed => Ok(()),
            _ => Err("the old one".to_owned()),
        }
    })
    .await;
    assert_eq!(served_certificate(&cluster, 2).await.expect("node 2's certificate"), before, "no SIGHUP, no change");
    let task = cluster.create_task(1, "证书更新后", Some("440106")).await;
    assert_eq!(task.state, "dispatched");
    // When the served certificate ends is exported for the expiry alert: rcgen's default end,
    // 4096-01-01.
    assert_eq!(cluster.metric(1, "xietong_tls_certificate_expires_at_timestamp_seconds").await, Some(67_090_118_400.0));
    // A certificate that ended, or one from a CA the group does not trust, is refused on SIGHUP
    // with the reason in the log, and the renewed one stays in service.
    for (kind, reason) in [
        (tests::NodeCertificate::Expired, "it has expired"),
        (tests::NodeCertificate::FromAnotherCa, "not issued by the CA"),
    ] {
        let refused = tests::write_node_certificate(cluster.data_dir(), kind);
        cluster.reload_users(1);
        tests::wait_until("the refusal in node 1's log", Duration::from_secs(20), || async {
            let log = cluster.log_tail(1);
            (log.contains("TLS certificate refused") && log.contains(reason)).then_some(()).ok_or_else(|| log.clone())
        })
        .await;
        let served = served_certificate(&cluster, 1).await.expect("node 1's certificate");
        assert_eq!(served, renewed, "{kind:?}: the renewed certificate stays");
        assert_ne!(served, refused);
    }
    // And a node does not start with such a certificate: `xietong check config` says why.
    let output = std::process::Command::new(tests::xietong_binary())
        .args(["check", "config", "--allow-plaintext-tokens"])
        .arg(cluster.config_path(1))
        .output()
        .expect("xietong check config");
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("not issued by the CA the group trusts"), "{said}");
}
