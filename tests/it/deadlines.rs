//! Deadlines watched by the leader: each miss recorded once, promptly, across a leader kill;
//! an ack in time prevents the miss; a late ack is still accepted and the miss stays.

use std::collections::BTreeMap;
use std::time::Duration;

use node::api::TaskJson;
use serde_json::json;
use tests::{wait_until, TestCluster, COMMAND_TOKEN, TIANHE_OPERATOR_TOKEN};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn rfc3339_in(offset: Duration) -> String {
    (OffsetDateTime::now_utc() + offset).format(&Rfc3339).expect("format")
}

fn ms(text: &str) -> i128 {
    OffsetDateTime::parse(text, &Rfc3339).expect("RFC 3339").unix_timestamp_nanos() / 1_000_000
}

/// Creates a task for Tianhe and dispatches it with an ack deadline `ack_in` from now.
async fn dispatch_with_ack_deadline(cluster: &TestCluster, node: u64, title: &str, ack_in: Duration) -> TaskJson {
    let task = cluster.create_task(node, title, None).await;
    let response = cluster
        .http
        .post(cluster.url(node, &format!("/api/v1/tasks/{}/dispatch", task.id)))
        .bearer_auth(COMMAND_TOKEN)
        .json(&json!({"assignee_bureau": "440106", "ack_deadline": rfc3339_in(ack_in), "complete_deadline": rfc3339_in(Duration::from_secs(3600))}))
        .send()
        .await
        .expect("dispatch");
    assert_eq!(response.status(), 200);
    response.json().await.expect("task")
}

