//! End to end in real headless Chromium: the command page and a lower bureau's page side by
//! side; create and dispatch, acknowledge with a click, see it live; then kill the node the
//! operator's page is connected to and check that its page resumes without loss or doubles.
//! Screenshots of both pages are saved under the target directory.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, Locator};
use tests::browser::ChromeDriver;
use tests::{wait_until, TestCluster, COMMAND_TOKEN, TIANHE_OPERATOR_TOKEN};

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir
}

async fn login(page: &Client, url: &str, token: &str) {
    page.goto(url).await.expect("open the console");
    // Machine tokens sign in under their own fold; people sign in with a login and password.
    page.find(Locator::Css("details.machine-token summary")).await.expect("the fold").click().await.expect("open");
    page.find(Locator::Css("#login-token")).await.expect("token field").send_keys(token).await.expect("type");
    page.find(Locator::Css("#login-button")).await.expect("button").click().await.expect("click");
    wait_for_connection(page, "live").await;
}

async fn connection_state(page: &Client) -> Result<String, String> {
    let status = page.find(Locator::Css("#conn-status")).await.map_err(|e| e.to_string())?;
    let state = status.attr("data-state").await.map_err(|e| e.to_string())?.unwrap_or_default();
    let text = status.text().await.map_err(|e| e.to_string())?;
    Ok(format!("{state}|{text}"))
}

async fn wait_for_connection(page: &Client, state: &str) -> String {
    wait_until(&format!("the console is {state}"), Duration::from_secs(20), || async {
        let seen = connection_state(page).await?;
        if seen.starts_with(&format!("{state}|")) {
            Ok(seen)
        } else {
            Err(seen)
        }
    })
    .await
}

/// The number of board rows for a task, and its displayed state.
async fn rows_for(page: &Client, id: u64) -> Result<(usize, Option<String>), String> {
    let rows =
        page.find_all(Locator::Css(&format!("#task-rows tr[data-task-id='{id}']"))).await.map_err(|e| e.to_string())?;
    let state = match rows.first() {
        Some(row) => row.attr("data-state").await.map_err(|e| e.to_string())?,
        None => None,
    };
    Ok((rows.len(), state))
}

async fn wait_for_row(page: &Client, id: u64, state: &str) -> Duration {
    let started = Instant::now();
    wait_until(&format!("task {id} shown as {state}"), Duration::from_secs(20), || async {
        match rows_for(page, id).await? {
            (1, Some(shown)) if shown == state => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    started.elapsed()
}

/// The element at `css` once the page has it; panics after `timeout`.
async fn wait_for_element(page: &Client, css: &str, timeout: Duration) -> Element {
    wait_until(&format!("{css} on the page"), timeout, || async {
        page.find(Locator::Css(css)).await.map_err(|e| e.to_string())
    })
    .await
}

async fn select(page: &Client, css: &str, value: &str) {
    page.find(Locator::Css(css)).await.expect(css).select_by_value(value).await.expect("select");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_and_command_pages_stay_live_across_a_node_kill() {
    let mut cluster = TestCluster::start().await;
    let driver = ChromeDriver::start();
    let profiles = tempfile::tempdir().expect("profiles");
    let command_page = driver.session(&profiles.path().join("command"), 1600, 900).await;
    let operator_page = driver.session(&profiles.path().join("operator"), 1280, 800).await;

    let result = async {
        login(&command_page, &cluster.url(1, "/"), COMMAND_TOKEN).await;
        login(&operator_page, &cluster.url(2, "/"), TIANHE_OPERATOR_TOKEN).await;

        // The command user creates and dispatches a task through the page's form.
        command_page.find(Locator::Css("#create-open")).await.expect("new task").click().await.expect("click");
        let form = "#create-form";
        select(&command_page, &format!("{form} select[name=kind]"), "emergency").await;
        select(&command_page, &format!("{form} select[name=severity]"), "critical").await;
        select(&command_page, &format!("{form} select[name=source]"), "public_opinion").await;
        for (name, value) in [
            ("title", "天河区学校食堂疑似食物中毒事件"),
            ("subject_name", "广州市某某餐饮管理有限公司"),
            ("uscc", "91350100M000100Y43"),
        ] {
            command_page
                .find(Locator::Css(&format!("{form} [name={name}]")))
                .await
                .expect(name)
                .send_keys(value)
                .await
                .expect("type");
        }
        select(&command_page, &format!("{form} select[name=region_code]"), "440106").await;
        select(&command_page, &format!("{form} select[name=assignee_bureau]"), "440106").await;
        let submitted = Instant::now();
        command_page.find(Locator::Css("#create-submit")).await.expect("submit").click().await.expect("click");

        let id = wait_until("the created task is in the ledger", Duration::from_secs(10), || async {
            let tasks = cluster.all_tasks(1).await;
            tasks
                .iter()
                .find(|t| t.title == "天河区学校食堂疑似食物中毒事件" && t.state == "dispatched")
                .map(|t| t.id)
                .ok_or("not yet".to_owned())
        })
        .await;
        wait_for_row(&operator_page, id, "dispatched").await;
        println!(
            "operator page showed the dispatched task {:?} after the command user submitted it",
            submitted.elapsed()
        );
        // An emergency raises the alarm banner on the assignee's page.
        let alarm = operator_page.find(Locator::Css("#alarm")).await.expect("alarm");
        assert!(alarm.is_displayed().await.expect("visible?"), "the emergency alarm is shown");

        // The operator acknowledges with a click; the command page shows it live.
        operator_page
            .find(Locator::Css(&format!("#task-rows tr[data-task-id='{id}']")))
            .await
            .expect("row")
            .click()
            .await
            .expect("open");
        operator_page
            .find(Locator::Css("#drawer button[data-action='ack']"))
            .await
            .expect("ack button")
            .click()
            .await
            .expect("ack");
        let shown_after = wait_for_row(&command_page, id, "acknowledged").await;
        println!("command page showed the ack {shown_after:?} after the click");
        std::fs::write(artifacts().join("operator-acknowledged.png"), operator_page.screenshot().await.expect("shot"))
            .expect("save");

        // Kill the node the operator's page is connected to; two more tasks arrive meanwhile.
        cluster.kill(2);
        let first = cluster.create_task(1, "断线期间新任务一", Some("440106")).await;
        let second = cluster.create_task(3, "断线期间新任务二", Some("440106")).await;
        let resumed = wait_until("the operator page resumed on another node", Duration::from_secs(30), || async {
            let seen = connection_state(&operator_page).await?;
            if seen.starts_with("live|") && !seen.contains(cluster.addr(2)) {
                Ok(seen)
            } else {
                Err(seen)
            }
        })
        .await;
        println!("operator page after the kill: {resumed}");
        for task in [&first, &second] {
            wait_for_row(&operator_page, task.id, "dispatched").await;
        }
        // Nothing missing or doubled: every task appears exactly once.
        for task_id in [id, first.id, second.id] {
            assert_eq!(rows_for(&operator_page, task_id).await.expect("rows").0, 1, "task {task_id} shown once");
        }
        let all_rows = operator_page.find_all(Locator::Css("#task-rows tr")).await.expect("rows").len();
        assert_eq!(all_rows, 3, "the operator's board holds exactly its three open tasks");

        std::fs::write(
            artifacts().join("operator-after-failover.png"),
            operator_page.screenshot().await.expect("shot"),
        )
        .expect("save");
        command_page
            .find(Locator::Css(&format!("#task-rows tr[data-task-id='{id}']")))
            .await
            .expect("row")
            .click()
            .await
            .expect("open");
        wait_until("the drawer shows the timeline", Duration::from_secs(10), || async {
            let text = command_page
                .find(Locator::Css("#drawer-body"))
                .await
                .map_err(|e| e.to_string())?
                .text()
                .await
                .map_err(|e| e.to_string())?;
            if text.contains("签收") {
                Ok(())
            } else {
                Err(text)
            }
        })
        .await;
        std::fs::write(artifacts().join("command-centre.png"), command_page.screenshot().await.expect("shot"))
            .expect("save");
    }
    .await;
    let _ = command_page.close().await;
    let _ = operator_page.close().await;
    result
}

/// Federation on the pages: the province dispatches to Tianhe, which Guangzhou's group hosts;
/// Tianhe's page (on the Guangzhou group) shows the task, the operator acknowledges with a
/// click, and the province's page shows its record follow, with where the task is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatch_across_groups_is_acknowledged_on_one_page_and_followed_on_the_other() {
    use tests::federation::{FederationOptions, GroupSpec, TestFederation};
    let fed = TestFederation::start(FederationOptions::new(vec![
        GroupSpec::new("440000", 1),
        GroupSpec::new("440100", 1),
        GroupSpec::new("330000", 1),
    ]))
    .await;
    let driver = ChromeDriver::start();
    let profiles = tempfile::tempdir().expect("profiles");
    let province_page = driver.session(&profiles.path().join("province"), 1600, 900).await;
    let tianhe_page = driver.session(&profiles.path().join("tianhe"), 1280, 800).await;
    let result = async {
        login(&province_page, &fed.group("440000").url(1, "/"), COMMAND_TOKEN).await;
        login(&tianhe_page, &fed.group("440100").url(1, "/"), TIANHE_OPERATOR_TOKEN).await;
        let record = fed.group("440000").create_task(1, "省局跨组派发：天河区某商户涉嫌价格欺诈", Some("440106")).await;
        let (_, there) = fed
            .wait_exactly_once("440000", COMMAND_TOKEN, record.id, "440100", tests::federation::GZ_COMMAND_TOKEN)
            .await;

        wait_for_row(&tianhe_page, there.id, "dispatched").await;
        let badge = tianhe_page
            .find(Locator::Css(&format!("#task-rows tr[data-task-id='{}'] .fed", there.id)))
            .await
            .expect("a federation badge")
            .text()
            .await
            .expect("text");
        assert!(badge.contains("广东省"), "the badge names the dispatching group: {badge}");
        tianhe_page
            .find(Locator::Css(&format!("#task-rows tr[data-task-id='{}']", there.id)))
            .await
            .expect("row")
            .click()
            .await
            .expect("open");
        tianhe_page
            .find(Locator::Css("#drawer button[data-action='ack']"))
            .await
            .expect("ack")
            .click()
            .await
            .expect("ack");
        wait_for_row(&province_page, record.id, "acknowledged").await;
        std::fs::write(artifacts().join("federation-tianhe.png"), tianhe_page.screenshot().await.expect("shot"))
            .expect("save");

        province_page
            .find(Locator::Css(&format!("#task-rows tr[data-task-id='{}']", record.id)))
            .await
            .expect("row")
            .click()
            .await
            .expect("open");
        let drawer = wait_until("the record's drawer shows where the task is", Duration::from_secs(10), || async {
            let text = province_page
                .find(Locator::Css("#drawer-body"))
                .await
                .map_err(|e| e.to_string())?
                .text()
                .await
                .map_err(|e| e.to_string())?;
            if text.contains("跨组流转") && text.contains("广州市") {
                Ok(text)
            } else {
                Err(text)
            }
        })
        .await;
        assert!(drawer.contains("签收"), "the mirrored ack is on the record's timeline");
        // The record is worked in Guangzhou: the province's page offers no assignee action.
        let buttons = province_page.find_all(Locator::Css("#drawer button[data-action]")).await.expect("buttons");
        for button in buttons {
            let action = button.attr("data-action").await.expect("attr").unwrap_or_default();
            assert!(["cancel"].contains(&action.as_str()), "only the dispatcher's cancel is offered now, not {action}");
        }
        std::fs::write(artifacts().join("federation-province.png"), province_page.screenshot().await.expect("shot"))
            .expect("save");

        // A lead about a Hangzhou firm goes to Zhejiang, which gives it to Xihu: the province's
        // board names the assignee, a bureau outside its own tree, instead of showing its code.
        let lead = serde_json::json!({
            "kind": "lead", "severity": "high", "title": "杭州某电商涉嫌虚假宣传", "source": "big_data",
            "subject": {"name": "杭州某某电子商务有限公司", "region_code": "330106", "address": "杭州市西湖区"},
        });
        let record = fed.group("440000").create_task_as(1, COMMAND_TOKEN, &lead).await;
        let (_, there) = fed
            .wait_exactly_once("440000", COMMAND_TOKEN, record.id, "330000", tests::federation::ZJ_COMMAND_TOKEN)
            .await;
        let zhejiang = fed.group("330000");
        let dispatched = zhejiang
            .http
            .post(zhejiang.url(1, &format!("/api/v1/tasks/{}/dispatch", there.id)))
            .bearer_auth(tests::federation::ZJ_COMMAND_TOKEN)
            .json(&serde_json::json!({"assignee_bureau": "330106"}))
            .send()
            .await
            .expect("dispatch in Zhejiang");
        assert_eq!(dispatched.status(), 200);
        let row = format!("#task-rows tr[data-task-id='{}']", record.id);
        let shown = wait_for_text(&province_page, &row, "西湖区").await;
        assert!(!shown.contains("330106"), "the assignee is shown by name: {shown}");
    }
    .await;
    let _ = province_page.close().await;
    let _ = tianhe_page.close().await;
    result
}

/// Intake and complaints on the command centre's page: a task fed by three signals shows its
/// count and evidence, a real-name tip-off its clock; who reported appears only when the
/// command user asks for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_and_tip_offs_show_on_the_board_and_the_reporter_only_on_request() {
    use node::api::time::{format_ms, now_ms};
    use serde_json::json;
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..Default::default() }).await;
    let observed = format_ms(now_ms() - 60_000);
    let signals: Vec<serde_json::Value> = (1..=3)
        .map(|i| {
            json!({"source_id": format!("b-{i}"), "kind": "risk_alert", "severity": if i == 3 { "critical" } else { "normal" },
                   "matter": "price", "title": "某电器商行价格异常", "subject": {"name": "广州市某电器商行", "region_code": "440106"},
                   "observed_at": observed, "evidence": [format!("https://monitor.example/b-{i}")]})
        })
        .collect();
    let response = cluster
        .http
        .post(cluster.url(1, "/api/v1/intake"))
        .bearer_auth("demo-source-monitor-0030")
        .json(&json!({"signals": signals}))
        .send()
        .await
        .expect("intake");
    assert_eq!(response.status(), 200);
    let tip_off = json!({"channel": "tip_off", "real_name": true, "reporter": {"name": "王小明", "phone": "13800138000"},
                         "title": "实名举报：某便利店销售过期食品", "subject": {"name": "广州市某便利店", "region_code": "440106"}});
    let tip = cluster
        .http
        .post(cluster.url(1, "/api/v1/complaints"))
        .bearer_auth(COMMAND_TOKEN)
        .json(&tip_off)
        .send()
        .await
        .expect("complaint");
    assert_eq!(tip.status(), 201);
    let tip: serde_json::Value = tip.json().await.expect("json");
    let tip_id = tip["id"].as_u64().expect("id");

    let driver = ChromeDriver::start();
    let profiles = tempfile::tempdir().expect("profiles");
    let page = driver.session(&profiles.path().join("command"), 1600, 900).await;
    let result = async {
        login(&page, &cluster.url(1, "/"), COMMAND_TOKEN).await;
        let board = wait_until("the board shows both badges", Duration::from_secs(10), || async {
            let text = page
                .find(Locator::Css("#task-rows"))
                .await
                .map_err(|e| e.to_string())?
                .text()
                .await
                .map_err(|e| e.to_string())?;
            if text.contains("信号×3") && text.contains("举报") {
                Ok(text)
            } else {
                Err(text)
            }
        })
        .await;
        assert!(board.contains("特急"), "the merged critical signal raised the severity: {board}");
        page.find(Locator::Css(&format!("#task-rows tr[data-task-id='{tip_id}']")))
            .await
            .expect("row")
            .click()
            .await
            .expect("open");
        let drawer = page.find(Locator::Css("#drawer-body")).await.expect("drawer").text().await.expect("text");
        assert!(drawer.contains("受理期限") && !drawer.contains("13800138000"), "{drawer}");
        page.find(Locator::Css("#drawer button[data-action='show_reporter']"))
            .await
            .expect("button")
            .click()
            .await
            .expect("click");
        wait_until("the reporter shown on request", Duration::from_secs(10), || async {
            let text = page
                .find(Locator::Css("#reporter"))
                .await
                .map_err(|e| e.to_string())?
                .text()
                .await
                .map_err(|e| e.to_string())?;
            if text.contains("王小明") {
                Ok(())
            } else {
                Err(text)
            }
        })
        .await;
        std::fs::write(artifacts().join("intake-and-complaints.png"), page.screenshot().await.expect("shot"))
            .expect("save");
    }
    .await;
    let _ = page.close().await;
    result
}

