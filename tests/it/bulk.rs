//! Bulk actions through real nodes: a draw of over a thousand inspections, acknowledged,
//! completed and published a thousand at a time, each request committed in bounded entries and
//! answered task by task (tasks not there, not visible or not open are refused alone); a retry
//! with the same key answers from the first; bad requests change nothing.

use serde_json::{json, Value};
use tests::{TestCluster, COMMAND_TOKEN, TIANHE_OPERATOR_TOKEN};

const PLANNER_TOKEN: &str = "demo-gz-command-0003";
const NANSHAN_OPERATOR: &str = "demo-nanshan-op-0008";
const TIANHE: &str = "440106";

async fn post(
    cluster: &TestCluster,
    node: u64,
    token: &str,
    path: &str,
    body: Value,
    key: Option<&str>,
) -> (u16, Value) {
    let mut request = cluster.http.post(cluster.url(node, path)).bearer_auth(token).json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The tasks of a bulk answer with each outcome.
fn outcomes(answer: &Value) -> std::collections::BTreeMap<String, Vec<u64>> {
    let mut by_outcome = std::collections::BTreeMap::<String, Vec<u64>>::new();
    for item in answer["results"].as_array().expect("results") {
        by_outcome
            .entry(item["outcome"].as_str().unwrap().to_owned())
            .or_default()
            .push(item["task"].as_u64().unwrap());
    }
    by_outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_results_are_published_in_one_request_answered_per_task() {
    let cluster = TestCluster::start().await;
    let leader = cluster.wait_for_leader().await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();

    // A draw of about 1,200 inspections in Tianhe.
    let directory = draw::generate::generate(12_000, ledger::BureauCode::parse_compiled(TIANHE).unwrap(), 5);
    let (status, body) = cluster.post_csv(leader, COMMAND_TOKEN, "/api/v1/directories/entities", directory).await;
    assert_eq!(status, 201, "{body}");
    let roster: String = std::iter::once("id,name,bureau,station,expertise,qualified".to_owned())
        .chain((0..8).map(|n| format!("TH{n:03},执法人员{n},{TIANHE},,food;registration,true")))
        .collect::<Vec<_>>()
        .join("\n");
    let (status, body) =
        cluster.post_csv(leader, COMMAND_TOKEN, "/api/v1/inspectors/roster", roster.into_bytes()).await;
    assert_eq!(status, 201, "{body}");
    let plan = json!({"name": "天河区抽查", "items": ["A01"], "scope": {"region": TIANHE}, "targeted": false,
                      "ratios_percent": {"high": 10, "normal": 10, "low": 10},
                      "inspector_mode": {"mode": "whole_bureau"}, "inspectors_per_inspection": 2});
    let (status, campaign) = post(&cluster, leader, PLANNER_TOKEN, "/api/v1/campaigns", plan, None).await;
    assert_eq!(status, 201, "{campaign}");
    let draw_path = format!("/api/v1/campaigns/{}/draw", campaign["id"]);
    let (status, drawn) = post(&cluster, leader, COMMAND_TOKEN, &draw_path, json!({"beacon": "7"}), None).await;
    assert_eq!(status, 201, "{drawn}");
    let tasks: Vec<u64> = drawn["draw"]["tasks"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect();
    assert!(tasks.len() > 1_000, "{} inspections", tasks.len());
    let thousand = &tasks[..1_000];

    // Bad requests change nothing: an action that names a record, an unknown action, a field
    // the action does not take, no tasks, too many.
    for (path, body, code) in [
        ("/api/v1/tasks/bulk/record_on_site", json!({"tasks": thousand}), Some("not_in_bulk")),
        ("/api/v1/tasks/bulk/fly", json!({"tasks": thousand}), None),
        ("/api/v1/tasks/bulk/ack", json!({"tasks": thousand, "outcome": "corrected"}), Some("unexpected_field")),
        ("/api/v1/tasks/bulk/ack", json!({"tasks": []}), Some("invalid_field")),
        ("/api/v1/tasks/bulk/ack", json!({"tasks": (1..=2_001).collect::<Vec<u64>>()}), Some("invalid_field")),
        ("/api/v1/tasks/bulk/ack", json!({"tasks": thousand, "version": 1}), Some("invalid_json")),
    ] {
        let (status, answer) = post(&cluster, follower, TIANHE_OPERATOR_TOKEN, path, body, None).await;
        assert!(status == 400 || status == 404, "{path}: {status} {answer}");
        if let Some(code) = code {
            assert_eq!(answer["error"]["code"], code, "{path}: {answer}");
        }
    }
    let task = cluster.get_json(leader, TIANHE_OPERATOR_TOKEN, &format!("/api/v1/tasks/{}", thousand[0])).await;
    assert_eq!(task["state"], "dispatched", "nothing was acknowledged: {task}");

    // Tianhe acknowledges and completes the thousand, through a follower, in two requests.
    let (status, acked) =
        post(&cluster, follower, TIANHE_OPERATOR_TOKEN, "/api/v1/tasks/bulk/ack", json!({"tasks": thousand}), None)
            .await;
    assert_eq!((status, acked["done"].as_u64(), acked["refused"].as_u64()), (200, Some(1_000), Some(0)));
    assert_eq!(acked["entries"], 4, "a thousand commands in entries of at most 250");
    assert!(acked["results"].as_array().unwrap().iter().all(|r| r["state"] == "acknowledged"));
    let complete = json!({"tasks": thousand, "outcome": "no_problem_found", "note": "现场检查未发现问题"});
    let (status, completed) =
        post(&cluster, follower, TIANHE_OPERATOR_TOKEN, "/api/v1/tasks/bulk/complete", complete, None).await;
    assert_eq!((status, completed["done"].as_u64()), (200, Some(1_000)), "{}", completed["results"][0]);

    // Guangzhou publishes the thousand and four more: one not completed yet, one that does not
    // exist, one named twice (answered once), and one already published.
    let (status, _) =
        post(&cluster, leader, PLANNER_TOKEN, &format!("/api/v1/tasks/{}/publish", thousand[999]), json!({}), None)
            .await;
    assert_eq!(status, 200);
    let not_completed = tasks[1_000];
    let mut selection: Vec<u64> = thousand.to_vec();
    selection.extend([not_completed, 99_999_999, thousand[0]]);
    let request = json!({"tasks": selection});
    let (status, published) =
        post(&cluster, follower, PLANNER_TOKEN, "/api/v1/tasks/bulk/publish", request.clone(), Some("publish-1")).await;
    assert_eq!(status, 200, "{}", published["error"]);
    let by_outcome = outcomes(&published);
    assert_eq!(published["results"].as_array().unwrap().len(), 1_002, "each task once, in order");
    assert_eq!(by_outcome["done"].len(), 999);
    assert_eq!(by_outcome["refused"], vec![thousand[999], not_completed, 99_999_999]);
    let reasons: Vec<&str> = published["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "refused")
        .map(|r| r["error"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["nothing_to_record", "no_result", "not_found"]);
    assert_eq!(published["entries"], 5, "1,001 commands proposed, at most 250 an entry");
    let task = cluster.get_json(follower, PLANNER_TOKEN, &format!("/api/v1/tasks/{}", thousand[500])).await;
    assert_eq!(task["inspection"]["publication"], "published", "{task}");

    // The same request again with the same key: answered from the first, nothing twice.
    let (status, again) =
        post(&cluster, leader, PLANNER_TOKEN, "/api/v1/tasks/bulk/publish", request, Some("publish-1")).await;
    assert_eq!(status, 200);
    assert_eq!(outcomes(&again)["repeat"].len(), 999);

    // Another bureau's operator sees none of them: each answers as missing.
    let (status, outsider) = post(
        &cluster,
        leader,
        NANSHAN_OPERATOR,
        "/api/v1/tasks/bulk/ack",
        json!({"tasks": &tasks[1_000..1_010]}),
        None,
    )
    .await;
    assert_eq!((status, outsider["refused"].as_u64()), (200, Some(10)), "{}", outsider["results"][0]);
    assert!(outsider["results"].as_array().unwrap().iter().all(|r| r["error"]["code"] == "not_found"));
}
