//! The trust boundaries of a group against real processes: the payloads of the security review
//! (../shared/reviews/security-2026-12.md) sent by a hostile linked group, a client and a web
//! page. Each is refused, and the group keeps serving, restarts and takes backups.

use std::time::Duration;

use ledger::{
    BureauCode, CompletionOutcome, DispatchTerms, ForwardId, Handover, HandoverPurpose, Instruction, Message, Severity,
    Source, StatusReport, Subject, TaskId, TaskKind, TaskState, Transition,
};
use serde_json::{json, Value};
use tests::federation::{FederationOptions, GroupSpec, TestFederation, GZ_COMMAND_TOKEN};
use tests::{admin, wait_until, TestCluster, COMMAND_TOKEN, TIANHE_OPERATOR_TOKEN};

fn code(text: &str) -> BureauCode {
    BureauCode::parse_compiled(text).expect(text)
}

/// A peer group's call, as the hostile group makes it with its own (genuine) link token.
async fn peer_post(fed: &TestFederation, from: &str, to: &str, path: &str, body: Value) -> (u16, Value) {
    let response = fed
        .http
        .post(fed.group(to).url(1, path))
        .bearer_auth(TestFederation::peer_token(from, to))
        .json(&body)
        .send()
        .await
        .expect("peer call");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn delivered(answer: &Value) -> &str {
    answer["results"][0].as_object().and_then(|result| result.keys().next()).map_or("", String::as_str)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_linked_group_cannot_crash_plant_or_poison_and_the_groups_restart_and_back_up() {
    let mut fed =
        TestFederation::start(FederationOptions::new(vec![GroupSpec::new("440000", 1), GroupSpec::new("440100", 1)]))
            .await;
    let province = fed.group("440000");
    let task = province.create_task(1, "跨组派发：天河区某商户", Some("440106")).await;
    let (_, there) = fed.wait_exactly_once("440000", COMMAND_TOKEN, task.id, "440100", GZ_COMMAND_TOKEN).await;
    let forward = ForwardId::parse(&task.handover.as_ref().expect("handed over").forward_id).expect("forward id");

    // Finding 1: an instruction that would hand the task over reached `unreachable!` in apply.
    for transition in [
        Transition::Designate { to_group: code("330000"), from_group: code("440100") },
        Transition::DispatchAcross {
            assignee: code("440106"),
            ack_deadline_ms: 1,
            complete_deadline_ms: 2,
            to_group: code("440300"),
            from_group: code("440100"),
        },
    ] {
        let instruction = Instruction { forward, number: 1, transition, note: String::new(), sent_by: "x".into() };
        let body = json!({"messages": [Message::Instruction(instruction)]});
        let (status, answer) = peer_post(&fed, "440000", "440100", "/federation/v1/deliver", body).await;
        assert_eq!((status, delivered(&answer)), (200, "refused"), "{answer}");
    }

    // Finding 8: Guangzhou plants a "dispatch" at the province in the province's name.
    let subject = Subject { uscc: None, name: "某商户".into(), region_code: code("440106"), address: String::new() };
    let planted = Handover {
        forward: ForwardId { origin_group: code("440100"), seq: 99 },
        purpose: HandoverPurpose::Dispatch,
        origin_task: TaskId(1),
        origin_bureau: code("440000"),
        kind: TaskKind::Lead,
        severity: Severity::Critical,
        title: "伪造的派发".into(),
        description: String::new(),
        subject,
        source: Source::Complaint,
        dispatch: Some(DispatchTerms {
            assignee: code("440106"),
            ack_deadline_ms: u64::MAX / 4,
            complete_deadline_ms: u64::MAX / 4,
        }),
        note: String::new(),
        sent_by: "gd-command".into(),
    };
    let body = json!({"messages": [Message::Handover(planted.clone())]});
    let (status, answer) = peer_post(&fed, "440100", "440000", "/federation/v1/deliver", body).await;
    assert_eq!((status, delivered(&answer)), (200, "refused"), "{answer}");
    // Groups upgrade at different times: fields a newer release adds, to the request or to a
    // message, are ignored, and the message is judged as before.
    let mut newer = json!({"messages": [Message::Handover(planted)], "sent_by_release": "0.3.0"});
    newer["messages"][0]["Handover"]["priority_hint"] = json!(3);
    let (status, answer) = peer_post(&fed, "440100", "440000", "/federation/v1/deliver", newer).await;
    assert_eq!((status, delivered(&answer)), (200, "refused"), "{answer}");
    // A change an older group could not understand comes under a new path: refused, naming both.
    let (status, answer) = peer_post(&fed, "440100", "440000", "/federation/v2/deliver", json!({"messages": []})).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("federation_version")), "{answer}");
    assert!(
        answer["error"]["message"].as_str().is_some_and(|m| m.contains("speaks federation v1, not v2")),
        "{answer}"
    );
    let (status, answer) = peer_post(&fed, "440100", "440000", "/federation/v2", json!({})).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("federation_version")), "{answer}");

    // Finding 2: a report whose fields disagree (completed, with no assignee or outcome) used to
    // be copied whole, and every node panicked at the next snapshot load.
    let mut fields = sample_task().handling.clone();
    fields.state = TaskState::Completed;
    fields.outcome = None;
    let poisoned = StatusReport {
        forward,
        task: TaskId(there.id),
        version: 999,
        instructions_handled: 0,
        fields,
        timeline: Vec::new(),
    };
    let (status, answer) =
        peer_post(&fed, "440100", "440000", "/federation/v1/report", json!({"reports": [poisoned]})).await;
    assert_eq!(status, 200, "{answer}");
    let record = fed.task("440000", 1, COMMAND_TOKEN, task.id).await.expect("record");
    assert_eq!(record.state, "dispatched", "the refused report changed nothing");

    // A linked group has a budget of its own: a flood of status queries meets 429.
    let forwards: Vec<ForwardId> = (1..=128).map(|seq| ForwardId { origin_group: code("440000"), seq }).collect();
    let mut statuses = Vec::new();
    for _ in 0..60 {
        let body = json!({"forwards": forwards});
        statuses.push(peer_post(&fed, "440000", "440100", "/federation/v1/status", body).await.0);
    }
    assert!(statuses.contains(&429), "a peer's flood is limited: {statuses:?}");

    // Enough writes for snapshots on both sides, then restarts and a backup: all as before.
    for n in 0..70 {
        province.create_task(1, &format!("快照前的写入 {n}"), None).await;
    }
    let (status, _) = tests::act(fed.group("440100"), 1, TIANHE_OPERATOR_TOKEN, there.id, "ack", json!({})).await;
    assert_eq!(status, 200);
    fed.wait_for_record("the genuine ack mirrored", "440000", COMMAND_TOKEN, task.id, |t| t.state == "acknowledged")
        .await;
    for group in ["440000", "440100"] {
        let cluster = fed.group_mut(group);
        cluster.kill(1);
        cluster.restart(1);
        cluster.wait_for_leader().await;
        healthy(cluster).await;
    }
    let province = fed.group("440000");
    let after = province.create_task(1, "重启后仍可写入", None).await;
    assert!(after.id > task.id);
    let out = province.data_dir().join("after-attack.backup");
    let header = admin(province.addr(1), &["backup", "--out", &out.to_string_lossy()]);
    assert!(header["digest"].is_string(), "{header}");
}

