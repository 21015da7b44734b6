//! The entities' risk files through real nodes: the leader turns them on by itself, the group's
//! own command centre sets the yearly cap (a city's may not), a draw under the cap passes by
//! every entity inspected this year and its proof (cap included) verifies with `xietong draw
//! verify` while a proof with the cap edited does not, and the enterprise file shows an
//! entity's file (internal) on a member that was killed and restarted. The provincial
//! credit-risk system's classes arrive through the register's feed, are frozen into the file a
//! draw uses, and decide which entities a targeted campaign on high risk draws.

use std::time::Duration;

use serde_json::{json, Value};
use tests::{request_json, wait_until, TestCluster, COMMAND_TOKEN, TIANHE_OPERATOR_TOKEN};

/// Guangzhou's command centre plans; the province's (a second person, above it) fixes beacons.
const PLANNER_TOKEN: &str = "demo-gz-command-0003";
const TIANHE: &str = "440106";
const CAP_PATH: &str = "/api/v1/programme/inspection-cap";

fn campaign(name: &str, percent: f64) -> Value {
    json!({
        "name": name,
        "items": ["A01", "B01"],
        "scope": {"region": TIANHE},
        "targeted": false,
        "ratios_percent": {"high": percent, "normal": percent, "low": percent},
        "inspector_mode": {"mode": "whole_bureau"},
        "inspectors_per_inspection": 2,
    })
}

/// Waits until the leader turned the risk files on (nobody asks it to).
async fn wait_for_risk_files(cluster: &TestCluster, node: u64) {
    wait_until("the risk files are kept", Duration::from_secs(30), || async {
        let cap = cluster.get_json(node, COMMAND_TOKEN, CAP_PATH).await;
        if cap["risk_files_kept"] == true {
            Ok(())
        } else {
            Err(cap.to_string())
        }
    })
    .await;
}

/// Six inspectors of Tianhe, enrolled by the province's command centre.
async fn enrol_inspectors(cluster: &TestCluster, node: u64) {
    for n in 1..=6 {
        let inspector = json!({"id": format!("TH{n:03}"), "name": format!("执法人员{n}"), "bureau": TIANHE,
            "station": if n % 2 == 0 { Value::Null } else { json!("石牌所") },
            "expertise": ["food", "registration"], "qualified": true});
        let (status, body) =
            request_json(cluster, node, COMMAND_TOKEN, "POST", "/api/v1/inspectors", Some(inspector)).await;
        assert_eq!(status, 201, "{body}");
    }
}

