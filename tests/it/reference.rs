//! Reference data through the log on running groups (issue 21 item 2): a calendar adopted by an
//! operator sets the deadlines every leader stamps from the entry on; a region table adopted
//! while the nodes restart one by one keeps the replicas equal, keeps old codes as history and
//! lists tasks of new codes under their ancestors on every node, the one that caught up by
//! snapshot included.

use std::collections::BTreeSet;
use std::time::Duration;

use config::calendar::{Span, WorkCalendar, BEIJING};
use node::api::time::{format_ms, parse_ms};
use serde_json::{json, Value};
use tests::{act, admin, wait_until, TestCluster, ADMIN_TOKEN, COMMAND_TOKEN};

/// A lead's completion period in the dev deadline policy.
const LEAD_COMPLETE_WORKING_DAYS: u32 = 15;
/// Weekdays made holidays by the adopted calendar, from the day after tomorrow on.
const HOLIDAY_SPAN_DAYS: i64 = 20;

/// A calendar file (the format of `config/calendar/cn.toml`) of `calendar`'s years, with
/// `holidays` added and a provisional `extra_year`.
fn calendar_file(calendar: &WorkCalendar, holidays: &BTreeSet<time::Date>, extra_year: i32) -> String {
    let mut text = String::new();
    let list = |dates: Vec<time::Date>| dates.iter().map(|d| format!("\"{d}\"")).collect::<Vec<_>>().join(", ");
    for (year, schedule) in calendar.years() {
        let mut days: BTreeSet<time::Date> = schedule.holidays().collect();
        days.extend(holidays.iter().filter(|d| d.year() == year));
        text.push_str(&format!(
            "[[year]]\nyear = {year}\nsource = {:?}\nprovisional = {}\nholidays = [{}]\nworkdays = [{}]\n\n",
            schedule.source,
            schedule.provisional,
            list(days.into_iter().collect()),
            list(schedule.workdays().collect()),
        ));
    }
    text.push_str(&format!(
        "[[year]]\nyear = {extra_year}\nsource = \"provisional: statutory holidays only\"\nprovisional = true\n\
         holidays = [\"{extra_year}-01-01\", \"{extra_year}-10-01\"]\nworkdays = []\n"
    ));
    text
}

/// The completion deadline a lead dispatched at `dispatched_at` gets under `calendar`.
fn lead_deadline(calendar: &WorkCalendar, dispatched_at: &str) -> String {
    let stamp_ms = parse_ms(dispatched_at).expect("an RFC 3339 time");
    let start = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(stamp_ms) * 1_000_000).expect("a time");
    let deadline =
        Span::WorkingDays(LEAD_COMPLETE_WORKING_DAYS).deadline_after(calendar, start).expect("within the calendar");
    format_ms((deadline.unix_timestamp_nanos() / 1_000_000) as u64)
}

/// Registers a lead on `node` and dispatches it to 天河区 with the policy's deadlines: the
/// dispatched task.
async fn dispatched_lead(cluster: &TestCluster, node: u64, title: &str) -> Value {
    let task = cluster.create_task(node, title, None).await;
    let (status, body) =
        act(cluster, node, COMMAND_TOKEN, task.id, "dispatch", json!({"assignee_bureau": "440106"})).await;
    assert_eq!(status, 200, "dispatch: {body}");
    body
}

async fn reference_on(cluster: &TestCluster, node: u64) -> Value {
    cluster.get_json(node, ADMIN_TOKEN, "/admin/v1/reference").await
}

