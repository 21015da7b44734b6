//! The demo feed of `xietong up`: realistic traffic through the public API, so every view has
//! something true to show. The Guangdong provincial command centre registers and dispatches
//! matters of every kind to bureaus in Guangdong — those in Guangzhou and Shenzhen are worked
//! in those cities' groups, the province's record following them — and registers leads about
//! Zhejiang firms, which go to the Zhejiang group, whose centre dispatches them to Xihu. Demo
//! bureaus acknowledge, report and complete part of their work, some after their deadlines;
//! the dispatching centre closes or returns completed work.
//! Deadlines in the demo are short (minutes) so lateness appears while you watch.

use std::collections::BTreeMap;
use std::time::Duration;

use ledger::Uscc;
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::TaskJson;

const COMMAND_TOKEN: &str = "demo-gd-command-0001";
const PROVINCE: &str = "440000";
const ZHEJIANG: &str = "330000";
const ZJ_COMMAND_TOKEN: &str = "demo-zj-command-0011";
/// One matter in five is a lead about a Zhejiang firm (forwarded to the Zhejiang group).
const ZHEJIANG_SHARE_PERCENT: u8 = 20;
/// How soon to look again for a task still on its way to another group.
const HANDOVER_RECHECK: Duration = Duration::from_secs(3);
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
const XIHU: Assignee = Assignee { code: "330106", area: "西湖区", city: "杭州", token: "demo-xihu-op-0012" };
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
        "杭州" => &["文三路", "天目山路", "西溪路", "教工路"],
        _ => &["东莞大道", "鸿福路", "莞城大道"],
    }
}

pub(crate) fn pick<T>(items: &[T]) -> &T {
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
        // Inspections come only from draws (the demo's campaign draws them).
        80..=94 => ("referral", "high", "referral", format!("公安机关移送：{entity}涉嫌生产销售伪劣产品")),
        _ => ("lead", "low", "spot_check", format!("日常巡查发现：{entity}未按规定公示年度报告")),
    }
}

/// What the feed will do to a task later.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// The receiving centre dispatches a forwarded lead in its own tree.
    DispatchThere,
    Ack,
    Feedback,
    Complete,
    Review,
}

/// A task in one group's ledger.
#[derive(Debug, Clone, Copy)]
struct Place {
    group: &'static str,
    id: u64,
}

struct Feed {
    http: reqwest::Client,
    groups: BTreeMap<&'static str, Vec<String>>,
    next_addr: usize,
    pending: BTreeMap<(Instant, u64), (Place, Step)>,
    sequence: u64,
}

fn command_token(group: &str) -> &'static str {
    if group == ZHEJIANG {
        ZJ_COMMAND_TOKEN
    } else {
        COMMAND_TOKEN
    }
}

/// Short demo deadlines so that lateness shows within minutes.
fn demo_deadlines() -> (String, String) {
    let now = crate::api::time::now_ms();
    (
        crate::api::time::format_ms(now + fastrand::u64(60_000..180_000)),
        crate::api::time::format_ms(now + fastrand::u64(300_000..900_000)),
    )
}

impl Feed {
    /// Spreads requests over a group's nodes, as real consoles connected to different nodes would.
    fn url(&mut self, group: &str, path: &str) -> String {
        let addrs = &self.groups[group];
        self.next_addr = (self.next_addr + 1) % addrs.len();
        format!("http://{}{path}", addrs[self.next_addr])
    }