/// The ack misses on record per task id, as a node sees them.
async fn ack_misses(cluster: &TestCluster, node: u64) -> BTreeMap<u64, Vec<String>> {
    cluster
        .all_tasks(node)
        .await
        .into_iter()
        .map(|task| {
            (task.id, task.timeline.iter().filter(|e| e.action == "ack_missed").map(|e| e.at.clone()).collect())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_missed_deadline_is_recorded_once_and_promptly() {
    let cluster = TestCluster::start().await;
    let mut watched = Vec::new();
    for index in 0..10 {
        watched.push(
            dispatch_with_ack_deadline(&cluster, 1 + index % 3, &format!("时限-{index}"), Duration::from_secs(2)).await,
        );
    }
    let in_time = dispatch_with_ack_deadline(&cluster, 2, "按时签收", Duration::from_secs(2)).await;
    let ack = cluster
        .http
        .post(cluster.url(3, &format!("/api/v1/tasks/{}/ack", in_time.id)))
        .bearer_auth(TIANHE_OPERATOR_TOKEN)
        .json(&json!({"version": in_time.version}))
        .send()
        .await
        .expect("ack");
    assert_eq!(ack.status(), 200);

    let misses = wait_until("every watched ack deadline is recorded missed", Duration::from_secs(20), || async {
        let misses = ack_misses(&cluster, 2).await;
        let recorded = watched.iter().filter(|t| misses.get(&t.id).is_some_and(|m| !m.is_empty())).count();
        if recorded == watched.len() {
            Ok(misses)
        } else {
            Err(format!("{recorded} of {} recorded", watched.len()))
        }
    })
    .await;
    for task in &watched {
        let recorded = &misses[&task.id];
        assert_eq!(recorded.len(), 1, "task {} missed once", task.id);
        let delay_ms = ms(&recorded[0]) - ms(task.ack_deadline.as_deref().expect("deadline"));
        assert!((0..1000).contains(&delay_ms), "task {}: recorded {delay_ms} ms after its deadline", task.id);
    }
    assert!(misses[&in_time.id].is_empty(), "an ack before the deadline leaves nothing to record");

    // A late ack is still accepted, and the miss stays on the record.
    let late = &watched[0];
    let response = cluster
        .http
        .post(cluster.url(1, &format!("/api/v1/tasks/{}/ack", late.id)))
        .bearer_auth(TIANHE_OPERATOR_TOKEN)
        .json(&json!({"note": "迟到的签收"}))
        .send()
        .await
        .expect("late ack");
    assert_eq!(response.status(), 200);
    let task: TaskJson = response.json().await.expect("task");
    let actions: Vec<&str> = task.timeline.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["create", "dispatch", "ack_missed", "ack"]);
    assert_eq!(task.state, "acknowledged");
    // Every replica agrees.
    cluster.wait_for_convergence().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misses_that_fall_due_while_the_leader_is_dead_are_recorded_once() {
    let mut cluster = TestCluster::start().await;
    let leader = cluster.wait_for_leader().await;
    let mut watched = Vec::new();
    for index in 0..20 {
        watched.push(
            dispatch_with_ack_deadline(&cluster, leader, &format!("故障时限-{index}"), Duration::from_secs(3)).await,
        );
    }
    // Kill the leader before the deadlines pass; they fall due during the election.
    cluster.kill(leader);
    let survivor = (1..=3).find(|id| *id != leader).expect("a survivor");
    cluster.wait_for_leader().await;
    wait_until("every deadline recorded by the new leader", Duration::from_secs(30), || async {
        let misses = ack_misses(&cluster, survivor).await;
        let recorded = watched.iter().filter(|t| misses.get(&t.id).is_some_and(|m| !m.is_empty())).count();
        if recorded == watched.len() {
            Ok(())
        } else {
            Err(format!("{recorded} of {} recorded", watched.len()))
        }
    })
    .await;
    cluster.restart(leader);
    cluster.wait_for_convergence().await;
    for node in 1..=3 {
        let misses = ack_misses(&cluster, node).await;
        for task in &watched {
            assert_eq!(misses[&task.id].len(), 1, "node {node}: task {} missed exactly once", task.id);
            assert!(ms(&misses[&task.id][0]) >= ms(task.ack_deadline.as_deref().expect("deadline")));
        }
    }
}

/// A lead's completion deadline can be extended once by 15 working days with the dispatcher's
/// approval; the watch follows the new deadline, and a second request is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_is_extended_once_by_fifteen_working_days() {
    let cluster = TestCluster::start().await;
    let task = dispatch_with_ack_deadline(&cluster, 1, "延期测试", Duration::from_secs(600)).await;
    let act = |node: u64, token: &'static str, action: &str, body: serde_json::Value| {
        cluster
            .http
            .post(cluster.url(node, &format!("/api/v1/tasks/{}/{action}", task.id)))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    assert_eq!(act(2, TIANHE_OPERATOR_TOKEN, "ack", json!({})).await.expect("ack").status(), 200);
    let requested = act(3, TIANHE_OPERATOR_TOKEN, "request_extension", json!({"note": "样品送检，需等待检验报告"}))
        .await
        .expect("request");
    assert_eq!(requested.status(), 200);
    let granted: TaskJson = act(1, COMMAND_TOKEN, "grant_extension", json!({"note": "同意延期"}))
        .await
        .expect("grant")
        .json()
        .await
        .expect("task");
    let calendar = config::calendar::WorkCalendar::china();
    let old = OffsetDateTime::parse(task.complete_deadline.as_deref().expect("deadline"), &Rfc3339).expect("time");
    let new = OffsetDateTime::parse(granted.complete_deadline.as_deref().expect("deadline"), &Rfc3339).expect("time");
    // 15 working days counted on from the old deadline's last day.
    assert_eq!(new, calendar.working_days_after(old - time::Duration::milliseconds(1), 15).expect("covered"));
    let second =
        act(2, TIANHE_OPERATOR_TOKEN, "request_extension", json!({"note": "再次申请"})).await.expect("request");
    assert_eq!(second.status(), 409);
    let body: serde_json::Value = second.json().await.expect("error");
    assert_eq!(body["error"]["code"], "limit_reached");
    let reasonless = act(2, TIANHE_OPERATOR_TOKEN, "request_extension", json!({})).await.expect("request");
    assert_eq!(reasonless.status(), 400, "a request needs a reason");
}

/// After a missed ack: reminders at the interval up to the limit, and escalation to the
/// assignee's parent after the first unheeded one; an emergency also escalates above the
/// dispatcher at once. Each step once, on every replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_ack_is_chased_and_escalated_up_the_chain() {
    let options = tests::ClusterOptions { deadlines_toml: Some(tests::fast_chasing_policy(3)), ..Default::default() };
    let cluster = TestCluster::start_with(options).await;
    let lead = dispatch_with_ack_deadline(&cluster, 1, "催办升级", Duration::from_secs(1)).await;

    let chased = wait_until("three reminders after the miss", Duration::from_secs(30), || async {
        let task: TaskJson = cluster
            .http
            .get(cluster.url(2, &format!("/api/v1/tasks/{}", lead.id)))
            .bearer_auth(COMMAND_TOKEN)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        if task.reminders_sent == 3 {
            Ok(task)
        } else {
            Err(format!("{} reminders", task.reminders_sent))
        }
    })
    .await;
    let actions: Vec<&str> = chased.timeline.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["create", "dispatch", "ack_missed", "remind", "escalate", "remind", "remind"]);
    assert_eq!(chased.escalated_to, ["440100"], "the assignee's parent, Guangzhou");
    // Read on the node that showed the three reminders: another replica may not have applied
    // the last one yet (reads are local).
    let lateness = cluster.get_json(2, COMMAND_TOKEN, "/api/v1/escalations?bureau=440100").await;
    let tianhe = &lateness["bureaus"][0];
    assert_eq!((tianhe["bureau"].as_str(), tianhe["escalated"].as_u64()), (Some("440106"), Some(1)), "{lateness}");
    assert_eq!((tianhe["reminders"].as_u64(), tianhe["overdue_now"].as_u64()), (Some(3), Some(1)));
    let reminders: Vec<i128> = chased.timeline.iter().filter(|e| e.action == "remind").map(|e| ms(&e.at)).collect();
    let deadline = ms(lead.ack_deadline.as_deref().expect("deadline"));
    for (position, at) in reminders.iter().enumerate() {
        assert!(*at >= deadline + 1000 * (position as i128 + 1), "reminder {} waits its interval", position + 1);
    }

    // An emergency dispatched by Guangzhou escalates above Guangzhou (to the province) at once.
    let gz_command = "demo-gz-command-0003";
    let mut body = tests::create_body("突发升级");
    body["kind"] = json!("emergency");
    body["origin_bureau"] = json!("440100");
    let created = cluster.create_task_as(1, gz_command, &body).await;
    let dispatch =
        json!({"assignee_bureau": "440106", "ack_deadline": rfc3339_in(Duration::from_secs(1)), "version": 1});
    let response = cluster
        .http
        .post(cluster.url(1, &format!("/api/v1/tasks/{}/dispatch", created.id)))
        .bearer_auth(gz_command)
        .json(&dispatch)
        .send()
        .await;
    assert_eq!(response.expect("dispatch").status(), 200);
    wait_until("the emergency escalated to the province", Duration::from_secs(30), || async {
        let tasks = cluster.all_tasks(3).await;
        let task = tasks.iter().find(|t| t.id == created.id).ok_or("not visible to the province")?;
        if task.escalated_to.first().map(String::as_str) == Some("440000") {
            Ok(())
        } else {
            Err(format!("{:?}", task.escalated_to))
        }
    })
    .await;
    cluster.wait_for_convergence().await;
}

