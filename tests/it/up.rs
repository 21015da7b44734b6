//! `xietong up`, the main job, as a user runs it: all four groups come up on loopback, a lead
//! registered in Guangdong about a Hangzhou firm reaches the Zhejiang group, and SIGTERM stops
//! every node it started.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use tests::{wait_until, xietong_binary, COMMAND_TOKEN};

/// Nodes of the default topology: four groups of three.
const NODES: u16 = 12;

/// With `--redis`: Redis and two gateways on the three ports after the nodes'.
const REDIS_AND_GATEWAYS: u16 = 3;

/// A base port with the `count` ports after it free right now.
fn free_port_range(count: u16) -> u16 {
    for _ in 0..50 {
        let base = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        if base > u16::MAX - count {
            continue;
        }
        let all_free = (base..base + count).all(|port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
        if all_free {
            return base;
        }
    }
    panic!("no range of {count} free ports found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_starts_four_groups_that_forward_to_each_other_and_stops_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = free_port_range(NODES);
    let mut up = Up::start(dir.path(), base, &[]);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
    let result = async {
        wait_until("every node of the four groups ready", Duration::from_secs(60), || async {
            for port in base..base + NODES {
                let ready =
                    http.get(format!("http://127.0.0.1:{port}/readyz")).send().await.map_err(|e| e.to_string())?;
                if !ready.status().is_success() {
                    return Err(format!("port {port}: {}", ready.status()));
                }
            }
            Ok(())
        })
        .await;
        // `up` prints its banner once it saw every group ready.
        wait_until("the banner with the demo logins", Duration::from_secs(30), || async {
            let out = std::fs::read_to_string(dir.path().join("up.out")).unwrap_or_default();
            if out.contains("demo-zj-command-0011") && out.contains("Ctrl-C") {
                Ok(())
            } else {
                Err(out)
            }
        })
        .await;
        // The demo's people of Guangzhou's stations sign in with the passwords the banner prints.
        let out = std::fs::read_to_string(dir.path().join("up.out")).unwrap_or_default();
        assert!(out.contains("tianhe4.a") && out.contains("Demo-tianhe4.a"), "{out}");
        let guangzhou = base + 3;
        // Enrolled in the background: wait for the account (a sign-in tried before it exists
        // counts as a failure against the login), then sign in once.
        wait_until("the demo people enrolled", Duration::from_secs(90), || async {
            let people: Value = http
                .get(format!("http://127.0.0.1:{guangzhou}/api/v1/people?unit=440106004"))
                .bearer_auth("demo-gz-command-0003")
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            let listed = people["people"].as_array().is_some_and(|p| p.iter().any(|p| p["login"] == "tianhe4.a"));
            if listed {
                Ok(())
            } else {
                Err(people.to_string())
            }
        })
        .await;
        let session: Value = http
            .post(format!("http://127.0.0.1:{guangzhou}/api/v1/sessions"))
            .json(&json!({"login": "tianhe4.a", "password": "Demo-tianhe4.a"}))
            .send()
            .await
            .expect("sign in")
            .json()
            .await
            .expect("json");
        assert_eq!(session["person"]["unit"], "440106004", "{session}");
        let lead = json!({"kind": "lead", "severity": "high", "source": "complaint", "title": "异地线索：杭州某网店",
                          "subject": {"name": "杭州某网店", "region_code": "330106"}});
        let created: Value = http
            .post(format!("http://127.0.0.1:{}/api/v1/tasks", base + 1))
            .bearer_auth(COMMAND_TOKEN)
            .json(&lead)
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("json");
        assert_eq!(created["handover"]["to_group"], "330000", "{created}");
        let zhejiang = base + 9;
        wait_until("the lead in Zhejiang's ledger", Duration::from_secs(30), || async {
            let page: Value = http
                .get(format!("http://127.0.0.1:{zhejiang}/api/v1/tasks"))
                .bearer_auth("demo-zj-command-0011")
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            let arrived = page["tasks"]
                .as_array()
                .is_some_and(|tasks| tasks.iter().any(|t| t["title"] == "异地线索：杭州某网店"));
            if arrived {
                Ok(())
            } else {
                Err(page.to_string())
            }
        })
        .await;
    }
    .await;
    // SIGTERM to `up` (by its PID): it stops the nodes it started and exits.
    let status = up.terminate().await;
    let log = std::fs::read_to_string(dir.path().join("up.log")).unwrap_or_default();
    assert!(status.success(), "up exits cleanly: {status:?}\n{log}");
    for port in base..base + NODES {
        assert!(http.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_err(), "node on {port} stopped");
    }
    result
}

/// `xietong up --redis`: a redis-server and two console gateways for the Guangdong group come
/// up beside the nodes; a console on one gateway gets a task created through the other, and
/// SIGTERM stops them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_with_redis_serves_consoles_through_two_gateways() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = free_port_range(NODES + REDIS_AND_GATEWAYS);
    let (gw1, gw2) = (format!("127.0.0.1:{}", base + NODES + 1), format!("127.0.0.1:{}", base + NODES + 2));
    let mut up = Up::start(dir.path(), base, &["--redis", "--groups", "440000"]);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
    wait_until("both gateways up", Duration::from_secs(60), || async {
        for gateway in [&gw1, &gw2] {
            http.get(format!("http://{gateway}/healthz")).send().await.map_err(|e| e.to_string())?;
        }
        Ok(())
    })
    .await;
    let mut console = tests::console::ConsoleClient::connect(&gw1, COMMAND_TOKEN, None, None).await;
    assert_eq!(console.expect("welcome").await["gateway"], "gw1");
    console.expect("snapshot").await;
    let created: Value = http
        .post(format!("http://{gw2}/api/v1/tasks"))
        .bearer_auth(COMMAND_TOKEN)
        .json(&tests::create_body("经网关创建"))
        .send()
        .await
        .expect("create through gw2")
        .json()
        .await
        .expect("json");
    let event = console.expect("events").await;
    assert_eq!(event["tasks"][0]["id"], created["id"], "{event}");
    console.close().await;

    // Public requests through a gateway are budgeted per client, not per gateway: the group's
    // nodes trust the gateways' source addresses, so one caller's flood (well past its 20 a
    // second) leaves another caller's share whole.
    let public = format!("http://{gw1}/public/v1/campaigns");
    let flooder = tests::client_from("127.0.0.10");
    let mut flood = Vec::new();
    for _ in 0..100 {
        flood.push(flooder.get(&public).send().await.expect("an answer").status().as_u16());
    }
    assert!(flood.contains(&429), "the flooder runs out of its share: {flood:?}");
    let other = tests::client_from("127.0.0.11");
    let answers = futures_util::future::join_all((0..10).map(|_| other.get(&public).send())).await;
    let statuses: Vec<u16> = answers.into_iter().map(|a| a.expect("an answer").status().as_u16()).collect();
    assert_eq!(statuses, [200; 10], "another caller through the same gateway is served");

    let status = up.terminate().await;
    assert!(status.success(), "up exits cleanly: {status:?}");
    for port in [base, base + NODES, base + NODES + 1, base + NODES + 2] {
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "nothing listens on {port} any more");
    }
}

