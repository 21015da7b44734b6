//! Joint inspections with other departments (部门联合抽查) on a running group: the province's
//! command centre registers the tax department (a city's may not), lists its item and enrols
//! its inspectors; a campaign with the item draws one of them onto each team, verifiably; the
//! organiser's result waits for the department's part, which only the department's inspector
//! on the team enters, through their own account; the published result carries the part, and
//! a member killed and restarted (the store's format 10) shows it.

use std::time::Duration;

use serde_json::{json, Value};
use tests::{request_json, wait_until, TestCluster, COMMAND_TOKEN, TIANHE_OPERATOR_TOKEN};

use crate::people::call;

const TIANHE: &str = "440106";
/// Guangzhou's command centre: a city's, under the province's group.
const CITY_TOKEN: &str = "demo-gz-command-0003";
/// The province's duty officer: the second person who fixes the beacon.
const SECOND_TOKEN: &str = "demo-gd-duty-0013";
const TAX: &str = "国家税务总局广州市天河区税务局";

fn tax_item(expertise: &str) -> Value {
    json!({"code": "D-tax-01", "name": "发票使用情况检查", "basis": "《中华人民共和国税收征收管理法》第五十四条",
           "organiser": "county", "industries": [], "expertise": expertise, "reason": "市政府部门联合抽查事项清单"})
}

async fn post(cluster: &TestCluster, node: u64, token: &str, path: &str, body: Value) -> (u16, Value) {
    request_json(cluster, node, token, "POST", path, Some(body)).await
}

/// The tax department registered with its item and three inspectors, each with an account of
/// Tianhe linked to them (password `Demo-<login>`); the bureau's own four inspectors.
pub(crate) async fn the_tax_department(cluster: &TestCluster, node: u64) {
    let (status, body) =
        post(cluster, node, COMMAND_TOKEN, "/api/v1/inspection-item-list/national", json!({"reason": ""})).await;
    assert_eq!(status, 201, "{body}");
    let register = json!({"code": "tax", "name": TAX});
    let (status, body) = post(cluster, node, CITY_TOKEN, "/api/v1/departments", register.clone()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "the group's own centre: {body}");
    let (status, body) =
        post(cluster, node, COMMAND_TOKEN, "/api/v1/departments", json!({"code": "税务", "name": TAX})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(cluster, node, COMMAND_TOKEN, "/api/v1/departments", register.clone()).await;
    assert_eq!((status, body["tag"].as_str()), (201, Some("dept:tax")), "{body}");
    let (status, body) = post(cluster, node, COMMAND_TOKEN, "/api/v1/departments", register).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("nothing_to_record")), "{body}");

    let (status, body) = post(cluster, node, COMMAND_TOKEN, "/api/v1/departments/tax/items", tax_item("food")).await;
    assert_eq!(status, 400, "its items need its tag: {body}");
    let (status, body) =
        post(cluster, node, COMMAND_TOKEN, "/api/v1/departments/tax/items", tax_item("dept:tax")).await;
    assert_eq!(status, 201, "{body}");

    for n in 1..=4 {
        let inspector = json!({"id": format!("TH{n:03}"), "name": format!("执法人员{n}"), "bureau": TIANHE,
            "expertise": ["registration"], "qualified": true});
        let (status, body) = post(cluster, node, COMMAND_TOKEN, "/api/v1/inspectors", inspector).await;
        assert_eq!(status, 201, "{body}");
    }
    let borrowed =
        json!({"id": "TH009", "name": "借用标签", "bureau": TIANHE, "expertise": ["dept:tax"], "qualified": true});
    let (status, body) = post(cluster, node, COMMAND_TOKEN, "/api/v1/inspectors", borrowed).await;
    assert_eq!(status, 400, "the department's tag is its own: {body}");
    let theirs: Vec<Value> = (1..=3)
        .map(|n| json!({"id": format!("TX{n:03}"), "name": format!("税务检查员{n}"), "bureau": TIANHE, "qualified": true}))
        .collect();
    let (status, body) =
        post(cluster, node, COMMAND_TOKEN, "/api/v1/departments/tax/inspectors", json!({"inspectors": theirs})).await;
    assert_eq!(status, 201, "{body}");
    assert!(body["inspectors"].as_array().unwrap().iter().all(|i| i["department"] == "tax"), "{body}");
    for n in 1..=3 {
        let person = json!({"login": format!("taxman{n}"), "name": format!("税务检查员{n}"), "unit": TIANHE,
                            "roles": ["department"], "password": format!("Demo-taxman{n}")});
        let (status, body) = call(cluster, node, "POST", Some(COMMAND_TOKEN), "/api/v1/people", person).await;
        assert_eq!(status, 201, "{body}");
        let path = format!("/api/v1/people/{}/inspector", body["id"]);
        let (status, body) =
            call(cluster, node, "POST", Some(COMMAND_TOKEN), &path, json!({"inspector": format!("TX{n:03}")})).await;
        assert_eq!(status, 200, "{body}");
    }
}

