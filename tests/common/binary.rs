//! The built `aigate` binary as a server: started on a free port, waited on
//! until `/health` answers, signalled, stopped. A binary still running when
//! its handle is dropped (a failed assertion) is killed.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Binary {
    pub child: Child,
    pub url: String,
}

/// `aigate` with the caller's environment and working directory still to set.
pub fn command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aigate"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `command serve --config <config> --listen <free port> --data-dir
/// <data_dir>` (paths may be relative to the command's working directory)
/// and waits until it is healthy.
pub async fn start(mut command: Command, config: &Path, data_dir: &Path) -> Binary {
    let port = free_port();
    let child = command
        .args(["serve", "--config"])
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let binary = Binary {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let health = super::client()
            .get(format!("{}/health", binary.url))
            .send()
            .await;
        if health.is_ok_and(|response| response.status() == 200) {
            return binary;
        }
        assert!(Instant::now() < deadline, "binary did not become healthy");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Binary {
    /// Sends a signal by name (`HUP`, `TERM`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    /// SIGTERM, then the exit code once it stopped (at most 20 s).
    pub fn terminate(mut self) -> i32 {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "binary did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: nothing gets flushed.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
