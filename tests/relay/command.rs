//! The `relayrace` command itself: `serve` builds its runtime from the config.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::message;

/// A config file under the test target's scratch directory.
fn config_file(name: &str, workers: usize) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.yaml"));
    let yaml = format!(
        "server:\n  workers: {workers}\nproviders:\n  - name: sim\n    type: simulated\n    \
         simulated:\n      first_event_delay: 0ms\n      event_delay: 0ms\n"
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

fn relayrace(config: &PathBuf, listen: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_relayrace"));
    command
        .args(["serve", "--config"])
        .arg(config)
        .args(["--listen", listen])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Kills the relay when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn serve_runs_as_many_worker_threads_as_configured() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = config_file("three-workers", 3);
    let mut relay = Running(
        relayrace(&config, &format!("127.0.0.1:{port}"))
            .spawn()
            .unwrap(),
    );
    // Listening once it says so (the line comes after the bind).
    let stderr = relay.0.stderr.take().unwrap();
    let (listening, _rest_of_the_log) = tokio::task::spawn_blocking(move || {
        let mut log = BufReader::new(stderr);
        let mut line = String::new();
        while log.read_line(&mut line).unwrap() > 0 && !line.contains("relayrace listening") {
            line.clear();
        }
        (line, log)
    })
    .await
    .unwrap();
    assert!(!listening.is_empty(), "the relay exited before listening");
    assert!(listening.contains("workers=3"), "{listening}");

    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/messages"))
        .json(&message(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let workers = std::fs::read_dir(format!("/proc/{}/task", relay.0.id()))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "tokio-rt-worker")
        .count();
    assert_eq!(workers, 3);
}

#[test]
fn serve_refuses_zero_workers_and_names_the_setting() {
    let config = config_file("zero-workers", 0);
    let output = relayrace(&config, "127.0.0.1:0").output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("server.workers"), "{stderr}");
}
