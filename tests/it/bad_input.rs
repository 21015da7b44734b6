//! Bad inputs of every kind get the documented JSON error and leave the ledger unchanged.

use serde_json::{json, Value};
use tests::{create_body, TestCluster, COMMAND_TOKEN, LEADER_TOKEN};

struct Case {
    name: &'static str,
    token: Option<&'static str>,
    path: &'static str,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
}

fn with(mutate: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut body = create_body("坏输入测试");
    mutate(&mut body);
    serde_json::to_vec(&body).expect("json")
}

fn cases() -> Vec<Case> {
    let case = |name, path, body, status, code| Case { name, token: Some(COMMAND_TOKEN), path, body, status, code };
    vec![
        case("malformed json", "/api/v1/tasks", b"{\"kind\": ".to_vec(), 400, "invalid_json"),
        case("not an object", "/api/v1/tasks", b"[1,2,3]".to_vec(), 400, "invalid_json"),
        case("unknown field", "/api/v1/tasks", with(|b| b["priority"] = json!("urgent")), 400, "invalid_json"),
        case(
            "unknown subject field",
            "/api/v1/tasks",
            with(|b| b["subject"]["phone"] = json!("138")),
            400,
            "invalid_json",
        ),
        case(
            "missing title",
            "/api/v1/tasks",
            with(|b| {
                b.as_object_mut().expect("object").remove("title");
            }),
            400,
            "invalid_json",
        ),
        case("bad kind", "/api/v1/tasks", with(|b| b["kind"] = json!("rumour")), 400, "invalid_enum"),
        case("bad severity", "/api/v1/tasks", with(|b| b["severity"] = json!("URGENT")), 400, "invalid_enum"),
        case("bad source", "/api/v1/tasks", with(|b| b["source"] = json!("hotline")), 400, "invalid_enum"),
        case("wrong type", "/api/v1/tasks", with(|b| b["kind"] = json!(3)), 400, "invalid_json"),
        case(
            "bad check character",
            "/api/v1/tasks",
            with(|b| b["subject"]["uscc"] = json!("91350100M000100Y44")),
            400,
            "invalid_uscc",
        ),
        case(
            "lowercase uscc",
            "/api/v1/tasks",
            with(|b| b["subject"]["uscc"] = json!("91350100m000100y43")),
            400,
            "invalid_uscc",
        ),
        case("short uscc", "/api/v1/tasks", with(|b| b["subject"]["uscc"] = json!("9135010")), 400, "invalid_uscc"),
        case(
            "uscc with Z",
            "/api/v1/tasks",
            with(|b| b["subject"]["uscc"] = json!("91350100M000100Y4Z")),
            400,
            "invalid_uscc",
        ),
        case(
            "unknown region",
            "/api/v1/tasks",
            with(|b| b["subject"]["region_code"] = json!("440199")),
            400,
            "invalid_region_code",
        ),
        case(
            "malformed region",
            "/api/v1/tasks",
            with(|b| b["subject"]["region_code"] = json!("44-106")),
            400,
            "invalid_region_code",
        ),
        case(
            "assignee outside jurisdiction",
            "/api/v1/tasks",
            with(|b| b["assignee_bureau"] = json!("110105")),
            400,
            "invalid_field",
        ),
        case("empty title", "/api/v1/tasks", with(|b| b["title"] = json!("   ")), 400, "invalid_field"),
        case("title too long", "/api/v1/tasks", with(|b| b["title"] = json!("长".repeat(201))), 400, "invalid_field"),
        case(
            "oversized body",
            "/api/v1/tasks",
            with(|b| b["description"] = json!("x".repeat(70 * 1024))),
            413,
            "body_too_large",
        ),
        case(
            "deeply nested json",
            "/api/v1/tasks",
            [b"[".repeat(10_000), b"]".repeat(10_000)].concat(),
            400,
            "invalid_json",
        ),
        case("invalid utf-8", "/api/v1/tasks", b"{\"kind\": \"\xff\xfe\"}".to_vec(), 400, "invalid_json"),
        case("control character", "/api/v1/tasks", with(|b| b["title"] = json!("标题\u{7}响铃")), 400, "invalid_field"),
        case("huge number", "/api/v1/tasks/1/ack", br#"{"version": 1e400}"#.to_vec(), 400, "invalid_json"),
        case("negative version", "/api/v1/tasks/1/ack", br#"{"version": -1}"#.to_vec(), 400, "invalid_json"),
        case("ten megabytes", "/api/v1/tasks", vec![b' '; 10 * 1024 * 1024], 413, "body_too_large"),
        case("bad action", "/api/v1/tasks/1/approve", b"{}".to_vec(), 404, "no_route"),
        case("bad task id", "/api/v1/tasks/abc/ack", b"{}".to_vec(), 400, "invalid_task_id"),
        case("unknown action field", "/api/v1/tasks/1/ack", br#"{"notes":"x"}"#.to_vec(), 400, "invalid_json"),
        case("outcome on ack", "/api/v1/tasks/1/ack", br#"{"outcome":"warned"}"#.to_vec(), 400, "unexpected_field"),
        case("bad outcome", "/api/v1/tasks/1/complete", br#"{"outcome":"fined"}"#.to_vec(), 400, "invalid_enum"),
        case("missing outcome", "/api/v1/tasks/1/complete", b"{}".to_vec(), 400, "missing_field"),
        case("return without reason", "/api/v1/tasks/1/return", b"{}".to_vec(), 400, "invalid_field"),
        case(
            "bad deadline",
            "/api/v1/tasks/1/dispatch",
            br#"{"assignee_bureau":"440106","ack_deadline":"tomorrow"}"#.to_vec(),
            400,
            "invalid_field",
        ),
        Case {
            name: "no token",
            token: None,
            path: "/api/v1/tasks",
            body: with(|_| {}),
            status: 401,
            code: "unauthorized",
        },
        Case {
            name: "unknown token",
            token: Some("not-a-real-token-123"),
            path: "/api/v1/tasks",
            body: with(|_| {}),
            status: 401,
            code: "unauthorized",
        },
        Case {
            name: "leadership writes",
            token: Some(LEADER_TOKEN),
            path: "/api/v1/tasks",
            body: with(|_| {}),
            status: 403,
            code: "forbidden",
        },
    ]
}

/// Sends every bad request to every node (leader and followers) and checks that the error is
/// the documented one and that no node's ledger moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_documented_errors_and_change_nothing() {
    let cluster = TestCluster::start().await;
    // One real task, so the action routes have something to refer to.
    let created = cluster
        .http
        .post(cluster.url(1, "/api/v1/tasks"))
        .bearer_auth(COMMAND_TOKEN)
        .json(&create_body("参照任务"))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    let before = cluster.wait_for_convergence().await;

    for node in 1..=3 {
        for case in cases() {
            let mut request = cluster
                .http
                .post(cluster.url(node, case.path))
                .header("content-type", "application/json")
                .body(case.body);
            if let Some(token) = case.token {
                request = request.bearer_auth(token);
            }
            let response = match request.send().await {
                Ok(response) => response,
                // A body far over the cap may be cut off: the node answers 413 after the first
                // 64 KiB and closes, and the client can see the close before the answer.
                Err(error) if case.status == 413 && (error.is_request() || error.is_body()) => continue,
                Err(error) => panic!("{}: {error}", case.name),
            };
            let status = response.status().as_u16();
            let body: Value =
                response.json().await.unwrap_or_else(|e| panic!("{}: error body is JSON: {e}", case.name));
            assert_eq!(status, case.status, "{} on node {node}: {body}", case.name);
            assert_eq!(body["error"]["code"], case.code, "{} on node {node}: {body}", case.name);
            assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}: a message", case.name);
        }
    }

    let after = cluster.wait_for_convergence().await;
    assert_eq!(after.applied_index, before.applied_index, "no entry was proposed for a bad input");
    assert_eq!(after.digest, before.digest);
    assert_eq!(after.task_count, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queries_are_refused() {
    let cluster = TestCluster::start().await;
    for (query, code) in [
        ("?state=open", "invalid_enum"),
        ("?kind=rumour", "invalid_enum"),
        ("?bureau=999999", "invalid_region_code"),
        ("?limit=0", "invalid_field"),
        ("?limit=100000", "invalid_field"),
        ("?sort=asc", "invalid_enum"),
        ("?order=asc", "invalid_query"),
        ("?sort=time_left&cursor=12", "invalid_cursor"),
        ("?overdue=maybe", "invalid_query"),
        ("?consistency=eventual", "invalid_enum"),
        ("?cursor=x", "invalid_task_id"),
    ] {
        let response = cluster
            .http
            .get(cluster.url(2, &format!("/api/v1/tasks{query}")))
            .bearer_auth(COMMAND_TOKEN)
            .send()
            .await
            .expect("list");
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"]["code"], code, "{query}: {body}");
    }
}

/// Slow-loris connections opened at once: each sends a header line now and then, never the
/// blank line that ends the header block.
const SLOW_LORIS_CONNECTIONS: usize = 200;
/// How often an attacking connection sends another header line (its pacing, not a wait).
const SLOW_LORIS_DRIP: std::time::Duration = std::time::Duration::from_millis(500);

/// A slow-loris client never finishes its headers: the node closes it after its header-read
/// deadline, and serves everyone else meanwhile. (`axum::serve` gave hyper no timer, so no
/// header deadline applied and such connections stayed open for ever.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_connections_are_closed_and_others_are_served_meanwhile() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..Default::default() }).await;
    let mut attackers = Vec::new();
    for _ in 0..SLOW_LORIS_CONNECTIONS {
        let mut stream = tokio::net::TcpStream::connect(cluster.addr(1)).await.expect("connect");
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.expect("first line");
        attackers.push(stream);
    }
    // While they hold their connections, the node still answers.
    let task = cluster.create_task(1, "慢速攻击期间", None).await;
    assert_eq!(task.state, "created");

    let started = std::time::Instant::now();
    let mut open = attackers;
    let mut closed_after = Vec::new();
    while !open.is_empty() {
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "{} slow connections still open", open.len());
        let mut still_open = Vec::new();
        for mut stream in open {
            let dripped = stream.write_all(b"X-Slow: 1\r\n").await;
            let mut byte = [0u8; 1];
            let closed = match tokio::time::timeout(std::time::Duration::from_millis(1), stream.read(&mut byte)).await {
                Ok(Ok(0)) | Ok(Err(_)) => true,
                Ok(Ok(_)) => panic!("the node answered a request whose headers never ended"),
                Err(_) => dripped.is_err(),
            };
            if closed {
                closed_after.push(started.elapsed());
            } else {
                still_open.push(stream);
            }
        }
        open = still_open;
        tokio::time::sleep(SLOW_LORIS_DRIP).await;
    }
    assert_eq!(closed_after.len(), SLOW_LORIS_CONNECTIONS);
    let view = cluster.wait_for_convergence().await;
    assert_eq!(view.task_count, Some(1), "the attack changed nothing");
}

/// `[limits] open_connections_max`: connections beyond it are closed at once; a freed slot
/// serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_open_connection_limit_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const LIMIT: usize = 16;
    let cluster = TestCluster::start_with(tests::ClusterOptions {
        size: 1,
        limits_toml: Some(format!("open_connections_max = {LIMIT}")),
        ..Default::default()
    })
    .await;
    let mut held = Vec::new();
    let refused_at = loop {
        assert!(held.len() <= LIMIT, "more than {LIMIT} connections were served at once");
        let mut stream = tokio::net::TcpStream::connect(cluster.addr(1)).await.expect("connect");
        let request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        let mut answer = [0u8; 64];
        let served = match stream.write_all(request).await {
            Ok(()) => matches!(
                tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut answer)).await,
                Ok(Ok(n)) if n > 0
            ),
            Err(_) => false,
        };
        if !served {
            break held.len();
        }
        // Keep-alive: the connection stays open and holds its slot.
        held.push(stream);
    };
    // The harness's own client may hold a slot or two.
    assert!(refused_at >= LIMIT - 2, "refused after only {refused_at} connections");
    drop(held);
    tests::wait_until("a slot freed by the closed connections", std::time::Duration::from_secs(10), || async {
        let health = cluster.http.get(cluster.url(1, "/healthz")).send().await.map_err(|e| e.to_string())?;
        health.status().is_success().then_some(()).ok_or_else(|| health.status().to_string())
    })
    .await;
}

