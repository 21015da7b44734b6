//! The demo feed of `xietong up`: realistic traffic through the public API, so every view has
//! something true to show. The provincial command centre registers and dispatches matters of
//! every kind to bureaus in Guangdong; demo bureaus acknowledge, report and complete part of
//! them, some after their deadlines; the centre closes or returns completed work.
//! Deadlines in the demo are short (minutes) so lateness appears while you watch.

use std::collections::BTreeMap;
use std::time::Duration;

use cluster::ledger::Uscc;
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::TaskJson;

const COMMAND_TOKEN: &str = "demo-gd-command-0001";
/// An assignee bureau of the demo and the demo user that acts for it.
struct Assignee {
    code: &'static str,
    area: &'static str,
    city: &'static str,
    token: &'static str,
}

const ASSIGNEES: &[Assignee] = &[
    Assignee { code: "440106", area: "天河区", city: "广州", token: "demo-tianhe-op-0005" },
    Assignee { code: "440104", area: "越秀区", city: "广州", token: "demo-yuexiu-op-0006" },
    Assignee { code: "440111", area: "白云区", city: "广州", token: "demo-baiyun-op-0007" },
    Assignee { code: "440305", area: "南山区", city: "深圳", token: "demo-nanshan-op-0008" },
    Assignee { code: "440304", area: "福田区", city: "深圳", token: "demo-futian-op-0009" },
    Assignee { code: "440100", area: "广州市", city: "广州", token: "demo-gz-command-0003" },
    Assignee { code: "440300", area: "深圳市", city: "深圳", token: "demo-sz-command-0004" },
    Assignee { code: "441900", area: "东莞市", city: "东莞", token: "demo-dongguan-cmd-0010" },
];
/// A new matter every this often.
const NEW_TASK_EVERY: Duration = Duration::from_secs(4);
/// Tasks created at start so the ledger is not empty.
const SEED_TASKS: usize = 24;
/// Pending demo actions kept at most; the feed stops scheduling more beyond this.
const PENDING_ACTIONS_MAX: usize = 2_000;

const TRADE_NAMES: &[&str] =
    &["恒信", "粤兴", "华润达", "金穗", "南粤", "鹏程", "海岸", "荔湾", "云峰", "盛世", "嘉禾", "宏图"];
const INDUSTRIES: &[&str] =
    &["贸易", "食品", "餐饮管理", "电子科技", "医疗器械", "美容服务", "建材", "网络科技", "药房", "家电销售"];
fn streets(city: &str) -> &'static [&'static str] {
    match city {
        "广州" => &["天河路", "中山大道", "环市东路", "白云大道", "北京路"],
        "深圳" => &["深南大道", "科技园南路", "福华路", "滨海大道"],
        _ => &["东莞大道", "鸿福路", "莞城大道"],
    }
}

fn pick<T>(items: &[T]) -> &T {
    &items[fastrand::usize(..items.len())]
}

fn company(city: &str) -> String {
    format!("{city}市{}{}有限公司", pick(TRADE_NAMES), pick(INDUSTRIES))
}

/// A USCC that passes the check character, registered by the given region.
fn uscc(region: &str) -> String {
    const SYMBOLS: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    let mut body = format!("91{region}");
    for _ in 0..9 {
        body.push(SYMBOLS[fastrand::usize(..10)] as char);
    }
    Uscc::with_check_character(&body).expect("digits make a valid body").as_str().to_owned()
}

