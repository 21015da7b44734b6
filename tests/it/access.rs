//! The access matrix: every route, as every kind of caller — command, leadership and operator
//! users in and out of the task's scope, a platform operator, an intake source, an export
//! consumer, no token — gets exactly the expected status; and the same for WebSocket scopes.

use serde_json::{json, Value};
use tests::{create_body, TestCluster, COMMAND_TOKEN, LEADER_TOKEN, TIANHE_OPERATOR_TOKEN};

const GZ_COMMAND: &str = "demo-gz-command-0003";
const YUEXIU_OPERATOR: &str = "demo-yuexiu-op-0006";
const ADMIN: &str = "demo-ops-admin-0099";
const SOURCE: &str = "demo-source-monitor-0030";
const CONSUMER: &str = "demo-export-health-0040";
const NONE: &str = "";
/// A well-formed group secret that is not this group's.
const OTHER_GROUP_SECRET: &str = "another-groups-secret-0123456789abcdef";

/// One route: method, path, body, and the status expected for each caller.
type Row = (&'static str, String, Value, Vec<(&'static str, u16)>);
/// A row whose callers include people, by their session tokens.
type PersonRow = (&'static str, String, Value, Vec<(String, u16)>);

async fn status(cluster: &TestCluster, method: &str, path: &str, token: &str, body: &Value) -> u16 {
    let url = cluster.url(1, path);
    let mut request = match method {
        "GET" => cluster.http.get(url),
        _ => cluster.http.post(url).json(body),
    };
    if !token.is_empty() {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_caller_as_the_policy_says() {
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..Default::default() }).await;
    // A province task dispatched to Tianhe, and a tip-off registered by the province's desk.
    let task = cluster.create_task(1, "访问矩阵", Some("440106")).await;
    let complaint: Value = cluster
        .http
        .post(cluster.url(1, "/api/v1/complaints"))
        .bearer_auth(COMMAND_TOKEN)
        .json(&json!({"channel": "tip_off", "real_name": true, "reporter": {"name": "王小明", "phone": "13800138000"},
                      "title": "举报", "subject": {"name": "某店", "region_code": "440106"}}))
        .send()
        .await
        .expect("complaint")
        .json()
        .await
        .expect("json");
    let (id, complaint_id) = (task.id, complaint["id"].as_u64().expect("id"));
    let empty = json!({});
    let new_task = create_body("矩阵新建");
    let feedback = json!({"note": "进展"});
    let members = json!({"id": 9, "addr": "127.0.0.1:1"});
    let rows: Vec<Row> = vec![
        (
            "GET",
            "/api/v1/tasks".into(),
            empty.clone(),
            vec![
                (COMMAND_TOKEN, 200),
                (LEADER_TOKEN, 200),
                (TIANHE_OPERATOR_TOKEN, 200),
                (GZ_COMMAND, 200),
                (ADMIN, 401),
                (SOURCE, 401),
                (CONSUMER, 401),
                (NONE, 401),
            ],
        ),
        (
            "GET",
            format!("/api/v1/tasks/{id}"),
            empty.clone(),
            vec![
                (COMMAND_TOKEN, 200),
                (LEADER_TOKEN, 200),
                (TIANHE_OPERATOR_TOKEN, 200),
                (GZ_COMMAND, 200),
                (YUEXIU_OPERATOR, 404),
                (ADMIN, 401),
                (NONE, 401),
            ],
        ),
        (
            "POST",
            "/api/v1/tasks".into(),
            new_task.clone(),
            vec![
                (COMMAND_TOKEN, 201),
                (LEADER_TOKEN, 403),
                (TIANHE_OPERATOR_TOKEN, 403),
                (ADMIN, 401),
                (SOURCE, 401),
                (NONE, 401),
            ],
        ),
        (
            "POST",
            format!("/api/v1/tasks/{id}/feedback"),
            feedback.clone(),
            vec![
                // Not acknowledged yet: the assignee is told why (409); others are refused first,
                // and a bureau that cannot see the task is told it does not exist.
                (TIANHE_OPERATOR_TOKEN, 409),
                (YUEXIU_OPERATOR, 404),
                (LEADER_TOKEN, 403),
                (NONE, 401),
            ],
        ),
        (
            "POST",
            format!("/api/v1/tasks/{id}/ack"),
            empty.clone(),
            vec![(YUEXIU_OPERATOR, 404), (LEADER_TOKEN, 403), (COMMAND_TOKEN, 200), (ADMIN, 401), (NONE, 401)],
        ),
        (
            "POST",
            format!("/api/v1/tasks/{id}/cancel"),
            json!({"note": "撤销"}),
            vec![(GZ_COMMAND, 403), (TIANHE_OPERATOR_TOKEN, 403), (LEADER_TOKEN, 403), (NONE, 401)],
        ),
        ("GET", "/api/v1/bureaus".into(), empty.clone(), vec![(TIANHE_OPERATOR_TOKEN, 200), (NONE, 401)]),
        ("GET", "/api/v1/bureaus?root=330000".into(), empty.clone(), vec![(COMMAND_TOKEN, 403), (GZ_COMMAND, 403)]),
        (
            "GET",
            "/api/v1/escalations".into(),
            empty.clone(),
            vec![(COMMAND_TOKEN, 200), (LEADER_TOKEN, 200), (NONE, 401)],
        ),
        (
            "GET",
            "/api/v1/metrics/response?bureau=440000".into(),
            empty.clone(),
            vec![
                (COMMAND_TOKEN, 200),
                (LEADER_TOKEN, 200),
                (GZ_COMMAND, 403),
                (TIANHE_OPERATOR_TOKEN, 403),
                (NONE, 401),
            ],
        ),
        (
            "GET",
            "/api/v1/metrics/response?bureau=440106".into(),
            empty.clone(),
            vec![(TIANHE_OPERATOR_TOKEN, 200), (YUEXIU_OPERATOR, 403)],
        ),
        (
            "GET",
            format!("/api/v1/tasks/{complaint_id}/reporter"),
            empty.clone(),
            vec![
                (COMMAND_TOKEN, 200),
                (LEADER_TOKEN, 403),
                (TIANHE_OPERATOR_TOKEN, 404),
                (GZ_COMMAND, 404),
                (NONE, 401),
            ],
        ),
        (
            "POST",
            "/api/v1/complaints".into(),
            json!({"channel": "complaint", "title": "投诉", "subject": {"name": "某店", "region_code": "440106"}}),
            vec![(COMMAND_TOKEN, 201), (TIANHE_OPERATOR_TOKEN, 201), (LEADER_TOKEN, 403), (SOURCE, 401), (NONE, 401)],
        ),
        (
            "GET",
            "/api/v1/export?since=0".into(),
            empty.clone(),
            vec![(CONSUMER, 200), (COMMAND_TOKEN, 401), (SOURCE, 401), (NONE, 401)],
        ),
        (
            "POST",
            "/api/v1/intake".into(),
            json!({"signals": []}),
            vec![(SOURCE, 400), (COMMAND_TOKEN, 401), (CONSUMER, 401), (NONE, 401)],
        ),
        ("GET", "/admin/v1/members".into(), empty.clone(), vec![(ADMIN, 200), (COMMAND_TOKEN, 403), (NONE, 401)]),
        (
            "POST",
            "/admin/v1/members/learners".into(),
            members.clone(),
            vec![(COMMAND_TOKEN, 403), (LEADER_TOKEN, 403), (NONE, 401)],
        ),
        (
            "POST",
            "/federation/v1/deliver".into(),
            json!({"messages": []}),
            vec![(COMMAND_TOKEN, 401), (ADMIN, 401), (NONE, 401)],
        ),
        ("GET", "/api/v1/me".into(), empty.clone(), vec![(COMMAND_TOKEN, 200), (ADMIN, 401), (NONE, 401)]),
        ("GET", "/admin/v1/backup".into(), empty.clone(), vec![(ADMIN, 200), (COMMAND_TOKEN, 403), (NONE, 401)]),
        ("GET", "/healthz".into(), empty.clone(), vec![(NONE, 200)]),
        ("GET", "/metrics".into(), empty.clone(), vec![(NONE, 200)]),
    ];
    let mut checked = 0;
    for (method, path, body, expectations) in &rows {
        for (token, expected) in expectations {
            let got = status(&cluster, method, path, token, body).await;
            assert_eq!(got, *expected, "{method} {path} as {token:?}");
            checked += 1;
        }
    }
    // Raft peer RPC: only a member of the group, holding its secret, may append, vote, read
    // an index or install a snapshot; users, operators and other groups' secrets may not.
    for path in ["/raft/append", "/raft/vote", "/raft/snapshot", "/raft/read-index"] {
        for token in [COMMAND_TOKEN, ADMIN, OTHER_GROUP_SECRET, NONE] {
            let got = status(&cluster, "POST", path, token, &empty).await;
            assert_eq!(got, 401, "POST {path} as {token:?}");
            checked += 1;
        }
    }
    assert!(checked >= 96, "the matrix covers the routes: {checked} cells");
    checked_people_and_stations(&cluster).await;

    // WebSocket scopes: an operator watches its own bureau only; command and leadership their
    // subtree; nobody above their bureau.
    for (token, scope, allowed) in [
        (TIANHE_OPERATOR_TOKEN, "440106", true),
        (TIANHE_OPERATOR_TOKEN, "440100", false),
        (YUEXIU_OPERATOR, "440106", false),
        (GZ_COMMAND, "440106", true),
        (GZ_COMMAND, "440000", false),
        (LEADER_TOKEN, "440300", true),
        (COMMAND_TOKEN, "330000", false),
    ] {
        let mut console = tests::console::ConsoleClient::connect(cluster.addr(1), token, Some(scope), None).await;
        let first = console.next(std::time::Duration::from_secs(10)).await.expect("an answer to the hello");
        let accepted = first["type"] == "welcome";
        assert_eq!(accepted, allowed, "{token} watching {scope}: {first}");
        if !allowed {
            assert_eq!(first["code"].as_str().or(first["error"]["code"].as_str()), Some("forbidden"), "{first}");
        }
    }
}

/// A user token over its request rate gets 429 with Retry-After and its request does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_over_its_request_rate_is_told_to_wait() {
    let slow = "[[users]]\nname = \"slow-script\"\ntoken = \"demo-slow-script-0050\"\nbureau = \"440000\"\nrole = \"command\"\nrequests_per_second = 3\n";
    let cluster = TestCluster::start_with(tests::ClusterOptions {
        size: 1,
        extra_users_toml: Some(slow.into()),
        ..Default::default()
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let response = cluster
            .http
            .post(cluster.url(1, "/api/v1/tasks"))
            .bearer_auth("demo-slow-script-0050")
            .json(&create_body(&format!("限速 {i}")))
            .send()
            .await
            .expect("create");
        if response.status() == 429 {
            assert!(response.headers().get("retry-after").is_some(), "429 says when to come back");
        }
        statuses.push(response.status().as_u16());
    }
    let created = statuses.iter().filter(|s| **s == 201).count();
    assert!((3..=4).contains(&created), "the bucket holds 3 (plus what refilled meanwhile): {statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(cluster.all_tasks(1).await.len(), created, "a refused request wrote nothing");
}

/// Credentials come from the users file, by SHA-256 if it says so, and a reload (SIGHUP) adds
/// and revokes tokens without a restart; a broken file is refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_hashed_and_revoked_by_a_reload() {
    let temporary = "[[users]]\nname = \"temp-inspector\"\ntoken = \"demo-temp-inspector-0060\"\nbureau = \"440000\"\nrole = \"leadership\"\n";
    let cluster = TestCluster::start_with(tests::ClusterOptions {
        size: 1,
        extra_users_toml: Some(temporary.into()),
        ..Default::default()
    })
    .await;
    let me = |token: &'static str| {
        let request = cluster.http.get(cluster.url(1, "/api/v1/me")).bearer_auth(token);
        async move { request.send().await.expect("me").status().as_u16() }
    };
    assert_eq!(me("demo-temp-inspector-0060").await, 200);
    let mut console =
        tests::console::ConsoleClient::connect(cluster.addr(1), "demo-temp-inspector-0060", None, None).await;
    console.expect("welcome").await;
    // Revoke it and add a user whose token the file holds only as a hash.
    let new_token = "prod-like-token-never-written-down";
    let hashed = format!(
        "[[users]]\nname = \"hashed-leader\"\ntoken_sha256 = \"{}\"\nbureau = \"440000\"\nrole = \"leadership\"\n",
        config::token_hash(new_token)
    );
    let users_file = cluster.data_dir().join("users.toml");
    let demo = include_str!("../../config/dev/users.toml");
    std::fs::write(&users_file, format!("{demo}\n{hashed}")).expect("rewrite users");
    cluster.reload_users(1);
    tests::wait_until("the reload to take effect", std::time::Duration::from_secs(10), || async {
        match (me("demo-temp-inspector-0060").await, me(new_token).await) {
            (401, 200) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // The revoked user's open console is closed (finding 11 of the security review), told why.
    let ending = loop {
        match console.next(std::time::Duration::from_secs(15)).await {
            Some(message) if message["type"] == "error" => break Some(message),
            Some(_) => {}
            None => break None,
        }
    };
    let ending = ending.expect("told why before the close");
    assert_eq!(ending["code"], "unauthorized", "{ending}");
    assert!(console.next(std::time::Duration::from_secs(5)).await.is_none(), "closed after it");
    // A broken file is refused whole: everything stays as it was.
    std::fs::write(&users_file, "[[users]]\nname = \"x\"\n").expect("break users");
    cluster.reload_users(1);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    while tokio::time::Instant::now() < deadline {
        assert_eq!(me(new_token).await, 200, "credentials survive a broken file");
        assert_eq!(me(COMMAND_TOKEN).await, 200);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The matrix with stations and people: 五山 station of Tianhe with a head and a handler,
/// Tianhe's dispatcher (a person), and a handler of Yuexiu's 北京 station. A station's people
/// see their station's tasks; a county sees its stations' and does not act on them; a person
/// never sees or acts on another unit's task; only the command centre or an accounts clerk
/// over a unit manages its accounts, and only a command centre its stations.
async fn checked_people_and_stations(cluster: &TestCluster) {
    let post = |path: &str, body: Value| {
        let request = cluster.http.post(cluster.url(1, path)).bearer_auth(COMMAND_TOKEN).json(&body);
        async move { request.send().await.expect("request").status().as_u16() }
    };
    for (county, number, name) in [("440106", 4, "五山市场监管所"), ("440104", 1, "北京市场监管所")] {
        assert_eq!(post("/api/v1/stations", json!({"county": county, "number": number, "name": name})).await, 201);
    }
    let people = [
        ("wushan.head", "440106004", "head"),
        ("wushan.li", "440106004", "handler"),
        ("tianhe.dispatch", "440106", "dispatcher"),
        ("beijing.wang", "440104001", "handler"),
    ];
    let mut tokens = std::collections::BTreeMap::new();
    for (login, unit, role) in people {
        let person =
            json!({"login": login, "name": login, "unit": unit, "roles": [role], "password": format!("Demo-{login}")});
        assert_eq!(post("/api/v1/people", person).await, 201, "{login}");
        let session: Value = cluster
            .http
            .post(cluster.url(1, "/api/v1/sessions"))
            .json(&json!({"login": login, "password": format!("Demo-{login}")}))
            .send()
            .await
            .expect("sign in")
            .json()
            .await
            .expect("json");
        tokens.insert(login, session["token"].as_str().expect("a session").to_owned());
    }
    let token = |login: &str| tokens[login].clone();
    let station_task = cluster.create_task(1, "五山所的任务", Some("440106004")).await.id;
    let county_task = cluster.create_task(1, "天河区局的任务", Some("440106")).await.id;
    let none = Value::Null;
    let rows: Vec<PersonRow> = vec![
        (
            "GET",
            format!("/api/v1/tasks/{station_task}"),
            none.clone(),
            vec![
                (token("wushan.li"), 200),
                (token("wushan.head"), 200),
                (token("tianhe.dispatch"), 200),
                (TIANHE_OPERATOR_TOKEN.into(), 200),
                (token("beijing.wang"), 404),
                (YUEXIU_OPERATOR.into(), 404),
            ],
        ),
        (
            "GET",
            format!("/api/v1/tasks/{county_task}"),
            none.clone(),
            vec![(token("wushan.li"), 404), (token("tianhe.dispatch"), 200), (token("beijing.wang"), 404)],
        ),
        (
            "POST",
            format!("/api/v1/tasks/{station_task}/claim"),
            json!({}),
            vec![
                (token("beijing.wang"), 404),
                (TIANHE_OPERATOR_TOKEN.into(), 403),
                (COMMAND_TOKEN.into(), 403),
                (token("wushan.li"), 200),
                (token("wushan.head"), 409),
            ],
        ),
        (
            "POST",
            format!("/api/v1/tasks/{county_task}/ack"),
            json!({}),
            vec![(token("wushan.li"), 404), (token("beijing.wang"), 404), (TIANHE_OPERATOR_TOKEN.into(), 200)],
        ),
        (
            "POST",
            format!("/api/v1/tasks/{county_task}/hand_down"),
            json!({"unit": "440104001"}),
            vec![(token("wushan.head"), 404), (TIANHE_OPERATOR_TOKEN.into(), 400), (token("tianhe.dispatch"), 400)],
        ),
        (
            "POST",
            format!("/api/v1/tasks/{county_task}/hand_down"),
            json!({"unit": "440106004"}),
            vec![(token("wushan.head"), 404), (token("tianhe.dispatch"), 200)],
        ),
        (
            "GET",
            "/api/v1/people".into(),
            none.clone(),
            vec![(token("wushan.li"), 200), (token("tianhe.dispatch"), 200)],
        ),
        (
            "GET",
            "/api/v1/people?unit=440104001".into(),
            none.clone(),
            vec![(token("wushan.li"), 403), (token("tianhe.dispatch"), 403), (GZ_COMMAND.into(), 200)],
        ),
        (
            "POST",
            "/api/v1/people".into(),
            json!({"login": "x.y", "name": "某", "unit": "440106004", "roles": ["handler"], "password": "Demo-x.y.z.w"}),
            vec![(token("wushan.head"), 403), (token("wushan.li"), 403), (LEADER_TOKEN.into(), 403)],
        ),
        (
            "POST",
            "/api/v1/stations".into(),
            json!({"county": "440106", "name": "新所"}),
            vec![(token("wushan.head"), 403), (TIANHE_OPERATOR_TOKEN.into(), 403), (NONE.into(), 401)],
        ),
        (
            "POST",
            "/api/v1/people/2/disable".into(),
            json!({"note": "x"}),
            vec![(token("wushan.head"), 403), (token("beijing.wang"), 403), (YUEXIU_OPERATOR.into(), 403)],
        ),
    ];
    for (method, path, body, expectations) in &rows {
        for (token, expected) in expectations {
            let got = status(cluster, method, path, token, body).await;
            assert_eq!(got, *expected, "{method} {path} as {}", &token[..token.len().min(24)]);
        }
    }
}
