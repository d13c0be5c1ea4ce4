//! One keep-alive HTTP/1.1 connection and one timed POST on it. The time to
//! first byte is the first non-empty body frame, which for a streaming
//! gateway is the first event it relays.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::args::Args;

/// Where the requests go and what they carry.
pub struct Target {
    addr: String,
    authority: String,
    path: String,
    body: Bytes,
    headers: Vec<(String, String)>,
}

impl Target {
    /// From `--url http://host:port/path`, `--body` and `--header`.
    pub fn from_args(args: &Args) -> Result<Self, String> {
        let url = args.text("url")?;
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("--url {url}: only http:// is supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        Ok(Target {
            addr: authority.to_string(),
            authority: authority.to_string(),
            path: path.to_string(),
            body: Bytes::from(args.text_or("body", "{}").to_string()),
            headers: args.headers().to_vec(),
        })
    }

    fn request(&self) -> Result<Request<Full<Bytes>>, String> {
        let mut builder = Request::post(&self.path)
            .header("host", &self.authority)
            .header("content-type", "application/json");
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        builder
            .body(Full::new(self.body.clone()))
            .map_err(|e| e.to_string())
    }
}

/// How one request went.
pub struct Timing {
    pub ok: bool,
    pub ttfb: Duration,
    pub total: Duration,
}

pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    pub async fn open(target: &Target) -> Result<Conn, String> {
        let stream = TcpStream::connect(&target.addr)
            .await
            .map_err(|e| format!("connect {}: {e}", target.addr))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn { sender })
    }

    /// Sends the request; the body is left for the caller to read.
    pub async fn send(&mut self, target: &Target) -> Result<Response<Incoming>, String> {
        self.sender.ready().await.map_err(|e| e.to_string())?;
        self.sender
            .send_request(target.request()?)
            .await
            .map_err(|e| e.to_string())
    }

    /// Sends the request and reads the whole answer, timed from `start`
    /// (which the fixed-rate loop may set to the request's scheduled time).
    pub async fn timed(&mut self, target: &Target, start: Instant) -> Result<Timing, String> {
        let response = self.send(target).await?;
        let ok = response.status().is_success();
        let mut body = response.into_body();
        let mut ttfb = None;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| e.to_string())?;
            if ttfb.is_none() && frame.data_ref().is_some_and(|d| !d.is_empty()) {
                ttfb = Some(start.elapsed());
            }
        }
        let total = start.elapsed();
        Ok(Timing {
            ok,
            ttfb: ttfb.unwrap_or(total),
            total,
        })
    }
}
