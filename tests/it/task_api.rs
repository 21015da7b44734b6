//! The task life cycle through the HTTP API on different nodes: dispatch, ack, feedback,
//! complete, return, close; stale versions, illegal transitions and visibility.

use node::api::TaskJson;
use serde_json::{json, Value};
use tests::{act, create_body, TestCluster, COMMAND_TOKEN, TIANHE_OPERATOR_TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_goes_through_its_life_on_any_node() {
    let cluster = TestCluster::start().await;
    let created = cluster.create_task_as(2, COMMAND_TOKEN, &create_body("生命周期测试")).await;
    assert_eq!((created.state.as_str(), created.version), ("created", 1));
    let id = created.id;

    let (status, task) =
        act(&cluster, 3, COMMAND_TOKEN, id, "dispatch", json!({"assignee_bureau": "440106", "version": 1})).await;
    assert_eq!(status, 200, "{task}");
    assert_eq!(task["state"], "dispatched");
    assert!(task["ack_deadline"].is_string() && task["complete_deadline"].is_string());

    // Another bureau's operator can neither see nor act on it: to it, the task does not exist.
    let yuexiu = "demo-yuexiu-op-0006";
    let (status, body) = act(&cluster, 1, yuexiu, id, "ack", json!({})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    let hidden =
        cluster.http.get(cluster.url(1, &format!("/api/v1/tasks/{id}"))).bearer_auth(yuexiu).send().await.expect("get");
    assert_eq!(hidden.status(), 404);

    // A stale version is refused with 409 and changes nothing.
    let (status, body) = act(&cluster, 1, TIANHE_OPERATOR_TOKEN, id, "ack", json!({"version": 1})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("version_conflict")));
    let (status, task) =
        act(&cluster, 1, TIANHE_OPERATOR_TOKEN, id, "ack", json!({"version": 2, "note": "已签收"})).await;
    assert_eq!((status, task["state"].as_str()), (200, Some("acknowledged")));
    // Acknowledging twice is an illegal transition.
    let (status, body) = act(&cluster, 2, TIANHE_OPERATOR_TOKEN, id, "ack", json!({})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("illegal_transition")));

    let (status, _) = act(&cluster, 2, TIANHE_OPERATOR_TOKEN, id, "feedback", json!({"note": "已派员核查"})).await;
    assert_eq!(status, 200);
    let (status, task) = act(&cluster, 3, TIANHE_OPERATOR_TOKEN, id, "complete", json!({"outcome": "warned"})).await;
    assert_eq!((status, task["state"].as_str(), task["outcome"].as_str()), (200, Some("completed"), Some("warned")));
    let (status, task) = act(&cluster, 1, COMMAND_TOKEN, id, "return", json!({"note": "证据不足"})).await;
    assert_eq!((status, task["state"].as_str()), (200, Some("returned")));
    let (status, _) = act(&cluster, 1, TIANHE_OPERATOR_TOKEN, id, "complete", json!({"outcome": "penalized"})).await;
    assert_eq!(status, 200);
    let (status, task) = act(&cluster, 2, COMMAND_TOKEN, id, "close", json!({})).await;
    assert_eq!((status, task["state"].as_str(), task["version"].as_u64()), (200, Some("closed"), Some(8)));

    // The timeline records every change with actor and note; a linearizable read on a
    // follower sees the last write at once.
    let detail: TaskJson = cluster
        .http
        .get(cluster.url(3, &format!("/api/v1/tasks/{id}?consistency=linearizable")))
        .bearer_auth(TIANHE_OPERATOR_TOKEN)
        .send()
        .await
        .expect("detail")
        .json()
        .await
        .expect("task");
    let actions: Vec<&str> = detail.timeline.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["create", "dispatch", "ack", "feedback", "complete", "return", "complete", "close"]);
    assert_eq!(detail.timeline[2].actor, "tianhe-operator");
    assert_eq!(detail.timeline[5].note, "证据不足");
    assert_eq!(detail.state, "closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_filter_by_bureau_state_and_paginate() {
    let cluster = TestCluster::start().await;
    let mut ids = Vec::new();
    for (index, region) in ["440106", "440104", "440305", "440106", "440106"].iter().enumerate() {
        let mut body = create_body(&format!("列表测试-{index}"));
        body["assignee_bureau"] = json!(region);
        let task = cluster.create_task_as(1, COMMAND_TOKEN, &body).await;
        let (status, _) = act(&cluster, 1, COMMAND_TOKEN, task.id, "dispatch", json!({})).await;
        assert_eq!(status, 200);
        ids.push(task.id);
    }
    let list = |query: String, token: &'static str| {
        let url = cluster.url(1, &format!("/api/v1/tasks?consistency=linearizable&{query}"));
        let http = cluster.http.clone();
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("list")
                .json::<node::api::TaskPage>()
                .await
                .expect("page")
        }
    };
    let guangzhou = list("bureau=440100".into(), COMMAND_TOKEN).await;
    assert_eq!(guangzhou.tasks.len(), 4, "Guangzhou's subtree holds the Tianhe and Yuexiu tasks");
    let tianhe = list(String::new(), TIANHE_OPERATOR_TOKEN).await;
    assert_eq!(tianhe.tasks.len(), 3, "an operator sees its own bureau's tasks only");
    let first = list("limit=2".into(), COMMAND_TOKEN).await;
    assert_eq!(first.tasks.iter().map(|t| t.id).collect::<Vec<_>>(), vec![ids[4], ids[3]], "newest first");
    let cursor = first.next_cursor.expect("more pages");
    let second = list(format!("limit=2&cursor={cursor}"), COMMAND_TOKEN).await;
    assert_eq!(second.tasks.iter().map(|t| t.id).collect::<Vec<_>>(), vec![ids[2], ids[1]]);
    let dispatched = list("state=dispatched,acknowledged&kind=lead&overdue=false".into(), COMMAND_TOKEN).await;
    assert_eq!(dispatched.tasks.len(), 5);
    let created = list("state=created".into(), COMMAND_TOKEN).await;
    assert!(created.tasks.is_empty());
}