/// Open tasks by time left: least time left first, paged with a cursor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_tasks_are_listed_by_time_left() {
    let cluster = TestCluster::start().await;
    let mut ids = BTreeMap::new();
    for minutes in [30u64, 10, 20] {
        let task =
            dispatch_with_ack_deadline(&cluster, 1, &format!("剩余{minutes}分钟"), Duration::from_secs(60 * minutes))
                .await;
        ids.insert(minutes, task.id);
    }
    cluster.create_task(1, "未派发", None).await;
    let page = |query: String| {
        let request =
            cluster.http.get(cluster.url(2, &format!("/api/v1/tasks?sort=time_left&consistency=linearizable{query}")));
        async move {
            request
                .bearer_auth(COMMAND_TOKEN)
                .send()
                .await
                .expect("list")
                .json::<node::api::TaskPage>()
                .await
                .expect("page")
        }
    };
    let first = page("&limit=2".into()).await;
    assert_eq!(first.tasks.iter().map(|t| t.id).collect::<Vec<_>>(), vec![ids[&10], ids[&20]]);
    let cursor = first.next_cursor.expect("a second page");
    let second = page(format!("&limit=2&cursor={cursor}")).await;
    assert_eq!(
        second.tasks.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![ids[&30]],
        "undispatched tasks have no clock"
    );
    assert!(second.next_cursor.is_none());
}

