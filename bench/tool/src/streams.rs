//! Holds `--conns` streaming requests open at once (each on its own
//! connection) against a slow upstream, and once every stream has relayed
//! its first event reads the gateway's resident memory (`VmRSS` of
//! `--rss-pid`). The streams are then dropped: the gateway sees the clients
//! leave.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use crate::args::Args;
use crate::client::{Conn, Target};
use crate::stats::{Json, Samples};

/// Connections being set up at once (keeps the listen backlog from
/// overflowing on a burst of a thousand connects).
const CONNECTING_AT_ONCE: usize = 64;

pub fn run(args: &Args) -> Result<String, String> {
    let target = Arc::new(Target::from_args(args)?);
    let conns: usize = args.number("conns", None)?;
    let timeout: u64 = args.number("open-timeout", Some(60))?;
    let settle: u64 = args.number("settle-ms", Some(2000))?;
    let pid: Option<u32> = match args.text_or("rss-pid", "") {
        "" => None,
        v => Some(v.parse().map_err(|_| format!("--rss-pid {v}"))?),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let gate = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
        let mut tasks = JoinSet::new();
        let start = Instant::now();
        for _ in 0..conns {
            let (target, tx, gate) = (target.clone(), tx.clone(), gate.clone());
            tasks.spawn(hold(target, tx, gate));
        }
        drop(tx);
        let mut ttfb = Samples::default();
        let mut failed = 0u64;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        while (ttfb.len() as u64 + failed) < conns as u64 {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(Ok(first))) => ttfb.push(first),
                Ok(Some(Err(_))) => failed += 1,
                Ok(None) | Err(_) => break,
            }
        }
        let all_open = start.elapsed();
        tokio::time::sleep(Duration::from_millis(settle)).await;
        let rss = pid.map(read_rss_kb).transpose()?;
        tasks.abort_all();
        let mut json = Json::new();
        json.int("requested", conns as u64);
        json.int("open", ttfb.len() as u64);
        json.int("failed", failed);
        json.float("seconds_to_open_all", all_open.as_secs_f64());
        if let Some(rss) = rss {
            json.int("rss_kb", rss);
        }
        ttfb.write_fields("ttfb", &mut json);
        Ok(json.finish())
    })
}

/// One stream: connect, send, report the first event's time, then keep
/// reading until aborted or the stream ends.
async fn hold(
    target: Arc<Target>,
    tx: mpsc::UnboundedSender<Result<Duration, String>>,
    gate: Arc<Semaphore>,
) {
    let permit = gate.acquire_owned().await;
    let start = Instant::now();
    let opened = async {
        let mut conn = Conn::open(&target).await?;
        let response = conn.send(&target).await?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        let mut body = response.into_body();
        loop {
            match body.frame().await {
                Some(Ok(frame)) if frame.data_ref().is_some_and(|d| !d.is_empty()) => {
                    return Ok((conn, body, start.elapsed()))
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("stream ended before its first event".into()),
            }
        }
    }
    .await;
    drop(permit);
    match opened {
        Ok((_conn, mut body, first)) => {
            let _ = tx.send(Ok(first));
            while let Some(Ok(_)) = body.frame().await {}
        }
        Err(e) => {
            let _ = tx.send(Err(e));
        }
    }
}

/// `VmRSS` of a process, in kB.
pub fn read_rss_kb(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))
}
