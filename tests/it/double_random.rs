//! "Double random, one public" through real nodes: a directory imported on a follower and kept
//! on the group's nodes, inspectors, a campaign planned by one person and sealed by a second
//! (the planner is refused), the leader SIGKILLed before the draw, the draw verified by
//! `xietong draw verify` (and a tampered proof failing it), the result entered by the
//! inspecting bureau, published and withdrawn, and the public routes never showing anything
//! internal. Bad input changes nothing.

use std::time::Duration;

use serde_json::{json, Value};
use tests::{wait_until, TestCluster, COMMAND_TOKEN, TIANHE_OPERATOR_TOKEN};

/// The Guangzhou command centre plans; the provincial centre (a second person, above it) seals.
const PLANNER_TOKEN: &str = "demo-gz-command-0003";
const TIANHE: &str = "440106";

async fn call(
    cluster: &TestCluster,
    node: u64,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = cluster.url(node, path);
    let mut request = match method {
        "POST" => cluster.http.post(url),
        _ => cluster.http.get(url),
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn import(cluster: &TestCluster, node: u64, csv: Vec<u8>) -> (u16, Value) {
    cluster.post_csv(node, COMMAND_TOKEN, "/api/v1/directories/entities", csv).await
}

fn campaign_request(low_percent: f64) -> Value {
    json!({
        "name": "2026年天河区食品经营双随机抽查",
        "items": ["A01", "B01"],
        "scope": {"region": TIANHE},
        "targeted": false,
        "ratios_percent": {"high": 20, "normal": 5, "low": low_percent},
        "inspector_mode": {"mode": "whole_bureau"},
        "inspectors_per_inspection": 2,
    })
}

/// Every key of a public answer, at any depth.
fn keys(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                into.push(key.clone());
                keys(inner, into);
            }
        }
        Value::Array(items) => items.iter().for_each(|inner| keys(inner, into)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_is_drawn_verifiably_and_its_results_published() {
    let mut cluster = TestCluster::start().await;
    let leader = cluster.wait_for_leader().await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();

    // A directory with a bad row is refused whole; nothing is recorded.
    let region = ledger::BureauCode::parse_compiled(TIANHE).unwrap();
    let csv = draw::generate::generate(3_000, region, 42);
    let broken = String::from_utf8(csv.clone()).unwrap().replacen(",440106,", ",449999,", 1);
    let (status, refused) = import(&cluster, follower, broken.into_bytes()).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (400, Some("invalid_directory")), "{refused}");
    let (_, versions) = call(&cluster, leader, Some(COMMAND_TOKEN), "GET", "/api/v1/directories/entities", None).await;
    assert_eq!(versions["versions"], json!([]));

    // Imported on a follower: forwarded to the leader, kept on every node, its version committed.
    let (status, version) = import(&cluster, follower, csv.clone()).await;
    assert_eq!(status, 201, "{version}");
    let sha = version["sha256"].as_str().unwrap().to_owned();
    assert_eq!(version["entities"], 3_000);
    let copies: Vec<_> =
        tests::files_below(cluster.data_dir()).into_iter().filter(|p| p.ends_with(format!("{sha}.csv"))).collect();
    assert!(copies.len() >= 2, "a majority holds the file: {copies:?}");

    // Inspectors of Tianhe: an operator may not enrol; six are enrolled by the command centre.
    let inspector = |n: u32, expertise: &[&str]| {
        json!({"id": format!("TH{n:03}"), "name": format!("执法人员{n}"), "bureau": TIANHE,
               "station": if n.is_multiple_of(2) { Value::Null } else { json!("石牌所") },
               "expertise": expertise, "qualified": true})
    };
    let (status, _) =
        call(&cluster, 1, Some(TIANHE_OPERATOR_TOKEN), "POST", "/api/v1/inspectors", Some(inspector(0, &["food"])))
            .await;
    assert_eq!(status, 403);
    for n in 1..=6 {
        let expertise: &[&str] = if n % 2 == 0 { &["food", "registration"] } else { &["registration", "food"] };
        let (status, body) =
            call(&cluster, 1, Some(COMMAND_TOKEN), "POST", "/api/v1/inspectors", Some(inspector(n, expertise))).await;
        assert_eq!(status, 201, "{body}");
    }
    let conflict = json!({"uscc": "91440106MA5D0001", "reason": "近亲属任该企业法定代表人"});
    let (status, _) =
        call(&cluster, 1, Some(COMMAND_TOKEN), "POST", "/api/v1/inspectors/TH001/conflicts", Some(conflict)).await;
    assert_eq!(status, 400, "an invalid USCC is refused");

    // A class not drawn from at all is refused and creates nothing; one drawn more thinly than
    // 3% is a plan (domain review P2: the floor is on the total, which the draw keeps below).
    let (status, body) =
        call(&cluster, 2, Some(PLANNER_TOKEN), "POST", "/api/v1/campaigns", Some(campaign_request(0.0))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_field")), "{body}");
    let due = node::api::time::format_ms(node::api::time::now_ms() / 1000 * 1000 + 40 * 24 * 3_600_000);
    let mut plan = campaign_request(1.0);
    plan["complete_by"] = json!(due);
    let (status, campaign) = call(&cluster, 2, Some(PLANNER_TOKEN), "POST", "/api/v1/campaigns", Some(plan)).await;
    assert_eq!(status, 201, "{campaign}");
    assert_eq!(campaign["state"], "planned");
    let id = campaign["id"].as_u64().unwrap();
    let draw_path = format!("/api/v1/campaigns/{id}/draw");

    // The planner may not fix the beacon (a second person must).
    let (status, body) =
        call(&cluster, 3, Some(PLANNER_TOKEN), "POST", &draw_path, Some(json!({"beacon": "20261202"}))).await;
    assert_eq!(status, 403, "{body}");

    // The leader dies before the draw; the new leader fetches the file if it lacks it.
    cluster.kill(leader);
    let new_leader = cluster.wait_for_leader().await;
    assert_ne!(new_leader, leader);
    let (status, drawn) =
        call(&cluster, new_leader, Some(COMMAND_TOKEN), "POST", &draw_path, Some(json!({"beacon": "20261202"}))).await;
    assert_eq!(status, 201, "{drawn}");
    assert_eq!(drawn["state"], "drawn");
    let draw = &drawn["draw"];
    let inspections = draw["inspections"].as_u64().unwrap();
    assert!(inspections * 100 >= draw["eligible"].as_u64().unwrap() * 3, "never under 3%: {draw}");
    let (status, _) =
        call(&cluster, new_leader, Some(COMMAND_TOKEN), "POST", &draw_path, Some(json!({"beacon": "other"}))).await;
    assert_eq!(status, 409, "the beacon is fixed once and the draw done once");

    // 随机抽查数量比例: the inspections drawn, of Tianhe's 3,000 registered entities, in
    // Guangzhou's row of the province's report, on every running node once it applied the draw.
    for node in (1..=3).filter(|id| *id != leader) {
        let metrics = wait_until("the draw in the metrics", Duration::from_secs(20), || async {
            let metrics = cluster.get_json(node, COMMAND_TOKEN, "/api/v1/metrics/response?bureau=440000").await;
            let row = metrics["rows"].as_array().unwrap().iter().find(|row| row["key"] == "440100").cloned().unwrap();
            if row["figures"]["inspections"].as_u64() == Some(inspections) {
                Ok(metrics)
            } else {
                Err(row.to_string())
            }
        })
        .await;
        let rows = metrics["rows"].as_array().unwrap();
        let guangzhou = &rows.iter().find(|row| row["key"] == "440100").unwrap()["figures"];
        assert_eq!(guangzhou["register_entities"], 3_000, "{guangzhou}");
        let ratio = guangzhou["random_inspection_ratio"].as_f64().unwrap();
        assert!((ratio - inspections as f64 / 3_000.0).abs() < 1e-9, "{guangzhou}");
        assert_eq!(metrics["total"]["register_entities"], 3_000, "{metrics}");
        let shenzhen = &rows.iter().find(|row| row["key"] == "440300").unwrap()["figures"];
        assert_eq!(shenzhen["register_entities"], 0);
        assert_eq!(shenzhen["random_inspection_ratio"], Value::Null, "no entities, no ratio");
    }

    // The proof and the file verify with the command-line tool; a tampered proof does not.
    let node = (1..=3).find(|id| *id != leader).unwrap();
    let (_, proof) =
        call(&cluster, node, Some(COMMAND_TOKEN), "GET", &format!("/api/v1/campaigns/{id}/proof"), None).await;
    assert_eq!(proof["draw"]["inputs"]["spec"]["entity_directory"], sha.as_str());
    let (ok, report) = tests::verify_proof(&cluster, node, COMMAND_TOKEN, &proof).await;
    assert!(ok, "{report}");
    let mut tampered = proof.clone();
    tampered["draw"]["inputs"]["beacon"] = json!("chosen afterwards");
    let (ok, report) = tests::verify_proof(&cluster, node, COMMAND_TOKEN, &tampered).await;
    assert!(!ok && report.contains("MISMATCH"), "{report}");

    // 谁抽查、谁录入: Tianhe acknowledges and enters the result; the organiser publishes it.
    let task_id = draw["tasks"][0].as_u64().unwrap();
    let (status, task) =
        call(&cluster, node, Some(TIANHE_OPERATOR_TOKEN), "GET", &format!("/api/v1/tasks/{task_id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!((task["kind"].as_str(), task["state"].as_str()), (Some("inspection"), Some("dispatched")));
    assert_eq!(task["complete_deadline"], json!(due), "the campaign's own deadline");
    let team: Vec<String> =
        task["inspection"]["inspectors"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    assert_eq!(team.len(), 2, "never alone");
    let uscc = task["subject"]["uscc"].as_str().unwrap().to_owned();
    let act = |action: &str| format!("/api/v1/tasks/{task_id}/{action}");
    assert_eq!(call(&cluster, node, Some(TIANHE_OPERATOR_TOKEN), "POST", &act("ack"), Some(json!({}))).await.0, 200);
    let (status, body) =
        call(&cluster, node, Some(TIANHE_OPERATOR_TOKEN), "POST", &act("complete"), Some(json!({"outcome": "warned"})))
            .await;
    assert_eq!(status, 400, "an inspection's result is one of the inspection outcomes: {body}");
    let (status, entered) = call(
        &cluster,
        node,
        Some(TIANHE_OPERATOR_TOKEN),
        "POST",
        &act("complete"),
        Some(json!({"outcome": "corrected", "note": "现场检查发现未公示年报，已责令改正"})),
    )
    .await;
    assert_eq!(status, 200, "{entered}");
    assert_eq!(entered["inspection"]["publication"], "pending");
    assert!(entered["inspection"]["publish_deadline"].is_string());
    let public_path = format!("/public/v1/results?uscc={uscc}");
    let (status, public) = call(&cluster, node, None, "GET", &public_path, None).await;
    assert_eq!((status, public["results"].as_array().map(Vec::len)), (200, Some(0)), "not public before publication");
    let (status, _) = call(&cluster, node, Some(TIANHE_OPERATOR_TOKEN), "POST", &act("publish"), Some(json!({}))).await;
    assert_eq!(status, 403, "the organiser publishes");
    let (status, published) = call(&cluster, node, Some(PLANNER_TOKEN), "POST", &act("publish"), Some(json!({}))).await;
    assert_eq!(status, 200, "{published}");

    let public = wait_until("the result is public", Duration::from_secs(10), || async {
        let (_, public) = call(&cluster, node, None, "GET", &public_path, None).await;
        if public["results"].as_array().is_some_and(|r| r.len() == 1) {
            Ok(public)
        } else {
            Err(public.to_string())
        }
    })
    .await;
    assert_eq!(public["results"][0]["result"], "corrected");
    let (_, campaigns) = call(&cluster, node, None, "GET", "/public/v1/campaigns", None).await;
    // Nothing internal on the public routes: only the published fields, and none of the
    // internal values (team, risk class, beacon, seed, the note) anywhere in the text.
    let allowed = [
        "results",
        "next_cursor",
        "campaign",
        "campaign_name",
        "uscc",
        "entity_name",
        "region_code",
        "region_name",
        "items",
        "result",
        "inspected_at",
        "published_at",
        "organiser",
        "organiser_name",
        // A joint inspection's departments, each by name with its result (none here).
        "departments",
        "department",
        "campaigns",
        "id",
        "name",
        "code",
        "scope_region",
        "scope_name",
        "targeted",
        "drawn_at",
        "inspections",
        "published_results",
    ];
    for answer in [&public, &campaigns] {
        let mut found = Vec::new();
        keys(answer, &mut found);
        for key in found {
            assert!(allowed.contains(&key.as_str()), "public answer has internal field {key}: {answer}");
        }
        let text = answer.to_string();
        for internal in team.iter().map(String::as_str).chain([
            "risk",
            "20261202",
            draw["seed"].as_str().unwrap(),
            "责令改正",
            "执法人员",
        ]) {
            assert!(!text.contains(internal), "public answer shows {internal}: {text}");
        }
    }
    let (status, page) = call(&cluster, node, None, "GET", "/public", None).await;
    assert_eq!(status, 200);
    assert!(page.as_str().is_some_and(|p| p.contains("抽查结果公示")));

    // Returned for rework (finding 9 of the security review): the published result leaves the
    // public routes at once, and the result entered again waits for the organiser's publication.
    let rework = json!({"note": "复核检查记录"});
    let (status, returned) = call(&cluster, node, Some(PLANNER_TOKEN), "POST", &act("return"), Some(rework)).await;
    assert_eq!(status, 200, "{returned}");
    assert_eq!(returned["inspection"]["publication"], serde_json::Value::Null, "{returned}");
    let (_, public) = call(&cluster, node, None, "GET", &public_path, None).await;
    assert_eq!(public["results"].as_array().map(Vec::len), Some(0), "not public while returned: {public}");
    let again = json!({"outcome": "penalized", "note": "复核后立案处罚"});
    let (status, reentered) =
        call(&cluster, node, Some(TIANHE_OPERATOR_TOKEN), "POST", &act("complete"), Some(again)).await;
    assert_eq!(status, 200, "{reentered}");
    assert_eq!(reentered["inspection"]["publication"], "pending");
    let (_, public) = call(&cluster, node, None, "GET", &public_path, None).await;
    assert_eq!(public["results"].as_array().map(Vec::len), Some(0), "not public until published again: {public}");
    let (status, _) = call(&cluster, node, Some(PLANNER_TOKEN), "POST", &act("publish"), Some(json!({}))).await;
    assert_eq!(status, 200);
    let public = wait_until("the reviewed result is public", Duration::from_secs(10), || async {
        let (_, public) = call(&cluster, node, None, "GET", &public_path, None).await;
        let result = public["results"][0]["result"].clone();
        (result == "penalized").then_some(public.clone()).ok_or(public.to_string())
    })
    .await;
    assert_eq!(public["results"].as_array().map(Vec::len), Some(1));

    // Withdrawn: gone from the public routes at once.
    let (status, _) = call(&cluster, node, Some(PLANNER_TOKEN), "POST", &act("withdraw"), Some(json!({}))).await;
    assert_eq!(status, 400, "a withdrawal says why");
    let (status, _) = call(
        &cluster,
        node,
        Some(PLANNER_TOKEN),
        "POST",
        &act("withdraw"),
        Some(json!({"note": "企业提出异议，复核中"})),
    )
    .await;
    assert_eq!(status, 200);
    wait_until("the result is withdrawn", Duration::from_secs(10), || async {
        let (_, public) = call(&cluster, node, None, "GET", &public_path, None).await;
        if public["results"].as_array().is_some_and(Vec::is_empty) {
            Ok(())
        } else {
            Err(public.to_string())
        }
    })
    .await;

    // The draw's inputs are frozen with the beacon (finding 10 of the security review): a
    // campaign whose teams the pool cannot fill stays sealed, and enrolling more inspectors
    // once the beacon is public cannot make it draw (or draw otherwise).
    let mut large_teams = campaign_request(3.0);
    large_teams["complete_by"] = json!(due);
    large_teams["inspectors_per_inspection"] = json!(7);
    let (status, sealed) =
        call(&cluster, node, Some(PLANNER_TOKEN), "POST", "/api/v1/campaigns", Some(large_teams)).await;
    assert_eq!(status, 201, "{sealed}");
    let sealed_draw = format!("/api/v1/campaigns/{}/draw", sealed["id"]);
    let beacon = json!({"beacon": "88888888"});
    let (status, body) = call(&cluster, node, Some(COMMAND_TOKEN), "POST", &sealed_draw, Some(beacon)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("no_team")), "{body}");
    for n in 7..=14 {
        let expertise = inspector(n, &["food", "registration"]);
        let (status, body) =
            call(&cluster, node, Some(COMMAND_TOKEN), "POST", "/api/v1/inspectors", Some(expertise)).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = call(&cluster, node, Some(PLANNER_TOKEN), "POST", &sealed_draw, Some(json!({}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("no_team")), "drawn from a later pool: {body}");

    // A client's own hop count on a follower (finding 5): once it made the follower store the
    // file on every node and then fail with no version committed; now the header is removed,
    // the import goes to the leader like any, and a file on disk always has its version.
    let second = draw::generate::generate(500, region, 43);
    let current = cluster.wait_for_leader().await;
    let follower_now = cluster.running().find(|id| *id != current).expect("a running follower");
    let response = cluster
        .http
        .post(cluster.url(follower_now, "/api/v1/directories/entities"))
        .bearer_auth(COMMAND_TOKEN)
        .header("x-xietong-relay-hops", "2")
        .body(second)
        .send()
        .await
        .expect("import");
    let status = response.status().as_u16();
    let version: Value = response.json().await.expect("json");
    assert_eq!(status, 201, "{version}");
    let (_, versions) = call(&cluster, current, Some(COMMAND_TOKEN), "GET", "/api/v1/directories/entities", None).await;
    assert!(versions["versions"].to_string().contains(version["sha256"].as_str().unwrap()), "{versions}");

    // The public listing is paged (finding 21): a limit is checked, a page says where to go on.
    let (status, _) = call(&cluster, node, None, "GET", "/public/v1/campaigns?limit=0", None).await;
    assert_eq!(status, 400);
    let (status, page) = call(&cluster, node, None, "GET", "/public/v1/campaigns?limit=1", None).await;
    assert_eq!((status, page["campaigns"].as_array().map(Vec::len)), (200, Some(1)), "{page}");

    // The killed node comes back and agrees with the others.
    cluster.restart(leader);
    cluster.wait_for_convergence().await;
}

/// One route: method, path, body, and the status expected for each caller (`None`: no token).
type Row = (&'static str, String, Option<Value>, Vec<(Option<&'static str>, u16)>);

/// The programme's routes as every kind of caller: who may read, who may change, what the
/// public sees without a token, and the peer file route closed to everyone but the group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programme_routes_answer_every_caller_as_the_policy_says() {
    const LEADER: &str = tests::LEADER_TOKEN;
    const YUEXIU: &str = "demo-yuexiu-op-0006";
    const ADMIN: &str = "demo-ops-admin-0099";
    const SOURCE: &str = "demo-source-monitor-0030";
    const DONGGUAN_COMMAND: &str = "demo-dongguan-cmd-0010";
    const GUANGZHOU_COMMAND: &str = "demo-gz-command-0003";
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..Default::default() }).await;
    let unknown_sha = "0".repeat(64);
    let inspector =
        json!({"id": "TH900", "name": "执法人员甲", "bureau": TIANHE, "expertise": ["food"], "qualified": true});
    let campaign = campaign_request(3.0);
    let rows: Vec<Row> = vec![
        (
            "GET",
            "/api/v1/directories/entities".into(),
            None,
            vec![
                (Some(COMMAND_TOKEN), 200),
                (Some(LEADER), 200),
                (Some(TIANHE_OPERATOR_TOKEN), 200),
                (Some(ADMIN), 401),
                (Some(SOURCE), 401),
                (None, 401),
            ],
        ),
        (
            "GET",
            format!("/api/v1/directories/entities/{unknown_sha}"),
            None,
            vec![(Some(COMMAND_TOKEN), 404), (Some(TIANHE_OPERATOR_TOKEN), 403), (None, 401)],
        ),
        (
            "GET",
            "/api/v1/inspectors".into(),
            None,
            vec![
                (Some(COMMAND_TOKEN), 200),
                (Some(LEADER), 200),
                (Some(PLANNER_TOKEN), 200),
                (Some(TIANHE_OPERATOR_TOKEN), 403),
                (None, 401),
            ],
        ),
        (
            "POST",
            "/api/v1/inspectors".into(),
            Some(inspector),
            vec![
                (Some(LEADER), 403),
                (Some(TIANHE_OPERATOR_TOKEN), 403),
                (Some(YUEXIU), 403),
                (Some(ADMIN), 401),
                (None, 401),
                (Some(COMMAND_TOKEN), 201),
                (Some(PLANNER_TOKEN), 409),
            ],
        ),
        (
            "POST",
            "/api/v1/inspectors/TH900/conflicts".into(),
            Some(json!({"uscc": "91350100M000100Y43", "reason": "曾在该企业任职"})),
            vec![
                (Some(YUEXIU), 403),
                (Some(LEADER), 403),
                (Some(TIANHE_OPERATOR_TOKEN), 201),
                (Some(COMMAND_TOKEN), 409),
            ],
        ),
        (
            "POST",
            "/api/v1/inspectors/TH900/retire".into(),
            Some(json!({"note": "调离"})),
            vec![
                (Some(TIANHE_OPERATOR_TOKEN), 403),
                (None, 401),
                (Some(PLANNER_TOKEN), 200),
                (Some(COMMAND_TOKEN), 404),
            ],
        ),
        (
            "GET",
            "/api/v1/inspection-items".into(),
            None,
            vec![(Some(COMMAND_TOKEN), 200), (Some(TIANHE_OPERATOR_TOKEN), 200), (None, 401)],
        ),
        (
            "POST",
            "/api/v1/campaigns".into(),
            Some(campaign),
            vec![(Some(LEADER), 403), (Some(TIANHE_OPERATOR_TOKEN), 403), (None, 401), (Some(COMMAND_TOKEN), 409)],
        ),
        (
            "GET",
            "/api/v1/campaigns".into(),
            None,
            vec![(Some(COMMAND_TOKEN), 200), (Some(TIANHE_OPERATOR_TOKEN), 200), (None, 401)],
        ),
        ("GET", "/api/v1/campaigns/99".into(), None, vec![(Some(COMMAND_TOKEN), 404), (None, 401)]),
        (
            "GET",
            "/api/v1/campaigns/99/proof".into(),
            None,
            vec![(Some(COMMAND_TOKEN), 404), (Some(LEADER), 403), (Some(TIANHE_OPERATOR_TOKEN), 403), (None, 401)],
        ),
        (
            "POST",
            "/api/v1/campaigns/99/draw".into(),
            Some(json!({"beacon": "1"})),
            vec![(Some(TIANHE_OPERATOR_TOKEN), 403), (None, 401), (Some(COMMAND_TOKEN), 404)],
        ),
        (
            "POST",
            "/api/v1/directories/entities".into(),
            None,
            vec![
                (Some(TIANHE_OPERATOR_TOKEN), 403),
                (Some(LEADER), 403),
                (Some(SOURCE), 401),
                (None, 401),
                // A city's command centre never replaces the province's register (domain review P3).
                (Some(DONGGUAN_COMMAND), 403),
                (Some(GUANGZHOU_COMMAND), 403),
                (Some(COMMAND_TOKEN), 400),
            ],
        ),
        ("GET", "/public/v1/campaigns".into(), None, vec![(None, 200), (Some(COMMAND_TOKEN), 200)]),
        ("GET", "/public/v1/results?uscc=bad".into(), None, vec![(None, 400)]),
        ("GET", "/public/v1/results".into(), None, vec![(None, 200)]),
        ("GET", "/public".into(), None, vec![(None, 200)]),
    ];
    for (method, path, body, expected) in rows {
        for (token, status) in expected {
            let (got, answer) = call(&cluster, 1, token, method, &path, body.clone()).await;
            assert_eq!(got, status, "{method} {path} as {token:?}: {answer}");
        }
    }
    // Inspections come only from draws (domain review P1): a hand-made one is refused and
    // nothing is registered; a lead about the same firm is taken.
    let by_hand = json!({"kind": "inspection", "severity": "normal", "title": "现场检查", "source": "spot_check",
                         "subject": {"name": "广州某某餐饮有限公司", "region_code": TIANHE, "address": ""}});
    let (status, body) = call(&cluster, 1, Some(COMMAND_TOKEN), "POST", "/api/v1/tasks", Some(by_hand.clone())).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("inspection_by_draw_only")), "{body}");
    let (_, tasks) = call(&cluster, 1, Some(COMMAND_TOKEN), "GET", "/api/v1/tasks", None).await;
    assert_eq!(tasks["tasks"].as_array().map(Vec::len), Some(0), "{tasks}");
    let mut lead = by_hand;
    lead["kind"] = json!("lead");
    let (status, body) = call(&cluster, 1, Some(COMMAND_TOKEN), "POST", "/api/v1/tasks", Some(lead)).await;
    assert_eq!(status, 201, "{body}");
    // The peer file route needs the group's secret: a user token or none is refused.
    for token in [Some(COMMAND_TOKEN), None] {
        let mut request = cluster.http.put(cluster.url(1, &format!("/raft/directories/{unknown_sha}"))).body("x");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        assert_eq!(request.send().await.unwrap().status().as_u16(), 401);
    }
    // The public routes have a budget of their own: beyond it, 429 with Retry-After.
    let mut limited = None;
    for _ in 0..600 {
        let response = cluster.http.get(cluster.url(1, "/public/v1/campaigns")).send().await.unwrap();
        if response.status() == 429 {
            limited = Some(response.headers().get("retry-after").is_some());
            break;
        }
    }
    assert_eq!(limited, Some(true), "the public budget runs out with 429 and Retry-After");
}

