//! Stamps the binary with the commit it was built from (`xietong --version`,
//! `xietong_build_info`): `XIETONG_COMMIT` from the environment when set (a package build from
//! a tarball), else `git rev-parse` in a git checkout, else "unknown".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=XIETONG_COMMIT");
    // Rebuilt when the checkout moves to another commit: HEAD, and the branch it names.
    let git_dir = std::path::Path::new("../.git");
    if git_dir.is_dir() {
        println!("cargo:rerun-if-changed=../.git/HEAD");
        if let Ok(head) = std::fs::read_to_string(git_dir.join("HEAD")) {
            if let Some(branch) = head.trim().strip_prefix("ref: ") {
                println!("cargo:rerun-if-changed=../.git/{branch}");
            }
        }
        println!("cargo:rerun-if-changed=../.git/packed-refs");
    }
    let from_git = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|commit| commit.trim().to_owned())
        .filter(|commit| !commit.is_empty());
    // An explicit XIETONG_COMMIT (a package build that knows better) wins over git.
    let explicit = std::env::var("XIETONG_COMMIT").ok().filter(|commit| !commit.is_empty());
    let commit = explicit.or(from_git).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=XIETONG_COMMIT={commit}");
}
