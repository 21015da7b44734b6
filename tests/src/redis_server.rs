//! `RedisServer`: a real `redis-server` (Debian's) on a free loopback port, without persistence,
//! for the fan-out tests. Stopped by PID when dropped (or with `stop`), and restartable on the
//! same port (empty, as a Redis that lost its memory).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_addrs, kill_by_pid, wait_until};

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        let addr = free_addrs(1).remove(0);
        let port = addr.rsplit_once(':').and_then(|(_, port)| port.parse().ok()).expect("a port");
        let mut server = RedisServer { port, child: None };
        server.restart().await;
        server
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// SIGKILL: Redis is gone, with everything it held.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_by_pid(child.id(), libc::SIGKILL);
            let _ = child.wait();
        }
    }

    /// Starts (again) on the same port and waits until it answers.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server is already running");
        let mut command = Command::new("redis-server");
        command
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string(), "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        crate::die_with_parent(&mut command);
        self.child = Some(command.spawn().expect("redis-server is installed (scripts/test-all installs it)"));
        let url = self.url();
        wait_until("redis-server answers", Duration::from_secs(20), || async {
            let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
            let mut connection = client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
            redis::cmd("PING").query_async::<String>(&mut connection).await.map_err(|e| e.to_string())
        })
        .await;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
