//! Starting and stopping the gateway: the HTTP server runs from an injected
//! listener (tests bind port 0), one awc client per worker, SIGHUP reloads
//! the config file, and on shutdown (SIGINT/SIGTERM or a handle) in-flight
//! requests finish, then counters and usage are flushed to disk.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};

use crate::config::Config;
use crate::routes;
use crate::state::{AppState, Worker};
use crate::storage::StorageError;

/// How long in-flight requests get to finish on shutdown.
const SHUTDOWN_GRACE_SECS: u64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot serve: {0}")]
    Io(#[from] std::io::Error),
}

/// A started gateway: await [`Gateway::run`] to serve until stopped.
pub struct Gateway {
    server: Server,
    state: web::Data<AppState>,
    addr: SocketAddr,
}

impl Gateway {
    /// Starts the actors and the HTTP server on `listener`. Must be called
    /// inside an actix `System`.
    pub fn start(listener: TcpListener, config: Config) -> Result<Gateway, StartError> {
        // awc and rustls need a process-wide crypto provider; a second
        // install (tests start many gateways) is refused harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let addr = listener.local_addr()?;
        let connect_timeout = config.server.connect_timeout;
        let request_timeout = config.server.request_timeout;
        let workers = config.server.workers;
        let state = web::Data::new(AppState::start(config)?);
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            // awc::Client is not Send: one per worker.
            let client = awc::Client::builder()
                .connector(
                    awc::Connector::new()
                        .timeout(connect_timeout)
                        // awc's default of 100 connections per client would
                        // queue the 101st concurrent stream of a worker.
                        .limit(0),
                )
                .timeout(request_timeout)
                .disable_redirects()
                .finish();
            App::new()
                .app_data(app_state.clone())
                .app_data(web::Data::new(Worker::new(app_state.clone(), client)))
                .configure(routes::configure)
        })
        .on_connect(|_, connection| {
            connection.insert(crate::pipeline::auth::ConnectionKey::default());
        })
        .workers(workers)
        .shutdown_timeout(SHUTDOWN_GRACE_SECS)
        .listen(listener)?
        .run();
        Ok(Gateway {
            server,
            state,
            addr,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until a signal or `handle().stop()`, then persists everything.
    pub async fn run(self) -> std::io::Result<()> {
        let hangups = reload_on_hangup(self.state.clone());
        let result = self.server.await;
        hangups.abort();
        log::info!("server stopped; flushing state");
        // Give finishers of just-closed connections a moment to report.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.state.persist_all().await;
        result
    }
}

/// Reloads the config on every SIGHUP while the server runs; a file that
/// does not load is logged and the running config stays.
fn reload_on_hangup(state: web::Data<AppState>) -> actix_web::rt::task::JoinHandle<()> {
    actix_web::rt::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(e) => {
                log::warn!("SIGHUP will not reload the config: {e}");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            if let Err(e) = state.reload().await {
                log::error!("config reload on SIGHUP failed, the running config stays: {e}");
            }
        }
    })
}
