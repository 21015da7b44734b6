//! 谁管辖、谁负责 through real nodes: an inspection whose result is `corrected` or `case_opened`
//! opens its follow-up (a lead for the bureau with jurisdiction, with the deadline policy's
//! deadlines) in the same entry as the result, once, also through a bulk completion; a result
//! with nothing to follow opens none.

use serde_json::{json, Value};
use tests::{ClusterOptions, TestCluster, COMMAND_TOKEN, TIANHE_OPERATOR_TOKEN};

const PLANNER_TOKEN: &str = "demo-gz-command-0003";

async fn post(cluster: &TestCluster, token: &str, path: &str, body: Value, key: Option<&str>) -> (u16, Value) {
    let mut request = cluster.http.post(cluster.url(1, path)).bearer_auth(token).json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The follow-up leads of the group, as the organiser lists them.
async fn follow_ups(cluster: &TestCluster) -> Vec<Value> {
    let listed = cluster.get_json(1, PLANNER_TOKEN, "/api/v1/tasks?kind=lead&limit=500").await;
    listed["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["title"].as_str().unwrap().starts_with("后续监管"))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finding_opens_its_follow_up_for_the_bureau_with_jurisdiction_once() {
    let cluster = TestCluster::start_with(ClusterOptions { size: 1, ..ClusterOptions::default() }).await;
    tests::import_directory(&cluster, 1, "440106", 400, 3).await;
    for n in 1..=4 {
        let inspector = json!({"id": format!("TH{n:03}"), "name": format!("执法人员{n}"), "bureau": "440106",
                               "expertise": ["registration", "food"], "qualified": true});
        let (status, _) = post(&cluster, COMMAND_TOKEN, "/api/v1/inspectors", inspector, None).await;
        assert_eq!(status, 201);
    }
    let plan = json!({"name": "天河区企业公示信息抽查", "items": ["A01"], "scope": {"region": "440106"}, "targeted": false,
                      "ratios_percent": {"high": 5, "normal": 5, "low": 5}, "inspector_mode": {"mode": "whole_bureau"}});
    let (_, campaign) = post(&cluster, PLANNER_TOKEN, "/api/v1/campaigns", plan, None).await;
    let (status, drawn) = post(
        &cluster,
        COMMAND_TOKEN,
        &format!("/api/v1/campaigns/{}/draw", campaign["id"]),
        json!({"beacon": "1"}),
        None,
    )
    .await;
    assert_eq!(status, 201, "{drawn}");
    let tasks: Vec<u64> = drawn["draw"]["tasks"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect();
    let (corrected, cased, clean) = (tasks[0], tasks[1], tasks[2]);
    let (status, _) =
        post(&cluster, TIANHE_OPERATOR_TOKEN, "/api/v1/tasks/bulk/ack", json!({"tasks": &tasks[..3]}), None).await;
    assert_eq!(status, 200);

    // Corrected on the spot: the correction is checked again (整改复查) by Tianhe.
    let result = json!({"outcome": "corrected", "note": "当场责令改正"});
    let path = format!("/api/v1/tasks/{corrected}/complete");
    let (status, answer) = post(&cluster, TIANHE_OPERATOR_TOKEN, &path, result.clone(), Some("result-1")).await;
    assert_eq!(status, 200, "{answer}");
    let inspection = cluster.get_json(1, COMMAND_TOKEN, &format!("/api/v1/tasks/{corrected}")).await;
    assert_eq!(answer["version"], inspection["version"], "the answer is the task as it stands after its follow-up");
    let opened = inspection["timeline"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(opened["action"], "follow_up_opened", "{inspection}");
    let leads = follow_ups(&cluster).await;
    assert_eq!(leads.len(), 1, "{leads:?}");
    let lead = &leads[0];
    assert_eq!(opened["note"], format!("后续监管任务 #{}", lead["id"]));
    assert!(lead["title"].as_str().unwrap().contains("整改复查"), "{lead}");
    assert_eq!((lead["state"].as_str(), lead["assignee_bureau"].as_str()), (Some("dispatched"), Some("440106")));
    assert_eq!((lead["origin_bureau"].as_str(), lead["source"].as_str()), (Some("440100"), Some("spot_check")));
    assert_eq!(lead["subject"], inspection["subject"]);
    assert!(lead["complete_deadline"].is_string() && lead["ack_deadline"].is_string(), "{lead}");
    // The same request again: answered from the first, no second follow-up.
    let (status, _) = post(&cluster, TIANHE_OPERATOR_TOKEN, &path, result, Some("result-1")).await;
    assert_eq!(status, 200);
    assert_eq!(follow_ups(&cluster).await.len(), 1);

    // Through a bulk completion: a case opened (立案查处); nothing found opens nothing.
    let (status, answer) = post(
        &cluster,
        TIANHE_OPERATOR_TOKEN,
        "/api/v1/tasks/bulk/complete",
        json!({"tasks": [cased], "outcome": "case_opened", "note": "涉嫌违法，已立案"}),
        None,
    )
    .await;
    assert_eq!((status, answer["done"].as_u64()), (200, Some(1)), "{answer}");
    let (status, _) = post(
        &cluster,
        TIANHE_OPERATOR_TOKEN,
        &format!("/api/v1/tasks/{clean}/complete"),
        json!({"outcome": "no_problem_found"}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let leads = follow_ups(&cluster).await;
    assert_eq!(leads.len(), 2, "{leads:?}");
    assert!(leads.iter().any(|lead| lead["title"].as_str().unwrap().contains("立案查处")));
    let clean_task = cluster.get_json(1, COMMAND_TOKEN, &format!("/api/v1/tasks/{clean}")).await;
    assert!(clean_task["timeline"].as_array().unwrap().iter().all(|e| e["action"] != "follow_up_opened"));
}