    async fn post(&mut self, group: &str, token: &str, path: &str, body: Value) -> Option<TaskJson> {
        let url = self.url(group, path);
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

    async fn get(&mut self, place: Place, token: &str) -> Option<TaskJson> {
        let url = self.url(place.group, &format!("/api/v1/tasks/{}", place.id));
        let response = self.http.get(url).bearer_auth(token).timeout(Duration::from_secs(5)).send().await.ok()?;
        response.json().await.ok()
    }

    fn schedule(&mut self, after: Duration, place: Place, step: Step) {
        if self.pending.len() < PENDING_ACTIONS_MAX {
            self.sequence += 1;
            self.pending.insert((Instant::now() + after, self.sequence), (place, step));
        }
    }

    async fn new_task(&mut self) {
        if fastrand::u8(..100) < ZHEJIANG_SHARE_PERCENT {
            return self.new_zhejiang_lead().await;
        }
        let assignee = pick(ASSIGNEES);
        let (area, code) = (assignee.area, assignee.code);
        let entity = company(assignee.city);
        let (kind, severity, source, title) = matter(area, &entity);
        let body = json!({
            "kind": kind, "severity": severity, "source": source, "title": title,
            "description": format!("{area}辖区，请按时限签收并核查处置。"),
            "subject": {"uscc": uscc(code), "name": entity, "region_code": code,
                        "address": format!("{}市{area}{}{}号", assignee.city, pick(streets(assignee.city)), fastrand::u16(1..900))},
        });
        let Some(task) = self.post(PROVINCE, COMMAND_TOKEN, "/api/v1/tasks", body).await else { return };
        let (ack_deadline, complete_deadline) = demo_deadlines();
        let path = format!("/api/v1/tasks/{}/dispatch", task.id);
        let body = json!({"assignee_bureau": code, "version": task.version,
                          "ack_deadline": ack_deadline, "complete_deadline": complete_deadline,
                          "note": "请按时限签收办理"});
        if self.post(PROVINCE, COMMAND_TOKEN, &path, body).await.is_some() {
            self.schedule_ack(Place { group: PROVINCE, id: task.id });
        }
    }

    /// A lead about a Zhejiang firm: registered at the province, it goes to the Zhejiang group.
    async fn new_zhejiang_lead(&mut self) {
        let entity = company(XIHU.city);
        let (what, source) = *pick(&[("网店涉嫌销售假冒商品", "big_data"), ("直播带货涉嫌虚假宣传", "complaint")]);
        let body = json!({
            "kind": "lead", "severity": *pick(&["normal", "high"]), "source": source,
            "title": format!("{entity}{what}（异地线索）"),
            "description": "广东消费者投诉，涉事经营者在浙江省杭州市西湖区，依法移送属地处理。",
            "subject": {"uscc": uscc(XIHU.code), "name": entity, "region_code": XIHU.code,
                        "address": format!("杭州市西湖区{}{}号", pick(streets(XIHU.city)), fastrand::u16(1..900))},
        });
        let Some(task) = self.post(PROVINCE, COMMAND_TOKEN, "/api/v1/tasks", body).await else { return };
        self.schedule(HANDOVER_RECHECK, Place { group: PROVINCE, id: task.id }, Step::DispatchThere);
    }

    /// About a fifth of the bureaus are slow to sign; a tenth never do.
    fn schedule_ack(&mut self, place: Place) {
        match fastrand::u8(..10) {
            0 => {}
            1 | 2 => self.schedule(Duration::from_secs(fastrand::u64(150..400)), place, Step::Ack),
            _ => self.schedule(Duration::from_secs(fastrand::u64(5..90)), place, Step::Ack),
        }
    }

    /// Where the assignee works on a task: in the group it was handed to, once it arrived.
    /// `None` while it is on its way.
    fn workplace(&self, record: &TaskJson, place: Place) -> Option<Place> {
        match &record.handover {
            None => Some(place),
            Some(handover) => {
                let group = *self.groups.keys().find(|g| **g == handover.to_group)?;
                handover.target_task_id.map(|id| Place { group, id })
            }
        }
    }

    async fn perform(&mut self, place: Place, step: Step) {
        let Some(record) = self.get(place, command_token(place.group)).await else { return };
        let path = |place: Place, action: &str| format!("/api/v1/tasks/{}/{action}", place.id);
        if let Step::Review = step {
            let token = command_token(place.group);
            if fastrand::u8(..10) == 0 {
                let body = json!({"version": record.version, "note": "证据材料不全，请补充后重新办结"});
                if self.post(place.group, token, &path(place, "return"), body).await.is_some() {
                    self.schedule(Duration::from_secs(fastrand::u64(30..180)), place, Step::Complete);
                }
            } else {
                let body = json!({"version": record.version, "note": "审核通过"});
                self.post(place.group, token, &path(place, "close"), body).await;
            }
            return;
        }
        // The assignee's steps happen where the task is worked; the review stays with the
        // record of the dispatching centre (`place`).
        let Some(work) = self.workplace(&record, place) else {
            return self.schedule(HANDOVER_RECHECK, place, step);
        };
        if let Step::DispatchThere = step {
            let (ack_deadline, complete_deadline) = demo_deadlines();
            let body = json!({"assignee_bureau": XIHU.code, "ack_deadline": ack_deadline,
                              "complete_deadline": complete_deadline, "note": "请核查异地移送线索"});
            if self.post(work.group, ZJ_COMMAND_TOKEN, &path(work, "dispatch"), body).await.is_some() {
                self.schedule_ack(work);
            }
            return;
        }
        let Some(task) = self.get(work, command_token(work.group)).await else { return };
        let Some(assignee) = task.assignee_bureau.as_deref() else { return };
        let Some(token) = ASSIGNEES.iter().chain([&XIHU]).find(|a| a.code == assignee).map(|a| a.token) else {
            return;
        };
        match step {
            Step::Ack => {
                let body = json!({"version": task.version, "note": "已签收"});
                if self.post(work.group, token, &path(work, "ack"), body).await.is_some() {
                    let next = if fastrand::bool() { Step::Feedback } else { Step::Complete };
                    self.schedule(Duration::from_secs(fastrand::u64(20..240)), place, next);
                }
            }
            Step::Feedback => {
                let note = *pick(&["已派员现场核查", "已调取相关经营资料", "已约谈当事人，正在调查", "已抽样送检"]);
                let body = json!({"version": task.version, "note": note});
                if self.post(work.group, token, &path(work, "feedback"), body).await.is_some() {
                    self.schedule(Duration::from_secs(fastrand::u64(20..240)), place, Step::Complete);
                }
            }
            Step::Complete => {
                let outcome = *pick(&["no_violation", "reminded", "interviewed", "warned", "penalized", "transferred"]);
                let body = json!({"version": task.version, "outcome": outcome, "note": "核查完毕，详见办结报告"});
                if self.post(work.group, token, &path(work, "complete"), body).await.is_some() {
                    // The dispatcher reviews on its own record (the province's, or Zhejiang's
                    // for a forwarded lead), once the completion shows there.
                    let reviewer = if work.group == ZHEJIANG { work } else { place };
                    self.schedule(Duration::from_secs(fastrand::u64(10..120)), reviewer, Step::Review);
                }
            }
            Step::DispatchThere | Step::Review => unreachable!("handled above"),
        }
    }
}

/// Runs until `shutdown` fires.
/// `groups`: each group of the local topology with its members' addresses.
pub async fn run(groups: Vec<(&'static str, Vec<String>)>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let groups: BTreeMap<&'static str, Vec<String>> = groups.into_iter().collect();
    anyhow::ensure!(groups.contains_key(PROVINCE) && groups.contains_key(ZHEJIANG), "the demo needs 440000 and 330000");
    let http = reqwest::Client::new();
    if let Some(guangzhou) = groups.get("440100") {
        crate::demo_programme::seed(&http, guangzhou).await;
    }
    let mut feed = Feed { http, groups, next_addr: 0, pending: BTreeMap::new(), sequence: 0 };
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
            let (place, step) = entry.remove();
            feed.perform(place, step).await;
        }
    }
}
