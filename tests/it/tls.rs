//! TLS: a group whose nodes serve HTTPS (API, console, peer RPC) elects a leader, replicates
//! and forwards over TLS, and serves nothing in plain text.

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
}
