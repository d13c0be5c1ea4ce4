//! `bare_relay`: the benchmark's floor reference, not part of the product.
//!
//! A proxy with no gateway logic at all, built on exactly aigate's HTTP
//! stack (actix-web server, awc client, mimalloc), so `bench/run` can show in
//! the same run how much of the gap to nginx is the stack itself and how much
//! is aigate's own work (BENCHMARKS.md, "Method"). Two modes:
//!
//! - `static`: reads the request body and answers every request with the body
//!   file as `application/json`: the server leg alone, no upstream call.
//! - `relay`: reads the request body, POSTs it to `--upstream` with awc (one
//!   client per worker, built like aigate's), reads the whole answer and sends
//!   it back, sized, with the upstream's status and content type. An upstream
//!   that fails or cannot be read gives a 502 with a short text.
//!
//! ```sh
//! cargo build --release --example bare_relay
//! target/release/examples/bare_relay static --listen 127.0.0.1:7001 \
//!     --body-file bench/fixtures/chat.json
//! target/release/examples/bare_relay relay --listen 127.0.0.1:7002 \
//!     --upstream http://127.0.0.1:7000/json/v1/chat/completions
//! ```

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use actix_web::http::header::{self, ContentType};
use actix_web::http::Uri;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;
use clap::{Parser, ValueEnum};

/// The same allocator as the aigate binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// As aigate's `request_timeout_secs` in the benchmark's config.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    /// Answer the body file, no upstream call.
    Static,
    /// Relay each request to --upstream with awc.
    Relay,
}

#[derive(Parser)]
#[command(
    name = "bare_relay",
    about = "Floor reference for the benchmark: actix-web + awc, no gateway logic"
)]
struct Args {
    mode: Mode,
    /// Address to listen on, e.g. 127.0.0.1:7001.
    #[arg(long)]
    listen: SocketAddr,
    /// Where `relay` POSTs every request, e.g. http://127.0.0.1:7000/json/v1/chat/completions.
    #[arg(long)]
    upstream: Option<String>,
    /// What `static` answers.
    #[arg(long, default_value = "bench/fixtures/chat.json")]
    body_file: PathBuf,
    /// Worker threads (aigate's `workers = 0` is one per core: 2 on the bench machine).
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

/// The fixed answer of `static`.
struct StaticBody(Bytes);

/// The upstream URL of `relay`, checked at start, parsed by awc per request
/// as aigate's URLs are.
struct Upstream(String);

fn main() -> ExitCode {
    match serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare_relay: {e}");
            ExitCode::FAILURE
        }
    }
}

#[actix_web::main]
async fn serve() -> io::Result<()> {
    let args = Args::parse();
    // As aigate does: awc's TLS setup wants a process-wide crypto provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let body =
        web::Data::new(StaticBody(match args.mode {
            Mode::Static => Bytes::from(std::fs::read(&args.body_file).map_err(|e| {
                io::Error::new(e.kind(), format!("{}: {e}", args.body_file.display()))
            })?),
            Mode::Relay => Bytes::new(),
        }));
    let upstream = match (args.mode, args.upstream) {
        (Mode::Relay, None) => return Err(invalid("relay needs --upstream URL")),
        (_, Some(url)) => {
            url.parse::<Uri>()
                .map_err(|e| invalid(&format!("--upstream {url}: {e}")))?;
            url
        }
        (Mode::Static, None) => String::new(),
    };
    let upstream = web::Data::new(Upstream(upstream));
    let mode = args.mode;
    HttpServer::new(move || {
        let app = App::new();
        match mode {
            Mode::Static => app
                .app_data(body.clone())
                .default_service(web::to(answer_static)),
            Mode::Relay => {
                // awc::Client is not Send: one per worker, as in aigate.
                let client = awc::Client::builder()
                    .connector(awc::Connector::new().limit(0))
                    .timeout(UPSTREAM_TIMEOUT)
                    .disable_redirects()
                    .finish();
                app.app_data(web::Data::new(client))
                    .app_data(upstream.clone())
                    .default_service(web::to(relay))
            }
        }
    })
    .workers(args.workers)
    .bind(args.listen)?
    .run()
    .await
}

fn invalid(text: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, text.to_owned())
}

async fn answer_static(_request: Bytes, body: web::Data<StaticBody>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(body.0.clone())
}

async fn relay(
    request: HttpRequest,
    body: Bytes,
    client: web::Data<awc::Client>,
    upstream: web::Data<Upstream>,
) -> HttpResponse {
    let mut outgoing = client
        .post(upstream.0.as_str())
        .no_decompress()
        .insert_header((header::AUTHORIZATION, "Bearer sk-bare"));
    if let Some(content_type) = request.headers().get(header::CONTENT_TYPE) {
        outgoing = outgoing.insert_header((header::CONTENT_TYPE, content_type.clone()));
    }
    let mut response = match outgoing.send_body(body).await {
        Ok(response) => response,
        Err(e) => return bad_gateway(format!("upstream: {e}")),
    };
    let answer = match response.body().await {
        Ok(answer) => answer,
        Err(e) => return bad_gateway(format!("upstream body: {e}")),
    };
    let mut builder = HttpResponse::build(response.status());
    if let Some(content_type) = response.headers().get(header::CONTENT_TYPE) {
        builder.insert_header((header::CONTENT_TYPE, content_type.clone()));
    }
    builder.body(answer)
}

fn bad_gateway(text: String) -> HttpResponse {
    HttpResponse::BadGateway()
        .content_type(ContentType::plaintext())
        .body(text)
}