/// A task's fields as a starting point for a forged report.
fn sample_task() -> ledger::Task {
    let entry = ledger::task::TimelineEntry {
        version: 1,
        at_ms: 1,
        action: ledger::TimelineAction::Create,
        actor_user: "x".into(),
        actor_bureau: code("440000"),
        note: String::new(),
        assignee_bureau: None,
        outcome: Some(CompletionOutcome::Warned),
    };
    let subject = Subject { uscc: None, name: "x".into(), region_code: code("440106"), address: String::new() };
    ledger::Task::registered(
        TaskId(1),
        1,
        TaskKind::Lead,
        Severity::Normal,
        "x".into(),
        String::new(),
        subject,
        Source::Complaint,
        code("440000"),
        None,
        entry,
    )
}

async fn healthy(cluster: &TestCluster) {
    wait_until("healthz and readyz", Duration::from_secs(20), || async {
        let health = cluster.http.get(cluster.url(1, "/healthz")).send().await.map_err(|e| e.to_string())?;
        let ready = cluster.http.get(cluster.url(1, "/readyz")).send().await.map_err(|e| e.to_string())?;
        match (health.status().as_u16(), ready.status().as_u16()) {
            (200, 200) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

/// A client's own hop count (finding 5), an unknown method (finding 4), a web page of another
/// origin (finding 18), an operator's cluster view (finding 12), invisible tasks (finding 14)
/// and a province reading a city's reporter (finding 6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_and_web_pages_get_nothing_past_the_boundaries() {
    let stingy = "[[users]]\nname = \"stingy\"\ntoken = \"demo-stingy-0070\"\nbureau = \"440000\"\nrole = \"command\"\nrequests_per_second = 2\n";
    let cluster = TestCluster::start_with(tests::ClusterOptions {
        size: 1,
        extra_users_toml: Some(stingy.into()),
        ..Default::default()
    })
    .await;
    let http = &cluster.http;

    // A client's hop count does not shed its budget: the header is removed unless a member sealed it.
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let response = http
            .get(cluster.url(1, "/api/v1/me"))
            .bearer_auth("demo-stingy-0070")
            .header("x-xietong-relay-hops", "0")
            .send()
            .await
            .expect("me");
        statuses.push(response.status().as_u16());
    }
    assert!(statuses.contains(&429), "the budget holds with a forged hop count: {statuses:?}");

    // Unknown methods are counted under one label.
    let probe = reqwest::Method::from_bytes(b"XPROBEA1").expect("method");
    http.request(probe, cluster.url(1, "/healthz")).send().await.expect("probe");
    let metrics = http.get(cluster.url(1, "/metrics")).send().await.expect("metrics").text().await.expect("text");
    assert!(!metrics.contains("XPROBEA1"), "no series per method token");
    assert!(metrics.contains("method=\"other\""), "{metrics}");

    // CORS only for the group's own pages, only on the API; the console cannot be framed.
    let evil = http.get(cluster.url(1, "/metrics")).header("origin", "https://evil.example").send().await.expect("get");
    assert!(evil.headers().get("access-control-allow-origin").is_none());
    let api = |origin: String| {
        http.get(cluster.url(1, "/api/v1/me")).bearer_auth(COMMAND_TOKEN).header("origin", origin).send()
    };
    let foreign = api("https://evil.example".into()).await.expect("me");
    assert!(foreign.headers().get("access-control-allow-origin").is_none());
    let own = format!("http://{}", cluster.addr(1));
    let member = api(own.clone()).await.expect("me");
    assert_eq!(member.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()), Some(own.as_str()));
    let page = http.get(cluster.url(1, "/")).send().await.expect("console");
    let policy = page.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(policy.contains("frame-ancestors 'self'"), "{policy}");

    // The digest is for the command centre and platform operators, not every operator.
    let view = |token: &'static str| {
        let request = http.get(cluster.url(1, "/api/v1/cluster")).bearer_auth(token);
        async move { request.send().await.expect("view").json::<Value>().await.expect("json") }
    };
    assert!(view(COMMAND_TOKEN).await["digest"].is_string());
    let operator_view = view(TIANHE_OPERATOR_TOKEN).await;
    assert!(operator_view.get("digest").is_none() && operator_view.get("task_count").is_none(), "{operator_view}");

    // A task of another bureau answers every action exactly like a missing one.
    let baiyun = cluster.create_task(1, "白云区某商户", Some("440111")).await;
    const YUEXIU: &str = "demo-yuexiu-op-0006";
    for (action, body) in [
        ("ack", json!({})),
        ("forward", json!({})),
        ("dispatch", json!({"assignee_bureau": "440300"})),
        ("request_extension", json!({"note": "x"})),
        ("resume", json!({})),
        ("dispute", json!({"note": "x"})),
    ] {
        let invisible = tests::act(&cluster, 1, YUEXIU, baiyun.id, action, body.clone()).await;
        let missing = tests::act(&cluster, 1, YUEXIU, 999_999, action, body).await;
        assert_eq!(invisible.0, 404, "{action}: {invisible:?}");
        assert_eq!(invisible.1["error"]["code"], missing.1["error"]["code"], "{action}");
    }

    // Another province's command centre keeps no entity directory in this group.
    let csv = draw::generate::generate(10, code("440106"), 7);
    let (status, body) =
        cluster.post_csv(1, tests::federation::ZJ_COMMAND_TOKEN, "/api/v1/directories/entities", csv).await;
    assert_eq!(status, 403, "{body}");

    // A city's tip-off: the province above it may not read who reported it.
    let tip_off = json!({
        "channel": "tip_off", "real_name": true,
        "reporter": {"name": "王小明", "phone": "13800138000", "id_number": "44190019900101123X"},
        "title": "实名举报：东莞某店销售过期食品",
        "subject": {"name": "东莞市某某便利店", "region_code": "441900", "address": "东莞市某路1号"},
    });
    let registered = http
        .post(cluster.url(1, "/api/v1/complaints"))
        .bearer_auth("demo-dongguan-cmd-0010")
        .json(&tip_off)
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status(), 201);
    let id = registered.json::<Value>().await.expect("task")["id"].as_u64().expect("id");
    let reporter = |token: &'static str| {
        http.get(cluster.url(1, &format!("/api/v1/tasks/{id}/reporter"))).bearer_auth(token).send()
    };
    assert_eq!(reporter("demo-dongguan-cmd-0010").await.expect("read").status(), 200);
    assert_eq!(reporter(COMMAND_TOKEN).await.expect("read").status(), 403, "not the province");
}

