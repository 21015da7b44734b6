//! Membership changes on a running group through `xietong admin`: a node added as learner and
//! promoted, another removed (the leader), while writes continue; no acknowledged write lost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tests::{admin, create_body, wait_until, TestCluster, ADMIN_TOKEN, COMMAND_TOKEN};

fn ids(members: &Value, key: &str) -> Vec<u64> {
    members[key].as_array().expect("a list").iter().map(|v| v.as_u64().expect("an id")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_is_added_and_the_leader_removed_while_writes_continue() {
    let mut cluster = TestCluster::start().await;
    let leader = cluster.wait_for_leader().await;
    let others: Vec<String> = (1..=3).filter(|id| *id != leader).map(|id| cluster.addr(id).to_owned()).collect();

    // A writer keeps creating tasks through the two nodes that stay; each write retries with
    // its own idempotency key until it is answered, and records what was acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let (stop, acknowledged, http, others) =
            (stop.clone(), acknowledged.clone(), cluster.http.clone(), others.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let key = format!("membership-{n}");
                for attempt in 0..200u64 {
                    let addr = &others[((n + attempt) % 2) as usize];
                    let response = http
                        .post(format!("http://{addr}/api/v1/tasks"))
                        .bearer_auth(COMMAND_TOKEN)
                        .header("idempotency-key", &key)
                        .json(&create_body(&format!("成员变更期间 {n}")))
                        .send()
                        .await;
                    if let Ok(response) = response {
                        if response.status() == 201 {
                            let task: Value = response.json().await.expect("task");
                            acknowledged.lock().expect("lock").push(task["id"].as_u64().expect("id"));
                            break;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        })
    };

    let newcomer = cluster.add_node();
    let any = cluster.addr(leader).to_owned();
    let new_addr = cluster.addr(newcomer).to_owned();
    let id = newcomer.to_string();
    let members = admin(&any, &["add-learner", "--id", &id, "--addr", &new_addr]);
    assert!(ids(&members, "learners").contains(&newcomer), "{members}");
    // `add-learner` answered once the leader saw the learner's log match its own as of the add.
    let matched = members["matched"][&id].as_u64().expect("the learner's progress");
    assert!(matched >= 1 && matched <= members["last_log_index"].as_u64().expect("the leader's index"), "{members}");
    let members = admin(&others[0], &["promote", "--id", &id]);
    assert_eq!(ids(&members, "voters").len(), 4, "{members}");
    // Remove the leader itself; the group elects another and goes on.
    let members = admin(&others[1], &["remove", "--id", &leader.to_string()]);
    assert!(!ids(&members, "voters").contains(&leader), "{members}");
    cluster.kill(leader);
    let new_leader = cluster.wait_for_leader().await;
    assert_ne!(new_leader, leader);

    // Let writes go on under the new membership, then stop them.
    let before = acknowledged.lock().expect("lock").len();
    wait_until("writes under the new membership", Duration::from_secs(30), || async {
        let now = acknowledged.lock().expect("lock").len();
        if now >= before + 20 {
            Ok(())
        } else {
            Err(format!("{now} acknowledged"))
        }
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    writer.await.expect("writer");

    let view = cluster.wait_for_convergence().await;
    let members: Value = cluster
        .http
        .get(cluster.url(newcomer, "/admin/v1/members"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("members")
        .json()
        .await
        .expect("json");
    let mut voters = ids(&members, "voters");
    voters.sort_unstable();
    let mut expected: Vec<u64> = (1..=3).filter(|id| *id != leader).chain([newcomer]).collect();
    expected.sort_unstable();
    assert_eq!(voters, expected);
    let on_newcomer: std::collections::BTreeSet<u64> = cluster.all_tasks(newcomer).await.iter().map(|t| t.id).collect();
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(acknowledged.len() > 20, "the writer kept writing: {}", acknowledged.len());
    for id in &acknowledged {
        assert!(on_newcomer.contains(id), "acknowledged task {id} is on the new node");
    }
    assert_eq!(view.task_count, Some(on_newcomer.len() as u64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_need_an_operator_token_and_valid_input() {
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..Default::default() }).await;
    let url = cluster.url(1, "/admin/v1/members/learners");
    let body = serde_json::json!({"id": 2, "addr": "127.0.0.1:1"});
    let response = cluster.http.post(&url).bearer_auth(COMMAND_TOKEN).json(&body).send().await.expect("post");
    assert_eq!(response.status(), 403, "a business user is no platform operator");
    for (bad, code) in [
        (serde_json::json!({"id": 1, "addr": "127.0.0.1:1"}), "invalid_field"),
        (serde_json::json!({"id": 2, "addr": "nowhere"}), "invalid_field"),
        (serde_json::json!({"id": 2}), "invalid_json"),
    ] {
        let response = cluster.http.post(&url).bearer_auth(ADMIN_TOKEN).json(&bad).send().await.expect("post");
        let status = response.status().as_u16();
        let error: Value = response.json().await.expect("json");
        assert_eq!((status, error["error"]["code"].as_str()), (400, Some(code)), "{bad}");
    }
    let remove_last = cluster
        .http
        .post(cluster.url(1, "/admin/v1/members/remove"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"id": 1}))
        .send()
        .await
        .expect("post");
    assert_eq!(remove_last.status(), 409);
}
