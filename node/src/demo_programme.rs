//! The demo's inspection programme (双随机): on the Guangzhou group, the national item list
//! adopted and one provincial addition made by the province's command centre, a synthetic
//! entity directory of the city, inspectors for three districts, and one campaign for Tianhe planned
//! by Guangzhou's command centre and sealed and drawn by the province's, so the demo's Tianhe
//! operator has inspections to sign for and the public page has a campaign. Skipped when the
//! group is not started, and not repeated when the data directory already holds a campaign.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

const GUANGZHOU: &str = "440100";
const PLANNER_TOKEN: &str = "demo-gz-command-0003";
const SEALER_TOKEN: &str = "demo-gd-command-0001";
/// Entities in the demo directory of Guangzhou (about 2 MB of CSV).
const DEMO_ENTITIES: u64 = 20_000;
const DISTRICTS: &[&str] = &["440106", "440104", "440111"];
const ATTEMPTS_MAX: u32 = 20;
const TIANHE_TOKEN: &str = "demo-tianhe-op-0005";
/// Inspections the demo completes and publishes at once.
const PUBLISHED_AT_START: usize = 5;

async fn post(http: &reqwest::Client, url: String, token: &str, body: reqwest::Body, json: bool) -> Option<Value> {
    let mut request = http.post(url).bearer_auth(token).timeout(Duration::from_secs(30)).body(body);
    request = request.header("content-type", if json { "application/json" } else { "text/csv" });
    let response = request.send().await.ok()?;
    let status = response.status();
    let answer: Value = response.json().await.ok()?;
    if status.is_success() {
        Some(answer)
    } else {
        tracing::debug!(%status, %answer, "demo programme step refused");
        None
    }
}

/// Seeds the programme on the Guangzhou group's nodes (`addrs`); logs and gives up on failure.
pub async fn seed(http: &reqwest::Client, addrs: &[String]) {
    let Some(addr) = addrs.first() else { return };
    let url = |path: &str| format!("http://{addr}{path}");
    let json_body = |value: Value| reqwest::Body::from(value.to_string());
    // The group may still be electing: wait until it answers reads.
    let mut campaigns = None;
    for _ in 0..ATTEMPTS_MAX {
        let response = http.get(url("/api/v1/campaigns")).bearer_auth(PLANNER_TOKEN).send().await;
        if let Some(response) = response.ok().filter(|r| r.status().is_success()) {
            campaigns = response.json::<Value>().await.ok();
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let Some(campaigns) = campaigns else {
        return tracing::warn!("demo programme: the Guangzhou group did not answer");
    };
    if campaigns["campaigns"].as_array().is_some_and(|c| !c.is_empty()) {
        return;
    }
    let region = ledger::BureauCode::parse_compiled(GUANGZHOU).expect("Guangzhou");
    let directory = draw::generate::generate(DEMO_ENTITIES, region, 2026);
    if post(http, url("/api/v1/directories/entities"), PLANNER_TOKEN, directory.into(), false).await.is_none() {
        return tracing::warn!("demo programme: the directory was not imported");
    }
    // The three districts' inspectors, enrolled as one roster file.
    let expertise = ["registration;food", "food;pricing", "pricing;registration"];
    let mut roster = String::from(crate::programme::roster::ROSTER_HEADER);
    for district in DISTRICTS {
        for n in 0..6usize {
            let surname = ["张", "李", "王", "陈", "刘", "黄"][n];
            let station = if n < 2 { String::new() } else { format!("第{}市场监管所", n / 2) };
            let _ = write!(
                roster,
                "\n{district}-{n:02},{surname}执法员{},{district},{station},{},true",
                n + 1,
                expertise[n % 3]
            );
        }
    }
    if post(http, url("/api/v1/inspectors/roster"), PLANNER_TOKEN, roster.into(), false).await.is_none() {
        return tracing::warn!("demo programme: the inspectors were not enrolled");
    }
    // The item list: the national list as shipped, and one of Guangdong's own.
    let adopt = json!({"reason": "市场监管总局随机抽查事项清单"});
    if post(http, url("/api/v1/inspection-item-list/national"), SEALER_TOKEN, json_body(adopt), true).await.is_none() {
        return tracing::warn!("demo programme: the national item list was not adopted");
    }
    let addition = json!({
        "code": "44-GD01", "name": "网络交易平台经营者主体责任落实情况检查",
        "basis": "《中华人民共和国电子商务法》第二十七条", "organiser": "prefecture",
        "industries": ["retail", "services"], "expertise": "registration",
        "check_points": [{"code": "44-GD01-01", "wording": "是否核验、登记平台内经营者身份信息并定期核验更新", "answer": "conformity",
                          "basis": "《中华人民共和国电子商务法》第二十七条"}],
        "reason": "本省网络交易监管重点",
    });
    post(http, url("/api/v1/inspection-items"), SEALER_TOKEN, json_body(addition), true).await;
    // Checks of publicly disclosed information (A01) are the province's: the city plans the rest.
    let plan = json!({
        "name": "2026年天河区市场主体双随机联合抽查",
        "items": ["B01", "F01", "44-GD01"],
        "scope": {"region": "440106"},
        "targeted": false,
        "ratios_percent": {"high": 10, "normal": 5, "low": 3},
        "inspector_mode": {"mode": "office_and_stations"},
        "inspectors_per_inspection": 2,
    });
    let Some(campaign) = post(http, url("/api/v1/campaigns"), PLANNER_TOKEN, json_body(plan), true).await else {
        return tracing::warn!("demo programme: the campaign was not planned");
    };
    let beacon = json!({"beacon": format!("{:08}", fastrand::u32(..100_000_000))});
    let draw_path = format!("/api/v1/campaigns/{}/draw", campaign["id"]);
    let Some(drawn) = post(http, url(&draw_path), SEALER_TOKEN, json_body(beacon), true).await else {
        return tracing::warn!("demo programme: the draw did not complete");
    };
    tracing::info!(inspections = %drawn["draw"]["inspections"], "demo campaign drawn for Tianhe");
    // Tianhe inspects a few at once and Guangzhou publishes them, so the public page shows results.
    let tasks = drawn["draw"]["tasks"].as_array().cloned().unwrap_or_default();
    for (n, task) in tasks.iter().take(PUBLISHED_AT_START).enumerate() {
        let act = |action: &str| url(&format!("/api/v1/tasks/{task}/{action}"));
        let outcome = ["no_problem_found", "corrected", "no_problem_found", "not_found_at_address", "penalized"][n % 5];
        post(http, act("ack"), TIANHE_TOKEN, json_body(json!({})), true).await;
        let result = json!({"outcome": outcome, "note": "现场检查"});
        post(http, act("complete"), TIANHE_TOKEN, json_body(result), true).await;
        post(http, act("publish"), PLANNER_TOKEN, json_body(json!({})), true).await;
    }
}