/// `[limits] proposal_queue_depth`: a write beyond the queue is answered 503 `overloaded` and
/// writes nothing; every write answered 201 is in the ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_beyond_the_proposal_queue_are_refused_whole() {
    const WRITERS: usize = 64;
    let cluster = TestCluster::start_with(tests::ClusterOptions {
        size: 1,
        limits_toml: Some("proposal_queue_depth = 1".into()),
        ..Default::default()
    })
    .await;
    let writes = (0..WRITERS).map(|n| {
        let (http, url) = (cluster.http.clone(), cluster.url(1, "/api/v1/tasks"));
        async move {
            let response =
                http.post(url).bearer_auth(COMMAND_TOKEN).json(&create_body(&format!("排队-{n}"))).send().await;
            let response = response.expect("answered");
            let status = response.status().as_u16();
            let body: Value = response.json().await.expect("json");
            (status, body)
        }
    });
    let answers = futures_util::future::join_all(writes).await;
    let created = answers.iter().filter(|(status, _)| *status == 201).count();
    let overloaded =
        answers.iter().filter(|(status, body)| *status == 503 && body["error"]["code"] == "overloaded").count();
    assert_eq!(created + overloaded, WRITERS, "every write is created or refused as overloaded: {answers:?}");
    assert!(overloaded > 0, "a queue of one overflows under {WRITERS} concurrent writes");
    let view = cluster.wait_for_convergence().await;
    assert_eq!(view.task_count, Some(created as u64), "a refused write wrote nothing");
}