/// The leadership view: a leader's home is the metrics of the province; the figures are those
/// of the ledger; the ranking sorts by a measure and a row drills down into its tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_sees_the_response_metrics_and_drills_down() {
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..Default::default() }).await;
    for i in 0..5 {
        let task =
            cluster.create_task(1, &format!("指标页面 {i}"), Some(if i < 3 { "440106" } else { "440305" })).await;
        if i == 0 {
            let response = cluster
                .http
                .post(cluster.url(1, &format!("/api/v1/tasks/{}/ack", task.id)))
                .bearer_auth(TIANHE_OPERATOR_TOKEN)
                .send()
                .await
                .expect("ack");
            assert_eq!(response.status(), 200);
        }
    }
    let driver = ChromeDriver::start();
    let profiles = tempfile::tempdir().expect("profiles");
    let page = driver.session(&profiles.path().join("leader"), 1600, 900).await;
    let result = async {
        login(&page, &cluster.url(1, "/"), tests::LEADER_TOKEN).await;
        let tiles = wait_until("the metrics tiles", Duration::from_secs(10), || async {
            let text = page
                .find(Locator::Css("#metrics-tiles"))
                .await
                .map_err(|e| e.to_string())?
                .text()
                .await
                .map_err(|e| e.to_string())?;
            if text.contains("接收任务") && text.contains('5') {
                Ok(text)
            } else {
                Err(text)
            }
        })
        .await;
        assert!(tiles.contains("办结率"), "{tiles}");
        let rows = page.find_all(Locator::Css("#metrics-ranking tbody tr")).await.expect("rows");
        assert!(rows.len() >= 2, "child bureaus are ranked");
        let first = rows[0].attr("data-bureau").await.expect("attr").unwrap_or_default();
        assert_eq!(first, "440100", "sorted by received, Guangzhou (3) first");
        assert!(page.find(Locator::Css("#metrics-trend svg rect.bar")).await.is_ok(), "the trend chart is drawn");
        std::fs::write(artifacts().join("leadership-metrics.png"), page.screenshot().await.expect("shot"))
            .expect("save");
        // Sorting by another measure, then drilling down into Shenzhen's tasks.
        page.find(Locator::Css("#metrics-ranking th[data-sort='acknowledged']"))
            .await
            .expect("th")
            .click()
            .await
            .expect("sort");
        page.find(Locator::Css("#metrics-ranking tbody tr[data-bureau='440300']"))
            .await
            .expect("row")
            .click()
            .await
            .expect("drill");
        wait_until("the board shows Shenzhen's tasks only", Duration::from_secs(10), || async {
            let rows = page.find_all(Locator::Css("#task-rows tr")).await.map_err(|e| e.to_string())?;
            if rows.len() == 2 {
                Ok(())
            } else {
                Err(format!("{} rows", rows.len()))
            }
        })
        .await;
    }
    .await;
    let _ = page.close().await;
    result
}

