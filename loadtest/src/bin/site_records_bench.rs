//! On-site records against a running group (docs/benchmarks.md, "On-site records"): photos of
//! 3 MB uploaded one after another through a follower, each answered once a majority of the
//! nodes hold it; then records of five photos made end to end as a phone makes them (five
//! uploads, then `record_on_site`), each on its own task of a station of Shantou, by a person
//! signed in; then each record's printed document (PDF, its five photos drawn) through the
//! follower.
//!
//!   site_records_bench --leader ADDR --follower ADDR [--uploads 60] [--records 20]

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use serde_json::{json, Value};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    leader: String,
    #[arg(long)]
    follower: String,
    /// A command centre's token of the province (the demo's by default).
    #[arg(long, default_value = "demo-gd-command-0001")]
    token: String,
    #[arg(long, default_value_t = 60)]
    uploads: usize,
    #[arg(long, default_value_t = 20)]
    records: usize,
}

const PHOTO_BYTES: usize = 3 * 1024 * 1024;
const PHOTOS_PER_RECORD: usize = 5;
/// A station of Shantou's Longhu district: the province's group holds Shantou's work itself
/// (Guangzhou's and Shenzhen's go to their own groups in `xietong up`).
const STATION: &str = "440507009";
const LOGIN: &str = "bench.inspector";
const PASSWORD: &str = "a long bench password";

/// A real JPEG (64 × 48, made with libjpeg-turbo's cjpeg for this benchmark): a document
/// draws it, where it would only list a file that is no image.
const SMALL_JPEG: &[u8] = include_bytes!("bench_photo.jpg");

/// A photo's bytes: the small JPEG, then noise after its end marker up to a phone photo's size
/// (a decoder stops at the marker; the file is new every time and as large as a real one).
fn photo() -> Vec<u8> {
    let mut bytes = SMALL_JPEG.to_vec();
    bytes.extend(std::iter::repeat_with(|| fastrand::u8(..)).take(PHOTO_BYTES - SMALL_JPEG.len()));
    bytes
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let response =
        http.request(method, &url).bearer_auth(token).json(&body).send().await.with_context(|| url.clone())?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "{url} answered {status}: {answer}");
    Ok(answer)
}

async fn upload(http: &reqwest::Client, node: &str, token: &str, bytes: Vec<u8>) -> anyhow::Result<String> {
    let response = http.post(format!("http://{node}/api/v1/attachments")).bearer_auth(token).body(bytes).send().await?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.as_u16() == 201, "the upload answered {status}: {answer}");
    Ok(answer["sha256"].as_str().context("sha256")?.to_owned())
}

fn report(what: &str, mut millis: Vec<f64>) {
    millis.sort_by(f64::total_cmp);
    let at = |fraction: f64| millis[((millis.len() as f64 * fraction).ceil() as usize).clamp(1, millis.len()) - 1];
    println!("{what}: {} measured; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms", millis.len(), at(0.5), at(0.99), at(1.0));
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let leader = |path: &str| format!("http://{}{path}", args.leader);

    let mut uploads = Vec::with_capacity(args.uploads);
    for _ in 0..args.uploads {
        let bytes = photo();
        let started = Instant::now();
        upload(&http, &args.follower, &args.token, bytes).await?;
        uploads.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    report("upload of a 3 MB photo through a follower to a majority", uploads);

    // A station of Tianhe and an inspector of it, signed in.
    let station = json!({"county": "440507", "number": 9, "name": "压测市场监管所"});
    let _ = call(&http, reqwest::Method::POST, leader("/api/v1/stations"), &args.token, station).await;
    let person =
        json!({"login": LOGIN, "name": "压测执法人员", "unit": STATION, "roles": ["handler"], "password": PASSWORD});
    let _ = call(&http, reqwest::Method::POST, leader("/api/v1/people"), &args.token, person).await;
    let session =
        http.post(leader("/api/v1/sessions")).json(&json!({"login": LOGIN, "password": PASSWORD})).send().await?;
    let session: Value = session.json().await?;
    let inspector = session["token"].as_str().context("a session")?.to_owned();

    let mut records = Vec::with_capacity(args.records);
    let mut tasks = Vec::with_capacity(args.records);
    for n in 0..args.records {
        let task = json!({"kind": "lead", "severity": "normal", "title": format!("现场检查压测 {n}"),
                          "description": "压测", "source": "spot_check",
                          "subject": {"name": "汕头市某某贸易有限公司", "region_code": "440507", "address": "汕头市龙湖区长平路1号"}});
        let task = call(&http, reqwest::Method::POST, leader("/api/v1/tasks"), &args.token, task).await?;
        let id = task["id"].as_u64().context("task id")?;
        let dispatch = json!({"assignee_bureau": STATION, "version": task["version"]});
        call(&http, reqwest::Method::POST, leader(&format!("/api/v1/tasks/{id}/dispatch")), &args.token, dispatch)
            .await?;
        let checklist = call(
            &http,
            reqwest::Method::GET,
            leader(&format!("/api/v1/tasks/{id}/checklist")),
            &inspector,
            Value::Null,
        )
        .await?;
        let photos: Vec<Vec<u8>> = (0..PHOTOS_PER_RECORD).map(|_| photo()).collect();
        let started = Instant::now();
        let mut attachments = Vec::new();
        for bytes in photos {
            attachments
                .push(json!({"sha256": upload(&http, &args.follower, &inspector, bytes).await?, "kind": "photo"}));
        }
        let record = json!({"record": {"checklist": checklist["checklist"], "notes": "压测", "attachments": attachments,
                                       "made_at": "2026-12-06T10:00:00+08:00"}});
        let path = format!("http://{}/api/v1/tasks/{id}/record_on_site", args.follower);
        call(&http, reqwest::Method::POST, path, &inspector, record).await?;
        records.push(started.elapsed().as_secs_f64() * 1000.0);
        tasks.push(id);
    }
    report("a record of five 3 MB photos, uploads and commit, end to end", records);

    let mut documents = Vec::with_capacity(tasks.len());
    let mut document_bytes = 0;
    for id in tasks {
        let url = format!("http://{}/api/v1/tasks/{id}/site_records/1/document", args.follower);
        let started = Instant::now();
        let response = http.get(&url).bearer_auth(&args.token).send().await?;
        anyhow::ensure!(response.status().is_success(), "{url} answered {}", response.status());
        document_bytes = response.bytes().await?.len();
        documents.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    report(&format!("the printed record with its five photos ({} MB)", document_bytes / 1_000_000), documents);
    Ok(())
}
