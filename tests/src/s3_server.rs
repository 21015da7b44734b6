//! `S3Server`: a real S3-compatible server on a free loopback port, for the attachment store
//! tests: s3s-fs (crates.io, the s3s project's file-system server; `scripts/test-all` installs
//! it with `cargo install` when missing). It checks every request's SigV4 signature against the
//! one key it is started with and keeps each object as a file, `<root>/<bucket>/<key>`, which
//! a test may read or damage. Stopped by PID when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{die_with_parent, free_addrs, kill_by_pid, wait_until};

/// The version `scripts/test-all` installs.
pub const S3S_FS_VERSION: &str = "0.14.1";
pub const ACCESS_KEY_ID: &str = "xietong-test";
pub const BUCKET: &str = "xietong";

pub struct S3Server {
    pub addr: String,
    root: tempfile::TempDir,
    secret: String,
    child: Option<Child>,
}

impl S3Server {
    /// A server with one empty bucket, `BUCKET`.
    pub async fn start() -> S3Server {
        let addr = free_addrs(1).remove(0);
        let root = tempfile::tempdir().expect("a temp dir");
        std::fs::create_dir(root.path().join(BUCKET)).expect("the bucket");
        let secret: String = (0..40).map(|_| fastrand::alphanumeric()).collect();
        let mut server = S3Server { addr, root, secret, child: None };
        server.restart().await;
        server
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The file that holds object `key` of the bucket.
    pub fn object_file(&self, key: &str) -> PathBuf {
        self.root.path().join(BUCKET).join(key)
    }

    /// `[attachment_store]` for a node, its secret key in a file written to `dir`.
    pub fn attachment_store_toml(&self, dir: &Path, prefix: &str) -> String {
        let secret_file = dir.join("s3.secret");
        std::fs::write(&secret_file, &self.secret).expect("the secret key file");
        format!(
            "\n[attachment_store]\nendpoint = \"{}\"\nbucket = \"{BUCKET}\"\nprefix = \"{prefix}\"\naccess_key_id = \"{ACCESS_KEY_ID}\"\nsecret_access_key_file = \"{}\"\n",
            self.endpoint(),
            secret_file.display()
        )
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_by_pid(child.id(), libc::SIGKILL);
            let _ = child.wait();
        }
    }

    /// Starts (again) on the same port and root, and waits until it takes connections.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "s3s-fs is already running");
        let (host, port) = self.addr.rsplit_once(':').expect("host:port");
        let mut command = Command::new("s3s-fs");
        command
            .args(["--host", host, "--port", port, "--access-key", ACCESS_KEY_ID, "--secret-key", &self.secret])
            .arg(self.root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        die_with_parent(&mut command);
        let installed = format!("s3s-fs {S3S_FS_VERSION} is installed (scripts/test-all installs it)");
        self.child = Some(command.spawn().expect(&installed));
        let addr = self.addr.clone();
        wait_until("s3s-fs takes connections", Duration::from_secs(20), || async {
            tokio::net::TcpStream::connect(&addr).await.map(drop).map_err(|e| e.to_string())
        })
        .await;
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