/// Waits until the element at `css` shows `needle` in its text; answers the text.
async fn wait_for_text(page: &Client, css: &str, needle: &str) -> String {
    wait_until(&format!("{css} shows {needle}"), Duration::from_secs(20), || async {
        let text =
            page.find(Locator::Css(css)).await.map_err(|e| e.to_string())?.text().await.map_err(|e| e.to_string())?;
        if text.contains(needle) {
            Ok(text)
        } else {
            Err(text)
        }
    })
    .await
}

/// A drawn inspection on the inspecting bureau's console: its card (campaign, items, team),
/// acknowledged and completed with an inspection result from the page; once the organiser
/// publishes it, the public page (no sign-in) lists it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inspection_result_is_entered_on_the_console_and_shown_on_the_public_page() {
    use serde_json::{json, Value};
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..Default::default() }).await;
    let post = |token: &'static str, path: String, body: Value| {
        let request = cluster.http.post(cluster.url(1, &path)).bearer_auth(token).json(&body);
        async move {
            let response = request.send().await.expect("post");
            assert!(response.status().is_success(), "{path}: {}", response.status());
            response.json::<Value>().await.expect("json")
        }
    };
    tests::import_directory(&cluster, 1, "440106", 400, 5).await;
    for n in 1..=4 {
        let inspector = json!({"id": format!("TH{n:03}"), "name": format!("执法人员{n}"), "bureau": "440106",
                               "expertise": ["registration", "food"], "qualified": true});
        post(COMMAND_TOKEN, "/api/v1/inspectors".into(), inspector).await;
    }
    let plan = json!({"name": "天河区企业公示信息抽查", "items": ["A01"], "scope": {"region": "440106"}, "targeted": false,
                      "ratios_percent": {"high": 10, "normal": 5, "low": 3}, "inspector_mode": {"mode": "whole_bureau"}});
    let campaign = post("demo-gz-command-0003", "/api/v1/campaigns".into(), plan).await;
    let drawn =
        post(COMMAND_TOKEN, format!("/api/v1/campaigns/{}/draw", campaign["id"]), json!({"beacon": "7781"})).await;
    let id = drawn["draw"]["tasks"][0].as_u64().expect("an inspection task");

    let driver = ChromeDriver::start();
    let profiles = tempfile::tempdir().expect("profiles");
    let operator = driver.session(&profiles.path().join("operator"), 1400, 900).await;
    let public = driver.session(&profiles.path().join("public"), 1300, 800).await;
    let result = async {
        login(&operator, &cluster.url(1, "/"), TIANHE_OPERATOR_TOKEN).await;
        wait_for_row(&operator, id, "dispatched").await;
        let row = format!("#task-rows tr[data-task-id='{id}']");
        operator.find(Locator::Css(&row)).await.expect("row").click().await.expect("open");
        let card = wait_for_text(&operator, "#drawer-body", "抽查事项").await;
        assert!(card.contains("天河区企业公示信息抽查") && card.contains("TH00"), "{card}");
        operator
            .find(Locator::Css("#drawer button[data-action='ack']"))
            .await
            .expect("ack")
            .click()
            .await
            .expect("click");
        wait_for_row(&operator, id, "acknowledged").await;
        operator.find(Locator::Css(&row)).await.expect("row").click().await.expect("open");
        operator
            .find(Locator::Css("#drawer button[data-action='complete']"))
            .await
            .expect("complete")
            .click()
            .await
            .expect("click");
        select(&operator, "#action-form select[name=outcome]", "no_problem_found").await;
        operator
            .find(Locator::Css("#action-form button[type=submit]"))
            .await
            .expect("submit")
            .click()
            .await
            .expect("click");
        wait_for_row(&operator, id, "completed").await;
        operator.find(Locator::Css(&row)).await.expect("row").click().await.expect("open");
        wait_for_text(&operator, "#drawer-body", "待公示").await;
        std::fs::write(artifacts().join("inspection-operator.png"), operator.screenshot().await.expect("shot"))
            .expect("save");

        post("demo-gz-command-0003", format!("/api/v1/tasks/{id}/publish"), json!({})).await;
        public.goto(&cluster.url(1, "/public")).await.expect("public page");
        let listed = wait_for_text(&public, "#results tbody", "未发现问题").await;
        let entity = drawn_entity(&cluster, id).await;
        assert!(listed.contains(&entity), "{listed}");
        let campaigns = wait_for_text(&public, "#campaigns tbody", "天河区企业公示信息抽查").await;
        assert!(!campaigns.contains("TH00") && !listed.contains("TH00"), "no inspector on the public page");
        std::fs::write(artifacts().join("public-results.png"), public.screenshot().await.expect("shot")).expect("save");
    }
    .await;
    let _ = operator.close().await;
    let _ = public.close().await;
    result
}

async fn drawn_entity(cluster: &TestCluster, id: u64) -> String {
    let task: serde_json::Value = cluster
        .http
        .get(cluster.url(1, &format!("/api/v1/tasks/{id}")))
        .bearer_auth(COMMAND_TOKEN)
        .send()
        .await
        .expect("task")
        .json()
        .await
        .expect("json");
    task["subject"]["name"].as_str().expect("name").to_owned()
}

/// Presence on the console (needs Redis): the bureau tree marks which lower bureaus have a
/// console open, and a dispatch to a bureau with nobody online warns the dispatcher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tree_shows_who_is_online_and_a_dispatch_to_nobody_warns() {
    let redis = tests::redis_server::RedisServer::start().await;
    let cluster = TestCluster::start_with(tests::ClusterOptions {
        size: 1,
        fanout_redis: Some(redis.url()),
        ..Default::default()
    })
    .await;
    let driver = ChromeDriver::start();
    let profiles = tempfile::tempdir().expect("profiles");
    let operator = driver.session(&profiles.path().join("operator"), 1280, 800).await;
    let command = driver.session(&profiles.path().join("command"), 1500, 900).await;
    let result = async {
        login(&operator, &cluster.url(1, "/"), TIANHE_OPERATOR_TOKEN).await;
        login(&command, &cluster.url(1, "/"), "demo-gz-command-0003").await;
        // Tianhe has a console open, Yuexiu has none.
        for (bureau, state) in [("440106", "on"), ("440104", "off")] {
            let css = format!("#bureau-tree li[data-bureau='{bureau}'] i.presence.{state}");
            wait_for_element(&command, &css, Duration::from_secs(30)).await;
        }
        // A task created and dispatched to Yuexiu: the page warns that nobody is online there.
        command.find(Locator::Css("#create-open")).await.expect("new task").click().await.expect("click");
        let form = "#create-form";
        for (name, value) in [("title", "越秀区某商铺价格违法线索"), ("subject_name", "广州市越秀区某商铺")]
        {
            let field = command.find(Locator::Css(&format!("{form} [name={name}]"))).await.expect(name);
            field.send_keys(value).await.expect("type");
        }
        select(&command, &format!("{form} select[name=region_code]"), "440104").await;
        select(&command, &format!("{form} select[name=assignee_bureau]"), "440104").await;
        command.find(Locator::Css("#create-submit")).await.expect("submit").click().await.expect("click");
        wait_for_text(&command, "#toasts", "当前无人在线").await;
        std::fs::write(artifacts().join("presence-warning.png"), command.screenshot().await.expect("shot"))
            .expect("save");
    }
    .await;
    let _ = operator.close().await;
    let _ = command.close().await;
    result
}

