//! Federation between groups of real processes: dispatch across groups with the province's
//! record mirroring each step, leads forwarded to the group with jurisdiction exactly once
//! whatever fails (target down, origin leader killed, answer lost with the target leader
//! killed, partition), routing through a parent, uncovered regions, and peer authentication.

use std::time::Duration;

use node::api::TaskJson;
use serde_json::{json, Value};
use tests::federation::{
    FederationOptions, GroupSpec, TestFederation, GZ_COMMAND_TOKEN, XIHU_OPERATOR_TOKEN, ZJ_COMMAND_TOKEN,
};
use tests::{act, create_body, COMMAND_TOKEN, TIANHE_OPERATOR_TOKEN};

/// How long a partition lasts in the partition scenario.
const PARTITION: Duration = Duration::from_secs(10);

/// A lead about a shop in Hangzhou's Xihu district (浙江, outside Guangdong).
fn zhejiang_lead(title: &str) -> Value {
    json!({
        "kind": "lead",
        "severity": "high",
        "title": title,
        "subject": {"name": "杭州某某电子商务有限公司", "region_code": "330106", "address": "杭州市西湖区文三路1号"},
        "source": "big_data",
    })
}

fn region_lead(title: &str, region: &str) -> Value {
    let mut body = zhejiang_lead(title);
    body["subject"]["region_code"] = json!(region);
    body
}