/// While the assignee has paused the completion clock (中止) no miss is recorded; resuming moves
/// the deadline by the pause (elapsed time for an emergency's 24-hour period).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_clock_records_no_miss_and_resuming_moves_the_deadline() {
    let cluster = TestCluster::start().await;
    let mut dispatched = Vec::new();
    for title in ["中止计时", "对照任务"] {
        let mut body = tests::create_body(title);
        body["kind"] = json!("emergency");
        let task = cluster.create_task_as(1, COMMAND_TOKEN, &body).await;
        let dispatch = json!({"assignee_bureau": "440106", "version": 1, "ack_deadline": rfc3339_in(Duration::from_secs(2)), "complete_deadline": rfc3339_in(Duration::from_secs(3))});
        let response = cluster
            .http
            .post(cluster.url(1, &format!("/api/v1/tasks/{}/dispatch", task.id)))
            .bearer_auth(COMMAND_TOKEN)
            .json(&dispatch)
            .send()
            .await
            .expect("dispatch");
        assert_eq!(response.status(), 200);
        let ack = cluster
            .http
            .post(cluster.url(1, &format!("/api/v1/tasks/{}/ack", task.id)))
            .bearer_auth(TIANHE_OPERATOR_TOKEN)
            .json(&json!({}))
            .send()
            .await
            .expect("ack");
        assert_eq!(ack.status(), 200);
        dispatched.push(ack.json::<TaskJson>().await.expect("task"));
    }
    let (paused, control) = (&dispatched[0], &dispatched[1]);
    let act = |action: &str, body: serde_json::Value| {
        cluster
            .http
            .post(cluster.url(2, &format!("/api/v1/tasks/{}/{action}", paused.id)))
            .bearer_auth(TIANHE_OPERATOR_TOKEN)
            .json(&body)
            .send()
    };
    let pause = act("pause", json!({"note": "现场检测中"})).await.expect("pause");
    assert_eq!(pause.status(), 200, "{}", pause.text().await.unwrap_or_default());

    // Once the control task's miss is on record, the paused task's deadline has passed too.
    wait_until("the control task's completion miss", Duration::from_secs(20), || async {
        let tasks = cluster.all_tasks(1).await;
        let task = tasks.iter().find(|t| t.id == control.id).ok_or("missing")?;
        if task.timeline.iter().any(|e| e.action == "completion_missed") {
            Ok(())
        } else {
            Err("not yet".to_owned())
        }
    })
    .await;
    let resumed: TaskJson = act("resume", json!({})).await.expect("resume").json().await.expect("task");
    let entries: Vec<&str> = resumed.timeline.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(entries, ["create", "dispatch", "ack", "pause", "resume"], "no miss while paused");
    let pause_at = ms(&resumed.timeline[3].at);
    let resume_at = ms(&resumed.timeline[4].at);
    let old = ms(paused.complete_deadline.as_deref().expect("deadline"));
    let new = ms(resumed.complete_deadline.as_deref().expect("deadline"));
    assert_eq!(new - old, resume_at - pause_at, "moved by exactly the paused time");
}