/// A matter as the centre would register it: kind, severity, source and a Chinese title.
fn matter(area: &str, entity: &str) -> (&'static str, &'static str, &'static str, String) {
    match fastrand::u8(..100) {
        0..=34 => {
            let (what, source) = *pick(&[
                ("涉嫌无照经营", "complaint"),
                ("涉嫌虚假宣传", "media"),
                ("涉嫌销售假冒注册商标商品", "complaint"),
                ("涉嫌价格欺诈", "complaint"),
                ("涉嫌销售过期食品", "complaint"),
                ("网络直播涉嫌虚假广告", "big_data"),
            ]);
            ("lead", *pick(&["normal", "high", "normal"]), source, format!("{entity}{what}"))
        }
        35..=59 => {
            let what = *pick(&[
                "预包装食品抽检不合格风险提示",
                "电动自行车充电器质量安全风险预警",
                "燃气具产品质量风险提示",
                "儿童玩具小零件风险提示",
                "节日市场价格异常波动预警",
            ]);
            ("risk_alert", *pick(&["normal", "high"]), "big_data", format!("{area}{what}"))
        }
        60..=69 => {
            let what = *pick(&[
                "学校食堂疑似食物中毒事件",
                "商场电梯困人事故",
                "网红餐厅食品安全舆情",
                "农贸市场病死猪肉流入事件",
            ]);
            (
                "emergency",
                *pick(&["high", "critical"]),
                *pick(&["public_opinion", "media", "third_party"]),
                format!("{area}{what}"),
            )
        }
        70..=79 => ("assignment", "normal", "assignment", format!("关于核查{entity}投诉举报件的交办")),
        80..=89 => ("referral", "high", "referral", format!("公安机关移送：{entity}涉嫌生产销售伪劣产品")),
        _ => ("inspection", "low", "spot_check", format!("2026年第四季度双随机抽查：{entity}")),
    }
}

/// What the feed will do to a task later.
#[derive(Debug, Clone, Copy)]
enum Step {
    Ack,
    Feedback,
    Complete,
    Review,
}

struct Feed {
    http: reqwest::Client,
    addrs: Vec<String>,
    next_addr: usize,
    pending: BTreeMap<(Instant, u64), (u64, Step)>,
    sequence: u64,
}

impl Feed {
    /// Spreads requests over all nodes, as real consoles connected to different nodes would.
    fn url(&mut self, path: &str) -> String {
        self.next_addr = (self.next_addr + 1) % self.addrs.len();
        format!("http://{}{path}", self.addrs[self.next_addr])
    }

    async fn post(&mut self, token: &str, path: &str, body: Value) -> Option<TaskJson> {
        let url = self.url(path);
        let key = format!("demo-{}-{}", std::process::id(), fastrand::u64(..));
        let response = self
            .http
            .post(url)
            .bearer_auth(token)
            .header(crate::IDEMPOTENCY_HEADER, key)
            .json(&body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            tracing::debug!(status = %response.status(), path, "demo action refused");
            return None;
        }
        response.json().await.ok()
    }

    async fn get(&mut self, token: &str, id: u64) -> Option<TaskJson> {
        let url = self.url(&format!("/api/v1/tasks/{id}"));
        let response = self.http.get(url).bearer_auth(token).timeout(Duration::from_secs(5)).send().await.ok()?;
        response.json().await.ok()
    }

    fn schedule(&mut self, after: Duration, task: u64, step: Step) {
        if self.pending.len() < PENDING_ACTIONS_MAX {
            self.sequence += 1;
            self.pending.insert((Instant::now() + after, self.sequence), (task, step));
        }
    }

    async fn new_task(&mut self) {
        let assignee = pick(ASSIGNEES);
        let (area, code) = (assignee.area, assignee.code);
        let entity = company(assignee.city);
        let (kind, severity, source, title) = matter(area, &entity);
        let created = self
            .post(
                COMMAND_TOKEN,
                "/api/v1/tasks",
                json!({
                    "kind": kind, "severity": severity, "source": source, "title": title,
                    "description": format!("{area}辖区，请按时限签收并核查处置。"),
                    "subject": {"uscc": uscc(code), "name": entity, "region_code": code,
                                "address": format!("{}市{area}{}{}号", assignee.city, pick(streets(assignee.city)), fastrand::u16(1..900))},
                }),
            )
            .await;
        let Some(task) = created else { return };
        // Short demo deadlines so that lateness shows within minutes.
        let now = crate::api::time::now_ms();
        let ack_deadline = crate::api::time::format_ms(now + fastrand::u64(60_000..180_000));
        let complete_deadline = crate::api::time::format_ms(now + fastrand::u64(300_000..900_000));
        let path = format!("/api/v1/tasks/{}/dispatch", task.id);
        let body = json!({"assignee_bureau": code, "version": task.version,
                          "ack_deadline": ack_deadline, "complete_deadline": complete_deadline,
                          "note": "请按时限签收办理"});
        if self.post(COMMAND_TOKEN, &path, body).await.is_some() {
            // About a fifth of the bureaus are slow to sign; a tenth never do.
            match fastrand::u8(..10) {
                0 => {}
                1 | 2 => self.schedule(Duration::from_secs(fastrand::u64(150..400)), task.id, Step::Ack),
                _ => self.schedule(Duration::from_secs(fastrand::u64(5..90)), task.id, Step::Ack),
            }
        }
    }