/// The campaign view: Guangzhou's command centre enrols Tianhe's inspectors from a roster file
/// and plans a campaign from the item list on the page; the page does not let the planner draw
/// it; the province's centre (a second person) enters the beacon on its page and the
/// inspections appear on the board.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_is_planned_and_drawn_on_the_console_by_two_people() {
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..Default::default() }).await;
    tests::import_directory(&cluster, 1, "440106", 300, 9).await;
    let files = tempfile::tempdir().expect("files");
    let roster = files.path().join("天河区执法人员名录.csv");
    let mut rows = String::from("id,name,bureau,station,expertise,qualified\n");
    for n in 1..=4 {
        let station = if n > 2 { "石牌所" } else { "" };
        rows.push_str(&format!("TH{n:03},执法人员{n},440106,{station},registration;food;pricing,true\n"));
    }
    std::fs::write(&roster, rows).expect("roster file");
    let driver = ChromeDriver::start();
    let profiles = tempfile::tempdir().expect("profiles");
    let planner = driver.session(&profiles.path().join("planner"), 1500, 900).await;
    let sealer = driver.session(&profiles.path().join("sealer"), 1500, 900).await;
    let result = async {
        login(&planner, &cluster.url(1, "/"), "demo-gz-command-0003").await;
        planner.find(Locator::Css("[data-view=campaigns]")).await.expect("view").click().await.expect("click");
        wait_for_element(&planner, "#roster-form input[type=file]", Duration::from_secs(10))
            .await
            .send_keys(roster.to_str().expect("a UTF-8 path"))
            .await
            .expect("choose the file");
        planner.find(Locator::Css("#roster-submit")).await.expect("upload").click().await.expect("click");
        wait_for_text(&planner, "#inspector-count", "在库 4 人").await;
        let listed = wait_for_text(&planner, "#inspector-list tbody", "TH004").await;
        assert!(listed.contains("石牌所") && listed.contains("局机关"), "stations and the office: {listed}");
        // The item list the group runs on: the shipped one, not adopted, with each item's basis.
        let items = wait_for_text(&planner, "#item-list tbody", "企业公示信息情况检查").await;
        assert!(items.contains("企业信息公示暂行条例") && items.contains("总局清单"), "{items}");
        wait_for_text(&planner, "#item-list-version", "未采用").await;
        // The register: version 1, imported whole as the register's base, nothing pending.
        wait_for_text(&planner, "#register-state", "第 1 版 · 300 户").await;
        let versions = wait_for_text(&planner, "#register-versions", "整体导入").await;
        assert!(versions.contains("含变更至第 0 条"), "{versions}");
        wait_for_text(&planner, "#register-pending", "待冻结变更 0 条").await;
        let form = "#campaign-form";
        wait_for_element(&planner, &format!("{form} input[value=A01]"), Duration::from_secs(10)).await;
        planner
            .find(Locator::Css(&format!("{form} [name=name]")))
            .await
            .expect("name")
            .send_keys("天河区年报公示信息抽查")
            .await
            .expect("type");
        select(&planner, &format!("{form} select[name=region]"), "440106").await;
        planner
            .find(Locator::Css(&format!("{form} input[value=A01]")))
            .await
            .expect("item")
            .click()
            .await
            .expect("tick");
        // Targeted by risk class (all three here, so the draw's population is the same), drawn
        // within the Shipai station only, due in 30 days.
        planner
            .find(Locator::Css(&format!("{form} [name=targeted]")))
            .await
            .expect("targeted")
            .click()
            .await
            .expect("tick");
        for class in ["high", "normal", "low"] {
            let css = format!("{form} input[name=risk_classes][value={class}]");
            planner.find(Locator::Css(&css)).await.expect("a risk class").click().await.expect("tick");
        }
        select(&planner, &format!("{form} select[name=mode]"), "stations").await;
        let station = format!("{form} input[name=stations][value=石牌所]");
        wait_for_element(&planner, &station, Duration::from_secs(10)).await.click().await.expect("tick");
        let due = (time::OffsetDateTime::now_utc() + time::Duration::days(30)).date();
        let due = format!("{:04}-{:02}-{:02}", due.year(), u8::from(due.month()), due.day());
        planner
            .execute(
                "document.querySelector('#campaign-form [name=complete_by]').value = arguments[0];",
                vec![serde_json::json!(due)],
            )
            .await
            .expect("set the date");
        planner.find(Locator::Css("#campaign-submit")).await.expect("submit").click().await.expect("click");
        wait_for_text(&planner, "#campaign-list", "天河区年报公示信息抽查").await;
        let own = wait_for_text(&planner, "#campaign-list tbody", "待第二人录入信标").await;
        assert!(own.contains("待抽取"), "{own}");

        login(&sealer, &cluster.url(1, "/"), COMMAND_TOKEN).await;
        sealer.find(Locator::Css("[data-view=campaigns]")).await.expect("view").click().await.expect("click");
        let beacon = "#campaign-list .draw-form input[name=beacon]";
        wait_for_element(&sealer, beacon, Duration::from_secs(10)).await.send_keys("20261202").await.expect("type");
        sealer
            .find(Locator::Css("#campaign-list .draw-form button"))
            .await
            .expect("draw")
            .click()
            .await
            .expect("click");
        let drawn = wait_for_text(&sealer, "#campaign-list tbody", "已抽取").await;
        std::fs::write(artifacts().join("campaigns.png"), sealer.screenshot().await.expect("shot")).expect("save");
        assert!(drawn.contains("A01"), "the strata are shown: {drawn}");
        // The plan as the form made it, and teams from the Shipai station only.
        let campaigns = cluster.get_json(1, COMMAND_TOKEN, "/api/v1/campaigns").await;
        let campaign = &campaigns["campaigns"][0];
        assert_eq!(campaign["targeted"], true, "{campaign}");
        assert_eq!(campaign["scope"]["risk_classes"].as_array().map(Vec::len), Some(3), "{campaign}");
        assert_eq!(campaign["inspector_mode"], serde_json::json!({"mode": "stations", "stations": ["石牌所"]}));
        assert!(campaign["complete_by"].as_str().is_some_and(|d| d.starts_with(&due)), "{campaign} due {due}");
        let tasks = cluster.get_json(1, COMMAND_TOKEN, "/api/v1/tasks?kind=inspection").await;
        let teams: Vec<Vec<String>> = tasks["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .map(|t| {
                let team = t["inspection"]["inspectors"].as_array().expect("a team");
                let mut ids: Vec<String> = team.iter().map(|id| id.as_str().expect("an id").to_owned()).collect();
                ids.sort();
                ids
            })
            .collect();
        assert!(!teams.is_empty());
        assert!(teams.iter().all(|team| team == &["TH003", "TH004"]), "{teams:?}");
        // The inspections are on the board of the organiser.
        planner.find(Locator::Css("[data-view=board]")).await.expect("board").click().await.expect("click");
        wait_for_text(&planner, "#task-rows", "双随机抽查").await;
    }
    .await;
    let _ = planner.close().await;
    let _ = sealer.close().await;
    result
}

/// The enterprise file on the console: a USCC on the board opens every task about the entity,
/// closed ones that left the board too, and its risk file; a USCC typed into the search box and
/// Enter does the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uscc_on_the_page_or_in_the_search_box_opens_the_enterprise_file() {
    use serde_json::json;
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..Default::default() }).await;
    const USCC: &str = "91350100M000100Y43";
    // A closed task about the entity (off the board) and an open one (on it).
    let closed = cluster.create_task(1, "已办结的线索", Some("440106")).await;
    for (token, action, body) in [
        (TIANHE_OPERATOR_TOKEN, "ack", json!({})),
        (TIANHE_OPERATOR_TOKEN, "complete", json!({"outcome": "no_violation", "note": "未发现问题"})),
        (COMMAND_TOKEN, "close", json!({})),
    ] {
        let (status, answer) = tests::act(&cluster, 1, token, closed.id, action, body).await;
        assert_eq!(status, 200, "{action}: {answer}");
    }
    let open = cluster.create_task(1, "在办的线索", None).await;
    // The leader keeps the entities' risk files from its first seconds: the file shows one.
    wait_until("the risk files are kept", Duration::from_secs(30), || async {
        let cap = cluster.get_json(1, COMMAND_TOKEN, "/api/v1/programme/inspection-cap").await;
        if cap["risk_files_kept"] == true {
            Ok(())
        } else {
            Err(cap.to_string())
        }
    })
    .await;
    let driver = ChromeDriver::start();
    let profiles = tempfile::tempdir().expect("profiles");
    let page = driver.session(&profiles.path().join("command"), 1500, 900).await;
    let result = async {
        login(&page, &cluster.url(1, "/"), COMMAND_TOKEN).await;
        wait_for_row(&page, open.id, "created").await;
        let link = format!("#task-rows tr[data-task-id='{}'] a[data-uscc]", open.id);
        page.find(Locator::Css(&link)).await.expect("the USCC link").click().await.expect("click");
        wait_for_text(&page, "#entity-title", USCC).await;
        // Its risk file, internal: not classed by the credit-risk system, nothing inspected.
        let risk = wait_for_text(&page, "#entity-risk", "风险档案").await;
        assert!(risk.contains("未分类") && risk.contains("本年度被抽查: 0"), "{risk}");
        for id in [open.id, closed.id] {
            wait_for_element(&page, &format!("#drawer-body tr[data-entity-task='{id}']"), Duration::from_secs(10))
                .await;
        }
        // The closed task opens in the drawer from the file.
        let row = format!("#drawer-body tr[data-entity-task='{}']", closed.id);
        page.find(Locator::Css(&row)).await.expect("the closed task").click().await.expect("click");
        wait_for_text(&page, "#drawer-state", "办结").await;
        // From the search box.
        page.find(Locator::Css("#drawer-close")).await.expect("close").click().await.expect("click");
        let search = page.find(Locator::Css("#search")).await.expect("search");
        search.send_keys(&format!("{USCC}\u{E007}")).await.expect("type and Enter");
        wait_for_text(&page, "#entity-title", USCC).await;
        let png = page.screenshot().await?;
        std::fs::write(artifacts().join("enterprise-file.png"), png).expect("saved");
        // Two characters of a title and Enter search every task, the closed one too (the
        // index follows the ledger within a second: the search is typed until it finds it).
        let row = format!("#drawer-body .search-tasks tr[data-entity-task='{}']", closed.id);
        wait_until("the search finds the closed task", Duration::from_secs(20), || async {
            search.clear().await.map_err(|e| e.to_string())?;
            search.send_keys("办结\u{E007}").await.map_err(|e| e.to_string())?;
            wait_for_text(&page, "#search-title", "办结").await;
            page.find(Locator::Css(&row)).await.map(drop).map_err(|e| e.to_string())
        })
        .await;
        page.screenshot().await.map(|png| std::fs::write(artifacts().join("search.png"), png))
    }
    .await;
    let _ = page.close().await;
    result.expect("screenshot").expect("saved");
}

