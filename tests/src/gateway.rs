//! `TestGateway`: a real `xietong gateway` process serving one group's consoles from Redis, on a
//! free loopback port; SIGKILLed and restarted by PID like the nodes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{die_with_parent, free_addrs, kill_by_pid, wait_until, xietong_binary};

pub struct TestGateway {
    pub addr: String,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// `http` or `https`, and a client that trusts the gateway's certificate.
    pub scheme: &'static str,
    http: reqwest::Client,
}

impl TestGateway {
    /// Starts gateway `name` in `dir` for the group `bureau` whose nodes are `nodes`.
    pub async fn start(dir: &Path, name: &str, redis_url: &str, bureau: &str, nodes: &[String]) -> TestGateway {
        TestGateway::start_with(dir, name, redis_url, bureau, nodes, None).await
    }

    /// Like `start`; with `tls`, a client that trusts the test CA, the gateway serves HTTPS and
    /// calls the nodes over TLS with the certificate files the TLS group's dir holds.
    pub async fn start_with(
        dir: &Path,
        name: &str,
        redis_url: &str,
        bureau: &str,
        nodes: &[String],
        tls: Option<reqwest::Client>,
    ) -> TestGateway {
        let addr = free_addrs(1).remove(0);
        let config = dir.join(format!("{name}.toml"));
        let nodes: Vec<String> = nodes.iter().map(|n| format!("\"{n}\"")).collect();
        let tls_section = if tls.is_some() {
            "\n[tls]\ncert_file = \"node.pem\"\nkey_file = \"node.key\"\nca_file = \"ca.pem\"\n"
        } else {
            ""
        };
        let text = format!(
            "name = \"{name}\"\nlisten = \"{addr}\"\nusers_file = \"users.toml\"\nredis = \"{redis_url}\"\n\n\
             [group]\nbureau = \"{bureau}\"\nnodes = [{}]\n{tls_section}",
            nodes.join(", ")
        );
        std::fs::write(&config, text).expect("gateway config");
        let log = dir.join(format!("{name}.log"));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let http = tls.unwrap_or_default();
        let mut gateway = TestGateway { addr, config, log, child: None, scheme, http };
        gateway.restart().await;
        gateway
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_by_pid(child.id(), libc::SIGKILL);
            let _ = child.wait();
        }
    }

    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the gateway is running");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log");
        let mut command = Command::new(xietong_binary());
        command
            .arg("gateway")
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log);
        die_with_parent(&mut command);
        self.child = Some(command.spawn().expect("spawning a gateway"));
        let url = self.url("/healthz");
        wait_until("the gateway answers", Duration::from_secs(20), || async {
            let response = self.http.get(&url).send().await.map_err(|e| e.to_string())?;
            response.status().is_success().then_some(()).ok_or_else(|| response.status().to_string())
        })
        .await;
    }
}

impl TestGateway {
    /// SIGHUP: the gateway reads its users file again.
    pub fn reload_users(&self) {
        let child = self.child.as_ref().expect("the gateway is running");
        kill_by_pid(child.id(), libc::SIGHUP);
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.kill();
    }
}
