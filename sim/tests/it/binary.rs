//! The `vk-sim` binary: `--help` documents every setting; it starts on a free port and prints
//! where it listens and which tokens it issued.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const SETTINGS: &[&str] = &[
    "api-addr",
    "proxy-addr",
    "seed",
    "users",
    "groups",
    "closed-share",
    "deleted-share",
    "banned-share",
    "screen-name-share",
    "global-pool",
    "rate-per-second",
    "time-scale",
    "flood-threshold",
    "flood-window-secs",
    "flood-penalty-secs",
    "quota",
    "captcha-rate",
    "fault",
    "method-fault",
    "slow-delay-ms",
    "execute-max-calls",
    "execute-max-operations",
    "execute-max-response-bytes",
    "user-token-ttl-secs",
    "user-tokens-ip-bound",
    "proxy-ip",
    "manager-api-key",
    "proxy-key",
];

#[test]
fn help_documents_every_setting() {
    let out = Command::new(env!("CARGO_BIN_EXE_vk-sim"))
        .arg("--help")
        .output()
        .expect("vk-sim runs");
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for s in SETTINGS {
        let flag = format!("--{s} <");
        let at = help
            .find(&flag)
            .unwrap_or_else(|| panic!("--help lacks --{s}"));
        let rest = &help[at..];
        let doc = rest.lines().nth(1).unwrap_or("").trim();
        assert!(!doc.is_empty(), "--{s} has a description");
    }
}

#[test]
fn binary_prints_where_it_listens_and_its_tokens() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vk-sim"))
        .args(["--users", "3000", "--groups", "50"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("vk-sim starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let last = line.starts_with("named users");
        lines.push(line);
        if last {
            break;
        }
    }
    child.kill().expect("stop vk-sim");
    let _ = child.wait();
    let text = lines.join("\n");
    assert!(
        text.contains("api (VK methods, /tokens, /sim): http://127.0.0.1:"),
        "{text}"
    );
    assert!(
        text.contains("proxy:") && text.contains("global pool token 0:"),
        "{text}"
    );
    assert!(
        text.contains("ip-bound token:") && text.contains("vk1.a."),
        "{text}"
    );
}