/// A county's stations on the console: Guangzhou's command centre selects 天河区 in the tree,
/// enrols 五山 station from the stations panel, sees it in the tree under its county with the
/// station badge, dispatches a new task to it, and closes it with a reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_county_station_is_enrolled_dispatched_to_and_closed_on_the_console() {
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..Default::default() }).await;
    let driver = ChromeDriver::start();
    let profiles = tempfile::tempdir().expect("profiles");
    let page = driver.session(&profiles.path().join("command"), 1500, 900).await;
    let result = async {
        login(&page, &cluster.url(1, "/"), "demo-gz-command-0003").await;
        assert!(!page
            .find(Locator::Css("#stations-open"))
            .await
            .expect("button")
            .is_displayed()
            .await
            .expect("shown?"));
        page.find(Locator::Css("#bureau-tree li[data-bureau='440106']"))
            .await
            .expect("天河")
            .click()
            .await
            .expect("click");
        let open = wait_for_element(&page, "#stations-open:not([hidden])", Duration::from_secs(10)).await;
        open.click().await.expect("open the stations panel");
        wait_for_text(&page, "#station-rows", "尚无监管所").await;
        let form = "#station-form";
        page.find(Locator::Css(&format!("{form} [name=name]")))
            .await
            .expect("name")
            .send_keys("五山市场监管所")
            .await
            .expect("type");
        page.find(Locator::Css(&format!("{form} [name=areas]")))
            .await
            .expect("areas")
            .send_keys("五山街、长兴街")
            .await
            .expect("type");
        page.find(Locator::Css(&format!("{form} button[type=submit]")))
            .await
            .expect("submit")
            .click()
            .await
            .expect("click");
        let row = wait_for_text(&page, "#station-rows", "440106001").await;
        assert!(row.contains("五山街、长兴街"), "{row}");
        page.find(Locator::Css("#stations-close")).await.expect("close").click().await.expect("click");
        let station =
            wait_for_element(&page, "#bureau-tree li[data-bureau='440106001'] .unit-badge", Duration::from_secs(10))
                .await;
        assert_eq!(station.text().await.expect("badge"), "所");

        // A new task dispatched to the station from the create form.
        page.find(Locator::Css("#create-open")).await.expect("new task").click().await.expect("click");
        for (name, value) in [("title", "五山街某商铺无照经营"), ("subject_name", "广州市天河区某商铺")]
        {
            let field = page.find(Locator::Css(&format!("#create-form [name={name}]"))).await.expect(name);
            field.send_keys(value).await.expect("type");
        }
        let regions = page.find(Locator::Css("#create-form select[name=region_code]")).await.expect("regions");
        assert!(!regions.html(false).await.expect("options").contains("440106001"), "a station is no region");
        select(&page, "#create-form select[name=region_code]", "440106").await;
        select(&page, "#create-form select[name=assignee_bureau]", "440106001").await;
        page.find(Locator::Css("#create-submit")).await.expect("submit").click().await.expect("click");
        let task = wait_until("the task on the board", Duration::from_secs(20), || async {
            let tasks = cluster.all_tasks(1).await;
            tasks
                .into_iter()
                .find(|t| t.assignee_bureau.as_deref() == Some("440106001"))
                .ok_or_else(|| "not yet".to_owned())
        })
        .await;
        wait_for_row(&page, task.id, "dispatched").await;
        let row = page.find(Locator::Css(&format!("#task-rows tr[data-task-id='{}']", task.id))).await.expect("row");
        assert!(row.text().await.expect("text").contains("五山市场监管所"));

        // Closed with a reason asked for in a prompt.
        page.find(Locator::Css("#stations-open")).await.expect("button").click().await.expect("open");
        // Found and clicked together: a live update may draw the rows again in between.
        wait_until("the station's close button clicked", Duration::from_secs(10), || async {
            let css = "#station-rows tr[data-station='440106001'] button[data-st=close]";
            let close = page.find(Locator::Css(css)).await.map_err(|e| e.to_string())?;
            close.click().await.map_err(|e| e.to_string())
        })
        .await;
        page.send_alert_text("机构改革，并入石牌所").await.expect("the reason");
        page.accept_alert().await.expect("confirm");
        wait_for_element(&page, "#station-rows tr.closed[data-station='440106001']", Duration::from_secs(10)).await;
        std::fs::write(artifacts().join("stations.png"), page.screenshot().await.expect("shot")).expect("save");
        let listed = cluster.get_json(1, COMMAND_TOKEN, "/api/v1/stations?bureau=440106&include_closed=true").await;
        assert_eq!(listed["stations"][0]["history"][1]["note"], "机构改革，并入石牌所");
    }
    .await;
    let _ = page.close().await;
    result
}

/// Signs a person in with their login and password.
async fn sign_in(page: &Client, url: &str, login: &str, password: &str) {
    page.goto(url).await.expect("open the console");
    page.find(Locator::Css("#sign-in-login")).await.expect("login field").send_keys(login).await.expect("type");
    page.find(Locator::Css("#sign-in-password")).await.expect("password").send_keys(password).await.expect("type");
    page.find(Locator::Css("#sign-in-button")).await.expect("button").click().await.expect("click");
    wait_for_connection(page, "live").await;
}

/// The issue's walk: a county's command centre dispatches a task to its 五山 station; a handler
/// of the station, signed in with a password on a second page, claims it, reports and completes
/// it; the county's page shows each step live, with the handler's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_county_dispatches_to_a_station_a_member_claims_and_completes_it_live() {
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..Default::default() }).await;
    // The station and its handler, through the API.
    let station = serde_json::json!({"county": "440106", "number": 4, "name": "五山市场监管所"});
    let response =
        cluster.http.post(cluster.url(1, "/api/v1/stations")).bearer_auth(COMMAND_TOKEN).json(&station).send().await;
    assert_eq!(response.expect("station").status(), 201);
    let person = serde_json::json!({"login": "wushan.li", "name": "李明", "unit": "440106004", "roles": ["handler"], "password": "Demo-wushan.li"});
    let response =
        cluster.http.post(cluster.url(1, "/api/v1/people")).bearer_auth(COMMAND_TOKEN).json(&person).send().await;
    assert_eq!(response.expect("person").status(), 201);
    let driver = ChromeDriver::start();
    let profiles = tempfile::tempdir().expect("profiles");
    let county = driver.session(&profiles.path().join("county"), 1500, 900).await;
    let station_page = driver.session(&profiles.path().join("station"), 1280, 800).await;
    let result = async {
        login(&county, &cluster.url(1, "/"), "demo-gz-command-0003").await;
        sign_in(&station_page, &cluster.url(1, "/"), "wushan.li", "Demo-wushan.li").await;
        let label = station_page.find(Locator::Css("#user-label")).await.expect("label").text().await.expect("text");
        assert_eq!(label, "李明");
        // The county creates the task and dispatches it to the station from its page.
        county.find(Locator::Css("#create-open")).await.expect("new task").click().await.expect("click");
        for (name, value) in [("title", "五山街某商铺无照经营"), ("subject_name", "广州市天河区某商铺")]
        {
            let field = county.find(Locator::Css(&format!("#create-form [name={name}]"))).await.expect(name);
            field.send_keys(value).await.expect("type");
        }
        select(&county, "#create-form select[name=region_code]", "440106").await;
        select(&county, "#create-form select[name=assignee_bureau]", "440106004").await;
        county.find(Locator::Css("#create-submit")).await.expect("submit").click().await.expect("click");
        let task = wait_until("the task dispatched", Duration::from_secs(20), || async {
            let tasks = cluster.all_tasks(1).await;
            tasks
                .into_iter()
                .find(|t| t.assignee_bureau.as_deref() == Some("440106004"))
                .ok_or_else(|| "not yet".to_owned())
        })
        .await;
        wait_for_row(&county, task.id, "dispatched").await;
        wait_for_row(&station_page, task.id, "dispatched").await;

        // The handler claims it (the 签收), reports and completes it from the drawer.
        let row = format!("#task-rows tr[data-task-id='{}']", task.id);
        station_page.find(Locator::Css(&row)).await.expect("row").click().await.expect("open");
        wait_for_element(&station_page, "#drawer-body button[data-action=claim]", Duration::from_secs(10))
            .await
            .click()
            .await
            .expect("claim");
        wait_for_row(&county, task.id, "acknowledged").await;
        wait_for_text(&county, &format!("{row} small.handler"), "李明").await;
        wait_for_element(&station_page, "#drawer-body button[data-action=feedback]", Duration::from_secs(10))
            .await
            .click()
            .await
            .expect("feedback");
        station_page
            .find(Locator::Css("#action-form textarea[name=note]"))
            .await
            .expect("note")
            .send_keys("已派员现场核查")
            .await
            .expect("type");
        station_page
            .find(Locator::Css("#action-form button[type=submit]"))
            .await
            .expect("submit")
            .click()
            .await
            .expect("click");
        wait_for_text(&station_page, "#drawer-body ol.timeline", "已派员现场核查").await;
        wait_for_element(&station_page, "#drawer-body button[data-action=complete]", Duration::from_secs(10))
            .await
            .click()
            .await
            .expect("complete");
        station_page
            .find(Locator::Css("#action-form button[type=submit]"))
            .await
            .expect("submit")
            .click()
            .await
            .expect("click");
        wait_for_row(&county, task.id, "completed").await;
        // The county's drawer names the handler on each of their steps.
        county.find(Locator::Css(&row)).await.expect("row").click().await.expect("open");
        let timeline = wait_for_text(&county, "#drawer-body ol.timeline", "认领").await;
        assert!(timeline.contains("李明"), "{timeline}");
        let card =
            county.find(Locator::Css("#drawer-body .lead-handler")).await.expect("lead").text().await.expect("text");
        assert_eq!(card, "李明");
        std::fs::write(artifacts().join("station-handler.png"), station_page.screenshot().await.expect("shot"))
            .expect("save");
        std::fs::write(artifacts().join("county-follows-station.png"), county.screenshot().await.expect("shot"))
            .expect("save");
    }
    .await;
    let _ = county.close().await;
    let _ = station_page.close().await;
    result
}