async fn session_of(cluster: &TestCluster, node: u64, inspector: &str) -> String {
    let (login, password) = credentials_of(inspector);
    let credentials = json!({"login": login, "password": password});
    let (status, body) = call(cluster, node, "POST", None, "/api/v1/sessions", credentials).await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().expect("a session token").to_owned()
}

/// A drawn joint inspection of Tianhe (the tax department's item on every one): its task, the
/// department's inspector on its team and one who is not, written through `node`.
pub(crate) struct JointInspection {
    pub task: u64,
    /// Inspections the draw made.
    pub drawn: usize,
    pub on_team: String,
    pub elsewhere: String,
    pub uscc: String,
}

pub(crate) async fn drawn_joint_inspection(cluster: &TestCluster, leader: u64) -> JointInspection {
    tests::import_directory(cluster, leader, TIANHE, 800, 17).await;
    the_tax_department(cluster, leader).await;
    let departments = cluster.get_json(leader, COMMAND_TOKEN, "/api/v1/departments").await;
    assert_eq!(departments["departments"][0]["items"], json!(["D-tax-01"]), "{departments}");
    assert_eq!(departments["departments"][0]["inspectors"], 3, "{departments}");
    // Its item is on the published list under its own name.
    let (_, public_list) = call(cluster, leader, "GET", None, "/public/v1/inspection-items", Value::Null).await;
    let listed = public_list["items"].as_array().unwrap().iter().find(|i| i["code"] == "D-tax-01").cloned();
    assert_eq!(listed.map(|i| i["origin_name"].clone()), Some(json!(TAX)), "{public_list}");

    let plan = json!({"name": "2026年天河区部门联合抽查", "items": ["A01", "D-tax-01"], "scope": {"region": TIANHE},
                      "targeted": false, "ratios_percent": {"high": 5, "normal": 5, "low": 5},
                      "inspector_mode": {"mode": "whole_bureau"}, "inspectors_per_inspection": 2});
    let (status, campaign) = post(cluster, leader, COMMAND_TOKEN, "/api/v1/campaigns", plan).await;
    assert_eq!(status, 201, "{campaign}");
    let path = format!("/api/v1/campaigns/{}/draw", campaign["id"]);
    let (status, drawn) = post(cluster, leader, SECOND_TOKEN, &path, json!({"beacon": "20261207"})).await;
    assert_eq!(status, 201, "{drawn}");
    let (status, proof) = request_json(
        cluster,
        leader,
        COMMAND_TOKEN,
        "GET",
        &format!("/api/v1/campaigns/{}/proof", campaign["id"]),
        None,
    )
    .await;
    assert_eq!(status, 200, "{proof}");
    let (ok, report) = tests::verify_proof(cluster, leader, COMMAND_TOKEN, &proof).await;
    assert!(ok, "{report}");

    let task_id = drawn["draw"]["tasks"][0].as_u64().expect("an inspection");
    let task = cluster.get_json(leader, COMMAND_TOKEN, &format!("/api/v1/tasks/{task_id}")).await;
    let inspection = &task["inspection"];
    assert_eq!(
        (&inspection["departments"], &inspection["departments_awaited"]),
        (&json!(["tax"]), &json!(["tax"])),
        "{task}"
    );
    let team: Vec<String> =
        inspection["inspectors"].as_array().unwrap().iter().map(|i| i.as_str().unwrap().to_owned()).collect();
    let on_team = team.iter().find(|id| id.starts_with("TX")).expect("a tax inspector on the team").clone();
    assert!(team.iter().any(|id| id.starts_with("TH")), "and one of the bureau's own: {team:?}");
    let elsewhere = ["TX001", "TX002", "TX003"].into_iter().find(|id| *id != on_team).unwrap().to_owned();
    let uscc = task["subject"]["uscc"].as_str().unwrap().to_owned();
    let drawn = drawn["draw"]["tasks"].as_array().map_or(0, Vec::len);
    JointInspection { task: task_id, drawn, on_team, elsewhere, uscc }
}