fn actions_by(task: &TaskJson, actor: &str) -> Vec<String> {
    task.timeline.iter().filter(|e| e.actor == actor).map(|e| e.action.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatch_to_a_county_of_another_group_is_worked_there_and_mirrored_at_the_province() {
    let fed =
        TestFederation::start(FederationOptions::new(vec![GroupSpec::new("440000", 1), GroupSpec::new("440100", 1)]))
            .await;
    let (province, guangzhou) = (fed.group("440000"), fed.group("440100"));
    let task = province.create_task(1, "跨组派发：天河区某商户价格违法", Some("440106")).await;
    assert_eq!(task.state, "dispatched");
    let handover = task.handover.clone().expect("a dispatch to a Guangzhou county is handed over");
    assert_eq!((handover.purpose.as_str(), handover.to_group.as_str()), ("dispatch", "440100"));

    let (_, there) = fed.wait_exactly_once("440000", COMMAND_TOKEN, task.id, "440100", GZ_COMMAND_TOKEN).await;
    assert_eq!((there.state.as_str(), there.assignee_bureau.as_deref()), ("dispatched", Some("440106")));
    assert_eq!(there.ack_deadline, task.ack_deadline, "the dispatcher's deadlines travel with the task");
    assert_eq!(there.origin_bureau, "440000");

    // Tianhe works in Guangzhou's ledger; the province's record follows each step.
    let (status, body) = act(guangzhou, 1, TIANHE_OPERATOR_TOKEN, there.id, "ack", json!({})).await;
    assert_eq!(status, 200, "{body}");
    fed.wait_for_record("the ack mirrored", "440000", COMMAND_TOKEN, task.id, |t| t.state == "acknowledged").await;
    let (status, _) = act(guangzhou, 1, TIANHE_OPERATOR_TOKEN, there.id, "feedback", json!({"note": "已约谈"})).await;
    assert_eq!(status, 200);
    let (status, _) =
        act(guangzhou, 1, TIANHE_OPERATOR_TOKEN, there.id, "complete", json!({"outcome": "warned"})).await;
    assert_eq!(status, 200);
    let record = fed
        .wait_for_record("the completion mirrored", "440000", COMMAND_TOKEN, task.id, |t| t.state == "completed")
        .await;
    assert_eq!(record.outcome.as_deref(), Some("warned"));
    assert_eq!(actions_by(&record, "tianhe-operator"), ["ack", "feedback", "complete"]);

    // The record is not where the assignee works.
    let (status, body) = act(province, 1, TIANHE_OPERATOR_TOKEN, task.id, "feedback", json!({"note": "x"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("handed_over")), "{body}");
    // Guangzhou's centre cannot close what the province dispatched.
    let (status, _) = act(guangzhou, 1, GZ_COMMAND_TOKEN, there.id, "close", json!({})).await;
    assert_eq!(status, 403);

    // The province's review flows down.
    let (status, body) = act(province, 1, COMMAND_TOKEN, task.id, "return", json!({"note": "证据不足"})).await;
    assert_eq!(status, 200, "{body}");
    tests::wait_until("the return in Guangzhou", Duration::from_secs(30), || async {
        let there = fed.task("440100", 1, GZ_COMMAND_TOKEN, there.id).await?;
        if there.state == "returned" {
            Ok(())
        } else {
            Err(there.state)
        }
    })
    .await;
    let (status, _) =
        act(guangzhou, 1, TIANHE_OPERATOR_TOKEN, there.id, "complete", json!({"outcome": "penalized"})).await;
    assert_eq!(status, 200);
    fed.wait_for_record("the second completion", "440000", COMMAND_TOKEN, task.id, |t| {
        t.state == "completed" && t.outcome.as_deref() == Some("penalized")
    })
    .await;
    let (status, _) = act(province, 1, COMMAND_TOKEN, task.id, "close", json!({})).await;
    assert_eq!(status, 200);
    let there = tests::wait_until("the close in Guangzhou", Duration::from_secs(30), || async {
        let there = fed.task("440100", 1, GZ_COMMAND_TOKEN, there.id).await?;
        if there.state == "closed" {
            Ok(there)
        } else {
            Err(there.state)
        }
    })
    .await;
    // Guangzhou records the province's group as who closed it: the user name is the province's word.
    assert_eq!(actions_by(&there, "group:440000").last().map(String::as_str), Some("close"));
    let record = fed.task("440000", 1, COMMAND_TOKEN, task.id).await.expect("record");
    assert_eq!(record.timeline.iter().filter(|e| e.action == "close").count(), 1, "one close on the record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_is_routed_through_the_parent_and_an_uncovered_region_is_kept_and_flagged() {
    // Guangzhou and Zhejiang know only the province; the province knows both.
    let fed = TestFederation::start(FederationOptions::new(vec![
        GroupSpec::new("440000", 1),
        GroupSpec::new("440100", 1).knowing(&["440000"]),
        GroupSpec::new("330000", 1).knowing(&["440000"]),
    ]))
    .await;
    let guangzhou = fed.group("440100");
    let lead = guangzhou.create_task_as(1, GZ_COMMAND_TOKEN, &zhejiang_lead("经由省局移送的线索")).await;
    let handover = lead.handover.clone().expect("handed on");
    assert_eq!((handover.to_group.as_str(), handover.purpose.as_str()), ("440000", "jurisdiction"));

    // The province receives it, keeps a record and routes it on to Zhejiang.
    let (at_province, _) = fed.wait_exactly_once("440100", GZ_COMMAND_TOKEN, lead.id, "440000", COMMAND_TOKEN).await;
    let relay_id = at_province.handover.as_ref().and_then(|h| h.target_task_id).expect("delivered");
    let (relay, in_zhejiang) =
        fed.wait_exactly_once("440000", COMMAND_TOKEN, relay_id, "330000", ZJ_COMMAND_TOKEN).await;
    assert_eq!(relay.received_from.as_ref().map(|r| r.from_group.as_str()), Some("440100"));
    assert_eq!(in_zhejiang.origin_bureau, "330000", "the receiving centre owns the lead");

    // The receiver may not pass it on by itself.
    let zhejiang = fed.group("330000");
    let (status, body) = act(zhejiang, 1, ZJ_COMMAND_TOKEN, in_zhejiang.id, "forward", json!({})).await;
    assert_eq!(status, 409, "{body}");

    // Zhejiang dispatches it to Xihu; Guangzhou's record follows through the province's.
    let (status, body) =
        act(zhejiang, 1, ZJ_COMMAND_TOKEN, in_zhejiang.id, "dispatch", json!({"assignee_bureau": "330106"})).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = act(zhejiang, 1, XIHU_OPERATOR_TOKEN, in_zhejiang.id, "ack", json!({})).await;
    assert_eq!(status, 200);
    let record = fed
        .wait_for_record("Xihu's ack at Guangzhou", "440100", GZ_COMMAND_TOKEN, lead.id, |t| t.state == "acknowledged")
        .await;
    assert_eq!(record.assignee_bureau.as_deref(), Some("330106"));
    // Named although it lies outside the province's tree (the console shows the name).
    assert_eq!(record.assignee_bureau_name.as_deref(), Some("西湖区"));

    // A lead about Beijing: the province knows no group there and has no parent: kept, flagged.
    let province = fed.group("440000");
    let beijing = province.create_task_as(1, COMMAND_TOKEN, &region_lead("北京某商户线索", "110105")).await;
    assert!(beijing.jurisdiction_unrouted && beijing.handover.is_none(), "{beijing:?}");
    // From Guangzhou it goes to the province, which cannot place it either and refuses: the
    // lead comes back to Guangzhou's command centre, flagged, with the reason on its timeline.
    let from_gz = guangzhou.create_task_as(1, GZ_COMMAND_TOKEN, &region_lead("北京某商户线索（广州）", "110105")).await;
    let back = fed
        .wait_for_record("the refusal at Guangzhou", "440100", GZ_COMMAND_TOKEN, from_gz.id, |t| {
            t.jurisdiction_unrouted && t.handover.is_none()
        })
        .await;
    let refusal = back.timeline.iter().find(|e| e.action == "forward_refused").expect("the reason is recorded");
    assert!(refusal.note.contains("110105"), "{}", refusal.note);
    // Guangzhou's centre can work the flagged lead itself.
    let (status, _) = act(guangzhou, 1, GZ_COMMAND_TOKEN, from_gz.id, "cancel", json!({"note": "转交北京市局"})).await;
    assert_eq!(status, 200);
}

/// A target's status reports can be lost for good (its leader dies with them in memory, its link
/// to the origin is down); the origin pulls the state of its open handovers and makes them
/// good. Here Guangzhou cannot call the province at all once the first handover is delivered:
/// acks and completions reach the province's records only by the province's pull, for a task
/// handed over before the pulls began and for one handed over after a round had run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_pulls_the_state_of_handovers_whose_reports_cannot_reach_it() {
    let mut options = FederationOptions::new(vec![GroupSpec::new("440000", 1), GroupSpec::new("440100", 1)]);
    options.proxied = true;
    let fed = TestFederation::start(options).await;
    let (province, guangzhou) = (fed.group("440000"), fed.group("440100"));
    let first = province.create_task(1, "跨组派发：状态只能由省局拉取（一）", Some("440106")).await;
    let (_, first_there) = fed.wait_exactly_once("440000", COMMAND_TOKEN, first.id, "440100", GZ_COMMAND_TOKEN).await;
    fed.links_from("440100", "440000").iter().for_each(|proxy| proxy.cut());
    let (status, body) = act(guangzhou, 1, TIANHE_OPERATOR_TOKEN, first_there.id, "ack", json!({})).await;
    assert_eq!(status, 200, "{body}");
    fed.wait_for_record("the first ack, pulled", "440000", COMMAND_TOKEN, first.id, |t| t.state == "acknowledged")
        .await;

    // A pull round has run: the next handover is known to it only from the applied entries.
    let second = province.create_task(1, "跨组派发：状态只能由省局拉取（二）", Some("440106")).await;
    let (_, there) = fed.wait_exactly_once("440000", COMMAND_TOKEN, second.id, "440100", GZ_COMMAND_TOKEN).await;
    let (status, body) = act(guangzhou, 1, TIANHE_OPERATOR_TOKEN, there.id, "ack", json!({})).await;
    assert_eq!(status, 200, "{body}");
    fed.wait_for_record("the second ack, pulled", "440000", COMMAND_TOKEN, second.id, |t| t.state == "acknowledged")
        .await;
    let (status, body) =
        act(guangzhou, 1, TIANHE_OPERATOR_TOKEN, there.id, "complete", json!({"outcome": "warned"})).await;
    assert_eq!(status, 200, "{body}");
    let record = fed
        .wait_for_record("the completion, pulled", "440000", COMMAND_TOKEN, second.id, |t| t.state == "completed")
        .await;
    assert_eq!(record.outcome.as_deref(), Some("warned"));
    assert_eq!(actions_by(&record, "tianhe-operator"), ["ack", "complete"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_to_a_stopped_group_alarms_and_lands_once_when_it_returns() {
    let mut options = FederationOptions::new(vec![GroupSpec::new("440000", 3), GroupSpec::new("330000", 3)]);
    options.forward_stuck_after_ms = 1_000;
    let mut fed = TestFederation::start(options).await;
    for id in 1..=3 {
        fed.group_mut("330000").kill(id);
    }
    let lead = fed.group("440000").create_task_as(1, COMMAND_TOKEN, &zhejiang_lead("浙江组停机期间的移送")).await;
    let stuck = fed
        .wait_for_record("the stuck alarm", "440000", COMMAND_TOKEN, lead.id, |t| {
            t.handover.as_ref().is_some_and(|h| h.stuck && !h.delivered)
        })
        .await;
    assert!(stuck.timeline.iter().any(|e| e.action == "forward_stuck"));
    for id in 1..=3 {
        fed.group_mut("330000").restart(id);
    }
    let (record, _) = fed.wait_exactly_once("440000", COMMAND_TOKEN, lead.id, "330000", ZJ_COMMAND_TOKEN).await;
    assert!(!record.handover.expect("handed over").stuck, "the alarm clears on delivery");
}

/// A peer token revoked in the receiving group's topology file and reloaded with SIGHUP is
/// refused at once (no restart); the sender's forwards wait (and alarm) until it is restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_token_is_revoked_and_restored_by_a_reload() {
    let mut options = FederationOptions::new(vec![GroupSpec::new("440000", 3), GroupSpec::new("330000", 3)]);
    options.forward_stuck_after_ms = 1_000;
    let fed = TestFederation::start(options).await;
    let zhejiang = fed.group("330000");
    let topology_file = zhejiang.data_dir().join("topology.toml");
    let original = std::fs::read_to_string(&topology_file).expect("topology");
    let token = TestFederation::peer_token("440000", "330000");
    let accepted = format!("token_sha256 = \"{}\"", config::token_hash(&token));
    assert!(original.contains(&accepted), "Zhejiang knows Guangdong's token by its hash");
    let revoked = original.replace(
        &accepted,
        &format!("token_sha256 = \"{}\"", config::token_hash("a-new-token-not-yet-given-out-0000")),
    );
    std::fs::write(&topology_file, revoked).expect("revoke");
    for id in 1..=3 {
        zhejiang.reload_users(id);
    }
    // Refused at once, by every node.
    let body = json!({"messages": []});
    tests::wait_until("the revoked token refused", Duration::from_secs(10), || async {
        for id in 1..=3 {
            let status = fed
                .http
                .post(zhejiang.url(id, "/federation/v1/deliver"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .status();
            if status != 401 {
                return Err(format!("node {id} answered {status}"));
            }
        }
        Ok(())
    })
    .await;
    let lead = fed.group("440000").create_task_as(1, COMMAND_TOKEN, &zhejiang_lead("令牌吊销期间的移送")).await;
    fed.wait_for_record("the stuck alarm", "440000", COMMAND_TOKEN, lead.id, |t| {
        t.handover.as_ref().is_some_and(|h| h.stuck && !h.delivered)
    })
    .await;
    std::fs::write(&topology_file, original).expect("restore");
    for id in 1..=3 {
        zhejiang.reload_users(id);
    }
    fed.wait_exactly_once("440000", COMMAND_TOKEN, lead.id, "330000", ZJ_COMMAND_TOKEN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_survive_the_origin_leader_killed_right_after_the_outbox_commit() {
    let mut fed =
        TestFederation::start(FederationOptions::new(vec![GroupSpec::new("440000", 3), GroupSpec::new("330000", 1)]))
            .await;
    let leader = fed.group("440000").wait_for_leader().await;
    let bodies: Vec<Value> = (0..8).map(|i| zhejiang_lead(&format!("主节点宕机时的移送 {i}"))).collect();
    let creates = bodies.iter().map(|body| fed.group("440000").create_task_as(leader, COMMAND_TOKEN, body));
    let leads = futures_util::future::join_all(creates).await;
    // Every create was answered, so every outbox entry is committed; kill at once, while the
    // courier is delivering.
    fed.group_mut("440000").kill(leader);
    fed.group("440000").wait_for_leader().await;
    for lead in &leads {
        fed.wait_exactly_once("440000", COMMAND_TOKEN, lead.id, "330000", ZJ_COMMAND_TOKEN).await;
    }
    fed.group_mut("440000").restart(leader);
    fed.group("440000").wait_for_convergence().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_committed_at_the_target_whose_answer_is_lost_lands_once() {
    let mut options = FederationOptions::new(vec![GroupSpec::new("440000", 1), GroupSpec::new("330000", 3)]);
    options.proxied = true;
    let mut fed = TestFederation::start(options).await;
    // The province's requests reach Zhejiang, Zhejiang's answers vanish.
    for proxy in &fed.proxies[&("440000", "330000")] {
        proxy.blackhole_responses();
    }
    let lead = fed.group("440000").create_task_as(1, COMMAND_TOKEN, &zhejiang_lead("应答丢失的移送")).await;
    let forward_id = lead.handover.as_ref().expect("handed over").forward_id.clone();
    tests::wait_until("the forward committed in Zhejiang", Duration::from_secs(30), || async {
        let arrivals = fed.arrivals("330000", ZJ_COMMAND_TOKEN, &forward_id).await?;
        if arrivals.len() == 1 {
            Ok(())
        } else {
            Err(format!("{} arrivals", arrivals.len()))
        }
    })
    .await;
    // Its leader dies before any answer got through; then the network heals.
    let zhejiang_leader = fed.group("330000").wait_for_leader().await;
    fed.group_mut("330000").kill(zhejiang_leader);
    for proxy in &fed.proxies[&("440000", "330000")] {
        proxy.heal();
    }
    fed.wait_exactly_once("440000", COMMAND_TOKEN, lead.id, "330000", ZJ_COMMAND_TOKEN).await;
    fed.group_mut("330000").restart(zhejiang_leader);
    fed.group("330000").wait_for_convergence().await;
    let arrivals = fed.arrivals("330000", ZJ_COMMAND_TOKEN, &forward_id).await.expect("list");
    assert_eq!(arrivals.len(), 1, "still one after the old leader rejoined");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_made_during_a_partition_land_once_after_it_heals() {
    let mut options = FederationOptions::new(vec![GroupSpec::new("440000", 3), GroupSpec::new("330000", 3)]);
    options.proxied = true;
    let fed = TestFederation::start(options).await;
    fed.links_between("440000", "330000").iter().for_each(|proxy| proxy.cut());
    let mut leads = Vec::new();
    for i in 0..20 {
        let node = 1 + (i % 3);
        leads.push(
            fed.group("440000").create_task_as(node, COMMAND_TOKEN, &zhejiang_lead(&format!("分区期间 {i}"))).await,
        );
    }
    // The partition lasts its full length: this is the fault, not a wait for a condition.
    tokio::time::sleep(PARTITION).await;
    let undelivered = fed.tasks("440000", 1, COMMAND_TOKEN).await.expect("list");
    assert!(undelivered.iter().all(|t| t.handover.as_ref().is_some_and(|h| !h.delivered)), "nothing crossed the cut");
    fed.links_between("440000", "330000").iter().for_each(|proxy| proxy.heal());
    for lead in &leads {
        fed.wait_exactly_once("440000", COMMAND_TOKEN, lead.id, "330000", ZJ_COMMAND_TOKEN).await;
    }
    let in_zhejiang = fed.tasks("330000", 1, ZJ_COMMAND_TOKEN).await.expect("list");
    assert_eq!(in_zhejiang.len(), leads.len(), "one task per lead, no more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_authenticate_and_may_only_deliver() {
    let fed =
        TestFederation::start(FederationOptions::new(vec![GroupSpec::new("440000", 1), GroupSpec::new("330000", 1)]))
            .await;
    let zhejiang = fed.group("330000");
    let deliver = zhejiang.url(1, "/federation/v1/deliver");
    let empty = json!({"messages": []});
    // A user token is not a peer token.
    let response = fed.http.post(&deliver).bearer_auth(ZJ_COMMAND_TOKEN).json(&empty).send().await.expect("post");
    assert_eq!(response.status(), 401);
    // Nor is the token Zhejiang uses towards the province valid the other way round.
    let backwards = TestFederation::peer_token("330000", "440000");
    let response = fed.http.post(&deliver).bearer_auth(&backwards).json(&empty).send().await.expect("post");
    assert_eq!(response.status(), 401);
    // A peer token opens no user route.
    let peer = TestFederation::peer_token("440000", "330000");
    let response = fed
        .http
        .post(zhejiang.url(1, "/api/v1/tasks"))
        .bearer_auth(&peer)
        .json(&create_body("冒充"))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 401);
    // A malformed batch is refused whole.
    let response = fed.http.post(&deliver).bearer_auth(&peer).body("{\"messages\": 7}").send().await.expect("post");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("json error");
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_json")));
    // The province cannot deliver a forward in another group's name.
    let forged = json!({"messages": [{"Handover": {
        "forward": {"origin_group": 440300, "seq": 1}, "purpose": "Jurisdiction", "origin_task": 1,
        "origin_bureau": 440300, "kind": "Lead", "severity": "High", "title": "伪造", "description": "",
        "subject": {"uscc": null, "name": "某公司", "region_code": 330106, "address": ""},
        "source": "BigData", "dispatch": null, "note": "", "sent_by": "x"}}]});
    let response = fed.http.post(&deliver).bearer_auth(&peer).json(&forged).send().await.expect("post");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert!(body["results"][0]["refused"].is_object(), "{body}");
    assert!(fed.tasks("330000", 1, ZJ_COMMAND_TOKEN).await.expect("list").is_empty(), "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disputed_lead_is_designated_by_the_common_parent_and_lands_once() {
    const SZ_COMMAND_TOKEN: &str = "demo-sz-command-0004";
    let fed = TestFederation::start(FederationOptions::new(vec![
        GroupSpec::new("440000", 1),
        GroupSpec::new("440100", 1).knowing(&["440000", "440300"]),
        GroupSpec::new("440300", 1).knowing(&["440000", "440100"]),
    ]))
    .await;
    let (guangzhou, shenzhen, province) = (fed.group("440100"), fed.group("440300"), fed.group("440000"));
    let lead = guangzhou.create_task_as(1, GZ_COMMAND_TOKEN, &region_lead("南山区某网店售假线索", "440305")).await;
    assert_eq!(lead.handover.as_ref().map(|h| h.to_group.as_str()), Some("440300"));
    let (_, in_shenzhen) = fed.wait_exactly_once("440100", GZ_COMMAND_TOKEN, lead.id, "440300", SZ_COMMAND_TOKEN).await;

    // Shenzhen may not pass it on by itself; it disputes, saying why.
    let (status, _) = act(shenzhen, 1, SZ_COMMAND_TOKEN, in_shenzhen.id, "forward", json!({})).await;
    assert_eq!(status, 409);
    let (status, body) = act(shenzhen, 1, SZ_COMMAND_TOKEN, in_shenzhen.id, "dispute", json!({})).await;
    assert_eq!(status, 400, "a dispute says why: {body}");
    let reason = json!({"note": "经核实，该网店实际经营地在广州市天河区"});
    let (status, body) = act(shenzhen, 1, SZ_COMMAND_TOKEN, in_shenzhen.id, "dispute", reason).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["handover"]["purpose"], "dispute");
    assert_eq!(body["handover"]["to_group"], "440000", "the lowest common parent of Guangzhou and Shenzhen");

    // The province gets a designation task with its own deadline of 7 working days.
    let (_, designation) =
        fed.wait_exactly_once("440300", SZ_COMMAND_TOKEN, in_shenzhen.id, "440000", COMMAND_TOKEN).await;
    assert_eq!((designation.state.as_str(), designation.assignee_bureau.as_deref()), ("dispatched", Some("440000")));
    let deadline = node::api::time::parse_ms(designation.ack_deadline.as_deref().expect("a designation deadline"))
        .expect("RFC 3339");
    let days_left = (deadline - node::api::time::now_ms()) / 86_400_000;
    assert!((8..=14).contains(&days_left), "7 working days are 9 to 13 calendar days here, not {days_left}");

    // It designates Guangzhou; the lead lands there once, and the designation is final.
    let (status, body) = act(
        province,
        1,
        COMMAND_TOKEN,
        designation.id,
        "designate",
        json!({"group": "440100", "note": "指定广州市局管辖"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, designated) =
        fed.wait_exactly_once("440000", COMMAND_TOKEN, designation.id, "440100", GZ_COMMAND_TOKEN).await;
    assert_eq!(designated.received_from.as_ref().map(|r| r.purpose.as_str()), Some("designation"));
    let reason = json!({"note": "再次争议"});
    let (status, _) = act(guangzhou, 1, GZ_COMMAND_TOKEN, designated.id, "dispute", reason).await;
    assert_eq!(status, 409);

    // Guangzhou dispatches it to Tianhe; its first record follows through the whole chain.
    let (status, body) =
        act(guangzhou, 1, GZ_COMMAND_TOKEN, designated.id, "dispatch", json!({"assignee_bureau": "440106"})).await;
    assert_eq!(status, 200, "{body}");
    fed.wait_for_record("the chain mirrored back to the first record", "440100", GZ_COMMAND_TOKEN, lead.id, |t| {
        t.assignee_bureau.as_deref() == Some("440106") && t.state == "dispatched"
    })
    .await;
}
