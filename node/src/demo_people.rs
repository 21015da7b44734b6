//! The demo's stations and people: on the Guangzhou group, four market-supervision stations per
//! district (`config/dev/stations.csv`) and their people (`config/dev/people.csv`: a dispatcher
//! and an accounts clerk per district, a head per station, two handlers per station of Tianhe
//! and Yuexiu), every password `Demo-<login>` (a demo only). Then work flows to them: Guangzhou's
//! centre dispatches matters to a station, or to Tianhe whose dispatcher hands them down; the
//! station's handlers sign in, claim, report and complete; the centre reviews.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const STATIONS_CSV: &str = include_str!("../../config/dev/stations.csv");
const PEOPLE_CSV: &str = include_str!("../../config/dev/people.csv");
const CENTRE_TOKEN: &str = "demo-gz-command-0003";
/// The stations with handlers, where the demo's matters go.
const WORKING_COUNTIES: [&str; 2] = ["440106", "440104"];
/// Tianhe's dispatcher, who hands matters down to its stations.
const TIANHE_DISPATCHER: &str = "tianhe.dispatch";
const TIANHE: &str = "440106";
/// A new matter for the stations every this often.
const NEW_MATTER_EVERY: Duration = Duration::from_secs(9);
const ATTEMPTS_MAX: u32 = 30;
/// Steps scheduled at most.
const PENDING_MAX: usize = 1_000;

/// The demo password of a login.
pub fn demo_password(login: &str) -> String {
    format!("Demo-{login}")
}

/// A few of the demo's people, for `xietong up` to print: (login, name, unit).
pub fn sample_people() -> Vec<(String, String, String)> {
    let wanted = ["tianhe.dispatch", "tianhe4.head", "tianhe4.a", "tianhe4.b", "tianhe.accounts"];
    people().into_iter().filter(|p| wanted.contains(&p.login.as_str())).map(|p| (p.login, p.name, p.unit)).collect()
}

/// How many people the demo enrols.
pub fn people_count() -> usize {
    people().len()
}

struct DemoPerson {
    login: String,
    name: String,
    unit: String,
    roles: Vec<String>,
}

fn people() -> Vec<DemoPerson> {
    PEOPLE_CSV
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split(',');
            let (login, name, unit, roles) = (fields.next()?, fields.next()?, fields.next()?, fields.next()?);
            Some(DemoPerson {
                login: login.into(),
                name: name.into(),
                unit: unit.into(),
                roles: roles.split('|').map(str::to_owned).collect(),
            })
        })
        .collect()
}

/// (code, name, county, areas) of each demo station.
fn stations() -> Vec<(String, String, String, Vec<String>)> {
    STATIONS_CSV
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split(',');
            let (code, name, county, areas) = (fields.next()?, fields.next()?, fields.next()?, fields.next()?);
            Some((code.into(), name.into(), county.into(), areas.split('|').map(str::to_owned).collect()))
        })
        .collect()
}

struct Feed {
    http: reqwest::Client,
    addrs: Vec<String>,
    next_addr: usize,
    sessions: HashMap<String, String>,
    pending: BTreeMap<(Instant, u64), Step>,
    sequence: u64,
}

#[derive(Clone)]
enum Step {
    HandDown { task: u64, station: String },
    Claim { task: u64, login: String },
    Feedback { task: u64, login: String },
    Complete { task: u64, login: String },
    Review { task: u64 },
}

impl Feed {
    fn url(&mut self, path: &str) -> String {
        self.next_addr = (self.next_addr + 1) % self.addrs.len();
        format!("http://{}{path}", self.addrs[self.next_addr])
    }

