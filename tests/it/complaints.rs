//! Complaints and tip-offs through the API of real nodes: both statutory clocks fire as
//! deadlines, decisions and the telling are recorded, and the reporter's identity appears on
//! no route but the reporter route, and there only for the registering command centre.

use std::time::Duration;

use serde_json::{json, Value};
use tests::{wait_until, ClusterOptions, TestCluster, COMMAND_TOKEN, LEADER_TOKEN, TIANHE_OPERATOR_TOKEN};

const REPORTER_NAME: &str = "王小明";
const REPORTER_PHONE: &str = "13800138000";
const HEALTH_CONSUMER: &str = "demo-export-health-0040";

/// The default policy with the complaint clocks shortened to seconds, so they pass in a test.
fn short_clocks() -> String {
    let policy = config::deadlines::DEFAULT_DEADLINES_TOML;
    let start = policy.find("[complaints]").expect("the default policy has complaint clocks");
    format!("{}[complaints]\naccept = \"3s\"\nnotify = \"3s\"\n", &policy[..start])
}

fn tip_off(title: &str) -> Value {
    json!({
        "channel": "tip_off", "real_name": true,
        "reporter": {"name": REPORTER_NAME, "phone": REPORTER_PHONE, "id_number": "44010619900101123X"},
        "title": title, "description": "举报人称该店销售过期食品",
        "subject": {"name": "广州市某某便利店", "region_code": "440106", "address": "天河路1号"},
    })
}

