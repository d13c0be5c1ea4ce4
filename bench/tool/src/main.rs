//! aigate-bench: the parts of `make bench` that wrk cannot do.
//!
//! wrk measures closed-loop throughput well, but it cannot hold a fixed
//! request rate (wrk2 is not packaged by Debian), it does not report time to
//! first byte, and it cannot hold a thousand streams open while something
//! reads the gateway's memory. Python is too slow to drive 2,000 requests/s
//! with sub-millisecond accuracy on two cores. So this small tokio + hyper
//! program does those jobs, and also plays the slow upstream (a fixed delay,
//! streams paced chunk by chunk) that nginx cannot play without extra
//! modules.
//!
//! Layout:
//! - [`args`]: the command line (`--key value` pairs, no parser crate).
//! - [`upstream`]: the fake OpenAI-compatible upstream.
//! - [`client`]: one HTTP/1.1 connection and one timed request on it.
//! - [`rate`]: open-loop load at a fixed rate (latency without coordinated
//!   omission).
//! - [`load`]: closed-loop load that times first byte and whole response.
//! - [`streams`]: N streams held open at once, and the gateway's RSS then.
//! - [`stats`]: percentiles and the one-line JSON every command prints.
//!
//! Every command prints one JSON object on stdout; `bench/run` parses it.

mod args;
mod client;
mod load;
mod rate;
mod stats;
mod streams;
mod upstream;

use args::Args;

const USAGE: &str = "usage: aigate-bench <command> [--key value ...]
  upstream --listen ADDR [--delay-ms N] [--sse-chunks N] [--interval-ms N] [--threads N]
  rate     --url URL --rate RPS --duration SECS [--conns N] [--body JSON] [--header 'k: v']
  load     --url URL --conns N --duration SECS [--body JSON] [--header 'k: v']
  streams  --url URL --conns N [--body JSON] [--header 'k: v'] [--rss-pid PID] [--open-timeout SECS] [--settle-ms MS]";

fn main() {
    let mut argv = std::env::args().skip(1);
    let Some(command) = argv.next() else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let args = match Args::parse(argv) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let result = match command.as_str() {
        "upstream" => upstream::run(&args),
        "rate" => rate::run(&args),
        "load" => load::run(&args),
        "streams" => streams::run(&args),
        _ => Err(format!("unknown command {command}")),
    };
    match result {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("aigate-bench {command}: {e}");
            std::process::exit(1);
        }
    }
}
