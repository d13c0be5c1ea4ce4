//! Open-loop load at a fixed rate, the way wrk2 does it: request `i` is due
//! at `t0 + i / rate` whatever happened to the ones before, so a slow answer
//! cannot hide the requests that would have queued behind it (coordinated
//! omission).
//!
//! A request whose connection was free when it fell due is timed from the
//! moment it was actually sent: tokio's timer wakes up to a millisecond late,
//! and that lateness is the generator's, not the server's. A request whose
//! connection was still busy is timed from when it fell due, so the queueing
//! counts against the server. Time to first byte is recorded the same way
//! (for streams).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::args::Args;
use crate::client::{Conn, Target};
use crate::stats::{Json, Samples};

struct Outcome {
    samples: Samples,
    ttfb: Samples,
    errors: u64,
    /// Requests sent after they fell due (the connection was busy).
    behind: u64,
}

pub fn run(args: &Args) -> Result<String, String> {
    let target = Arc::new(Target::from_args(args)?);
    let rate: f64 = args.number("rate", None)?;
    let duration: f64 = args.number("duration", None)?;
    let conns: usize = args.number("conns", Some(32))?;
    if !(rate > 0.0 && duration > 0.0 && conns > 0) {
        return Err("--rate, --duration and --conns must be positive".into());
    }
    let total = (rate * duration).round() as u64;
    let period_ns = (1e9 / rate) as u64;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let mut opened = Vec::with_capacity(conns);
        for _ in 0..conns {
            opened.push(Conn::open(&target).await?);
        }
        let next = Arc::new(AtomicU64::new(0));
        let t0 = Instant::now() + Duration::from_millis(50);
        let mut tasks = JoinSet::new();
        for conn in opened {
            let (target, next) = (target.clone(), next.clone());
            tasks.spawn(drive(conn, target, next, t0, period_ns, total));
        }
        let mut samples = Samples::default();
        let mut ttfb = Samples::default();
        let (mut errors, mut behind) = (0, 0);
        while let Some(done) = tasks.join_next().await {
            let outcome = done.map_err(|e| e.to_string())?;
            samples.extend(outcome.samples);
            ttfb.extend(outcome.ttfb);
            errors += outcome.errors;
            behind += outcome.behind;
        }
        let elapsed = t0.elapsed().as_secs_f64();
        let mut json = Json::new();
        json.int("sent", total);
        json.int("ok", samples.len() as u64);
        json.int("errors", errors);
        json.int("behind", behind);
        json.float("target_rps", rate);
        json.float("achieved_rps", samples.len() as f64 / elapsed.max(1e-9));
        samples.write_fields("latency", &mut json);
        ttfb.write_fields("ttfb", &mut json);
        Ok(json.finish())
    })
}

async fn drive(
    mut conn: Conn,
    target: Arc<Target>,
    next: Arc<AtomicU64>,
    t0: Instant,
    period_ns: u64,
    total: u64,
) -> Outcome {
    let mut outcome = Outcome {
        samples: Samples::default(),
        ttfb: Samples::default(),
        errors: 0,
        behind: 0,
    };
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= total {
            return outcome;
        }
        let due = t0 + Duration::from_nanos(i.saturating_mul(period_ns));
        let start = match Instant::now() < due {
            true => {
                tokio::time::sleep_until(due.into()).await;
                Instant::now()
            }
            false => {
                outcome.behind += 1;
                due
            }
        };
        match conn.timed(&target, start).await {
            Ok(timing) if timing.ok => {
                outcome.samples.push(timing.total);
                outcome.ttfb.push(timing.ttfb);
            }
            Ok(_) => outcome.errors += 1,
            Err(_) => {
                outcome.errors += 1;
                match Conn::open(&target).await {
                    Ok(fresh) => conn = fresh,
                    Err(_) => return outcome,
                }
            }
        }
    }
}