async fn post(cluster: &TestCluster, token: &str, path: &str, body: Value) -> (u16, Value) {
    let response = cluster.http.post(cluster.url(1, path)).bearer_auth(token).json(&body).send().await.expect("post");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

async fn get_text(cluster: &TestCluster, node: u64, token: &str, path: &str) -> (u16, String) {
    let response = cluster.http.get(cluster.url(node, path)).bearer_auth(token).send().await.expect("get");
    (response.status().as_u16(), response.text().await.expect("text"))
}

async fn timeline_has(cluster: &TestCluster, id: u64, action: &str) -> Value {
    wait_until(&format!("{action} on task {id}"), Duration::from_secs(20), || async {
        let (_, text) = get_text(cluster, 1, COMMAND_TOKEN, &format!("/api/v1/tasks/{id}")).await;
        let task: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let actions: Vec<&str> =
            task["timeline"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
        if actions.contains(&action) {
            Ok(task)
        } else {
            Err(format!("{actions:?}"))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complaint_clocks_fire_and_the_reporter_stays_private() {
    let cluster =
        TestCluster::start_with(ClusterOptions { deadlines_toml: Some(short_clocks()), ..ClusterOptions::default() })
            .await;
    let (status, created) =
        post(&cluster, COMMAND_TOKEN, "/api/v1/complaints", tip_off("实名举报：销售过期食品")).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_u64().unwrap();
    assert_eq!(created["complaint"]["channel"], "tip_off");
    assert!(created["complaint"]["accept_deadline"].is_string());

    // No decision within the acceptance period: the leader records the miss.
    timeline_has(&cluster, id, "acceptance_missed").await;
    let (status, decided) =
        post(&cluster, COMMAND_TOKEN, &format!("/api/v1/tasks/{id}/accept_complaint"), json!({})).await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["complaint"]["decision"], "accepted");
    assert!(decided["complaint"]["notify_deadline"].is_string(), "a real-name reporter must be told");
    // Not told in time: recorded too; then the telling is recorded once.
    timeline_has(&cluster, id, "notification_missed").await;
    let path = format!("/api/v1/tasks/{id}/notify_reporter");
    let (status, told) = post(&cluster, COMMAND_TOKEN, &path, json!({"note": "已电话告知受理决定"})).await;
    assert_eq!(status, 200, "{told}");
    assert!(told["complaint"]["notified_at"].is_string());
    let (status, again) = post(&cluster, COMMAND_TOKEN, &path, json!({"note": "再次告知"})).await;
    assert_eq!(status, 409, "{again}");

    // The identity is on no task route, list, export page or console snapshot.
    for (node, token, path) in [
        (1, COMMAND_TOKEN, format!("/api/v1/tasks/{id}")),
        (2, COMMAND_TOKEN, "/api/v1/tasks?limit=500".to_owned()),
        (3, LEADER_TOKEN, "/api/v1/tasks?limit=500".to_owned()),
        (1, HEALTH_CONSUMER, "/api/v1/export?since=0&limit=1000".to_owned()),
    ] {
        let (status, text) = get_text(&cluster, node, token, &path).await;
        assert_eq!(status, 200, "{path}: {text}");
        assert!(text.contains("实名举报"), "{path} shows the task");
        assert!(!text.contains(REPORTER_NAME) && !text.contains(REPORTER_PHONE), "{path} leaks the reporter");
    }
    let mut console = tests::console::ConsoleClient::connect(cluster.addr(2), COMMAND_TOKEN, None, None).await;
    console.expect("welcome").await;
    let snapshot_text = console.expect("snapshot").await.to_string();
    assert!(snapshot_text.contains("实名举报") && !snapshot_text.contains(REPORTER_PHONE), "the console snapshot");

    // Only the registering command centre reads who reported.
    let reporter_path = format!("/api/v1/tasks/{id}/reporter");
    let (status, text) = get_text(&cluster, 1, COMMAND_TOKEN, &reporter_path).await;
    assert_eq!(status, 200);
    assert!(text.contains(REPORTER_NAME) && text.contains(REPORTER_PHONE));
    for (token, expected) in [(LEADER_TOKEN, 403), (TIANHE_OPERATOR_TOKEN, 404), ("demo-gz-command-0003", 404)] {
        let (status, text) = get_text(&cluster, 1, token, &reporter_path).await;
        assert_eq!(status, expected, "{token}: {text}");
        assert!(!text.contains(REPORTER_PHONE));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complaint_steps_refuse_bad_input_and_change_nothing() {
    let cluster = TestCluster::start_with(ClusterOptions { size: 1, ..ClusterOptions::default() }).await;
    // A real-name report needs the reporter's name and phone.
    let mut nameless = tip_off("实名但无姓名");
    nameless["reporter"]["name"] = json!("");
    let (status, body) = post(&cluster, COMMAND_TOKEN, "/api/v1/complaints", nameless).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_field")), "{body}");
    let mut bad_phone = tip_off("电话有误");
    bad_phone["reporter"]["phone"] = json!("call me<script>");
    let (status, _) = post(&cluster, COMMAND_TOKEN, "/api/v1/complaints", bad_phone).await;
    assert_eq!(status, 400);
    let mut bad_channel = tip_off("渠道有误");
    bad_channel["channel"] = json!("rumour");
    let (status, body) = post(&cluster, COMMAND_TOKEN, "/api/v1/complaints", bad_channel).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_enum")));
    // Leadership registers nothing.
    let (status, _) = post(&cluster, LEADER_TOKEN, "/api/v1/complaints", tip_off("领导不登记")).await;
    assert_eq!(status, 403);
    assert!(cluster.all_tasks(1).await.is_empty(), "nothing was written");

    let anonymous = json!({"channel": "complaint", "title": "匿名投诉：短斤少两",
                           "subject": {"name": "某水果店", "region_code": "440106"}});
    let (status, created) = post(&cluster, COMMAND_TOKEN, "/api/v1/complaints", anonymous).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_u64().unwrap();
    // It is accepted before anyone is sent to work on it.
    let (status, body) =
        post(&cluster, COMMAND_TOKEN, &format!("/api/v1/tasks/{id}/dispatch"), json!({"assignee_bureau": "440106"}))
            .await;
    assert_eq!(status, 409, "{body}");
    // Telling comes after a decision, and only for a real-name report; a refusal says why.
    let (status, _) =
        post(&cluster, COMMAND_TOKEN, &format!("/api/v1/tasks/{id}/notify_reporter"), json!({"note": "x"})).await;
    assert_eq!(status, 409);
    let (status, body) =
        post(&cluster, COMMAND_TOKEN, &format!("/api/v1/tasks/{id}/refuse_complaint"), json!({})).await;
    assert_eq!(status, 400, "{body}");
    let (status, refused) = post(
        &cluster,
        COMMAND_TOKEN,
        &format!("/api/v1/tasks/{id}/refuse_complaint"),
        json!({"note": "不属于市场监管职责"}),
    )
    .await;
    assert_eq!(status, 200, "{refused}");
    assert_eq!(
        (refused["state"].as_str(), refused["complaint"]["decision"].as_str()),
        (Some("cancelled"), Some("refused"))
    );
    assert!(refused["complaint"]["notify_deadline"].is_null(), "an anonymous reporter is not told");
    // A task that is no complaint takes no complaint step.
    let plain = cluster.create_task(1, "普通线索", None).await;
    let (status, _) =
        post(&cluster, COMMAND_TOKEN, &format!("/api/v1/tasks/{}/accept_complaint", plain.id), json!({})).await;
    assert_eq!(status, 409);
}

/// 批量受理: a morning's complaints accepted in one request, each answered on its own (one
/// decided already is refused alone), and the reporters still on no route but their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mornings_complaints_are_accepted_in_one_request() {
    let cluster = TestCluster::start_with(ClusterOptions { size: 1, ..ClusterOptions::default() }).await;
    let mut ids = Vec::new();
    for n in 0..30 {
        let (status, created) =
            post(&cluster, COMMAND_TOKEN, "/api/v1/complaints", tip_off(&format!("实名举报{n}"))).await;
        assert_eq!(status, 201, "{created}");
        ids.push(created["id"].as_u64().unwrap());
    }
    let (status, _) = post(
        &cluster,
        COMMAND_TOKEN,
        &format!("/api/v1/tasks/{}/refuse_complaint", ids[0]),
        json!({"note": "不属于本部门职责"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, answer) =
        post(&cluster, COMMAND_TOKEN, "/api/v1/tasks/bulk/accept_complaint", json!({"tasks": ids, "note": "予以受理"}))
            .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!((answer["done"].as_u64(), answer["refused"].as_u64()), (Some(29), Some(1)), "{answer}");
    assert_eq!(answer["results"][0]["outcome"], "refused");
    assert_eq!(answer["results"][0]["error"]["code"], "illegal_transition", "a refused complaint is closed: {answer}");
    let (_, text) = get_text(&cluster, 1, COMMAND_TOKEN, &format!("/api/v1/tasks/{}", ids[1])).await;
    let task: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(task["complaint"]["decision"], "accepted");
    assert!(!text.contains(REPORTER_PHONE) && !answer.to_string().contains(REPORTER_PHONE));
    // Tianhe's operator may not accept for the registering centre: refused task by task.
    let (status, outsider) = post(
        &cluster,
        TIANHE_OPERATOR_TOKEN,
        "/api/v1/tasks/bulk/notify_reporter",
        json!({"tasks": &ids[1..3], "note": "电话告知"}),
    )
    .await;
    assert_eq!((status, outsider["refused"].as_u64()), (200, Some(2)), "{outsider}");
}
