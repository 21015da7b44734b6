//! People signing in beside the write load (`--sign-ins RATE`): an account made through the
//! API, then sign-ins at a fixed rate for the run, each timed (the argon2id check on the node
//! it lands on), to see that sign-ins stay apart from the writes' latency.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

const LOGIN: &str = "bench.signin";
const PASSWORD: &str = "a long enough bench password";

/// Makes the account the sign-ins use (once; an existing one is used as it is).
pub async fn prepare(http: &reqwest::Client, target: &str, token: &str) -> anyhow::Result<()> {
    let body =
        json!({"login": LOGIN, "name": "压测人员", "unit": "440106", "roles": ["handler"], "password": PASSWORD});
    let response = http
        .post(format!("http://{target}/api/v1/people"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .context("POST /api/v1/people")?;
    let status = response.status().as_u16();
    anyhow::ensure!(status == 201 || status == 409, "making the bench account answered {status}");
    Ok(())
}

/// Signs in at `rate` a second, spread over `targets`, from `measure_from` until `stop_at`;
/// answers the latencies (µs) of those measured, and the refusals.
pub async fn run(
    http: reqwest::Client,
    targets: Vec<String>,
    rate: u32,
    measure_from: Instant,
    stop_at: Instant,
) -> (Vec<u32>, u64) {
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut next = Instant::now();
    let mut n = 0usize;
    let mut requests = tokio::task::JoinSet::new();
    while next < stop_at {
        tokio::time::sleep_until(next.into()).await;
        let (http, latencies, refused) = (http.clone(), latencies.clone(), refused.clone());
        let url = format!("http://{}/api/v1/sessions", targets[n % targets.len()]);
        let scheduled = next;
        requests.spawn(async move {
            let body = json!({"login": LOGIN, "password": PASSWORD});
            let answer = http.post(url).json(&body).send().await;
            if scheduled < measure_from {
                return;
            }
            match answer {
                Ok(response) if response.status().as_u16() == 201 => {
                    let micros = scheduled.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                    latencies.lock().expect("lock").push(micros);
                }
                _ => {
                    refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        while requests.try_join_next().is_some() {}
        n += 1;
        next += interval;
    }
    while requests.join_next().await.is_some() {}
    let mut measured = latencies.lock().expect("lock").clone();
    measured.sort_unstable();
    (measured, refused.load(std::sync::atomic::Ordering::Relaxed))
}
