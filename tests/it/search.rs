//! Search (`GET /api/v1/search`): a two-character fragment of a Chinese name or title finds the
//! task, open or closed; a USCC finds its tasks exactly; each caller finds only what it may see;
//! a node killed with SIGKILL, or whose index is lost, finds everything again from its store.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use tests::{act, create_body, wait_until, TestCluster, COMMAND_TOKEN, TIANHE_OPERATOR_TOKEN};

const GZ_COMMAND: &str = "demo-gz-command-0003";
const SZ_COMMAND: &str = "demo-sz-command-0004";

async fn try_search(cluster: &TestCluster, node: u64, token: &str, query: &str) -> Result<(u16, Value), String> {
    let request = cluster.http.get(cluster.url(node, "/api/v1/search")).query(&[("q", query)]).bearer_auth(token);
    let response = request.send().await.map_err(|e| e.to_string())?;
    Ok((response.status().as_u16(), response.json().await.map_err(|e| e.to_string())?))
}

async fn search(cluster: &TestCluster, node: u64, token: &str, query: &str) -> (u16, Value) {
    try_search(cluster, node, token, query).await.expect("search")
}

fn ids(answer: &Value) -> BTreeSet<u64> {
    answer["tasks"].as_array().expect("tasks").iter().map(|t| t["id"].as_u64().expect("id")).collect()
}

/// Waits until `query` on `node` finds exactly `expected` for `token` (the index follows the
/// ledger within a second or so).
async fn finds(cluster: &TestCluster, node: u64, token: &str, query: &str, expected: &BTreeSet<u64>) {
    wait_until(&format!("{query:?} finds {expected:?} on node {node}"), Duration::from_secs(30), || async {
        // A node that is starting again refuses connections for a moment.
        let (status, answer) = try_search(cluster, node, token, query).await?;
        if status != 200 {
            return Err(format!("{status}: {answer}"));
        }
        let found = ids(&answer);
        if &found == expected {
            Ok(())
        } else {
            Err(format!("found {found:?}"))
        }
    })
    .await;
}

