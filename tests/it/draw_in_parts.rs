//! A draw of thousands of inspections over a register of 200,000 entities, committed in parts
//! (`ledger::campaign::draw_parts`): the leader that began it dies between two parts, the new
//! leader takes the parts up from where they stand, every inspection becomes one task, and the
//! proof verifies with `xietong draw verify` against the frozen register file.

use std::collections::BTreeSet;
use std::time::Duration;

use ledger::campaign::draw_parts::DRAW_PART_INSPECTIONS;
use serde_json::{json, Value};
use tests::{request_json as call, wait_until, ClusterOptions, TestCluster, COMMAND_TOKEN};

const FEED_TOKEN: &str = "demo-register-gz-0051";
const PLANNER_TOKEN: &str = "demo-gz-command-0003";
const GUANGZHOU: &str = "440100";
/// The leader's pause between two parts: room for the test to kill it between them.
const PART_INTERVAL_MS: u64 = 3_000;

/// Draws campaign `path` (`/api/v1/campaigns/{id}`) on the leader as `drawer` with `beacon`,
/// kills the leader once a follower holds the header and the first part, and waits until the
/// new leader has taken the parts up. Answers the campaign as the follower saw it under way,
/// drawn on the new leader, and the new leader. `reader` reads the campaign.
async fn draw_across_a_leader_kill(
    cluster: &mut TestCluster,
    reader: &str,
    drawer: &'static str,
    beacon: &'static str,
    path: &str,
) -> (Value, Value, u64) {
    let leader = cluster.wait_for_leader().await;
    let draw = {
        let (url, http) = (cluster.url(leader, &format!("{path}/draw")), cluster.http.clone());
        tokio::spawn(async move {
            let request = http.post(url).bearer_auth(drawer).json(&json!({"beacon": beacon}));
            request.timeout(Duration::from_secs(600)).send().await.map(|response| response.status().as_u16())
        })
    };
    let follower = (1..=3).find(|node| *node != leader).unwrap();
    let begun = wait_until("a follower holds the header and the first part", Duration::from_secs(300), || async {
        let (_, campaign) = call(cluster, follower, reader, "GET", path, None).await;
        match campaign["drawing"]["parts_recorded"].as_u64() {
            Some(recorded) if recorded >= 1 => Ok(campaign),
            _ => Err(campaign.to_string()),
        }
    })
    .await;
    cluster.kill(leader);
    let recorded = begun["drawing"]["parts_recorded"].as_u64().unwrap();
    assert!(recorded < begun["drawing"]["parts"].as_u64().unwrap(), "killed between two parts: {begun}");
    // The request to the dead leader ends without an answer.
    assert!(!matches!(draw.await.unwrap(), Ok(201)), "the dead leader did not answer the whole draw");
    let new_leader = cluster.wait_for_leader().await;
    let drawn = wait_until("the new leader takes the parts up", Duration::from_secs(300), || async {
        let (_, campaign) = call(cluster, new_leader, reader, "GET", path, None).await;
        if campaign["state"] == "drawn" {
            Ok(campaign)
        } else {
            Err(format!("{campaign}\n{}", cluster.log_tail(new_leader)))
        }
    })
    .await;
    (begun, drawn, new_leader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draw_of_thousands_is_committed_in_parts_across_a_leader_kill_and_verifies() {
    let limits = format!("draw_part_interval_ms = {PART_INTERVAL_MS}");
    let mut cluster = TestCluster::start_with(ClusterOptions { limits_toml: Some(limits), ..Default::default() }).await;
    let leader = cluster.wait_for_leader().await;

    // The register: 200,000 entities over Guangzhou's districts, then two firms established.
    let guangzhou = ledger::BureauCode::parse_compiled(GUANGZHOU).unwrap();
    let base = draw::generate::generate(200_000, guangzhou, 11);
    let (status, imported) =
        cluster.post_csv(leader, COMMAND_TOKEN, "/api/v1/directories/entities", base.clone()).await;
    assert_eq!(status, 201, "{imported}");
    let counties: BTreeSet<String> = std::str::from_utf8(&base)
        .unwrap()
        .lines()
        .skip(1)
        .map(|row| row.split(',').nth(2).unwrap().to_owned())
        .collect();
    let established: Vec<Value> = (1..=2)
        .map(|n| {
            let county = counties.iter().next().unwrap();
            let region = ledger::BureauCode::parse_compiled(county).unwrap();
            json!({"id": format!("GZ-PARTS-{n}"), "kind": "establish",
                   "uscc": draw::generate::synthetic_uscc(region, 990_000 + n).as_str(),
                   "entity": {"name": format!("新设餐饮{n}有限公司"), "region_code": county, "industry": "catering",
                              "credit_status": "normal", "address": "广州市人民路1号"}})
        })
        .collect();
    let (status, fed) =
        call(&cluster, leader, FEED_TOKEN, "POST", "/api/v1/register/changes", Some(json!({"changes": established})))
            .await;
    assert_eq!(status, 200, "{fed}");

    // Three food inspectors in every district.
    for county in &counties {
        for n in 1..=3 {
            let inspector = json!({"id": format!("{county}-{n}"), "name": format!("执法人员{county}{n}"),
                                   "bureau": county, "expertise": ["food"], "qualified": true});
            let (status, body) =
                call(&cluster, leader, COMMAND_TOKEN, "POST", "/api/v1/inspectors", Some(inspector)).await;
            assert_eq!(status, 201, "{body}");
        }
    }
    let plan = json!({"name": "2026年广州市食品经营抽查", "items": ["B01"], "scope": {"region": GUANGZHOU},
                      "targeted": false, "ratios_percent": {"high": 20, "normal": 7, "low": 7},
                      "inspector_mode": {"mode": "whole_bureau"}, "inspectors_per_inspection": 2});
    let (status, campaign) = call(&cluster, leader, PLANNER_TOKEN, "POST", "/api/v1/campaigns", Some(plan)).await;
    assert_eq!(status, 201, "{campaign}");
    let id = campaign["id"].as_u64().unwrap();
    let campaign_path = format!("/api/v1/campaigns/{id}");

    // The province's second person fixes the beacon and draws on the leader; the leader dies
    // once a follower holds the header and the first part, before the next.
    let (begun, drawn, new_leader) =
        draw_across_a_leader_kill(&mut cluster, PLANNER_TOKEN, COMMAND_TOKEN, "20261207-province", &campaign_path)
            .await;
    let parts = begun["drawing"]["parts"].as_u64().unwrap();
    let inspections = begun["drawing"]["inspections"].as_u64().unwrap();
    assert!(parts >= 3 && inspections > 2 * DRAW_PART_INSPECTIONS as u64, "{begun}");
    let tasks: Vec<u64> = drawn["draw"]["tasks"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect();
    assert_eq!((drawn["draw"]["inspections"].as_u64(), tasks.len() as u64), (Some(inspections), inspections));
    assert_eq!(tasks.iter().collect::<BTreeSet<_>>().len(), tasks.len(), "one task per inspection");
    // The listing counts them without listing a hundred thousand ids.
    let (_, listing) = call(&cluster, new_leader, PLANNER_TOKEN, "GET", "/api/v1/campaigns", None).await;
    let listed = &listing["campaigns"][0]["draw"];
    assert_eq!((listed["inspections"].as_u64(), listed.get("tasks")), (Some(inspections), None), "{listed}");
    // The first part is the dead leader's (the person who drew), the last the new leader's.
    let cluster_ref = &cluster;
    let creator = |task: u64| async move {
        let path = format!("/api/v1/tasks/{task}");
        call(cluster_ref, new_leader, COMMAND_TOKEN, "GET", &path, None).await.1["timeline"][0]["actor"].clone()
    };
    let (first, last) = (creator(tasks[0]).await, creator(*tasks.last().unwrap()).await);
    assert!(first.is_string() && first != "system:draw-parts", "{first}");
    assert_eq!(last, "system:draw-parts", "{last}");

    // The proof verifies against the frozen register file.
    let (_, proof) = call(&cluster, new_leader, COMMAND_TOKEN, "GET", &format!("{campaign_path}/proof"), None).await;
    assert_eq!(proof["draw_parts"].as_array().map(Vec::len), Some(parts as usize), "the parts' digests");
    let frozen = proof["draw"]["inputs"]["spec"]["entity_directory"].as_str().unwrap().to_owned();
    let register = cluster.get_json(new_leader, COMMAND_TOKEN, "/api/v1/register").await;
    assert_eq!(register["versions"][0]["sha256"], frozen.as_str(), "drawn from the register frozen for it");
    let (ok, printed) = tests::verify_proof(&cluster, new_leader, COMMAND_TOKEN, &proof).await;
    assert!(ok && printed.contains(&format!("drew {inspections} inspections")), "{printed}");
    // A proof whose part digest was bent does not verify.
    let mut bent = proof.clone();
    bent["draw_parts"][1]["sha256"] = json!("00".repeat(32));
    let (ok, printed) = tests::verify_proof(&cluster, new_leader, COMMAND_TOKEN, &bent).await;
    assert!(!ok, "{printed}");

    cluster.restart(leader);
    cluster.wait_for_convergence().await;
}

/// The province's second command-centre person, who fixes the beacon of the province's
/// campaign (the planner may not).
const SECOND_TOKEN: &str = "test-gd-second-command";
const SECOND_USER: &str = r#"
[[users]]
name = "gd-second"
display_name = "省局指挥中心 李强"
token = "test-gd-second-command"
bureau = "440000"
role = "command"
"#;
const PROVINCE_FEED_TOKEN: &str = "demo-register-gd-0050";
const TIANHE_OPERATOR_TOKEN: &str = "demo-tianhe-op-0005";
const SZ_COMMAND_TOKEN: &str = "demo-sz-command-0004";

/// A province-wide draw over a register of Guangzhou's and Shenzhen's 200,000 entities: the
/// province's leader dies between two parts, the new one takes them up, and every inspection
/// lands exactly once in the group hosting its district; a result entered in Guangzhou flows
/// back to the province, which publishes it; the proof verifies against the frozen register.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_province_draw_hands_each_inspection_to_its_city_group_once_across_a_leader_kill() {
    use tests::federation::{FederationOptions, GroupSpec, TestFederation, GZ_COMMAND_TOKEN};
    let mut options = FederationOptions::new(vec![
        GroupSpec::new("440000", 3),
        GroupSpec::new("440100", 1),
        GroupSpec::new("440300", 1),
    ]);
    options.extra_users_toml = Some(SECOND_USER.into());
    options.limits_toml = Some(format!("draw_part_interval_ms = {PART_INTERVAL_MS}"));
    let mut fed = TestFederation::start(options).await;
    let province = fed.group("440000");
    let leader = province.wait_for_leader().await;

    // The register: 100,000 entities in each city's districts, and one firm established since.
    let mut register = Vec::new();
    for (city, seed) in [("440100", 21), ("440300", 22)] {
        let file = draw::generate::generate(100_000, ledger::BureauCode::parse_compiled(city).unwrap(), seed);
        let text = String::from_utf8(file).unwrap();
        let rows = if register.is_empty() { text.as_str() } else { text.split_once('\n').unwrap().1 };
        register.extend_from_slice(rows.as_bytes());
    }
    let (status, imported) =
        province.post_csv(leader, COMMAND_TOKEN, "/api/v1/directories/entities", register.clone()).await;
    assert_eq!(status, 201, "{imported}");
    let tianhe = ledger::BureauCode::parse_compiled("440106").unwrap();
    let change = json!({"changes": [{"id": "GD-PROVINCE-1", "kind": "establish",
        "uscc": draw::generate::synthetic_uscc(tianhe, 995_001).as_str(),
        "entity": {"name": "新设省级抽查餐饮有限公司", "region_code": "440106", "industry": "catering",
                   "credit_status": "normal", "address": "广州市天河区体育西路1号"}}]});
    let (status, fed_answer) =
        call(province, leader, PROVINCE_FEED_TOKEN, "POST", "/api/v1/register/changes", Some(change)).await;
    assert_eq!(status, 200, "{fed_answer}");

    // Three food inspectors in every district, in the province's directory.
    let districts: BTreeSet<String> = std::str::from_utf8(&register)
        .unwrap()
        .lines()
        .skip(1)
        .map(|row| row.split(',').nth(2).unwrap().to_owned())
        .collect();
    let mut roster = String::from("id,name,bureau,station,expertise,qualified\n");
    for district in &districts {
        for n in 1..=3 {
            roster.push_str(&format!("{district}-{n},执法人员{district}{n},{district},,food,true\n"));
        }
    }
    let (status, enrolled) =
        province.post_csv(leader, COMMAND_TOKEN, "/api/v1/inspectors/roster", roster.into_bytes()).await;
    assert_eq!(status, 201, "{enrolled}");
    let plan = json!({"name": "2026年全省食品经营抽查", "items": ["B01"], "scope": {"region": "440000"},
                      "targeted": false, "ratios_percent": {"high": 20, "normal": 5, "low": 5},
                      "inspector_mode": {"mode": "whole_bureau"}, "inspectors_per_inspection": 2});
    let (status, campaign) = call(province, leader, COMMAND_TOKEN, "POST", "/api/v1/campaigns", Some(plan)).await;
    assert_eq!(status, 201, "{campaign}");
    let id = campaign["id"].as_u64().unwrap();
    let campaign_path = format!("/api/v1/campaigns/{id}");

    // The second person draws on the leader, which dies once a follower holds the first part.
    let (_, drawn, new_leader) = draw_across_a_leader_kill(
        fed.group_mut("440000"),
        COMMAND_TOKEN,
        SECOND_TOKEN,
        "20261207-广东",
        &campaign_path,
    )
    .await;
    let province = fed.group("440000");
    let inspections = drawn["draw"]["inspections"].as_u64().unwrap();
    assert!(inspections >= 5_000, "{drawn}");

    // Each inspection's record at the province is handed to the city hosting its district,
    // delivered; each city holds exactly one task per record.
    let records = wait_until("every handover delivered", Duration::from_secs(300), || async {
        let records: Vec<_> = fed
            .tasks("440000", new_leader, COMMAND_TOKEN)
            .await?
            .into_iter()
            .filter(|task| task.kind == "inspection")
            .collect();
        let waiting = records.iter().filter(|t| !t.handover.as_ref().is_some_and(|h| h.delivered)).count();
        if records.len() as u64 == inspections && waiting == 0 {
            Ok(records)
        } else {
            Err(format!("{} records, {waiting} not delivered", records.len()))
        }
    })
    .await;
    for (city, token) in [("440100", GZ_COMMAND_TOKEN), ("440300", SZ_COMMAND_TOKEN)] {
        let sent: BTreeSet<String> = records
            .iter()
            .filter_map(|t| t.handover.as_ref().filter(|h| h.to_group == city).map(|h| h.forward_id.clone()))
            .collect();
        let arrived: Vec<_> =
            fed.tasks(city, 1, token).await.unwrap().into_iter().filter(|task| task.kind == "inspection").collect();
        let arrived_forwards: BTreeSet<String> =
            arrived.iter().filter_map(|t| t.received_from.as_ref().map(|r| r.forward_id.clone())).collect();
        assert!(!sent.is_empty(), "{city} hosts some of the districts drawn");
        assert_eq!((arrived.len(), &arrived_forwards), (sent.len(), &sent), "{city}: one task per handover, no other");
    }

    // Tianhe enters a result in Guangzhou (an inspection's outcome only; published by the
    // organiser, not here); the province's record takes it, and the province publishes it.
    let guangzhou = fed.group("440100");
    let there = fed
        .tasks("440100", 1, GZ_COMMAND_TOKEN)
        .await
        .unwrap()
        .into_iter()
        .find(|task| task.kind == "inspection" && task.assignee_bureau.as_deref() == Some("440106"))
        .expect("an inspection in Tianhe");
    let (status, body) = tests::act(guangzhou, 1, TIANHE_OPERATOR_TOKEN, there.id, "ack", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) =
        tests::act(guangzhou, 1, TIANHE_OPERATOR_TOKEN, there.id, "complete", json!({"outcome": "warned"})).await;
    assert_eq!(status, 400, "an inspection's result is an inspection outcome: {body}");
    let (status, body) = tests::act(
        guangzhou,
        1,
        TIANHE_OPERATOR_TOKEN,
        there.id,
        "complete",
        json!({"outcome": "no_problem_found", "note": "现场检查未发现问题"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = tests::act(guangzhou, 1, GZ_COMMAND_TOKEN, there.id, "publish", json!({})).await;
    assert_eq!(status, 403, "the organiser publishes, not the inspecting group: {body}");
    let origin = there.received_from.as_ref().unwrap().from_task_id;
    let record = fed
        .wait_for_record("the result at the province", "440000", COMMAND_TOKEN, origin, |task| {
            task.state == "completed"
                && task.inspection.as_ref().is_some_and(|i| i.publication.as_deref() == Some("pending"))
        })
        .await;
    assert_eq!(record.outcome.as_deref(), Some("no_problem_found"));
    let (status, body) = tests::act(province, new_leader, COMMAND_TOKEN, origin, "publish", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (_, public) =
        call(province, new_leader, COMMAND_TOKEN, "GET", &format!("/public/v1/results?campaign={id}"), None).await;
    assert_eq!(public["results"].as_array().map(Vec::len), Some(1), "{public}");

    // The proof verifies against the frozen register.
    let (_, proof) = call(province, new_leader, COMMAND_TOKEN, "GET", &format!("{campaign_path}/proof"), None).await;
    let frozen = proof["draw"]["inputs"]["spec"]["entity_directory"].as_str().unwrap().to_owned();
    let register = province.get_json(new_leader, COMMAND_TOKEN, "/api/v1/register").await;
    assert_eq!(
        (register["versions"][0]["sha256"].as_str(), register["versions"][0]["through"].as_u64()),
        (Some(frozen.as_str()), Some(1))
    );
    let (ok, printed) = tests::verify_proof(province, new_leader, COMMAND_TOKEN, &proof).await;
    assert!(ok && printed.contains(&format!("drew {inspections} inspections")), "{printed}");

    fed.group_mut("440000").restart(leader);
    fed.group("440000").wait_for_convergence().await;
}
