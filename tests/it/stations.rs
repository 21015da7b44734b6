//! Stations below the county bureaus on a running group: enrolled through any node, listed in
//! the bureau tree under their county, dispatched to like any bureau, a late task escalated to
//! the county first, closed for new work while old tasks keep them.

use std::time::Duration;

use node::api::TaskJson;
use serde_json::{json, Value};
use tests::{wait_until, TestCluster, COMMAND_TOKEN, LEADER_TOKEN, TIANHE_OPERATOR_TOKEN};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn rfc3339_in(offset: Duration) -> String {
    (OffsetDateTime::now_utc() + offset).format(&Rfc3339).expect("format")
}

async fn post(cluster: &TestCluster, node: u64, token: &str, path: &str, body: Value) -> (u16, Value, Option<String>) {
    let response = cluster.http.post(cluster.url(node, path)).bearer_auth(token).json(&body).send().await.expect(path);
    let status = response.status().as_u16();
    let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (status, response.json().await.unwrap_or(Value::Null), location)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_is_enrolled_dispatched_to_escalated_from_and_closed() {
    let options = tests::ClusterOptions { deadlines_toml: Some(tests::fast_chasing_policy(2)), ..Default::default() };
    let cluster = TestCluster::start_with(options).await;
    let leader = cluster.wait_for_leader().await;
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");

    // Enrolled through a follower (relayed to the leader), by the province's command centre.
    let wushan = json!({"county": "440106", "number": 4, "name": "五山市场监管所", "areas": ["五山街", "长兴街"]});
    let (status, station, location) = post(&cluster, follower, COMMAND_TOKEN, "/api/v1/stations", wushan.clone()).await;
    assert_eq!(status, 201, "{station}");
    assert_eq!(location.as_deref(), Some("/api/v1/stations/440106004"));
    assert_eq!((station["code"].as_str(), station["county_name"].as_str()), (Some("440106004"), Some("天河区")));
    assert_eq!(station["history"][0]["change"], "enrolled");
    // Sent again: the number is taken; the answer says so and changes nothing.
    let (status, body, _) = post(&cluster, leader, COMMAND_TOKEN, "/api/v1/stations", wushan).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("station_exists")), "{body}");
    // Neither an operator nor leadership manages stations; bad fields are refused.
    for token in [TIANHE_OPERATOR_TOKEN, LEADER_TOKEN] {
        let body = json!({"county": "440106", "name": "某所"});
        assert_eq!(post(&cluster, leader, token, "/api/v1/stations", body).await.0, 403);
    }
    for bad in [
        json!({"county": "440100", "name": "某所"}),
        json!({"county": "440106", "name": ""}),
        json!({"county": "440106", "name": "某所", "number": 1000}),
        json!({"county": "440106004", "name": "某所"}),
        json!({"county": "440106", "name": "某所", "areas": ["街", "街"]}),
    ] {
        let (status, body, _) = post(&cluster, follower, COMMAND_TOKEN, "/api/v1/stations", bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, shiqiao, _) = post(
        &cluster,
        leader,
        COMMAND_TOKEN,
        "/api/v1/stations",
        json!({"county": "440106", "name": "石牌市场监管所", "areas": ["石牌街"]}),
    )
    .await;
    assert_eq!((status, shiqiao["code"].as_str()), (201, Some("440106001")), "the lowest number never given");

    // Every node lists it, and the bureau tree shows it under its county.
    for node in 1..=3 {
        wait_until("the stations listed", Duration::from_secs(10), || async {
            let listed = cluster.get_json(node, COMMAND_TOKEN, "/api/v1/stations?bureau=440106").await;
            let codes: Vec<&str> =
                listed["stations"].as_array().into_iter().flatten().filter_map(|s| s["code"].as_str()).collect();
            if codes == ["440106001", "440106004"] {
                Ok(())
            } else {
                Err(format!("{codes:?}"))
            }
        })
        .await;
    }
    let tree = cluster.get_json(follower, COMMAND_TOKEN, "/api/v1/bureaus?root=440106").await;
    let row =
        tree["bureaus"].as_array().expect("rows").iter().find(|b| b["code"] == "440106004").expect("listed").clone();
    assert_eq!((row["level"].as_str(), row["parent"].as_str()), (Some("station"), Some("440106")), "{row}");

    // A task dispatched to the station; its missed ack is chased and escalated to the county.
    let task = cluster.create_task(leader, "五山街无照经营", None).await;
    let dispatch = json!({"assignee_bureau": "440106004", "ack_deadline": rfc3339_in(Duration::from_secs(1)), "version": task.version});
    let (status, body, _) =
        post(&cluster, follower, COMMAND_TOKEN, &format!("/api/v1/tasks/{}/dispatch", task.id), dispatch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["assignee_bureau"], "440106004");
    let escalated = wait_until("escalated to the county", Duration::from_secs(30), || async {
        let task: TaskJson = cluster
            .http
            .get(cluster.url(follower, &format!("/api/v1/tasks/{}", task.id)))
            .bearer_auth(COMMAND_TOKEN)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        if task.escalated_to.is_empty() {
            Err(format!("{} reminders", task.reminders_sent))
        } else {
            Ok(task)
        }
    })
    .await;
    assert_eq!(escalated.escalated_to, ["440106"], "a station's late task goes to its county first");

    // Closed with a reason: no new dispatch to it, its task keeps it.
    let (status, body, _) =
        post(&cluster, follower, COMMAND_TOKEN, "/api/v1/stations/440106004/close", json!({})).await;
    assert_eq!(status, 400, "a closure says why: {body}");
    let close = json!({"note": "并入石牌所"});
    let (status, closed, _) = post(&cluster, follower, COMMAND_TOKEN, "/api/v1/stations/440106004/close", close).await;
    assert_eq!(status, 200, "{closed}");
    assert!(closed["closed_at"].is_string());
    let other = cluster.create_task(leader, "另一条线索", None).await;
    let dispatch = json!({"assignee_bureau": "440106004", "version": other.version});
    let (status, body, _) =
        post(&cluster, leader, COMMAND_TOKEN, &format!("/api/v1/tasks/{}/dispatch", other.id), dispatch).await;
    assert_eq!(status, 400, "{body}");
    let (status, body, _) =
        post(&cluster, leader, COMMAND_TOKEN, "/api/v1/stations/440106999/rename", json!({"name": "x"})).await;
    assert_eq!(status, 404, "{body}");
    let listed = cluster.get_json(leader, COMMAND_TOKEN, "/api/v1/stations?bureau=440106&include_closed=true").await;
    assert_eq!(listed["stations"].as_array().map(Vec::len), Some(2));
    let kept = cluster.get_json(leader, COMMAND_TOKEN, &format!("/api/v1/tasks/{}", task.id)).await;
    assert_eq!(kept["assignee_bureau"], "440106004");
    cluster.wait_for_convergence().await;
}