/// Finding 3: a peer RPC without the group secret is refused from its headers, before its body
/// (here announced as 200 MB and never sent) is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_rpc_is_refused_before_its_body_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..Default::default() }).await;
    let mut stream = tokio::net::TcpStream::connect(cluster.addr(1)).await.expect("connect");
    let request = "POST /raft/append HTTP/1.1\r\nHost: x\r\nContent-Length: 200000000\r\n\r\n";
    stream.write_all(request.as_bytes()).await.expect("headers");
    let mut answer = vec![0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("answered without waiting for the body")
        .expect("read");
    let head = String::from_utf8_lossy(&answer[..read]);
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    // A member with the secret but of another peer format (a build across a format change, or
    // one from before formats were sent) is refused too, naming both, before its body.
    let secret = std::fs::read_to_string(cluster.data_dir().join("group.secret")).expect("the group secret");
    for (format_header, theirs) in [("x-xietong-peer-format: 3\r\n", "3"), ("", "1 (no format header)")] {
        let mut stream = tokio::net::TcpStream::connect(cluster.addr(1)).await.expect("connect");
        let request = format!(
            "POST /raft/append HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nx-xietong-target-node: 1\r\n\
             {format_header}Content-Length: 200000000\r\n\r\n",
            secret.trim()
        );
        stream.write_all(request.as_bytes()).await.expect("headers");
        let mut answer = vec![0u8; 1024];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
            .await
            .expect("answered without waiting for the body")
            .expect("read");
        let answer = String::from_utf8_lossy(&answer[..read]);
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains(&format!("peer RPC of format {theirs}; node 1 speaks peer format 2")), "{answer}");
    }
}

