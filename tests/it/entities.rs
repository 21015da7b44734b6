//! The enterprise file (一企一档): every task about a market entity, closed ones too and after
//! checkpoints have moved them to the store, in the caller's scope only, never a reporter.

use serde_json::{json, Value};
use tests::{act, create_body, TestCluster, COMMAND_TOKEN, LEADER_TOKEN, TIANHE_OPERATOR_TOKEN};

/// The entity of `tests::create_body`.
const USCC: &str = "91350100M000100Y43";
const REPORTER_NAME: &str = "王小明";
const REPORTER_PHONE: &str = "13812345678";

async fn file(cluster: &TestCluster, token: &str, query: &str) -> (u16, Value) {
    let url = cluster.url(1, &format!("/api/v1/entities/{USCC}{query}"));
    let response = cluster.http.get(url).bearer_auth(token).send().await.expect("get");
    (response.status().as_u16(), response.json().await.expect("json"))
}

fn ids(file: &Value) -> Vec<u64> {
    file["tasks"].as_array().expect("tasks").iter().map(|t| t["id"].as_u64().expect("id")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_enterprise_file_holds_every_task_about_an_entity_in_the_callers_scope() {
    let cluster = TestCluster::start().await;
    // One task assigned to Tianhe and closed; one assigned to Yuexiu; one about another firm;
    // and a complaint about the entity, whose reporter must never show.
    let tianhe = cluster.create_task(1, "天河的任务", Some("440106")).await;
    for (action, body) in [("ack", json!({})), ("complete", json!({"outcome": "warned", "note": "已责令整改"}))] {
        let (status, answer) = act(&cluster, 1, TIANHE_OPERATOR_TOKEN, tianhe.id, action, body).await;
        assert_eq!(status, 200, "{action}: {answer}");
    }
    let (status, answer) = act(&cluster, 1, COMMAND_TOKEN, tianhe.id, "close", json!({})).await;
    assert_eq!(status, 200, "close: {answer}");
    let yuexiu = cluster.create_task(1, "越秀的任务", Some("440104")).await;
    let mut other = create_body("别家的任务");
    other["subject"]["uscc"] = json!("91110105MAYJXNQT1W");
    cluster.create_task_as(1, COMMAND_TOKEN, &other).await;
    let complaint = json!({
        "channel": "tip_off", "real_name": true,
        "reporter": {"name": REPORTER_NAME, "phone": REPORTER_PHONE, "id_number": "44010619900101123X"},
        "title": "举报该公司", "description": "举报人称该公司销售过期食品",
        "subject": {"uscc": USCC, "name": "广州市某某贸易有限公司（曾用名）", "region_code": "440106", "address": "天河路1号"},
    });
    let response = cluster
        .http
        .post(cluster.url(1, "/api/v1/complaints"))
        .bearer_auth(COMMAND_TOKEN)
        .json(&complaint)
        .send()
        .await;
    let response = response.expect("complaint");
    assert_eq!(response.status(), 201);
    let complaint_id = response.json::<Value>().await.expect("task")["id"].as_u64().expect("id");
    // Enough writes after them that checkpoints (every 64 entries here) moved them to the store.
    for i in 0..80 {
        let mut filler = create_body(&format!("填充 {i}"));
        filler["subject"]["uscc"] = json!("92110105475496599G");
        cluster.create_task_as(1, COMMAND_TOKEN, &filler).await;
    }
    cluster.wait_for_convergence().await;

    // The province sees every task about the entity, newest first, the closed one included.
    let (status, all) = file(&cluster, COMMAND_TOKEN, "").await;
    assert_eq!(status, 200, "{all}");
    let about: Vec<u64> = ids(&all);
    assert_eq!(about, vec![complaint_id, yuexiu.id, tianhe.id], "every task about the entity, newest first");
    let closed = all["tasks"].as_array().unwrap().iter().find(|t| t["id"] == tianhe.id).expect("the closed task");
    assert_eq!(closed["state"], "closed");
    assert!(
        all["names"].as_array().unwrap().iter().any(|n| n == "广州市某某贸易有限公司（曾用名）"),
        "{}",
        all["names"]
    );
    let text = all.to_string();
    assert!(!text.contains(REPORTER_NAME) && !text.contains(REPORTER_PHONE), "no reporter in the file");
    // Paged: two at a time, the cursors walk the same list.
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = file(&cluster, LEADER_TOKEN, &format!("?limit=2{cursor}")).await;
        assert_eq!(status, 200, "{page}");
        paged.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(paged, about, "leadership sees what the command centre sees, page by page");

    // Tianhe's operator sees only the task assigned to Tianhe.
    let (status, own) = file(&cluster, TIANHE_OPERATOR_TOKEN, "").await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(ids(&own), vec![tianhe.id]);

    // A malformed USCC is a clear error.
    let url = cluster.url(1, "/api/v1/entities/91350100M000100Y4X");
    let response = cluster.http.get(url).bearer_auth(COMMAND_TOKEN).send().await.expect("get");
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["error"]["code"], "invalid_uscc");
    // The list takes the same filter.
    let url = cluster.url(1, &format!("/api/v1/tasks?uscc={USCC}&state=closed"));
    let response = cluster.http.get(url).bearer_auth(COMMAND_TOKEN).send().await.expect("get");
    let page: Value = response.json().await.expect("json");
    assert_eq!(ids(&page), vec![tianhe.id]);
}