/// Accounts on the console: Guangzhou's command centre opens 天河区's people, makes a handler
/// of its 五山 station with a password, and disables the account with a reason; the person's
/// sign-in works and then stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_centre_makes_and_disables_an_account_on_the_console() {
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..Default::default() }).await;
    let station = serde_json::json!({"county": "440106", "number": 4, "name": "五山市场监管所"});
    let response =
        cluster.http.post(cluster.url(1, "/api/v1/stations")).bearer_auth(COMMAND_TOKEN).json(&station).send().await;
    assert_eq!(response.expect("station").status(), 201);
    let driver = ChromeDriver::start();
    let profiles = tempfile::tempdir().expect("profiles");
    let page = driver.session(&profiles.path().join("command"), 1500, 900).await;
    let sign_in = |password: &'static str| {
        let request = cluster.http.post(cluster.url(1, "/api/v1/sessions"));
        async move {
            let body = serde_json::json!({"login": "wushan.chen", "password": password});
            request.json(&body).send().await.expect("sign in").status().as_u16()
        }
    };
    let result = async {
        login(&page, &cluster.url(1, "/"), "demo-gz-command-0003").await;
        page.find(Locator::Css("#bureau-tree li[data-bureau='440106']"))
            .await
            .expect("天河")
            .click()
            .await
            .expect("click");
        wait_for_text(&page, "#people-open", "天河区").await;
        page.find(Locator::Css("#people-open")).await.expect("button").click().await.expect("open");
        wait_for_text(&page, "#people-rows", "尚无账号").await;
        let form = "#person-form";
        for (name, value) in [("login", "wushan.chen"), ("name", "陈晓明"), ("password", "a long enough password")] {
            page.find(Locator::Css(&format!("{form} [name={name}]")))
                .await
                .expect(name)
                .send_keys(value)
                .await
                .expect("type");
        }
        select(&page, &format!("{form} select[name=unit]"), "440106004").await;
        page.find(Locator::Css(&format!("{form} input[value=handler]")))
            .await
            .expect("role")
            .click()
            .await
            .expect("tick");
        page.find(Locator::Css(&format!("{form} button[type=submit]")))
            .await
            .expect("submit")
            .click()
            .await
            .expect("click");
        let row = wait_for_text(&page, "#people-rows", "wushan.chen").await;
        assert!(row.contains("陈晓明") && row.contains("承办人"), "{row}");
        assert_eq!(sign_in("a long enough password").await, 201);
        let disable = wait_for_element(&page, "#people-rows button[data-pp=disable]", Duration::from_secs(10)).await;
        disable.click().await.expect("disable");
        page.send_alert_text("调离").await.expect("the reason");
        page.accept_alert().await.expect("confirm");
        wait_for_element(&page, "#people-rows tr.closed", Duration::from_secs(10)).await;
        std::fs::write(artifacts().join("people.png"), page.screenshot().await.expect("shot")).expect("save");
        assert_eq!(sign_in("a long enough password").await, 401);
    }
    .await;
    let _ = page.close().await;
    result
}

/// A small valid PNG (8×8, red): what the console's drawer must draw as an image.
fn png_8x8() -> Vec<u8> {
    (0..PNG_8X8.len()).step_by(2).map(|at| u8::from_str_radix(&PNG_8X8[at..at + 2], 16).expect("hex")).collect()
}

const PNG_8X8: &str = "89504e470d0a1a0a0000000d49484452000000080000000808020000004b6d29dc0000001149444154789c63b860608015310c2d0900da7b4c01eb962a9a0000000049454e44ae426082";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_site_record_shows_in_the_drawer_with_its_photos_and_digest() {
    use serde_json::{json, Value};
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..Default::default() }).await;
    let inspection = crate::people::drawn_inspection(&cluster, 1).await;
    let png = png_8x8();
    // Distinct files of one picture: bytes after the image's end are not drawn.
    let mut attachments = Vec::new();
    for (n, kind, signer) in [
        (1, "photo", ""),
        (2, "inspector_signature", inspection.badges[0].as_str()),
        (3, "inspector_signature", inspection.badges[1].as_str()),
        (4, "representative_signature", "陈老板"),
    ] {
        let mut file = png.clone();
        file.extend_from_slice(format!("file {n}").as_bytes());
        let response = cluster
            .http
            .post(cluster.url(1, "/api/v1/attachments"))
            .bearer_auth(&inspection.member_token)
            .body(file)
            .send()
            .await
            .expect("upload");
        assert_eq!(response.status(), 201);
        let uploaded: Value = response.json().await.expect("json");
        attachments.push(json!({"sha256": uploaded["sha256"], "kind": kind, "signer": signer}));
    }
    let show = format!("/api/v1/tasks/{}", inspection.task);
    let checklist = cluster.get_json(1, &inspection.member_token, &format!("{show}/checklist")).await;
    let record = json!({"record": {"checklist": checklist["checklist"], "notes": "现场检查未发现问题。",
        "representative": {"name": "陈老板", "title": "负责人"}, "attachments": attachments,
        "made_at": "2026-12-06T10:15:00+08:00"}});
    let response = cluster
        .http
        .post(cluster.url(1, &format!("{show}/record_on_site")))
        .bearer_auth(&inspection.member_token)
        .json(&record)
        .send()
        .await
        .expect("record");
    assert_eq!(response.status(), 200);
    let task: Value = response.json().await.expect("task");
    let digest = task["site_records"][0]["digest"].as_str().expect("digest").to_owned();

    let driver = ChromeDriver::start();
    let profiles = tempfile::tempdir().expect("profiles");
    let page = driver.session(&profiles.path().join("command"), 1400, 900).await;
    let result = async {
        login(&page, &cluster.url(1, "/"), COMMAND_TOKEN).await;
        wait_for_row(&page, inspection.task, "acknowledged").await;
        let row = format!("#task-rows tr[data-task-id='{}']", inspection.task);
        page.find(Locator::Css(&row)).await.expect("row").click().await.expect("open");
        let drawer = wait_for_text(&page, "#drawer-body", "现场检查记录").await;
        assert!(drawer.contains(&digest) && drawer.contains("记录完整") && drawer.contains("陈老板"), "{drawer}");
        // Every photo and signature drawn from the file the console fetched with its token.
        wait_until("the record's images drawn", Duration::from_secs(10), || async {
            let drawn = page
                .execute(
                    "return [...document.querySelectorAll('#drawer-body .site-records img')].map((i) => i.naturalWidth);",
                    vec![],
                )
                .await
                .map_err(|e| e.to_string())?;
            match drawn.as_array() {
                Some(widths) if widths.len() == 4 && widths.iter().all(|w| w.as_u64() == Some(8)) => Ok(()),
                _ => Err(drawn.to_string()),
            }
        })
        .await;
        // The printable record is offered, and what its link fetches with the console's token is a PDF.
        let fetched = page
            .execute(
                "const link = document.querySelector('#drawer-body [data-file-link$=\"/document\"]');
                 return taskFileBlob(link.dataset.task, link.dataset.fileLink).then((b) => `${b.type} ${b.size > 1000}`);",
                vec![],
            )
            .await
            .expect("the document fetched");
        assert_eq!(fetched, "application/pdf true");
        // The record is made on the phone: the desk offers no button for it.
        let buttons = page.find_all(Locator::Css("#drawer button[data-action='record_on_site']")).await.expect("find");
        assert!(buttons.is_empty());
        page.screenshot().await.map(|png| std::fs::write(artifacts().join("site-record.png"), png)).ok();
    };
    result.await;
    page.close().await.ok();
}

