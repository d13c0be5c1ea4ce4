//! A throwaway `redis-server` for tests: a free port on 127.0.0.1, a temp
//! dir, no persistence (`--save "" --appendonly no`). It can be killed and
//! started again on the same port, to test what the gateway does meanwhile.
//!
//! When `redis-server` is not installed the tests that need it are skipped
//! with a message, unless `CI` is set: there a missing server is a failure
//! (`.ci/run` installs it).
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = "redis-server";

pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server, or returns `None` (after saying why) when
    /// `redis-server` is missing and `CI` is not set.
    pub fn start_or_skip(test: &str) -> Option<RedisServer> {
        if !installed() {
            if std::env::var_os("CI").is_some() {
                panic!("{BINARY} is not installed but CI is set: .ci/run must install it");
            }
            eprintln!("SKIPPED {test}: {BINARY} is not installed (apt-get install redis-server)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..10 {
            let port = free_port();
            if let Some(child) = spawn(port, dir.path()) {
                return Some(RedisServer {
                    port,
                    dir,
                    child: Some(child),
                });
            }
        }
        panic!("could not start {BINARY} on a free port");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Stops the server (SIGKILL: no goodbye to clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: nothing was saved).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = spawn(self.port, self.dir.path()) {
                self.child = Some(child);
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("could not restart {BINARY} on port {}", self.port);
    }

    /// Sends one inline command and returns the raw reply (for checks that
    /// should not go through the code under test).
    pub fn command(&self, line: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        stream.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).to_string()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn installed() -> bool {
    Command::new(BINARY)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A port that was free a moment ago (`redis-server --port 0` is not valid).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the server and waits until it answers PING; `None` if it exited
/// (the port was taken meanwhile) or never answered.
fn spawn(port: u16, dir: &Path) -> Option<Child> {
    let log = std::fs::File::create(dir.join(format!("redis-{port}.log"))).unwrap();
    let mut child = Command::new(BINARY)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        if answers_as(port, child.id()) {
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Whether the server on `port` answers and is process `pid` (not another
/// test's server that took the port first).
fn answers_as(port: u16, pid: u32) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"INFO server\r\n").is_err() {
        return false;
    }
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    let needle = format!("process_id:{pid}\r\n");
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&reply).contains(&needle) {
            return true;
        }
        if reply.len() > 64 * 1024 {
            break;
        }
    }
    false
}