/// The public budget is per client: an address over its share gets 429 while another address is
/// served at once. Behind a trusted proxy each forwarded client has its own share; from any
/// other caller `X-Forwarded-For` is not believed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_budget_is_per_client_and_believes_only_trusted_proxies() {
    const PROXY: &str = "127.0.0.3";
    let cluster = TestCluster::start_with(tests::ClusterOptions {
        size: 1,
        trusted_proxies: vec![PROXY.into()],
        ..Default::default()
    })
    .await;
    let url = cluster.url(1, "/public/v1/campaigns");
    // Statuses of `count` requests sent one after another, each with the forwarded address
    // `forwarded(n)` when there is one.
    async fn statuses(
        client: &reqwest::Client,
        url: &str,
        count: usize,
        forwarded: impl Fn(usize) -> Option<String>,
    ) -> Vec<u16> {
        let mut statuses = Vec::new();
        for n in 0..count {
            let mut request = client.get(url);
            if let Some(address) = forwarded(n) {
                request = request.header("x-forwarded-for", address);
            }
            statuses.push(request.send().await.expect("an answer").status().as_u16());
        }
        statuses
    }
    let refused = |statuses: &[u16]| statuses.iter().filter(|s| **s == 429).count();

    // One address well past its share (20 a second) is refused; another is served.
    let flooder = tests::client_from("127.0.0.2");
    let flood = statuses(&flooder, &url, 100, |_| None).await;
    assert!(refused(&flood) > 0, "{flood:?}");
    assert!(flood.iter().all(|s| *s == 200 || *s == 429), "{flood:?}");
    assert_eq!(
        statuses(&tests::client_from("127.0.0.4"), &url, 1, |_| None).await,
        vec![200],
        "another client is served"
    );

    // An untrusted caller naming a different client on every request is still one client.
    let forged = statuses(&tests::client_from("127.0.0.5"), &url, 100, |n| Some(format!("198.51.100.{n}"))).await;
    assert!(refused(&forged) > 0, "forwarded addresses from an untrusted caller are ignored: {forged:?}");

    // Through the trusted proxy, each forwarded client has its own share ...
    let proxy = tests::client_from(PROXY);
    let many = statuses(&proxy, &url, 100, |n| Some(format!("203.0.113.{n}"))).await;
    assert_eq!(refused(&many), 0, "{many:?}");
    // ... and one forwarded client over its share is refused.
    let one = statuses(&proxy, &url, 100, |_| Some("192.0.2.77".into())).await;
    assert!(refused(&one) > 0, "{one:?}");
}