/// The inspectors' phone page in Chromium's mobile emulation: signed in, the form of a drawn
/// inspection filled with its checklist, a photo and three drawn signatures, submitted while the
/// phone is offline (it waits on the page), sent when the network returns: exactly one record
/// with its files reaches the group, and the inspection is completed from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inspector_records_on_the_phone_offline_and_it_arrives_once_when_back_online() {
    use serde_json::Value;
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..Default::default() }).await;
    let inspection = crate::people::drawn_inspection(&cluster, 1).await;
    let files = tempfile::tempdir().expect("files");
    let photo = files.path().join("photo.png");
    let mut png = png_8x8();
    png.extend_from_slice(b"phone photo");
    std::fs::write(&photo, &png).expect("photo");

    let driver = ChromeDriver::start();
    let profiles = tempfile::tempdir().expect("profiles");
    let phone = driver.phone_session(&profiles.path().join("phone")).await;
    let result = async {
        phone.goto(&cluster.url(1, "/m/")).await.expect("open the phone page");
        phone
            .find(Locator::Css("#login"))
            .await
            .expect("login")
            .send_keys(&inspection.member_login)
            .await
            .expect("type");
        let password = format!("Demo-{}", inspection.member_login);
        phone.find(Locator::Css("#password")).await.expect("password").send_keys(&password).await.expect("type");
        phone.find(Locator::Css("#sign-in-button")).await.expect("button").click().await.expect("sign in");
        let task_button = format!("#task-list [data-task='{}']", inspection.task);
        wait_for_element(&phone, &task_button, Duration::from_secs(20)).await;
        // The page is kept for offline use by its service worker.
        wait_until("the page in the service worker's cache", Duration::from_secs(20), || async {
            let cached = phone
                .execute("return caches.match('/m/app.js').then((r) => r !== undefined);", vec![])
                .await
                .map_err(|e| e.to_string())?;
            if cached == Value::Bool(true) {
                Ok(())
            } else {
                Err(cached.to_string())
            }
        })
        .await;

        // Out of coverage: the form opens from what the page kept, and the record waits.
        driver.set_offline(&phone, true).await;
        phone.find(Locator::Css(&task_button)).await.expect("task").click().await.expect("open");
        wait_for_element(&phone, "#point-list .point", Duration::from_secs(10)).await;
        phone
            .execute(
                "document.querySelectorAll(\"input[value='conforms']\").forEach((i) => { i.checked = true; });",
                vec![],
            )
            .await
            .expect("answer every conformity point");
        phone
            .execute(
                "document.querySelectorAll('#point-list input:not([type=radio]):not([name^=r-])').forEach((i) => { i.value = '3'; });",
                vec![],
            )
            .await
            .expect("answer the number and text points");
        phone.find(Locator::Css("#notes")).await.expect("notes").send_keys("现场检查未发现问题。").await.expect("type");
        phone.find(Locator::Css("#rep-name")).await.expect("name").send_keys("陈老板").await.expect("type");
        phone.find(Locator::Css("#rep-title")).await.expect("title").send_keys("负责人").await.expect("type");
        phone
            .find(Locator::Css("#photos"))
            .await
            .expect("photos")
            .send_keys(&photo.to_string_lossy())
            .await
            .expect("attach");
        wait_for_element(&phone, "#thumbs img", Duration::from_secs(10)).await;
        // A phone camera's photo (3000×2000) is kept shrunk to 2048 on its longer edge, as a JPEG.
        phone
            .execute(
                "const canvas = Object.assign(document.createElement('canvas'), { width: 3000, height: 2000 });
                 const context = canvas.getContext('2d');
                 context.fillStyle = '#3a7'; context.fillRect(0, 0, 3000, 2000);
                 context.fillStyle = '#fff'; context.fillRect(100, 100, 800, 400);
                 canvas.toBlob((blob) => {
                   const files = new DataTransfer();
                   files.items.add(new File([blob], 'camera.png', { type: 'image/png' }));
                   const input = document.querySelector('#photos');
                   input.files = files.files;
                   input.dispatchEvent(new Event('change'));
                 }, 'image/png');",
                vec![],
            )
            .await
            .expect("take a large photo");
        wait_until("the large photo kept shrunk", Duration::from_secs(20), || async {
            let kept = phone
                .execute(
                    "return M.photos.length < 2 ? null : createImageBitmap(M.photos[1]).then((b) => [M.photos[1].type, b.width, b.height]);",
                    vec![],
                )
                .await
                .map_err(|e| e.to_string())?;
            if kept == serde_json::json!(["image/jpeg", 2048, 1365]) { Ok(()) } else { Err(kept.to_string()) }
        })
        .await;
        // A stroke on every signature pad, as a finger draws it (each its own).
        phone
            .execute(
                "document.querySelectorAll('canvas.signature').forEach((c, n) => {
                   const box = c.getBoundingClientRect();
                   const at = (x, y) => ({ clientX: box.left + x, clientY: box.top + y, pointerId: 7, bubbles: true, pointerType: 'touch' });
                   c.dispatchEvent(new PointerEvent('pointerdown', at(20, 20)));
                   c.dispatchEvent(new PointerEvent('pointermove', at(120, 40 + 25 * n)));
                   c.dispatchEvent(new PointerEvent('pointermove', at(200, 30)));
                   c.dispatchEvent(new PointerEvent('pointerup', at(200, 30)));
                 });",
                vec![],
            )
            .await
            .expect("sign");
        select(&phone, "#outcome", "no_problem_found").await;
        phone.find(Locator::Css("#submit-record")).await.expect("submit").click().await.expect("submit");
        wait_for_text(&phone, "#waiting-summary", "1 份记录待发送").await;
        let task = cluster.get_json(1, COMMAND_TOKEN, &format!("/api/v1/tasks/{}", inspection.task)).await;
        assert!(task.get("site_records").is_none(), "nothing left the phone while offline: {task}");

        // Back in coverage: sent once, with its files, and the inspection completed from it.
        driver.set_offline(&phone, false).await;
        let task = wait_until("the record arrives", Duration::from_secs(30), || async {
            let task = cluster.get_json(1, COMMAND_TOKEN, &format!("/api/v1/tasks/{}", inspection.task)).await;
            if task["state"] == "completed" {
                return Ok(task);
            }
            let waiting = phone.execute("return document.querySelector('#waiting').innerText;", vec![]).await;
            Err(format!("{}; the phone says {waiting:?}", task["state"]))
        })
        .await;
        let records = task["site_records"].as_array().expect("records");
        assert_eq!(records.len(), 1, "exactly one record: {task}");
        let kinds: Vec<&str> =
            records[0]["attachments"].as_array().expect("files").iter().filter_map(|f| f["kind"].as_str()).collect();
        assert_eq!(
            kinds,
            ["photo", "photo", "inspector_signature", "inspector_signature", "representative_signature"],
            "{task}"
        );
        assert_eq!(records[0]["complete"], true, "{task}");
        assert!(records[0]["answers"].as_array().is_some_and(|answers| !answers.is_empty()), "{task}");
        // Its printed document draws both photos (JPEG as the phone shrank them) and the three
        // signatures (PNG as drawn), and prints the record's digest.
        let document = format!("/api/v1/tasks/{}/site_records/1/document", inspection.task);
        let response =
            cluster.http.get(cluster.url(1, &document)).bearer_auth(COMMAND_TOKEN).send().await.expect("pdf");
        assert_eq!(response.status(), 200);
        let pdf = response.bytes().await.expect("pdf bytes");
        std::fs::write(artifacts().join("site-record.pdf"), &pdf).ok();
        assert_eq!(tests::pdf_images(&pdf), 5, "two photos and three signatures");
        let digest = records[0]["digest"].as_str().expect("digest");
        assert!(tests::pdf_text(&pdf).contains(digest), "the digest is printed");
        wait_until("the waiting list empties", Duration::from_secs(10), || async {
            let hidden = phone
                .execute("return document.querySelector('#waiting').hidden;", vec![])
                .await
                .map_err(|e| e.to_string())?;
            if hidden == Value::Bool(true) {
                Ok(())
            } else {
                Err(hidden.to_string())
            }
        })
        .await;
        phone.screenshot().await.map(|png| std::fs::write(artifacts().join("phone.png"), png)).ok();
    };
    result.await;
    phone.close().await.ok();
}

/// 批量公示: the organiser ticks every completed inspection the board shows and publishes them in
/// one request; the bar reports each one done, and every result is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaigns_results_are_published_in_bulk_from_a_selection_on_the_console() {
    use serde_json::{json, Value};
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..Default::default() }).await;
    let post = |token: &'static str, path: String, body: Value| {
        let request = cluster.http.post(cluster.url(1, &path)).bearer_auth(token).json(&body);
        async move {
            let response = request.send().await.expect("post");
            assert!(response.status().is_success(), "{path}: {}", response.status());
            response.json::<Value>().await.expect("json")
        }
    };
    tests::import_directory(&cluster, 1, "440106", 600, 9).await;
    for n in 1..=4 {
        let inspector = json!({"id": format!("TH{n:03}"), "name": format!("执法人员{n}"), "bureau": "440106",
                               "expertise": ["registration", "food"], "qualified": true});
        post(COMMAND_TOKEN, "/api/v1/inspectors".into(), inspector).await;
    }
    let plan = json!({"name": "天河区企业公示信息抽查", "items": ["A01"], "scope": {"region": "440106"}, "targeted": false,
                      "ratios_percent": {"high": 5, "normal": 5, "low": 5}, "inspector_mode": {"mode": "whole_bureau"}});
    let campaign = post("demo-gz-command-0003", "/api/v1/campaigns".into(), plan).await;
    let drawn = post(COMMAND_TOKEN, format!("/api/v1/campaigns/{}/draw", campaign["id"]), json!({"beacon": "5"})).await;
    let tasks: Vec<u64> = drawn["draw"]["tasks"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect();
    assert!(tasks.len() >= 20, "{drawn}");
    post(TIANHE_OPERATOR_TOKEN, "/api/v1/tasks/bulk/ack".into(), json!({"tasks": tasks})).await;
    let completed = post(
        TIANHE_OPERATOR_TOKEN,
        "/api/v1/tasks/bulk/complete".into(),
        json!({"tasks": tasks, "outcome": "no_problem_found"}),
    )
    .await;
    assert_eq!(completed["done"].as_u64(), Some(tasks.len() as u64));

    let driver = ChromeDriver::start();
    let profiles = tempfile::tempdir().expect("profiles");
    let organiser = driver.session(&profiles.path().join("organiser"), 1500, 900).await;
    let result = async {
        login(&organiser, &cluster.url(1, "/"), "demo-gz-command-0003").await;
        select(&organiser, "#kind-filter", "inspection").await;
        for id in &tasks {
            wait_for_row(&organiser, *id, "completed").await;
        }
        organiser.find(Locator::Css("#pick-all")).await.expect("pick all").click().await.expect("tick");
        wait_for_text(&organiser, "#bulk-count", &format!("已选 {} 项", tasks.len())).await;
        wait_for_element(&organiser, "#bulk-action option[value=publish]", Duration::from_secs(10)).await;
        select(&organiser, "#bulk-action", "publish").await;
        organiser.find(Locator::Css("#bulk-run")).await.expect("run").click().await.expect("click");
        wait_for_text(&organiser, "#bulk-result", &format!("完成 {} 项，未能办理 0 项", tasks.len())).await;
        std::fs::write(artifacts().join("bulk-publication.png"), organiser.screenshot().await.expect("shot"))
            .expect("save");
        for id in &tasks {
            let task = cluster.get_json(1, COMMAND_TOKEN, &format!("/api/v1/tasks/{id}")).await;
            assert_eq!(task["inspection"]["publication"], "published", "{task}");
        }
    }
    .await;
    let _ = organiser.close().await;
    result
}

