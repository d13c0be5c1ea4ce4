//! Closed-loop load: `--conns` connections each send the next request as
//! soon as the last one is read to its end, for `--duration` seconds. Reports
//! throughput, time to first byte and total time (for SSE streams, where wrk
//! sees only the total).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::args::Args;
use crate::client::{Conn, Target};
use crate::stats::{Json, Samples};

#[derive(Default)]
struct Outcome {
    ttfb: Samples,
    total: Samples,
    errors: u64,
}

pub fn run(args: &Args) -> Result<String, String> {
    let target = Arc::new(Target::from_args(args)?);
    let conns: usize = args.number("conns", None)?;
    let duration: f64 = args.number("duration", None)?;
    let threads: usize = args.number("threads", Some(1))?;
    let runtime = match threads {
        0 | 1 => tokio::runtime::Builder::new_current_thread(),
        _ => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(threads);
            builder
        }
    }
    .enable_all()
    .build()
    .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let mut opened = Vec::with_capacity(conns);
        for _ in 0..conns {
            opened.push(Conn::open(&target).await?);
        }
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(duration);
        let mut tasks = JoinSet::new();
        for conn in opened {
            tasks.spawn(drive(conn, target.clone(), end));
        }
        let mut all = Outcome::default();
        while let Some(done) = tasks.join_next().await {
            let outcome = done.map_err(|e| e.to_string())?;
            all.ttfb.extend(outcome.ttfb);
            all.total.extend(outcome.total);
            all.errors += outcome.errors;
        }
        let elapsed = start.elapsed().as_secs_f64();
        let mut json = Json::new();
        json.int("ok", all.total.len() as u64);
        json.int("errors", all.errors);
        json.float("rps", all.total.len() as f64 / elapsed.max(1e-9));
        all.ttfb.write_fields("ttfb", &mut json);
        all.total.write_fields("total", &mut json);
        Ok(json.finish())
    })
}

async fn drive(mut conn: Conn, target: Arc<Target>, end: Instant) -> Outcome {
    let mut outcome = Outcome::default();
    while Instant::now() < end {
        match conn.timed(&target, Instant::now()).await {
            Ok(timing) if timing.ok => {
                outcome.ttfb.push(timing.ttfb);
                outcome.total.push(timing.total);
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
    outcome
}