/// Plans a campaign and draws it with a beacon from a second person: the drawn campaign.
async fn plan_and_draw(cluster: &TestCluster, node: u64, name: &str, percent: f64, beacon: &str) -> Value {
    let (status, planned) =
        request_json(cluster, node, PLANNER_TOKEN, "POST", "/api/v1/campaigns", Some(campaign(name, percent))).await;
    assert_eq!(status, 201, "{planned}");
    let path = format!("/api/v1/campaigns/{}/draw", planned["id"]);
    let (status, drawn) =
        request_json(cluster, node, COMMAND_TOKEN, "POST", &path, Some(json!({"beacon": beacon}))).await;
    assert_eq!(status, 201, "{drawn}");
    drawn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_yearly_cap_keeps_inspected_entities_out_of_a_verifiable_draw() {
    let mut cluster = TestCluster::start().await;
    let leader = cluster.wait_for_leader().await;
    wait_for_risk_files(&cluster, leader).await;
    tests::import_directory(&cluster, leader, TIANHE, 1_000, 7).await;
    enrol_inspectors(&cluster, leader).await;

    // The cap is the group's: a city's centre and an operator may not set it; it has a range.
    for (token, cap, expected) in [
        (PLANNER_TOKEN, json!(1), 403),
        (TIANHE_OPERATOR_TOKEN, json!(1), 403),
        (COMMAND_TOKEN, json!(0), 400),
        (COMMAND_TOKEN, json!(13), 400),
        (COMMAND_TOKEN, json!("once"), 400),
    ] {
        let (status, body) =
            request_json(&cluster, leader, token, "POST", CAP_PATH, Some(json!({"yearly_max": cap}))).await;
        assert_eq!(status, expected, "{cap}: {body}");
    }
    assert_eq!(cluster.get_json(leader, COMMAND_TOKEN, CAP_PATH).await["yearly_max"], Value::Null, "nothing changed");
    let (status, set) =
        request_json(&cluster, leader, COMMAND_TOKEN, "POST", CAP_PATH, Some(json!({"yearly_max": 1}))).await;
    assert_eq!((status, &set["yearly_max"]), (200, &json!(1)), "{set}");

    // A first campaign, then one that would take every entity of the scope: it takes every one
    // the first did not.
    let first = plan_and_draw(&cluster, leader, "2026年第一批", 5.0, "20261207").await;
    let first_count = first["draw"]["inspections"].as_u64().unwrap();
    assert!(first_count > 0);
    let every = plan_and_draw(&cluster, leader, "2026年第二批（全覆盖）", 100.0, "20261208").await;
    let draw = &every["draw"];
    assert_eq!(draw["entities_in_scope"], 1_000);
    assert_eq!(draw["eligible"].as_u64().unwrap() + first_count, 1_000, "{draw}");
    assert_eq!(draw["inspections"], draw["eligible"]);

    // Its proof carries the cap and verifies; with an entity taken off the cap's list it does not.
    let (status, proof) =
        request_json(&cluster, leader, COMMAND_TOKEN, "GET", &format!("/api/v1/campaigns/{}/proof", every["id"]), None)
            .await;
    assert_eq!(status, 200, "{proof}");
    assert_eq!(proof["year_cap"]["max"], 1);
    assert_eq!(proof["year_cap"]["reached"].as_array().map(Vec::len), Some(first_count as usize));
    let (ok, report) = tests::verify_proof(&cluster, leader, COMMAND_TOKEN, &proof).await;
    assert!(ok, "{report}");
    let mut edited = proof.clone();
    edited["year_cap"]["reached"].as_array_mut().unwrap().pop();
    let (ok, report) = tests::verify_proof(&cluster, leader, COMMAND_TOKEN, &edited).await;
    assert!(!ok && report.contains("MISMATCH"), "{report}");

    // The enterprise file shows an entity's risk file, also on a member killed and restarted.
    let task = first["draw"]["tasks"][0].as_u64().unwrap();
    let task = cluster.get_json(leader, COMMAND_TOKEN, &format!("/api/v1/tasks/{task}")).await;
    let uscc = task["subject"]["uscc"].as_str().unwrap().to_owned();
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    cluster.kill(follower);
    cluster.restart(follower);
    let file = wait_until("the restarted member shows the risk file", Duration::from_secs(30), || async {
        let (status, file) =
            request_json(&cluster, follower, COMMAND_TOKEN, "GET", &format!("/api/v1/entities/{uscc}"), None).await;
        if status == 200 && file["risk"]["inspections_this_year"] == 1 {
            Ok(file)
        } else {
            Err(format!("{status} {file}"))
        }
    })
    .await;
    let risk = &file["risk"];
    assert_eq!((risk["yearly_cap"].as_u64(), risk["at_cap"].as_bool()), (Some(1), Some(true)), "{risk}");
    assert_eq!(risk["last_team"].as_array().map(Vec::len), Some(2), "{risk}");
    assert_eq!(risk["region_code"], TIANHE);
    // Never public: the public side has no risk file.
    let public = cluster.http.get(cluster.url(follower, &format!("/public/v1/results?uscc={uscc}"))).send().await;
    let text = public.expect("public results").text().await.unwrap();
    assert!(!text.contains("inspections_this_year") && !text.contains("at_cap"), "{text}");
}

/// The provincial credit-risk system's feed (a source of the province's bureau).
const CREDIT_RISK_FEED_TOKEN: &str = "demo-register-gd-0050";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credit_risk_classes_arrive_through_the_register_and_decide_a_targeted_draw() {
    let cluster = TestCluster::start().await;
    let leader = cluster.wait_for_leader().await;
    wait_for_risk_files(&cluster, leader).await;
    let region = ledger::BureauCode::parse_compiled(TIANHE).unwrap();
    let base = draw::generate::generate(1_000, region, 11);
    let (status, imported) =
        cluster.post_csv(leader, COMMAND_TOKEN, "/api/v1/directories/entities", base.clone()).await;
    assert_eq!(status, 201, "{imported}");
    enrol_inspectors(&cluster, leader).await;

    // Five entities classed high by the credit-risk system; a class it does not have, and a
    // class on a registration, are refused alone.
    let usccs: Vec<String> = std::str::from_utf8(&base)
        .unwrap()
        .lines()
        .skip(1)
        .map(|row| row.split(',').next().unwrap().to_owned())
        .collect();
    let mut changes: Vec<Value> = (0..5)
        .map(|n| json!({"id": format!("CR-2026-{n:04}"), "kind": "classify", "uscc": usccs[n], "risk_class": "high"}))
        .collect();
    changes.push(json!({"id": "CR-2026-0005", "kind": "classify", "uscc": usccs[5], "risk_class": "urgent"}));
    changes.push(json!({"id": "CR-2026-0006", "kind": "revoke", "uscc": usccs[6], "risk_class": "low"}));
    changes.push(json!({"id": "CR-2026-0007", "kind": "classify", "uscc": usccs[7], "risk_class": "low"}));
    let (status, answer) = request_json(
        &cluster,
        leader,
        CREDIT_RISK_FEED_TOKEN,
        "POST",
        "/api/v1/register/changes",
        Some(json!({"changes": changes})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let outcomes: Vec<&str> =
        answer["results"].as_array().unwrap().iter().map(|result| result["outcome"].as_str().unwrap()).collect();
    assert_eq!(
        outcomes,
        ["recorded", "recorded", "recorded", "recorded", "recorded", "refused", "refused", "recorded"]
    );
    let journal = cluster.get_json(leader, COMMAND_TOKEN, "/api/v1/register/changes?after=0").await;
    assert_eq!(journal["entries"][0]["change"]["kind"], "classify", "{journal}");
    assert_eq!(journal["entries"][0]["change"]["risk_class"], "high", "{journal}");

    // A campaign targeted on high risk takes every entity of the class: the five among them,
    // from the register frozen with their classes just before the beacon.
    let mut targeted = campaign("2026年高风险主体定向抽查", 100.0);
    targeted["targeted"] = json!(true);
    targeted["scope"]["risk_classes"] = json!(["high"]);
    let (status, planned) =
        request_json(&cluster, leader, PLANNER_TOKEN, "POST", "/api/v1/campaigns", Some(targeted)).await;
    assert_eq!(status, 201, "{planned}");
    let path = format!("/api/v1/campaigns/{}/draw", planned["id"]);
    let (status, drawn) =
        request_json(&cluster, leader, COMMAND_TOKEN, "POST", &path, Some(json!({"beacon": "20261209"}))).await;
    assert_eq!(status, 201, "{drawn}");
    let mut inspected = Vec::new();
    for task in drawn["draw"]["tasks"].as_array().unwrap() {
        let task = cluster.get_json(leader, COMMAND_TOKEN, &format!("/api/v1/tasks/{task}")).await;
        assert_eq!(task["inspection"]["risk_class"], "high", "{task}");
        inspected.push(task["subject"]["uscc"].as_str().unwrap().to_owned());
    }
    for uscc in &usccs[..5] {
        assert!(inspected.contains(uscc), "{uscc} was classed high and not drawn: {inspected:?}");
    }
    assert!(!inspected.contains(&usccs[7]), "classed low: not a high-risk entity");
    let (_, proof) = request_json(
        &cluster,
        leader,
        COMMAND_TOKEN,
        "GET",
        &format!("/api/v1/campaigns/{}/proof", planned["id"]),
        None,
    )
    .await;
    assert_ne!(proof["draw"]["inputs"]["spec"]["entity_directory"], imported["sha256"], "drawn from the frozen file");
    let (ok, report) = tests::verify_proof(&cluster, leader, COMMAND_TOKEN, &proof).await;
    assert!(ok, "{report}");

    // The enterprise file shows the class the system reported (internal).
    let file = cluster.get_json(leader, COMMAND_TOKEN, &format!("/api/v1/entities/{}", usccs[0])).await;
    assert_eq!(file["risk"]["credit_risk_class"], "high", "{file}");
    assert!(file["risk"]["classified_at"].is_string(), "{file}");
}
