//! The inspection-item list through real nodes: the shipped list in force until the group
//! adopts it, adopted by a command centre, a province's addition with its legal basis (a city's
//! refused), the organising level holding once adopted (a city may not plan the province's
//! checks of disclosed information), retirement, every change a version that survives a leader
//! SIGKILL, and the list published on the public route with nothing internal.

use serde_json::{json, Value};
use tests::{wait_until, TestCluster, COMMAND_TOKEN};

const CITY_TOKEN: &str = "demo-gz-command-0003";
const ZHEJIANG_TOKEN: &str = "demo-zj-command-0011";
const TIANHE_OPERATOR: &str = "demo-tianhe-op-0005";

async fn call(cluster: &TestCluster, node: u64, token: Option<&str>, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = cluster.url(node, path);
    let mut request = match &body {
        Some(body) => cluster.http.post(url).json(body),
        None => cluster.http.get(url),
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn addition(code: &str) -> Value {
    json!({
        "code": code, "name": "网络交易平台经营者主体责任落实情况检查",
        "basis": "《中华人民共和国电子商务法》第二十七条", "organiser": "prefecture",
        "industries": ["retail"], "expertise": "registration",
        "check_points": [{"code": format!("{code}-01"), "wording": "是否核验平台内经营者身份信息", "answer": "conformity"}],
        "reason": "本省网络交易监管重点",
    })
}

fn campaign(items: &[&str]) -> Value {
    json!({
        "name": "2026年天河区抽查",
        "items": items,
        "scope": {"region": "440106"},
        "targeted": false,
        "ratios_percent": {"high": 20, "normal": 5, "low": 3},
        "inspector_mode": {"mode": "whole_bureau"},
        "inspectors_per_inspection": 2,
    })
}

fn codes(list: &Value) -> Vec<String> {
    list["items"].as_array().unwrap().iter().map(|item| item["code"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_item_list_is_adopted_added_to_and_published_and_its_levels_hold() {
    let mut cluster = TestCluster::start().await;
    let leader = cluster.wait_for_leader().await;
    let follower = (1..=3).find(|n| *n != leader).unwrap();

    // Before adoption: the shipped list, version 0, and campaigns keep their old freedom.
    let (status, shipped) = call(&cluster, follower, Some(CITY_TOKEN), "/api/v1/inspection-item-list", None).await;
    assert_eq!(status, 200, "{shipped}");
    assert_eq!((shipped["version"].as_u64(), shipped["adopted"].as_bool()), (Some(0), Some(false)), "{shipped}");
    let a01 = &shipped["items"].as_array().unwrap().iter().find(|i| i["code"] == "A01").cloned().unwrap();
    assert_eq!((a01["organiser"].as_str(), a01["origin"].as_str()), (Some("province"), Some("national")), "{a01}");
    assert!(a01["basis"].as_str().is_some_and(|b| b.contains("企业信息公示暂行条例")), "{a01}");

    // Only command users change it; a city may not add; an addition needs a basis and a reason.
    let (status, _) =
        call(&cluster, follower, Some(TIANHE_OPERATOR), "/api/v1/inspection-item-list/national", Some(json!({}))).await;
    assert_eq!(status, 403);
    let (status, body) =
        call(&cluster, follower, Some(CITY_TOKEN), "/api/v1/inspection-items", Some(addition("44-GD01"))).await;
    assert!(status == 403 || status == 409, "a city adds nothing, adopted or not: {status} {body}");
    let mut lawless = addition("44-GD01");
    lawless["basis"] = json!("");
    let (status, body) = call(&cluster, follower, Some(COMMAND_TOKEN), "/api/v1/inspection-items", Some(lawless)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_field")), "{body}");
    let mut bad_level = addition("44-GD01");
    bad_level["organiser"] = json!("station");
    let (status, _) = call(&cluster, follower, Some(COMMAND_TOKEN), "/api/v1/inspection-items", Some(bad_level)).await;
    assert_eq!(status, 400);

    // The province adopts the national list (through a follower) and adds its own item.
    let (status, adopted) = call(
        &cluster,
        follower,
        Some(COMMAND_TOKEN),
        "/api/v1/inspection-item-list/national",
        Some(json!({"reason": "总局清单"})),
    )
    .await;
    assert_eq!(status, 201, "{adopted}");
    assert_eq!(
        (adopted["number"].as_u64(), adopted["change"].as_str()),
        (Some(1), Some("adopted_national")),
        "{adopted}"
    );
    assert_eq!(adopted["added"].as_array().map(Vec::len), shipped["items"].as_array().map(Vec::len));
    let (status, again) =
        call(&cluster, leader, Some(COMMAND_TOKEN), "/api/v1/inspection-item-list/national", Some(json!({}))).await;
    assert_eq!(status, 409, "adopting the same list again records nothing: {again}");
    let (status, added) =
        call(&cluster, leader, Some(COMMAND_TOKEN), "/api/v1/inspection-items", Some(addition("44-GD01"))).await;
    assert_eq!((status, added["number"].as_u64()), (201, Some(2)), "{added}");
    let (status, body) =
        call(&cluster, leader, Some(COMMAND_TOKEN), "/api/v1/inspection-items", Some(addition("44-GD01"))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("item_listed")), "{body}");
    // The province declares its enforcement inspection matters (a city may not): the list's
    // coverage, in the list and in the response metrics of any bureau of the province.
    let matters = json!({"total": 20, "reason": "省局执法检查事项清单"});
    let (status, _) =
        call(&cluster, leader, Some(CITY_TOKEN), "/api/v1/inspection-item-list/matters", Some(matters.clone())).await;
    assert_eq!(status, 403);
    let (status, declared) =
        call(&cluster, leader, Some(COMMAND_TOKEN), "/api/v1/inspection-item-list/matters", Some(matters)).await;
    assert_eq!((status, declared["matters"].as_u64()), (201, Some(20)), "{declared}");
    let shipped_count = shipped["items"].as_array().unwrap().len() as u64;
    let (_, list) = call(&cluster, leader, Some(CITY_TOKEN), "/api/v1/inspection-item-list", None).await;
    assert_eq!(
        list["coverage"],
        json!({"items": shipped_count + 1, "matters": 20, "rate": (shipped_count + 1) as f64 / 20.0})
    );
    let metrics = cluster.get_json(leader, CITY_TOKEN, "/api/v1/metrics/response?bureau=440106").await;
    assert_eq!(metrics["item_list_coverage"], list["coverage"], "{metrics}");
    let zhejiang = cluster.get_json(leader, ZHEJIANG_TOKEN, "/api/v1/metrics/response").await;
    assert_eq!(zhejiang["item_list_coverage"], Value::Null, "Zhejiang declared nothing");

    // Zhejiang may not retire Guangdong's addition.
    let retire = json!({"reason": "停止"});
    let (status, _) =
        call(&cluster, leader, Some(ZHEJIANG_TOKEN), "/api/v1/inspection-items/44-GD01/retire", Some(retire.clone()))
            .await;
    assert_eq!(status, 403);

    // Once adopted, a city may not plan the province's A01; it may plan B01 and the addition,
    // whose checklist reaches its inspectors.
    let directory = draw::generate::generate(300, ledger::BureauCode::parse_compiled("440106").unwrap(), 3);
    let (status, body) = cluster.post_csv(leader, COMMAND_TOKEN, "/api/v1/directories/entities", directory).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) =
        call(&cluster, leader, Some(CITY_TOKEN), "/api/v1/campaigns", Some(campaign(&["A01", "B01"]))).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("A01")), "{body}");
    let (status, body) =
        call(&cluster, leader, Some(CITY_TOKEN), "/api/v1/campaigns", Some(campaign(&["B01", "44-GD01"]))).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) =
        call(&cluster, leader, Some(COMMAND_TOKEN), "/api/v1/campaigns", Some(campaign(&["A01"]))).await;
    assert_eq!(status, 201, "the province plans A01: {body}");
    let (status, items) = call(&cluster, follower, Some(CITY_TOKEN), "/api/v1/inspection-items", None).await;
    assert_eq!(status, 200);
    let gd01 = items.as_array().unwrap().iter().find(|i| i["code"] == "44-GD01").cloned().expect("GD01 is current");
    assert_eq!((gd01["origin"].as_str(), gd01["listed_in"].as_u64()), (Some("440000"), Some(2)), "{gd01}");
    assert_eq!(gd01["check_points"][0]["code"], "44-GD01-01");

    // Retired by its province: no new campaign uses it, and the list keeps it, marked.
    let (status, retired) =
        call(&cluster, leader, Some(COMMAND_TOKEN), "/api/v1/inspection-items/44-GD01/retire", Some(retire)).await;
    assert_eq!((status, retired["number"].as_u64()), (200, Some(4)), "{retired}");
    let (status, body) =
        call(&cluster, leader, Some(CITY_TOKEN), "/api/v1/campaigns", Some(campaign(&["44-GD01"]))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("unknown_item")), "{body}");

    // The versions survive the leader's SIGKILL and read the same on every node.
    cluster.kill(leader);
    let new_leader = cluster.wait_for_leader().await;
    let list = wait_until("the list on the new leader", std::time::Duration::from_secs(20), || async {
        let (status, list) = call(&cluster, new_leader, Some(CITY_TOKEN), "/api/v1/inspection-item-list", None).await;
        if status == 200 && list["version"] == 4 {
            Ok(list)
        } else {
            Err(format!("{status} {list}"))
        }
    })
    .await;
    let steps: Vec<&str> = list["versions"].as_array().unwrap().iter().map(|v| v["change"].as_str().unwrap()).collect();
    assert_eq!(steps, ["adopted_national", "added", "declared_matters", "retired"]);
    assert_eq!(list["versions"][3]["reason"], "停止");
    assert_eq!(list["coverage"]["items"], shipped_count, "a retired item covers nothing");
    assert!(list["items"].as_array().unwrap().iter().any(|i| i["code"] == "44-GD01" && i["retired"] == true));
    assert!(codes(&list).contains(&"A01".to_owned()));

    // Published: current items only, with their basis and level, and nothing internal.
    let (status, public) = call(&cluster, new_leader, None, "/public/v1/inspection-items", None).await;
    assert_eq!((status, public["version"].as_u64()), (200, Some(4)), "{public}");
    assert!(!codes(&public).contains(&"44-GD01".to_owned()), "a retired item is not published as current");
    assert!(codes(&public).contains(&"A01".to_owned()));
    let keys: Vec<&String> = public["items"][0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["basis", "code", "name", "organiser", "origin", "origin_name"], "{public}");
}