async fn post_file(cluster: &TestCluster, node: u64, path: &str, body: String) -> (u16, Value) {
    let response = cluster
        .http
        .post(cluster.url(node, path))
        .bearer_auth(ADMIN_TOKEN)
        .body(body)
        .send()
        .await
        .expect("a reference file sent");
    (response.status().as_u16(), response.json().await.expect("a JSON answer"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calendar_adopted_through_the_log_sets_every_leaders_deadlines() {
    let mut cluster = TestCluster::start().await;
    let leader = cluster.wait_for_leader().await;
    let v0 = WorkCalendar::china();
    let before = dispatched_lead(&cluster, leader, "按旧日历派发").await;
    let dispatched_at = before["dispatched_at"].as_str().expect("dispatched");
    assert_eq!(before["complete_deadline"].as_str(), Some(lead_deadline(&v0, dispatched_at).as_str()));

    // The next weekdays made holidays (a change of days after today: allowed), and 2028 added.
    let today = time::OffsetDateTime::now_utc().to_offset(BEIJING).date();
    let holidays: BTreeSet<time::Date> = (2..2 + HOLIDAY_SPAN_DAYS)
        .map(|days| today + time::Duration::days(days))
        .filter(|day| !matches!(day.weekday(), time::Weekday::Saturday | time::Weekday::Sunday))
        .filter(|day| v0.year(day.year()).is_some())
        .collect();
    let text = calendar_file(&v0, &holidays, v0.covered_until().year() + 1);
    let v1 = WorkCalendar::parse(&text).expect("the file is a calendar");
    let file = cluster.data_dir().join("calendar-v1.toml");
    std::fs::write(&file, &text).expect("written");

    // Files that may not follow are refused whole; nothing is proposed: a past working day
    // made a holiday, a file that is no calendar.
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let past_working_day = (1..10)
        .map(|days| today - time::Duration::days(days))
        .find(|day| v0.is_working_day(*day) == Ok(true))
        .expect("a working day in the last ten days");
    let past_text = calendar_file(&v0, &BTreeSet::from([past_working_day]), v0.covered_until().year() + 1);
    let (status, body) = post_file(&cluster, follower, "/admin/v1/reference/calendar", past_text).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_calendar")), "a past day changed: {body}");
    let (status, body) = post_file(&cluster, follower, "/admin/v1/reference/calendar", "year = [".into()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_calendar")), "{body}");
    let dry = admin(cluster.addr(follower), &["reference", "calendar", file.to_str().expect("utf-8"), "--dry-run"]);
    assert_eq!(dry["dry_run"], json!(true));
    assert_eq!(dry["reference"]["calendar"]["version"], json!(0), "a dry run proposes nothing");

    // Adopted through a follower (relayed to the leader), with a note kept.
    let adopted = admin(
        cluster.addr(follower),
        &["reference", "calendar", file.to_str().expect("utf-8"), "--note", "国务院办公厅通知"],
    );
    assert_eq!(adopted["reference"]["calendar"]["version"], json!(1), "{adopted}");
    let last_year = v0.covered_until().year() + 1;
    for node in 1..=3 {
        let reference = wait_until("every node holds calendar version 1", Duration::from_secs(30), || async {
            let reference = reference_on(&cluster, node).await;
            if reference["calendar"]["version"] == json!(1) {
                Ok(reference)
            } else {
                Err(reference.to_string())
            }
        })
        .await;
        assert_eq!(reference["calendar"]["last_year"], json!(last_year));
        assert_eq!(reference["calendar"]["versions"][0]["note"], json!("国务院办公厅通知"));
        let covered = cluster.metric(node, "xietong_calendar_covered_until_timestamp_seconds").await;
        let end = time::Date::from_calendar_date(last_year + 1, time::Month::January, 1)
            .expect("a date")
            .midnight()
            .assume_offset(BEIJING)
            .unix_timestamp();
        assert_eq!(covered, Some(end as f64), "node {node} reports the new coverage");
    }
    let (status, body) = post_file(&cluster, leader, "/admin/v1/reference/calendar", text.clone()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("nothing_to_record")), "{body}");

    let after = dispatched_lead(&cluster, leader, "按新日历派发").await;
    let dispatched_at = after["dispatched_at"].as_str().expect("dispatched");
    assert_eq!(after["complete_deadline"].as_str(), Some(lead_deadline(&v1, dispatched_at).as_str()));
    assert!(after["complete_deadline"].as_str() > before["complete_deadline"].as_str(), "the holidays count");

    // A new leader stamps with the same committed calendar.
    cluster.kill(leader);
    let new_leader = cluster.wait_for_leader().await;
    let again = dispatched_lead(&cluster, new_leader, "新的主节点派发").await;
    let dispatched_at = again["dispatched_at"].as_str().expect("dispatched");
    assert_eq!(again["complete_deadline"].as_str(), Some(lead_deadline(&v1, dispatched_at).as_str()));
    cluster.restart(leader);
    cluster.wait_for_convergence().await;
}

/// The compiled region table as a file, with `retired` left out and `440199` added under 广州市.
fn regions_v1(retired: &str) -> String {
    let compiled = include_str!("../../cluster/ledger/data/regions.csv");
    let mut lines: Vec<String> =
        compiled.lines().filter(|line| !line.starts_with(&format!("{retired},"))).map(str::to_owned).collect();
    // After the header, in code order.
    let after = 1 + lines[1..].iter().position(|line| line.as_str() > "440199").expect("codes after 440199");
    lines.insert(after, "440199,新设区,county,440100".into());
    lines.join("\n") + "\n"
}

/// A lead about a firm in `region`, meant for that region's bureau (so the task is listed under
/// the bureaus above it).
fn lead_in(title: &str, region: &str) -> Value {
    let mut body = tests::create_body(title);
    body["subject"]["region_code"] = json!(region);
    body["assignee_bureau"] = json!(region);
    body
}

async fn create_status(cluster: &TestCluster, node: u64, body: &Value) -> (u16, Value) {
    let response = cluster
        .http
        .post(cluster.url(node, "/api/v1/tasks"))
        .bearer_auth(COMMAND_TOKEN)
        .json(body)
        .send()
        .await
        .expect("create");
    (response.status().as_u16(), response.json().await.expect("json"))
}

/// A build that reads nothing beyond the peer format, at a member's address: it answers the
/// question of what it reads, and every peer RPC with a Raft error it cannot encode (a
/// different build), telling what it reads in the header every member sends.
struct OlderBuild {
    peer_rpcs: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl OlderBuild {
    async fn serve(addr: &str, node: u64) -> OlderBuild {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind(addr).await.expect("the member's address is free");
        let peer_rpcs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = peer_rpcs.clone();
        let server = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counted = counted.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 8192];
                    let head_end = loop {
                        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                            break end + 4;
                        }
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(read) => request.extend_from_slice(&buffer[..read]),
                        }
                    };
                    let head = String::from_utf8_lossy(&request[..head_end]).to_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length:"))
                        .and_then(|value| value.trim().parse().ok())
                        .unwrap_or(0);
                    while request.len() < head_end + length {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(read) => request.extend_from_slice(&buffer[..read]),
                        }
                    }
                    let answer = if head.starts_with("get /raft/features") {
                        let body = format!(r#"{{"node":{node},"version":"0.1.0","reads":[]}}"#);
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    } else {
                        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        "HTTP/1.1 409 Conflict\r\nx-xietong-reads: \r\ncontent-length: 1\r\nconnection: close\r\n\r\n?"
                            .to_owned()
                    };
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        OlderBuild { peer_rpcs, server }
    }

    fn peer_rpcs(&self) -> usize {
        self.peer_rpcs.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for OlderBuild {
    /// Stops accepting, so the member's own build can bind its address again.
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The district the adopted table retires (荔湾区: no user of the dev users file works for it).
const RETIRED: &str = "440103";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_table_adopted_during_a_rolling_restart_keeps_replicas_equal() {
    let mut cluster = TestCluster::start().await;
    let leader = cluster.wait_for_leader().await;
    let old = cluster.create_task_as(leader, COMMAND_TOKEN, &lead_in("荔湾区的线索", RETIRED)).await;
    let (status, body) = create_status(&cluster, leader, &lead_in("新区的线索", "440199")).await;
    assert_eq!(status, 400, "440199 is no region yet: {body}");

    // While a member runs a build that cannot read adoptions, nothing is proposed: a follower
    // replaced at its address by a build that tells, with its answers to the leader's peer RPCs,
    // that it reads nothing beyond the peer format.
    let down = (1..=3).find(|id| *id != leader).expect("a follower");
    cluster.kill(down);
    let older_build = OlderBuild::serve(cluster.addr(down), down).await;
    wait_until("the leader sends the older build a peer RPC", Duration::from_secs(20), || async {
        let peer_rpcs = older_build.peer_rpcs();
        if peer_rpcs > 0 {
            Ok(())
        } else {
            Err(format!("{peer_rpcs} peer RPCs"))
        }
    })
    .await;
    let (status, body) = post_file(&cluster, leader, "/admin/v1/reference/regions", regions_v1(RETIRED)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("members_not_upgraded")), "{body}");
    drop(older_build);
    cluster.restart(down);
    cluster.wait_for_convergence().await;
    // A table that retires a bureau a user works for is refused (白云区 has an operator).
    let (status, body) = post_file(&cluster, leader, "/admin/v1/reference/regions", regions_v1("440111")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("bureau_in_use")), "{body}");
    let (status, body) = post_file(&cluster, leader, "/admin/v1/reference/regions", regions_v1(RETIRED)).await;
    assert_eq!(status, 201, "adopted: {body}");
    let changes: Vec<&str> = body["changes"].as_array().expect("changes").iter().filter_map(Value::as_str).collect();
    assert!(
        changes.iter().any(|c| c.starts_with("adds 440199"))
            && changes.iter().any(|c| c.starts_with(&format!("retires {RETIRED}")))
    );

    // Node by node, each restarted while the others write; the first stays down long enough
    // that it catches up from a snapshot built under the new table.
    for (restarts, node) in [3, 2, 1].into_iter().enumerate() {
        cluster.kill(node);
        let up: Vec<u64> = cluster.running().collect();
        let stopped_at = cluster.view(up[0]).await.expect("a view").applied_index.unwrap_or(0);
        let writes = if restarts == 0 { 120 } else { 20 };
        for i in 0..writes {
            let region = if i % 2 == 0 { "440199" } else { "440106" };
            let writer = up[i % up.len()];
            tests::create_with_retries(
                &cluster.http,
                &up.iter().map(|id| cluster.addr(*id).to_owned()).collect::<Vec<_>>(),
                writer as usize,
                &format!("rolling-{node}-{i}"),
                &lead_in(&format!("滚动重启 {node}-{i}"), region),
                20,
            )
            .await
            .expect("the group writes while one node is down");
        }
        if restarts == 0 {
            // Every log the node could catch up from is purged past where it stopped: it gets a
            // snapshot.
            for id in &up {
                wait_until("the logs purged past the stopped node", Duration::from_secs(30), || async {
                    let purged = cluster.metric(*id, "xietong_raft_purged_index").await.unwrap_or(0.0);
                    (purged > stopped_at as f64).then_some(()).ok_or(format!("node {id} purged to {purged}"))
                })
                .await;
            }
        }
        cluster.restart(node);
        cluster.wait_for_convergence().await;
    }
    let installed = cluster.metric(3, "xietong_snapshots_installed_total").await.unwrap_or(0.0);
    assert!(installed >= 1.0, "node 3 caught up from a snapshot");

    for node in 1..=3 {
        let reference = reference_on(&cluster, node).await;
        assert_eq!(reference["regions"]["version"], json!(1), "node {node}: {reference}");
        // The old task keeps its code, named by the table that retired it.
        let task = cluster.get_json(node, COMMAND_TOKEN, &format!("/api/v1/tasks/{}", old.id)).await;
        assert_eq!(task["subject"]["region_code"], json!(RETIRED));
        // Tasks meant for the new bureau are listed under its city (from the store's index, whose
        // keys follow the adopted table, and from the changes in memory).
        let listed = cluster.get_json(node, COMMAND_TOKEN, "/api/v1/tasks?bureau=440100&limit=500").await;
        let new_ones = listed["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .filter(|task| task["subject"]["region_code"] == json!("440199"))
            .count();
        assert_eq!(new_ones, 80, "node {node} lists every 440199 task under 440100");
    }
    let (status, body) = create_status(&cluster, 1, &lead_in("荔湾区的新线索", RETIRED)).await;
    assert_eq!(status, 400, "a retired code names no new task: {body}");
    let (status, body) =
        act(&cluster, 2, COMMAND_TOKEN, old.id, "cancel", json!({"note": "行政区划调整后另行登记"})).await;
    assert_eq!(status, 200, "an old task of a retired code is still worked on: {body}");
    let view = cluster.wait_for_convergence().await;
    assert!(view.digest.is_some());
}