/// A bureau's roster file enrols every inspector in it in one command, sent to a follower: a
/// file with a bad line is refused whole with the line named, an operator may not send one,
/// and a repeat of an enrolled roster changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roster_enrols_every_inspector_or_none() {
    let cluster = TestCluster::start().await;
    let leader = cluster.wait_for_leader().await;
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let post = |token: &'static str, csv: String| cluster.post_csv(follower, token, "/api/v1/inspectors/roster", csv);
    let header = "id,name,bureau,station,expertise,qualified";
    let good = format!(
        "{header}\nTH901,执法人员甲,{TIANHE},石牌市场监管所,food;pricing,true\nTH902,执法人员乙,{TIANHE},,pricing,是\n"
    );
    let bad = format!("{header}\nTH903,执法人员丙,{TIANHE},,food,true\nTH904,执法人员丁,990000,,food,true\n");
    let listed = || async {
        let answer = cluster.get_json(leader, COMMAND_TOKEN, "/api/v1/inspectors").await;
        answer["inspectors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    let (status, body) = post(COMMAND_TOKEN, bad).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_roster", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("line 3"), "{body}");
    assert_eq!(post(TIANHE_OPERATOR_TOKEN, good.clone()).await.0, 403);
    assert!(listed().await.is_empty(), "nothing of a refused roster is enrolled");

    let (status, body) = post(COMMAND_TOKEN, good.clone()).await;
    assert_eq!(status, 201);
    let inspectors = body["inspectors"].as_array().expect("the enrolled inspectors");
    assert_eq!(inspectors.len(), 2, "{body}");
    assert_eq!(inspectors[0]["station"], "石牌市场监管所");
    assert_eq!(inspectors[1]["station"], Value::Null);
    assert_eq!(inspectors[0]["expertise"], json!(["food", "pricing"]));
    assert_eq!(listed().await, ["TH901", "TH902"]);

    assert_eq!(post(COMMAND_TOKEN, good).await.0, 409);
    assert_eq!(listed().await, ["TH901", "TH902"]);
}