/// The login and password of the account linked to the tax department's inspector `inspector`.
pub(crate) fn credentials_of(inspector: &str) -> (String, String) {
    let login = inspector.replace("TX00", "taxman");
    let password = format!("Demo-{login}");
    (login, password)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joint_inspection_draws_the_department_waits_for_its_part_and_publishes_it() {
    let mut cluster = TestCluster::start().await;
    let leader = cluster.wait_for_leader().await;
    let JointInspection { task: task_id, on_team, elsewhere, uscc, .. } =
        drawn_joint_inspection(&cluster, leader).await;
    let show = format!("/api/v1/tasks/{task_id}");

    // The organiser's result waits for the department's part.
    let act = |action: &str| format!("{show}/{action}");
    assert_eq!(post(&cluster, leader, TIANHE_OPERATOR_TOKEN, &act("ack"), json!({})).await.0, 200);
    let result = json!({"outcome": "no_problem_found", "note": "市场监管部分未发现问题"});
    let (status, body) = post(&cluster, leader, TIANHE_OPERATOR_TOKEN, &act("complete"), result.clone()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("department_parts_awaited")), "{body}");

    // Only the department's inspector on the team enters it, through their own account.
    let part = json!({"outcome": "corrected", "summary": "发票开具不规范，已责令改正"});
    let (status, body) = post(&cluster, leader, TIANHE_OPERATOR_TOKEN, &act("department-part"), part.clone()).await;
    assert_eq!(status, 403, "{body}");
    let outsider = session_of(&cluster, leader, &elsewhere).await;
    assert_eq!(post(&cluster, leader, &outsider, &act("department-part"), part.clone()).await.0, 404);
    let member = session_of(&cluster, leader, &on_team).await;
    // Their team's joint inspections and nothing else: no other task, no writes but their part.
    let (_, listed) = request_json(&cluster, leader, &member, "GET", "/api/v1/tasks?limit=500", None).await;
    let listed: Vec<u64> = listed["tasks"].as_array().expect("tasks").iter().filter_map(|t| t["id"].as_u64()).collect();
    assert!(listed.contains(&task_id), "{listed:?}");
    for id in &listed {
        let team = cluster.get_json(leader, COMMAND_TOKEN, &format!("/api/v1/tasks/{id}")).await["inspection"]
            ["inspectors"]
            .clone();
        assert!(team.as_array().unwrap().iter().any(|i| *i == json!(on_team)), "task {id} is not their team's");
    }
    let outside = (1..200).find(|id| !listed.contains(id)).unwrap();
    let (status, _) = request_json(&cluster, leader, &member, "GET", &format!("/api/v1/tasks/{outside}"), None).await;
    assert_eq!(status, 404, "another inspection is not theirs to see");
    assert_eq!(post(&cluster, leader, &member, &act("complete"), json!({"outcome": "corrected"})).await.0, 403);
    for path in
        ["/api/v1/metrics/response", "/api/v1/campaigns", "/api/v1/inspectors", &format!("/api/v1/entities/{uscc}")]
    {
        let (status, body) = request_json(&cluster, leader, &member, "GET", path, None).await;
        assert_eq!(status, 403, "nor the bureau's own data: {path} {body}");
    }
    let (status, body) =
        post(&cluster, leader, &member, &act("department-part"), json!({"outcome": "warned", "summary": "x"})).await;
    assert_eq!(status, 400, "{body}");
    let (status, entered) = post(&cluster, leader, &member, &act("department-part"), part).await;
    assert_eq!(status, 200, "{entered}");
    let parts = &entered["inspection"]["department_parts"];
    assert_eq!((&parts[0]["department"], &parts[0]["inspector"]), (&json!("tax"), &json!(on_team)), "{entered}");
    assert_eq!(entered["inspection"]["departments_awaited"], json!([]));
    assert_eq!(entered["timeline"].as_array().unwrap().last().unwrap()["action"], "department_part");

    let (status, body) = post(&cluster, leader, TIANHE_OPERATOR_TOKEN, &act("complete"), result).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(&cluster, leader, COMMAND_TOKEN, &act("publish"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (_, public) =
        call(&cluster, leader, "GET", None, &format!("/public/v1/results?uscc={uscc}"), Value::Null).await;
    assert_eq!(public["results"][0]["result"], "no_problem_found", "{public}");
    assert_eq!(public["results"][0]["departments"], json!([{"department": TAX, "result": "corrected"}]), "{public}");
    assert!(!public.to_string().contains("发票开具不规范"), "the part's summary stays internal: {public}");

    // A member killed and restarted reads the part back from its store and log.
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    cluster.kill(follower);
    cluster.restart(follower);
    wait_until("the restarted member shows the part", Duration::from_secs(30), || async {
        let (status, task) = request_json(&cluster, follower, COMMAND_TOKEN, "GET", &show, None).await;
        if status == 200 && task["inspection"]["department_parts"].as_array().is_some_and(|p| p.len() == 1) {
            Ok(())
        } else {
            Err(format!("{status} {task}"))
        }
    })
    .await;
}

/// A joint campaign draws only where the group that hosts its departments works every
/// inspection: a scope holding a city's own group is refused (its inspections would be handed
/// there, where the department is unknown), one the province's group hosts whole is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joint_campaign_stays_within_the_group_that_hosts_its_departments() {
    use tests::federation::{FederationOptions, GroupSpec, TestFederation};
    let fed =
        TestFederation::start(FederationOptions::new(vec![GroupSpec::new("440000", 1), GroupSpec::new("440100", 1)]))
            .await;
    let province = fed.group("440000");
    let leader = province.wait_for_leader().await;
    tests::import_directory(province, leader, "440300", 300, 5).await;
    the_tax_department(province, leader).await;
    let plan = |scope: &str| {
        json!({"name": "部门联合抽查", "items": ["A01", "D-tax-01"], "scope": {"region": scope}, "targeted": false,
               "ratios_percent": {"high": 5, "normal": 5, "low": 5}, "inspector_mode": {"mode": "whole_bureau"},
               "inspectors_per_inspection": 2})
    };
    let (status, body) = post(province, leader, COMMAND_TOKEN, "/api/v1/campaigns", plan("440000")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("joint_campaign_across_groups")), "{body}");
    let (status, body) = post(province, leader, COMMAND_TOKEN, "/api/v1/campaigns", plan("440300")).await;
    assert_eq!(status, 201, "Shenzhen is the province group's own: {body}");
}