/// Dispatch without deadlines takes them from the policy and the working-day calendar; a
/// deadline the dispatcher gives overrides its half of the policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_deadlines_come_from_the_policy_and_the_calendar() {
    use config::calendar::WorkCalendar;
    use time::format_description::well_known::Rfc3339;
    use time::OffsetDateTime;

    let cluster = TestCluster::start().await;
    let parse = |text: &Value| OffsetDateTime::parse(text.as_str().expect("a time"), &Rfc3339).expect("RFC 3339");
    let calendar = WorkCalendar::china();

    let lead = cluster.create_task(1, "工作日时限", None).await;
    let (status, task) =
        act(&cluster, 1, COMMAND_TOKEN, lead.id, "dispatch", json!({"assignee_bureau": "440106"})).await;
    assert_eq!(status, 200, "{task}");
    let dispatched = parse(&task["dispatched_at"]);
    assert_eq!(parse(&task["ack_deadline"]), calendar.working_days_after(dispatched, 1).expect("covered"));
    assert_eq!(parse(&task["complete_deadline"]), calendar.working_days_after(dispatched, 15).expect("covered"));

    let other = cluster.create_task(1, "指定签收时限", None).await;
    let ack_by = (OffsetDateTime::now_utc() + time::Duration::hours(2)).format(&Rfc3339).expect("format");
    let (status, task) = act(
        &cluster,
        2,
        COMMAND_TOKEN,
        other.id,
        "dispatch",
        json!({"assignee_bureau": "440106", "ack_deadline": ack_by}),
    )
    .await;
    assert_eq!(status, 200, "{task}");
    assert_eq!(
        parse(&task["ack_deadline"]).unix_timestamp(),
        OffsetDateTime::parse(&ack_by, &Rfc3339).expect("t").unix_timestamp()
    );
    let dispatched = parse(&task["dispatched_at"]);
    assert_eq!(parse(&task["complete_deadline"]), calendar.working_days_after(dispatched, 15).expect("covered"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assignee_declines_a_task_with_its_reason_and_the_dispatcher_sends_it_elsewhere() {
    let cluster = TestCluster::start().await;
    let created = cluster.create_task_as(1, COMMAND_TOKEN, &create_body("退单测试")).await;
    let id = created.id;
    let (status, _) = act(&cluster, 2, COMMAND_TOKEN, id, "dispatch", json!({"assignee_bureau": "440106"})).await;
    assert_eq!(status, 200);
    // What the task offers by side, as the ledger decides it.
    let (_, task) = act(&cluster, 1, TIANHE_OPERATOR_TOKEN, id, "ack", json!({})).await;
    let offered: Vec<&str> = task["actions"]["assignee"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(offered.contains(&"decline"), "{offered:?}");

    // 退单 needs its reason, and only the assignee side gives a task back.
    let (status, body) = act(&cluster, 3, TIANHE_OPERATOR_TOKEN, id, "decline", json!({})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) =
        act(&cluster, 3, COMMAND_TOKEN, id, "decline", json!({"note": "x", "outcome": "warned"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("unexpected_field")));
    let (status, task) =
        act(&cluster, 3, TIANHE_OPERATOR_TOKEN, id, "decline", json!({"note": "该商户在越秀区"})).await;
    assert_eq!(status, 200, "{task}");
    assert_eq!((task["state"].as_str(), task["assignee_bureau"].as_str()), (Some("created"), None));
    assert!(task["running_deadline"].is_null(), "no clock runs while the task waits for its dispatcher");
    let entry = task["timeline"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((entry["action"].as_str(), entry["assignee_bureau"].as_str()), (Some("decline"), Some("440106")));
    // The operator no longer sees it; the dispatcher sends it where it belongs.
    let (status, _) = act(&cluster, 1, TIANHE_OPERATOR_TOKEN, id, "ack", json!({})).await;
    assert_eq!(status, 404);
    let (status, task) = act(&cluster, 1, COMMAND_TOKEN, id, "dispatch", json!({"assignee_bureau": "440104"})).await;
    assert_eq!((status, task["state"].as_str()), (200, Some("dispatched")), "{task}");
}

/// The HTTP conventions clients' tools expect (issue 21): `Location` on 201, `ETag` and
/// `If-Match` for a task's version (412 when it moved), the JSON error body with `Allow` on 405,
/// and `Cache-Control: no-store` on the API.
#[tokio::test]
async fn location_etag_if_match_405_and_no_store() {
    let cluster = TestCluster::start().await;
    let leader = cluster.wait_for_leader().await;
    let http = &cluster.http;
    let created = http
        .post(cluster.url(leader, "/api/v1/tasks"))
        .bearer_auth(COMMAND_TOKEN)
        .json(&create_body("约定检查"))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    let header = |response: &reqwest::Response, name: &str| {
        response.headers().get(name).map(|v| v.to_str().expect("ascii").to_owned()).unwrap_or_default()
    };
    assert_eq!(header(&created, "cache-control"), "no-store");
    assert_eq!(header(&created, "etag"), "\"1\"");
    let location = header(&created, "location");
    let task: Value = created.json().await.expect("task");
    assert_eq!(location, format!("/api/v1/tasks/{}", task["id"]));

    // Any node answers the Location, with the same tag.
    let read = http.get(cluster.url(1, &location)).bearer_auth(COMMAND_TOKEN).send().await.expect("read");
    assert_eq!((read.status().as_u16(), header(&read, "etag")), (200, "\"1\"".to_owned()));

    // Through a follower: it relays If-Match to the leader with the request.
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let dispatch = |tag: &'static str, body: Value| {
        http.post(cluster.url(follower, &format!("{location}/dispatch")))
            .bearer_auth(COMMAND_TOKEN)
            .header("if-match", tag)
            .json(&body)
            .send()
    };
    let moved = dispatch("\"1\"", json!({"assignee_bureau": "440106"})).await.expect("dispatch");
    assert_eq!((moved.status().as_u16(), header(&moved, "etag")), (200, "\"2\"".to_owned()));
    // The same tag again: the task moved on, a failed precondition.
    let stale = dispatch("\"1\"", json!({"assignee_bureau": "440106"})).await.expect("dispatch");
    assert_eq!(stale.status(), 412);
    let error: Value = stale.json().await.expect("error body");
    assert_eq!(error["error"]["code"], "precondition_failed", "{error}");
    for (tag, body, code) in [
        ("2", json!({"assignee_bureau": "440106"}), "invalid_if_match"),
        ("W/\"2\"", json!({"assignee_bureau": "440106"}), "invalid_if_match"),
        ("\"2\"", json!({"assignee_bureau": "440106", "version": 3}), "invalid_if_match"),
    ] {
        let refused = dispatch(tag, body).await.expect("dispatch");
        assert_eq!(refused.status(), 400, "{tag}");
        let error: Value = refused.json().await.expect("error body");
        assert_eq!(error["error"]["code"], code, "{tag}: {error}");
    }
    let after = http.get(cluster.url(1, &location)).bearer_auth(COMMAND_TOKEN).send().await.expect("read");
    assert_eq!(header(&after, "etag"), "\"2\"", "refusals changed nothing");

    let wrong_method =
        http.delete(cluster.url(leader, "/api/v1/tasks")).bearer_auth(COMMAND_TOKEN).send().await.expect("delete");
    assert_eq!(wrong_method.status(), 405);
    let allow = header(&wrong_method, "allow");
    assert!(allow.contains("GET") && allow.contains("POST"), "Allow: {allow}");
    let error: Value = wrong_method.json().await.expect("a JSON error body");
    assert_eq!(error["error"]["code"], "method_not_allowed", "{error}");
}
