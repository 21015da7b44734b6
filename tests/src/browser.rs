//! A real headless Chromium for end-to-end console tests, driven over WebDriver (Debian's
//! `chromium` and `chromium-driver`; `scripts/test-all` installs them).
//!
//! chromedriver runs in its own process group so dropping it also ends the Chromium processes
//! it started. Chromium is told to resolve no host names except loopback, so nothing leaves
//! the machine.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

pub struct ChromeDriver {
    child: Child,
    pub port: u16,
}

impl ChromeDriver {
    pub fn start() -> ChromeDriver {
        let mut child = Command::new("chromedriver")
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver is installed (apt-get install chromium chromium-driver; scripts/test-all does it)");
        let stdout = child.stdout.take().expect("piped stdout");
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        // Keeps draining stdout so chromedriver never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    if let Ok(port) = port.parse::<u16>() {
                        let _ = port_tx.send(port);
                    }
                }
            }
        });
        let port = port_rx.recv_timeout(Duration::from_secs(20)).expect("chromedriver reports its port");
        ChromeDriver { child, port }
    }

    /// A new browser session with a fresh profile in `profile_dir`.
    pub async fn session(&self, profile_dir: &std::path::Path, width: u32, height: u32) -> Client {
        self.session_with(profile_dir, width, height, None).await
    }

    /// A session in Chromium's mobile emulation: a phone's viewport (390×844 at 3×) with touch.
    pub async fn phone_session(&self, profile_dir: &std::path::Path) -> Client {
        let phone = json!({"deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 3.0, "touch": true}});
        self.session_with(profile_dir, 390, 844, Some(phone)).await
    }

    /// Cuts the session's network (`offline`) or gives it back, through chromedriver's network
    /// conditions: the page's requests fail as on a phone out of coverage.
    pub async fn set_offline(&self, client: &Client, offline: bool) {
        let session = client.session_id().await.expect("a session id").expect("a session");
        let url = format!("http://127.0.0.1:{}/session/{session}/chromium/network_conditions", self.port);
        let conditions = json!({"network_conditions": {"offline": offline, "latency": 0,
            "download_throughput": 100_000_000, "upload_throughput": 100_000_000}});
        let answer = reqwest::Client::new().post(url).json(&conditions).send().await.expect("chromedriver answers");
        assert!(answer.status().is_success(), "network conditions: {}", answer.text().await.unwrap_or_default());
    }

    async fn session_with(
        &self,
        profile_dir: &std::path::Path,
        width: u32,
        height: u32,
        mobile: Option<serde_json::Value>,
    ) -> Client {
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-default-apps".into(),
            "--disable-extensions".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--lang=zh-CN".into(),
            format!("--window-size={width},{height}"),
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1".into(),
            format!("--user-data-dir={}", profile_dir.display()),
        ];
        let mut options = json!({"args": args});
        if let Some(mobile) = mobile {
            options["mobileEmulation"] = mobile;
        }
        let capabilities = json!({"browserName": "chrome", "goog:chromeOptions": options});
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities.as_object().expect("object").clone())
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session")
    }
}

impl Drop for ChromeDriver {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this harness created for chromedriver.
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}
