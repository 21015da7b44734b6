//! A draw of thousands of inspections over a register of 200,000 entities, committed in parts
//! (`ledger::campaign::draw_parts`): the leader that began it dies between two parts, the new
//! leader takes the parts up from where they stand, every inspection becomes one task, and the
//! proof verifies with `xietong draw verify` against the frozen register file.

use std::collections::BTreeSet;
use std::time::Duration;

use ledger::campaign::draw_parts::DRAW_PART_INSPECTIONS;
use serde_json::{json, Value};
use tests::{wait_until, xietong_binary, ClusterOptions, TestCluster, COMMAND_TOKEN};

const FEED_TOKEN: &str = "demo-register-gz-0051";
const PLANNER_TOKEN: &str = "demo-gz-command-0003";
const GUANGZHOU: &str = "440100";
/// The leader's pause between two parts: room for the test to kill it between them.
const PART_INTERVAL_MS: u64 = 3_000;

async fn call(
    cluster: &TestCluster,
    node: u64,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = cluster.url(node, path);
    let mut request = if method == "POST" { cluster.http.post(url) } else { cluster.http.get(url) };
    request = request.bearer_auth(token).timeout(Duration::from_secs(300));
    if let Some(body) = body {
        request = request.json(&body);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
        }
        Err(error) => (0, Value::String(error.to_string())),
    }
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
    let draw = {
        let (url, http) = (cluster.url(leader, &format!("{campaign_path}/draw")), cluster.http.clone());
        tokio::spawn(async move {
            let request = http.post(url).bearer_auth(COMMAND_TOKEN).json(&json!({"beacon": "20261207-province"}));
            request.timeout(Duration::from_secs(600)).send().await.map(|response| response.status().as_u16())
        })
    };
    let follower = (1..=3).find(|node| *node != leader).unwrap();
    let begun = wait_until("a follower holds the header and the first part", Duration::from_secs(300), || async {
        let (_, campaign) = call(&cluster, follower, PLANNER_TOKEN, "GET", &campaign_path, None).await;
        match campaign["drawing"]["parts_recorded"].as_u64() {
            Some(recorded) if recorded >= 1 => Ok(campaign),
            _ => Err(campaign.to_string()),
        }
    })
    .await;
    cluster.kill(leader);
    let parts = begun["drawing"]["parts"].as_u64().unwrap();
    let inspections = begun["drawing"]["inspections"].as_u64().unwrap();
    assert!(parts >= 3 && inspections > 2 * DRAW_PART_INSPECTIONS as u64, "{begun}");
    assert!(begun["drawing"]["parts_recorded"].as_u64().unwrap() < parts, "killed between two parts: {begun}");
    // The request to the dead leader ends without an answer.
    assert!(!matches!(draw.await.unwrap(), Ok(201)), "the dead leader did not answer the whole draw");

    let new_leader = cluster.wait_for_leader().await;
    let drawn = wait_until("the new leader takes the parts up", Duration::from_secs(300), || async {
        let (_, campaign) = call(&cluster, new_leader, PLANNER_TOKEN, "GET", &campaign_path, None).await;
        if campaign["state"] == "drawn" {
            Ok(campaign)
        } else {
            Err(format!("{campaign}\n{}", cluster.log_tail(new_leader)))
        }
    })
    .await;
    let tasks: Vec<u64> = drawn["draw"]["tasks"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect();
    assert_eq!((drawn["draw"]["inspections"].as_u64(), tasks.len() as u64), (Some(inspections), inspections));
    assert_eq!(tasks.iter().collect::<BTreeSet<_>>().len(), tasks.len(), "one task per inspection");
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
    let file = cluster
        .http
        .get(cluster.url(new_leader, &format!("/api/v1/directories/entities/{frozen}")))
        .bearer_auth(COMMAND_TOKEN)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let (proof_path, directory_path) = (cluster.data_dir().join("proof.json"), cluster.data_dir().join("frozen.csv"));
    std::fs::write(&proof_path, serde_json::to_vec(&proof).unwrap()).unwrap();
    std::fs::write(&directory_path, &file).unwrap();
    let output = std::process::Command::new(xietong_binary())
        .args(["draw", "verify", "--proof"])
        .arg(&proof_path)
        .arg("--directory")
        .arg(&directory_path)
        .output()
        .expect("xietong draw verify");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && printed.contains(&format!("drew {inspections} inspections")), "{printed}");
    // A proof whose part digest was bent does not verify.
    let mut bent = proof.clone();
    bent["draw_parts"][1]["sha256"] = json!("00".repeat(32));
    std::fs::write(&proof_path, serde_json::to_vec(&bent).unwrap()).unwrap();
    let output = std::process::Command::new(xietong_binary())
        .args(["draw", "verify", "--proof"])
        .arg(&proof_path)
        .arg("--directory")
        .arg(&directory_path)
        .output()
        .expect("xietong draw verify");
    assert!(!output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));

    cluster.restart(leader);
    cluster.wait_for_convergence().await;
}
