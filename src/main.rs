//! The `aigate` command: parse the CLI, load the config, set up logging, run.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use aigate::config::{self, CliOverrides};

/// mimalloc's per-thread heaps: a request makes a few hundred small
/// allocations across actix-web, awc and the pipeline, and glibc's malloc
/// (arena locks, consolidation) was about 9 % of the gateway's CPU under load
/// (BENCHMARKS.md, hot spot 6). Built with `no_thp`: where transparent huge
/// pages are on ("always"), mimalloc's eagerly committed arena is backed by
/// 2 MB pages on first touch and an idle gateway held 55 MB instead of 12.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "aigate", version, about = "A self-hosted LLM API gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Config file (default: config/aigate.toml if it exists).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on, e.g. 127.0.0.1:6543.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Where the database and logs live.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Validate a config and print a summary (keys are counted, never shown).
    CheckConfig {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Add, list or remove upstream keys (offline, or via the admin API).
    Keys(aigate::admin::keys_cli::KeysArgs),
    /// Add, list, disable, enable users or rotate a key (offline, or via the admin API).
    Users(aigate::admin::cli::UsersArgs),
}

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let env = config::process_env();
    match cli.command {
        Command::Keys(args) => aigate::admin::keys_cli::run(args, &env),
        Command::Users(args) => aigate::admin::cli::run(args, &env),
        Command::CheckConfig { config: path } => {
            match config::load(path.as_deref(), &env, &CliOverrides::default()) {
                Ok(config) => {
                    println!("{}", config.summary());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{}: {e}", describe(path.as_deref()));
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve {
            config: path,
            listen,
            data_dir,
        } => {
            let overrides = CliOverrides { listen, data_dir };
            let config = match config::load(path.as_deref(), &env, &overrides) {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("{}: {e}", describe(path.as_deref()));
                    return ExitCode::FAILURE;
                }
            };
            match serve(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("aigate: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn describe(path: Option<&std::path::Path>) -> String {
    match path {
        Some(p) => p.display().to_string(),
        None => "configuration".into(),
    }
}

fn serve(config: config::Config) -> Result<(), String> {
    std::fs::create_dir_all(&config.server.data_dir).map_err(|e| {
        format!(
            "cannot create data dir {}: {e}",
            config.server.data_dir.display()
        )
    })?;
    aigate::logging::init(config.log.level, &config.log.dir)?;
    let listener = TcpListener::bind(config.server.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", config.server.listen))?;
    actix_web::rt::System::new().block_on(async move {
        let gateway = aigate::Gateway::start(listener, config).map_err(|e| e.to_string())?;
        log::info!(
            "aigate {} listening on http://{}",
            env!("CARGO_PKG_VERSION"),
            gateway.addr()
        );
        gateway.run().await.map_err(|e| e.to_string())
    })
}