    async fn perform(&mut self, task_id: u64, step: Step) {
        let Some(task) = self.get(COMMAND_TOKEN, task_id).await else { return };
        let Some(assignee) = task.assignee_bureau.as_deref() else { return };
        let Some(token) = ASSIGNEES.iter().find(|a| a.code == assignee).map(|a| a.token) else { return };
        let path = |action: &str| format!("/api/v1/tasks/{task_id}/{action}");
        match step {
            Step::Ack => {
                if self.post(token, &path("ack"), json!({"version": task.version, "note": "已签收"})).await.is_some()
                {
                    let next = if fastrand::bool() { Step::Feedback } else { Step::Complete };
                    self.schedule(Duration::from_secs(fastrand::u64(20..240)), task_id, next);
                }
            }
            Step::Feedback => {
                let note = *pick(&["已派员现场核查", "已调取相关经营资料", "已约谈当事人，正在调查", "已抽样送检"]);
                if self.post(token, &path("feedback"), json!({"version": task.version, "note": note})).await.is_some() {
                    self.schedule(Duration::from_secs(fastrand::u64(20..240)), task_id, Step::Complete);
                }
            }
            Step::Complete => {
                let outcome = *pick(&["no_violation", "reminded", "interviewed", "warned", "penalized", "transferred"]);
                let body = json!({"version": task.version, "outcome": outcome, "note": "核查完毕，详见办结报告"});
                if self.post(token, &path("complete"), body).await.is_some() {
                    self.schedule(Duration::from_secs(fastrand::u64(10..120)), task_id, Step::Review);
                }
            }
            Step::Review => {
                if fastrand::u8(..10) == 0 {
                    let body = json!({"version": task.version, "note": "证据材料不全，请补充后重新办结"});
                    if self.post(COMMAND_TOKEN, &path("return"), body).await.is_some() {
                        self.schedule(Duration::from_secs(fastrand::u64(30..180)), task_id, Step::Complete);
                    }
                } else {
                    self.post(COMMAND_TOKEN, &path("close"), json!({"version": task.version, "note": "审核通过"}))
                        .await;
                }
            }
        }
    }
}

/// Runs until `shutdown` fires.
pub async fn run(addrs: Vec<String>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut feed = Feed { http: reqwest::Client::new(), addrs, next_addr: 0, pending: BTreeMap::new(), sequence: 0 };
    for _ in 0..SEED_TASKS {
        feed.new_task().await;
    }
    tracing::info!("demo feed running");
    let mut next_new = Instant::now() + NEW_TASK_EVERY;
    loop {
        let next_due = feed.pending.keys().next().map(|(at, _)| *at).unwrap_or(next_new).min(next_new);
        tokio::select! {
            () = tokio::time::sleep_until(next_due) => {}
            () = shutdown.cancelled() => return Ok(()),
        }
        let now = Instant::now();
        if now >= next_new {
            feed.new_task().await;
            next_new = now + NEW_TASK_EVERY;
        }
        while let Some(entry) = feed.pending.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (task, step) = entry.remove();
            feed.perform(task, step).await;
        }
    }
}
