//! The live entity register through real nodes: the registration system's batches of changes
//! recorded in order and once per change id (a batch delivered again answers with the same
//! numbers), a bad change refused alone, the journal surviving the leader's SIGKILL, and a draw
//! that freezes the register just before its beacon: the frozen file holds the changes, is made
//! again byte for byte from the base file and the journal, and its proof verifies with
//! `xietong draw verify`.

use std::time::Duration;

use ledger::campaign::register::RegisterChange;
use serde_json::{json, Value};
use tests::{request_json as call, wait_until, TestCluster, COMMAND_TOKEN};

const FEED_TOKEN: &str = "demo-register-gz-0051";
const PLANNER_TOKEN: &str = "demo-gz-command-0003";
const TIANHE: &str = "440106";

fn entity(name: &str, region: &str) -> Value {
    json!({"name": name, "region_code": region, "industry": "catering", "credit_status": "normal",
           "address": "广州市天河区体育东路2号"})
}

fn outcomes(answer: &Value) -> Vec<(String, Option<u64>)> {
    answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|result| (result["outcome"].as_str().unwrap().to_owned(), result["seq"].as_u64()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_register_is_fed_in_order_once_per_change_and_a_draw_freezes_it() {
    let mut cluster = TestCluster::start().await;
    let leader = cluster.wait_for_leader().await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();

    let region = ledger::BureauCode::parse_compiled(TIANHE).unwrap();
    let base = draw::generate::generate(2_000, region, 7);
    let (status, imported) =
        cluster.post_csv(follower, COMMAND_TOKEN, "/api/v1/directories/entities", base.clone()).await;
    assert_eq!(status, 201, "{imported}");
    let register = cluster.get_json(leader, COMMAND_TOKEN, "/api/v1/register").await;
    assert_eq!((register["journal_length"].as_u64(), register["pending_changes"].as_u64()), (Some(0), Some(0)));
    assert_eq!(register["versions"][0]["through"], 0, "an import is the register's base: {register}");

    let rows: Vec<&str> = std::str::from_utf8(&base).unwrap().lines().skip(1).collect();
    let existing = |i: usize| rows[i].split(',').next().unwrap().to_owned();
    let new_uscc = |serial: u64| draw::generate::synthetic_uscc(region, 900_000 + serial).as_str().to_owned();
    let batch = json!({"changes": [
        {"id": "GZ-2026-000001", "kind": "establish", "uscc": new_uscc(1), "entity": entity("新设餐饮甲有限公司", TIANHE)},
        {"id": "GZ-2026-000002", "kind": "amend", "uscc": existing(0), "entity": entity("变更后名称有限公司", TIANHE)},
        {"id": "GZ-2026-000003", "kind": "revoke", "uscc": existing(1)},
        {"id": "GZ-2026-000004", "kind": "deregister", "uscc": existing(2)},
        // Shenzhen's entity: outside the Guangzhou system's bureau; refused alone.
        {"id": "GZ-2026-000005", "kind": "establish", "uscc": new_uscc(5), "entity": entity("深圳某公司", "440305")},
        // No such kind: refused alone.
        {"id": "GZ-2026-000006", "kind": "merge", "uscc": new_uscc(6)},
        {"id": "GZ-2026-000007", "kind": "establish", "uscc": new_uscc(7), "entity": entity("新设餐饮乙有限公司", TIANHE)},
    ]});

    // A user's token is not the registration system's; nothing is recorded.
    let (status, _) =
        call(&cluster, follower, COMMAND_TOKEN, "POST", "/api/v1/register/changes", Some(batch.clone())).await;
    assert_eq!(status, 401);

    // On a follower: relayed to the leader, answered per change in order.
    let (status, answer) =
        call(&cluster, follower, FEED_TOKEN, "POST", "/api/v1/register/changes", Some(batch.clone())).await;
    assert_eq!(status, 200, "{answer}");
    let recorded = |seq| ("recorded".to_owned(), Some(seq));
    let refused = ("refused".to_owned(), None);
    assert_eq!(
        outcomes(&answer),
        vec![recorded(1), recorded(2), recorded(3), recorded(4), refused.clone(), refused.clone(), recorded(5)]
    );
    assert_eq!(answer["results"][4]["error"]["code"], "forbidden", "{answer}");
    assert_eq!(answer["results"][5]["error"]["code"], "invalid_field", "{answer}");
    assert_eq!(answer["journal_length"], 5);

    // Delivered again after a lost answer: the same numbers, nothing recorded twice.
    let (status, again) =
        call(&cluster, leader, FEED_TOKEN, "POST", "/api/v1/register/changes", Some(batch.clone())).await;
    assert_eq!(status, 200, "{again}");
    let repeat = |seq| ("repeat".to_owned(), Some(seq));
    assert_eq!(outcomes(&again), vec![repeat(1), repeat(2), repeat(3), repeat(4), refused.clone(), refused, repeat(5)]);
    assert_eq!(again["journal_length"], 5);
    // The same id with other content is a conflict, not a change.
    let reused = json!({"changes": [{"id": "GZ-2026-000003", "kind": "deregister", "uscc": existing(1)}]});
    let (_, answer) = call(&cluster, leader, FEED_TOKEN, "POST", "/api/v1/register/changes", Some(reused)).await;
    assert_eq!(answer["results"][0]["error"]["code"], "change_id_reused", "{answer}");
    let (status, empty) =
        call(&cluster, leader, FEED_TOKEN, "POST", "/api/v1/register/changes", Some(json!({"changes": []}))).await;
    assert_eq!((status, empty["error"]["code"].as_str()), (400, Some("invalid_field")));

    // The journal, a page at a time, in order.
    let page = cluster.get_json(follower, COMMAND_TOKEN, "/api/v1/register/changes?after=1&limit=2").await;
    let seqs: Vec<u64> = page["entries"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!((seqs, page["next_after"].as_u64()), (vec![2, 3], Some(3)), "{page}");
    assert_eq!(page["entries"][0]["change"]["kind"], "amend");
    assert_eq!(page["entries"][0]["source"], "gz-registration");

    // The leader dies: the journal is committed, the new leader has it, and the feed goes on
    // with a member down.
    cluster.kill(leader);
    let leader = cluster.wait_for_leader().await;
    let register = cluster.get_json(leader, COMMAND_TOKEN, "/api/v1/register").await;
    assert_eq!((register["journal_length"].as_u64(), register["pending_changes"].as_u64()), (Some(5), Some(5)));
    let later = json!({"changes": [{"id": "GZ-2026-000008", "kind": "establish", "uscc": new_uscc(8),
                                    "entity": entity("新设餐饮丙有限公司", TIANHE)}]});
    let (status, answer) = call(&cluster, leader, FEED_TOKEN, "POST", "/api/v1/register/changes", Some(later)).await;
    assert_eq!((status, outcomes(&answer)), (200, vec![recorded(6)]), "{answer}");

    // A campaign over Tianhe; its beacon freezes the register first.
    for n in 1..=4 {
        let inspector = json!({"id": format!("TH{n:03}"), "name": format!("执法人员{n}"), "bureau": TIANHE,
                               "expertise": ["food", "registration"], "qualified": true});
        let (status, body) = call(&cluster, leader, COMMAND_TOKEN, "POST", "/api/v1/inspectors", Some(inspector)).await;
        assert_eq!(status, 201, "{body}");
    }
    let plan = json!({"name": "2026年天河区餐饮抽查", "items": ["B01"], "scope": {"region": TIANHE}, "targeted": false,
                      "ratios_percent": {"high": 20, "normal": 5, "low": 3},
                      "inspector_mode": {"mode": "whole_bureau"}, "inspectors_per_inspection": 2});
    let (status, campaign) = call(&cluster, leader, PLANNER_TOKEN, "POST", "/api/v1/campaigns", Some(plan)).await;
    assert_eq!(status, 201, "{campaign}");
    let id = campaign["id"].as_u64().unwrap();
    let (status, drawn) = call(
        &cluster,
        leader,
        COMMAND_TOKEN,
        "POST",
        &format!("/api/v1/campaigns/{id}/draw"),
        Some(json!({"beacon": "20261207"})),
    )
    .await;
    assert_eq!(status, 201, "{drawn}");

    let register = cluster.get_json(leader, COMMAND_TOKEN, "/api/v1/register").await;
    let frozen = &register["versions"][0];
    assert_eq!(
        (frozen["number"].as_u64(), frozen["through"].as_u64()),
        (Some(2), Some(6)),
        "{register}\n{}",
        cluster.log_tail(leader)
    );
    assert_eq!(frozen["frozen_from"], 1);
    assert_eq!(frozen["entities"], 2_000 + 3 - 2, "three established, one revoked, one deregistered");
    assert_eq!(register["pending_changes"], 0);
    let frozen_sha = frozen["sha256"].as_str().unwrap().to_owned();
    let (_, proof) = call(&cluster, leader, COMMAND_TOKEN, "GET", &format!("/api/v1/campaigns/{id}/proof"), None).await;
    assert_eq!(proof["draw"]["inputs"]["spec"]["entity_directory"], frozen_sha.as_str(), "drawn from the frozen file");

    // The frozen file: made again from the base and the journal, byte for byte.
    let file = cluster
        .http
        .get(cluster.url(leader, &format!("/api/v1/directories/entities/{frozen_sha}")))
        .bearer_auth(COMMAND_TOKEN)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let journal = cluster.get_json(leader, COMMAND_TOKEN, "/api/v1/register/changes").await;
    let changes: Vec<RegisterChange> = journal["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let json: node::api::register::RegisterChangeJson =
                serde_json::from_value(entry["change"].clone()).unwrap();
            json.parse(ledger::Regions::compiled_shared()).unwrap()
        })
        .collect();
    let mut again = Vec::new();
    let summary = draw::register::freeze(&base, &changes, &mut again).unwrap();
    assert_eq!((summary.sha256.as_str(), again.as_slice()), (frozen_sha.as_str(), file.as_ref()));
    let text = std::str::from_utf8(&file).unwrap();
    assert!(
        text.contains("新设餐饮乙有限公司")
            && text.contains("新设餐饮丙有限公司")
            && text.contains("变更后名称有限公司")
    );
    assert!(!text.contains(&existing(1)) && !text.contains(&existing(2)), "revoked and deregistered left");

    let (ok, report) = tests::verify_proof(&cluster, leader, COMMAND_TOKEN, &proof).await;
    assert!(ok, "{report}");

    // The killed node comes back and catches up on the journal and the freeze.
    let restarted = (1..=3).find(|id| !cluster.running().any(|running| running == *id)).unwrap();
    cluster.restart(restarted);
    wait_until("the restarted node has the frozen register", Duration::from_secs(30), || async {
        let url = cluster.url(restarted, "/api/v1/register");
        let response = cluster.http.get(url).bearer_auth(COMMAND_TOKEN).send().await.map_err(|e| e.to_string())?;
        let register: Value = response.json().await.map_err(|e| e.to_string())?;
        if register["versions"][0]["sha256"] == frozen_sha.as_str() && register["journal_length"] == 6 {
            Ok(())
        } else {
            Err(register.to_string())
        }
    })
    .await;
}