async fn create(cluster: &TestCluster, token: &str, title: &str, name: &str, uscc: &str, assignee: &str) -> u64 {
    let mut body = create_body(title);
    body["subject"]["name"] = json!(name);
    body["subject"]["uscc"] = json!(uscc);
    body["assignee_bureau"] = json!(assignee);
    body["origin_bureau"] = json!(if token == GZ_COMMAND { "440100" } else { "440000" });
    let task = cluster.create_task_as(1, token, &body).await;
    let (status, answer) =
        act(cluster, 1, token, task.id, "dispatch", json!({"assignee_bureau": assignee, "version": task.version}))
            .await;
    assert_eq!(status, 200, "dispatch: {answer}");
    task.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fragment_of_a_chinese_name_finds_the_task_within_the_callers_scope() {
    let mut cluster = TestCluster::start().await;
    let food =
        create(&cluster, GZ_COMMAND, "过期食品线索", "广州市天河区鑫源食品有限公司", "91350100M000100Y43", "440106")
            .await;
    let pharmacy =
        create(&cluster, COMMAND_TOKEN, "药店价格投诉", "深圳市南山区康源大药房", "91110105MAYJXNQT1W", "440305").await;
    let yuexiu =
        create(&cluster, GZ_COMMAND, "食品标签核查", "广州越秀某某餐饮店", "92110105475496599G", "440104").await;
    // The first is closed: search covers closed tasks too.
    for (token, action, body) in [
        (TIANHE_OPERATOR_TOKEN, "ack", json!({})),
        (TIANHE_OPERATOR_TOKEN, "complete", json!({"outcome": "warned", "note": "已处理"})),
        (GZ_COMMAND, "close", json!({})),
    ] {
        let (status, answer) = act(&cluster, 1, token, food, action, body).await;
        assert_eq!(status, 200, "{action}: {answer}");
    }

    // Two characters of a name, of a title; two parts that must both occur; a USCC exactly.
    let everything = |ids: &[u64]| ids.iter().copied().collect::<BTreeSet<u64>>();
    finds(&cluster, 2, COMMAND_TOKEN, "鑫源", &everything(&[food])).await;
    finds(&cluster, 2, COMMAND_TOKEN, "源食", &everything(&[food])).await;
    finds(&cluster, 2, COMMAND_TOKEN, "食品", &everything(&[food, yuexiu])).await;
    finds(&cluster, 2, COMMAND_TOKEN, "食品 天河", &everything(&[food])).await;
    finds(&cluster, 2, COMMAND_TOKEN, "91110105mayjxnqt1w", &everything(&[pharmacy])).await;
    finds(&cluster, 2, COMMAND_TOKEN, "源药", &BTreeSet::new()).await;

    // Scope: Guangzhou's command centre finds Guangzhou's tasks, Shenzhen's its own; Tianhe's
    // operator only what was assigned to Tianhe.
    finds(&cluster, 2, GZ_COMMAND, "康源", &BTreeSet::new()).await;
    finds(&cluster, 2, SZ_COMMAND, "康源", &everything(&[pharmacy])).await;
    finds(&cluster, 2, SZ_COMMAND, "食品", &BTreeSet::new()).await;
    finds(&cluster, 2, TIANHE_OPERATOR_TOKEN, "食品", &everything(&[food])).await;

    // A task indexed before its dispatch: the dispatch changes who sees it, so the index takes
    // it in again; an acknowledgement changes nothing the index holds, and it stays found.
    let mut body = create_body("冷链仓储排查");
    body["subject"]["name"] = json!("广州市天河区冰峰冷链仓储有限公司");
    body["origin_bureau"] = json!("440100");
    let cold_chain = cluster.create_task_as(1, GZ_COMMAND, &body).await;
    let only = |id: u64| everything(&[id]);
    finds(&cluster, 2, GZ_COMMAND, "冰峰", &only(cold_chain.id)).await;
    finds(&cluster, 2, TIANHE_OPERATOR_TOKEN, "冰峰", &BTreeSet::new()).await;
    let dispatch = json!({"assignee_bureau": "440106", "version": cold_chain.version});
    let (status, answer) = act(&cluster, 1, GZ_COMMAND, cold_chain.id, "dispatch", dispatch).await;
    assert_eq!(status, 200, "dispatch: {answer}");
    finds(&cluster, 2, TIANHE_OPERATOR_TOKEN, "冰峰", &only(cold_chain.id)).await;
    let (status, answer) = act(&cluster, 1, TIANHE_OPERATOR_TOKEN, cold_chain.id, "ack", json!({})).await;
    assert_eq!(status, 200, "ack: {answer}");
    finds(&cluster, 2, TIANHE_OPERATOR_TOKEN, "冰峰", &only(cold_chain.id)).await;
    finds(&cluster, 2, GZ_COMMAND, "冷链", &only(cold_chain.id)).await;

    // Bad input is a clear 400 and changes nothing.
    for query in ["源", "", "  ", "，。", &"食".repeat(65)] {
        let (status, answer) = search(&cluster, 1, COMMAND_TOKEN, query).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_field")), "{query:?}: {answer}");
        assert!(answer["error"]["message"].as_str().is_some_and(|m| m.starts_with("q: ")), "{answer}");
    }
    let url = cluster.url(1, "/api/v1/search?q=食品&limit=0");
    let response = cluster.http.get(url).bearer_auth(COMMAND_TOKEN).send().await.expect("search");
    assert_eq!(response.status(), 400);
    let response = cluster.http.get(cluster.url(1, "/api/v1/search?q=食品")).send().await.expect("search");
    assert_eq!(response.status(), 401);

    // Killed with SIGKILL, node 3 finds what it found, and what was written while it was down.
    finds(&cluster, 3, COMMAND_TOKEN, "食品", &everything(&[food, yuexiu])).await;
    cluster.kill(3);
    let later = create(&cluster, COMMAND_TOKEN, "食品抽检", "珠海某某食品厂", "91350100M000100Y43", "440402").await;
    cluster.restart(3);
    finds(&cluster, 3, COMMAND_TOKEN, "食品", &everything(&[food, yuexiu, later])).await;
    // Its index lost, node 2 builds it again from its store.
    cluster.kill(2);
    std::fs::remove_dir_all(cluster.data_dir().join("node2").join("search")).expect("the index is removed");
    cluster.restart(2);
    finds(&cluster, 2, COMMAND_TOKEN, "食品", &everything(&[food, yuexiu, later])).await;
}