/// A second `xietong node` on a live node's configuration (an operator's slip, a supervisor
/// restarting a node that never died) refuses at once, naming the process that holds the data
/// directory, and touches no file of it; the live node goes on and restarts as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_a_live_data_directory_refuses_and_touches_nothing() {
    let mut cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..Default::default() }).await;
    cluster.create_task(1, "锁之前的写入", None).await;
    // The live node writes its own files in the background too (its search index of the task):
    // compare once it has.
    tests::wait_until("the live node has indexed the task", std::time::Duration::from_secs(30), || async {
        let url = cluster.url(1, "/api/v1/search?q=%E9%94%81%E4%B9%8B%E5%89%8D");
        let response =
            cluster.http.get(url).bearer_auth(tests::COMMAND_TOKEN).send().await.map_err(|e| e.to_string())?;
        let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
        let found = body["tasks"].as_array().is_some_and(|tasks| !tasks.is_empty());
        found.then_some(()).ok_or_else(|| body.to_string())
    })
    .await;
    let data_dir = cluster.data_dir().join("node1");
    let files = || tests::files_below(&data_dir).into_iter().collect::<std::collections::BTreeSet<_>>();
    let before = files();
    for _ in 0..5 {
        let output = std::process::Command::new(tests::xietong_binary())
            .args(["node", "--config"])
            .arg(cluster.config_path(1))
            .output()
            .expect("a second xietong node");
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("is in use by process"), "{stderr}");
    }
    assert_eq!(files(), before, "the refused starts wrote nothing");
    cluster.create_task(1, "锁之后的写入", None).await;
    cluster.kill(1);
    cluster.restart(1);
    cluster.wait_for_leader().await;
    cluster.create_task(1, "重启之后的写入", None).await;
}