/// The `xietong up` process; stopped by PID whatever happens to the test.
struct Up(std::process::Child);

impl Up {
    /// `xietong up --no-demo` on ports from `base`, with its data, output and log in `dir`.
    fn start(dir: &std::path::Path, base: u16, extra_args: &[&str]) -> Up {
        Up(Command::new(xietong_binary())
            .args(["up", "--no-demo", "--base-port", &base.to_string(), "--data-dir"])
            .arg(dir)
            .args(extra_args)
            .stdout(std::fs::File::create(dir.join("up.out")).expect("output file"))
            .stderr(std::fs::File::create(dir.join("up.log")).expect("log file"))
            .spawn()
            .expect("starting xietong up"))
    }

    fn signal(&self, signal: libc::c_int) {
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on the child this test spawned and has not reaped.
        unsafe {
            libc::kill(self.0.id() as libc::pid_t, signal);
        }
    }

    /// SIGTERM, then waits (with a deadline) for it to exit.
    async fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return status;
            }
            assert!(tokio::time::Instant::now() < deadline, "xietong up did not exit within 30 s of SIGTERM");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            // Let `up` stop its nodes; the test is failing anyway.
            self.signal(libc::SIGTERM);
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            while matches!(self.0.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if matches!(self.0.try_wait(), Ok(None)) {
                self.signal(libc::SIGKILL);
                let _ = self.0.wait();
            }
        }
    }
}