/// 年度随机抽查工作计划 on the console: the province takes up a city's proposal, adds a batch of
/// its own through the form and publishes the plan; the public page shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_province_assembles_and_publishes_its_annual_plan_on_the_console() {
    use serde_json::{json, Value};
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..Default::default() }).await;
    let proposal = json!({"name": "广州市餐饮单位抽查", "items": ["B01"], "scope": "440100", "entities": 3000,
                          "starts": "2027-03-01", "ends": "2027-06-30", "reason": "本市重点"});
    let response = cluster
        .http
        .post(cluster.url(1, "/api/v1/annual-plans/2027/proposals"))
        .bearer_auth("demo-gz-command-0003")
        .json(&proposal)
        .send()
        .await
        .expect("propose");
    assert_eq!(response.status(), 201);

    let driver = ChromeDriver::start();
    let profiles = tempfile::tempdir().expect("profiles");
    let province = driver.session(&profiles.path().join("province"), 1500, 1000).await;
    let public = driver.session(&profiles.path().join("public"), 1300, 900).await;
    let result = async {
        login(&province, &cluster.url(1, "/"), COMMAND_TOKEN).await;
        province.find(Locator::Css("[data-view=campaigns]")).await.expect("view").click().await.expect("click");
        let year = wait_for_element(&province, "#plan-year", Duration::from_secs(10)).await;
        province
            .execute(
                "const y = document.getElementById('plan-year'); y.value = 2027; y.dispatchEvent(new Event('change'));",
                vec![],
            )
            .await
            .expect("the year");
        drop(year);
        wait_for_text(&province, "#plan-proposals tbody", "广州市餐饮单位抽查").await;
        province
            .find(Locator::Css(".take-proposal[data-proposal='1']"))
            .await
            .expect("take")
            .click()
            .await
            .expect("click");
        wait_for_text(&province, "#plan-batches tbody", "广州市餐饮单位抽查").await;
        wait_for_text(&province, "#plan-proposals tbody", "已采纳为第 1 批").await;
        // A batch of its own through the form.
        province.find(Locator::Css("#plan-new summary")).await.expect("fold").click().await.expect("open");
        let fill = r#"
            const f = document.getElementById('plan-form');
            f.elements.name.value = '全省价格行为抽查';
            f.elements.items.value = 'F01';
            f.elements.scope.value = '440000';
            f.elements.entities.value = '90000';
            f.elements.starts.value = '2027-05-01';
            f.elements.ends.value = '2027-10-31';"#;
        province.execute(fill, vec![]).await.expect("fill the form");
        province.find(Locator::Css("#plan-submit")).await.expect("submit").click().await.expect("click");
        wait_for_text(&province, "#plan-batches tbody", "全省价格行为抽查").await;
        province.find(Locator::Css("#plan-publish")).await.expect("publish").click().await.expect("click");
        wait_for_text(&province, "#plan-state", "已发布").await;
        std::fs::write(artifacts().join("annual-plan.png"), province.screenshot().await.expect("shot")).expect("save");

        public.goto(&cluster.url(1, "/public")).await.expect("public page");
        let shown = wait_for_text(&public, "#plans tbody", "全省价格行为抽查").await;
        assert!(shown.contains("广州市餐饮单位抽查") && shown.contains("90000"), "{shown}");
        assert!(!shown.contains("本市重点"), "no internal notes in public: {shown}");
        let plan: Value = cluster.get_json(1, COMMAND_TOKEN, "/api/v1/annual-plans/2027").await;
        assert_eq!(plan["batches"].as_array().map(Vec::len), Some(2), "{plan}");
    }
    .await;
    let _ = province.close().await;
    let _ = public.close().await;
    result
}

/// 上报 and 下达 across groups on the console: Guangzhou, running its own group, proposes a
/// batch through the plan's form there (relayed to the province's group); once the province
/// takes it up and publishes, Guangzhou's console shows the plan as handed down with the batch,
/// and the province's shows the plan went down to Guangzhou.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_city_group_proposes_and_receives_the_province_plan_on_the_console() {
    use serde_json::{json, Value};
    use tests::federation::{FederationOptions, GroupSpec, TestFederation, GZ_COMMAND_TOKEN};
    let federation =
        TestFederation::start(FederationOptions::new(vec![GroupSpec::new("440000", 1), GroupSpec::new("440100", 1)]))
            .await;
    let (guangdong, guangzhou) = (federation.group("440000"), federation.group("440100"));
    let driver = ChromeDriver::start();
    let profiles = tempfile::tempdir().expect("profiles");
    let city = driver.session(&profiles.path().join("city"), 1500, 1000).await;
    let province = driver.session(&profiles.path().join("province"), 1500, 1000).await;
    let open_plan = |page: &Client| {
        let page = page.clone();
        async move {
            page.find(Locator::Css("[data-view=campaigns]")).await.expect("view").click().await.expect("click");
            wait_for_element(&page, "#plan-year", Duration::from_secs(10)).await;
            let year =
                "const y = document.getElementById('plan-year'); y.value = 2027; y.dispatchEvent(new Event('change'));";
            page.execute(year, vec![]).await.expect("the year");
        }
    };
    let result = async {
        login(&city, &guangzhou.url(1, "/"), GZ_COMMAND_TOKEN).await;
        open_plan(&city).await;
        city.find(Locator::Css("#plan-new summary")).await.expect("fold").click().await.expect("open");
        let fill = r#"
            const f = document.getElementById('plan-form');
            f.elements.name.value = '广州市餐饮单位抽查';
            f.elements.items.value = 'B01';
            f.elements.scope.value = '440100';
            f.elements.entities.value = '3000';
            f.elements.starts.value = '2027-03-01';
            f.elements.ends.value = '2027-06-30';
            f.elements.reason.value = '本市重点';"#;
        city.execute(fill, vec![]).await.expect("fill the form");
        city.find(Locator::Css("#plan-submit")).await.expect("submit").click().await.expect("click");
        wait_for_text(&city, "#toasts", "已上报").await;

        // The province takes it up and publishes (through its API), and the plan goes down.
        let plan: Value = guangdong.get_json(1, COMMAND_TOKEN, "/api/v1/annual-plans/2027").await;
        assert_eq!(plan["proposals"][0]["bureau"], "440100", "{plan}");
        let taken = json!({"name": "广州市餐饮单位抽查", "items": ["B01"], "scope": "440100", "entities": 3000,
                           "starts": "2027-03-01", "ends": "2027-06-30", "from_proposal": 1});
        let (status, answer) =
            tests::request_json(guangdong, 1, COMMAND_TOKEN, "POST", "/api/v1/annual-plans/2027/batches", Some(taken))
                .await;
        assert_eq!(status, 201, "{answer}");
        let (status, answer) = tests::request_json(
            guangdong,
            1,
            COMMAND_TOKEN,
            "POST",
            "/api/v1/annual-plans/2027/publish",
            Some(json!({})),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        let state = wait_until("Guangzhou's console shows the plan handed down", Duration::from_secs(40), || async {
            open_plan(&city).await;
            let text = city
                .find(Locator::Css("#plan-state"))
                .await
                .map_err(|e| e.to_string())?
                .text()
                .await
                .map_err(|e| e.to_string())?;
            if text.contains("下达") {
                Ok(text)
            } else {
                Err(text)
            }
        })
        .await;
        assert!(state.contains("已发布"), "{state}");
        wait_for_text(&city, "#plan-batches tbody", "广州市餐饮单位抽查").await;
        std::fs::write(artifacts().join("annual-plan-city-group.png"), city.screenshot().await.expect("shot"))
            .expect("save");

        login(&province, &guangdong.url(1, "/"), COMMAND_TOKEN).await;
        open_plan(&province).await;
        wait_for_text(&province, "#plan-state", "已下达").await;
    }
    .await;
    let _ = city.close().await;
    let _ = province.close().await;
    result
}

/// 部门联合抽查 on the console: the tax department's inspector on a joint inspection's team,
/// signed in with their own account, sees the joint card waiting for their department's part,
/// enters it from the card, and the card shows it entered; the bureau's page shows it live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_department_enters_its_part_of_a_joint_inspection_on_the_console() {
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..Default::default() }).await;
    let joint = crate::joint_inspections::drawn_joint_inspection(&cluster, 1).await;
    let (login_name, password) = crate::joint_inspections::credentials_of(&joint.on_team);
    let driver = ChromeDriver::start();
    let profiles = tempfile::tempdir().expect("profiles");
    let department = driver.session(&profiles.path().join("department"), 1400, 900).await;
    let result = async {
        sign_in(&department, &cluster.url(1, "/"), &login_name, &password).await;
        // Their board holds their team's joint inspections, and nothing of the bureau's own.
        wait_for_row(&department, joint.task, "dispatched").await;
        let row = format!("#task-rows tr[data-task-id='{}']", joint.task);
        department.find(Locator::Css(&row)).await.expect("row").click().await.expect("open");
        let rows = department.find_all(Locator::Css("#task-rows tr[data-task-id]")).await.expect("rows").len();
        assert!(rows < joint.drawn, "only the team's {rows} of {} inspections", joint.drawn);
        let card = wait_for_text(&department, "#joint-card", "待部门录入").await;
        assert!(card.contains("国家税务总局广州市天河区税务局"), "the department by its name: {card}");
        select(&department, "#joint-form select[name=outcome]", "corrected").await;
        department
            .find(Locator::Css("#joint-form textarea[name=summary]"))
            .await
            .expect("summary")
            .send_keys("发票开具不规范，已责令改正")
            .await
            .expect("type");
        department
            .find(Locator::Css("#joint-form button[type=submit]"))
            .await
            .expect("submit")
            .click()
            .await
            .expect("click");
        let card = wait_for_text(&department, "#joint-card", "发票开具不规范").await;
        assert!(!card.contains("待部门录入") && card.contains(&joint.on_team), "{card}");
        std::fs::write(artifacts().join("joint-inspection-part.png"), department.screenshot().await.expect("shot"))
            .expect("save");
        let task = cluster.get_json(1, COMMAND_TOKEN, &format!("/api/v1/tasks/{}", joint.task)).await;
        assert_eq!(task["inspection"]["department_parts"][0]["outcome"], "corrected", "{task}");
    }
    .await;
    let _ = department.close().await;
    result
}