    async fn post(&mut self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let url = self.url(path);
        let response = self.http.post(url).bearer_auth(token).json(&body).timeout(Duration::from_secs(30)).send().await;
        match response {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    /// A session of `login`, signing in when there is none (or it ended).
    async fn session(&mut self, login: &str) -> Option<String> {
        if let Some(token) = self.sessions.get(login) {
            return Some(token.clone());
        }
        let body = json!({"login": login, "password": demo_password(login)});
        let (status, answer) = self.post("", "/api/v1/sessions", body).await;
        let token = answer["token"].as_str().filter(|_| status == 201)?.to_owned();
        self.sessions.insert(login.to_owned(), token.clone());
        Some(token)
    }

    /// Acts as person `login`; a refused session is signed in again next time.
    async fn act_as(&mut self, login: &str, path: &str, body: Value) -> bool {
        let Some(token) = self.session(login).await else { return false };
        let (status, _) = self.post(&token, path, body).await;
        if status == 401 {
            self.sessions.remove(login);
        }
        status == 200
    }

    fn schedule(&mut self, after: Duration, step: Step) {
        if self.pending.len() < PENDING_MAX {
            self.sequence += 1;
            self.pending.insert((Instant::now() + after, self.sequence), step);
        }
    }

    /// A matter for a station: dispatched to it, or to Tianhe which hands it down.
    async fn new_matter(&mut self) {
        let county = WORKING_COUNTIES[fastrand::usize(..WORKING_COUNTIES.len())];
        let number = fastrand::u32(1..=4);
        let station = format!("{county}{number:03}");
        let area = if county == TIANHE { "天河区" } else { "越秀区" };
        let (title, kind) = *crate::demo::pick(&[
            ("辖区商铺涉嫌无照经营", "lead"),
            ("农贸市场价格公示不规范", "assignment"),
            ("餐饮店后厨卫生投诉", "lead"),
            ("药店处方药销售登记不全", "risk_alert"),
        ]);
        let body = json!({
            "kind": kind, "severity": "normal", "source": "complaint", "title": format!("{area}{title}"),
            "description": "请承办所认领并按时限办理。",
            "subject": {"name": format!("{area}某商户{}", fastrand::u16(1..999)), "region_code": county},
        });
        let (status, task) = self.post(CENTRE_TOKEN, "/api/v1/tasks", body).await;
        let Some(id) = task["id"].as_u64().filter(|_| status == 201) else { return };
        let hand_down = county == TIANHE && fastrand::u8(..3) == 0;
        let assignee = if hand_down { county.to_owned() } else { station.clone() };
        let path = format!("/api/v1/tasks/{id}/dispatch");
        let (status, _) = self.post(CENTRE_TOKEN, &path, json!({"assignee_bureau": assignee, "version": 1})).await;
        if status != 200 {
            return;
        }
        if hand_down {
            self.schedule(Duration::from_secs(fastrand::u64(5..30)), Step::HandDown { task: id, station });
        } else {
            let login = format!("{}{number}.{}", short(county), if fastrand::bool() { "a" } else { "b" });
            self.schedule(Duration::from_secs(fastrand::u64(5..60)), Step::Claim { task: id, login });
        }
    }

    async fn perform(&mut self, step: Step) {
        match step {
            Step::HandDown { task, station } => {
                let path = format!("/api/v1/tasks/{task}/hand_down");
                if self.act_as(TIANHE_DISPATCHER, &path, json!({"unit": station})).await {
                    let number = &station[6..].trim_start_matches('0').to_owned();
                    let login = format!("{}{number}.a", short(TIANHE));
                    self.schedule(Duration::from_secs(fastrand::u64(5..60)), Step::Claim { task, login });
                }
            }
            Step::Claim { task, login } => {
                if self.act_as(&login, &format!("/api/v1/tasks/{task}/claim"), json!({})).await {
                    let next =
                        if fastrand::bool() { Step::Feedback { task, login } } else { Step::Complete { task, login } };
                    self.schedule(Duration::from_secs(fastrand::u64(20..150)), next);
                }
            }
            Step::Feedback { task, login } => {
                let note = *crate::demo::pick(&["已到现场核查", "已约谈经营者", "已调取经营台账"]);
                if self.act_as(&login, &format!("/api/v1/tasks/{task}/feedback"), json!({"note": note})).await {
                    self.schedule(Duration::from_secs(fastrand::u64(20..150)), Step::Complete { task, login });
                }
            }
            Step::Complete { task, login } => {
                let outcome = *crate::demo::pick(&["no_violation", "reminded", "interviewed", "warned"]);
                let body = json!({"outcome": outcome, "note": "核查完毕"});
                if self.act_as(&login, &format!("/api/v1/tasks/{task}/complete"), body).await {
                    self.schedule(Duration::from_secs(fastrand::u64(10..90)), Step::Review { task });
                }
            }
            Step::Review { task } => {
                self.post(CENTRE_TOKEN, &format!("/api/v1/tasks/{task}/close"), json!({"note": "审核通过"})).await;
            }
        }
    }
}

fn short(county: &str) -> &'static str {
    if county == TIANHE {
        "tianhe"
    } else {
        "yuexiu"
    }
}

/// Enrols the demo's stations and people on the Guangzhou group (`addrs`), then, with `feed`,
/// feeds work to the stations until `shutdown`. What exists already (a restarted demo) counts
/// as done.
pub async fn run(http: reqwest::Client, addrs: Vec<String>, shutdown: CancellationToken, feed_work: bool) {
    if addrs.is_empty() {
        return;
    }
    let mut feed = Feed { http, addrs, next_addr: 0, sessions: HashMap::new(), pending: BTreeMap::new(), sequence: 0 };
    let mut enrolled = 0;
    for (code, name, county, areas) in stations() {
        let number: u32 = code[6..].parse().unwrap_or(0);
        let body = json!({"county": county, "number": number, "name": name, "areas": areas});
        for _ in 0..ATTEMPTS_MAX {
            match feed.post(CENTRE_TOKEN, "/api/v1/stations", body.clone()).await.0 {
                201 | 409 => {
                    enrolled += 1;
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }
    let mut created = 0;
    for person in people() {
        let body = json!({"login": person.login, "name": person.name, "unit": person.unit, "roles": person.roles,
                          "password": demo_password(&person.login)});
        for _ in 0..ATTEMPTS_MAX {
            match feed.post(CENTRE_TOKEN, "/api/v1/people", body.clone()).await.0 {
                201 | 409 => {
                    created += 1;
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }
    tracing::info!(stations = enrolled, people = created, "demo stations and people enrolled");
    if !feed_work {
        return;
    }
    let mut next_new = Instant::now();
    loop {
        let next_due = feed.pending.keys().next().map(|(at, _)| *at).unwrap_or(next_new).min(next_new);
        tokio::select! {
            () = tokio::time::sleep_until(next_due) => {}
            () = shutdown.cancelled() => return,
        }
        let now = Instant::now();
        if now >= next_new {
            feed.new_matter().await;
            next_new = now + NEW_MATTER_EVERY;
        }
        while let Some(entry) = feed.pending.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let step = entry.remove();
            feed.perform(step).await;
        }
    }
}
