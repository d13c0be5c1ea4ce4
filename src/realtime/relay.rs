//! The two-way pump of an open session, frame by frame.
//!
//! Each direction is a reader and a writer joined by a queue bounded in
//! frames: a reader that finds the queue full stops reading its socket, so a
//! slow side slows the other through TCP (backpressure). The queue also
//! counts its bytes; a reader that would push them past
//! `realtime.max_queued_bytes` ends the session (1008 to a client too slow to
//! read, 1011 when the upstream is the one not keeping up) and says so in
//! the log, instead of letting memory grow.
//!
//! Closing: a peer's close frame travels through its queue behind the frames
//! sent before it, is passed on with its code and reason, and the other side's
//! answer is awaited briefly. A side that vanishes without a close frame is
//! reported to the other as 1001 (client gone) or 1011 (upstream lost). No
//! text or binary frame either way for `idle_timeout_secs` closes both sides
//! with 1001; pings and pongs are relayed but keep nothing alive.

use std::cell::Cell;
use std::future::pending;
use std::time::{Duration, Instant};

use actix_ws::{AggregatedMessageStream, ProtocolError, Session};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::frame::{code, Closing, Frame, Read};
use super::upstream::UpstreamSocket;

/// Frames a direction's queue holds before its reader waits.
const QUEUE_FRAMES: usize = 32;
/// How long each close step may take once the session is ending.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Who ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closer {
    Client,
    Upstream,
    Gateway,
}

impl Closer {
    pub fn as_str(&self) -> &'static str {
        match self {
            Closer::Client => "client",
            Closer::Upstream => "upstream",
            Closer::Gateway => "gateway",
        }
    }
}

/// Text and binary frames delivered in one direction, and their payload bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    pub frames: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub from_client: Count,
    pub to_client: Count,
}

/// How a session went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub tally: Tally,
    /// The code the session was closed with (`None`: no close frame).
    pub close_code: Option<u16>,
    pub closed_by: Closer,
    /// Set when the session did not end with a close handshake.
    pub error: Option<String>,
}

impl Outcome {
    /// A session dropped with the gateway.
    pub fn torn_down() -> Self {
        Outcome {
            tally: Tally::default(),
            close_code: None,
            closed_by: Closer::Gateway,
            error: Some("session torn down with the gateway".into()),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub idle: Duration,
    pub max_queued_bytes: usize,
}

/// How the session ends: who ended it and what each side is told (`None`:
/// a close frame without a code).
#[derive(Debug, Clone)]
struct Ending {
    by: Closer,
    code: Option<u16>,
    to_client: Option<Closing>,
    to_upstream: Option<Closing>,
    error: Option<String>,
}

impl Ending {
    fn gateway(client_code: u16, reason: &str, error: String) -> Self {
        Ending {
            by: Closer::Gateway,
            code: Some(client_code),
            to_client: Some(Closing::new(client_code, reason)),
            to_upstream: Some(Closing::new(code::GOING_AWAY, "client session closed")),
            error: Some(error),
        }
    }

    fn client_gone(error: &str) -> Self {
        Ending {
            by: Closer::Client,
            code: None,
            to_client: None,
            to_upstream: Some(Closing::new(code::GOING_AWAY, "client disconnected")),
            error: Some(error.into()),
        }
    }

    fn upstream_lost(error: &str) -> Self {
        Ending {
            by: Closer::Upstream,
            code: None,
            to_client: Some(Closing::new(
                code::INTERNAL_ERROR,
                "upstream connection lost",
            )),
            to_upstream: None,
            error: Some(format!("upstream connection lost: {error}")),
        }
    }
}

enum Item {
    Frame(Frame),
    Close(Ending),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Upstream,
}

enum Stop {
    /// A writer passed the session's close on to its side.
    Delivered(Ending, Side),
    /// The session ends at once.
    Abort(Ending),
}

/// One direction's queue, as its reader sees it.
struct Queue<'a> {
    tx: &'a mpsc::Sender<Item>,
    queued: &'a Cell<usize>,
    cap: usize,
    towards: Side,
}

impl Queue<'_> {
    /// Queues a frame, waiting while the queue is full; refuses it when the
    /// bytes waiting would pass the cap.
    async fn push(&self, frame: Frame) -> Result<(), Ending> {
        let queued = self.queued.get() + frame.payload_len();
        if queued > self.cap {
            log::warn!(
                "realtime session closed: {queued} bytes queued towards the {} (cap {})",
                match self.towards {
                    Side::Client => "client",
                    Side::Upstream => "upstream",
                },
                self.cap
            );
            let (client_code, reason) = match self.towards {
                Side::Client => (code::POLICY_VIOLATION, "client too slow to read"),
                Side::Upstream => (code::INTERNAL_ERROR, "upstream too slow to read"),
            };
            return Err(Ending::gateway(
                client_code,
                reason,
                format!("{reason}: queued bytes over {}", self.cap),
            ));
        }
        self.queued.set(queued);
        // The receiver lives as long as the session's select.
        let _ = self.tx.send(Item::Frame(frame)).await;
        Ok(())
    }

    /// Queues the close behind everything already queued, then parks: the
    /// writer ends the session when it gets there.
    async fn close(&self, ending: Ending) -> Stop {
        let _ = self.tx.send(Item::Close(ending)).await;
        pending().await
    }
}

/// Relays until either side closes, the gateway ends the session, or it
/// idles out. `on_upstream_text` sees every text frame from the upstream.
pub async fn relay(
    mut session: Session,
    mut client: AggregatedMessageStream,
    upstream: UpstreamSocket,
    limits: Limits,
    on_upstream_text: &mut dyn FnMut(&str),
) -> Outcome {
    let (mut sink, mut stream) = upstream.split();
    let (up_tx, mut up_rx) = mpsc::channel(QUEUE_FRAMES);
    let (down_tx, mut down_rx) = mpsc::channel(QUEUE_FRAMES);
    let (up_queued, down_queued) = (Cell::new(0), Cell::new(0));
    let activity = Cell::new(Instant::now());
    let mut tally = Tally::default();
    let queue = |tx, queued, towards| Queue {
        tx,
        queued,
        cap: limits.max_queued_bytes,
        towards,
    };
    let stop = tokio::select! {
        stop = read_client(&mut client, queue(&up_tx, &up_queued, Side::Upstream), &activity) => stop,
        stop = write_upstream(&mut sink, &mut up_rx, &up_queued, &mut tally.from_client) => stop,
        stop = read_upstream(&mut stream, queue(&down_tx, &down_queued, Side::Client), &activity, on_upstream_text) => stop,
        stop = write_client(&mut session, &mut down_rx, &down_queued, &mut tally.to_client) => stop,
        stop = idle(&activity, limits.idle) => stop,
    };
    let (ending, delivered_to) = match stop {
        Stop::Delivered(ending, side) => (ending, Some(side)),
        Stop::Abort(ending) => (ending, None),
    };
    if delivered_to != Some(Side::Client) {
        let reason = ending.to_client.as_ref().and_then(Closing::to_client);
        let _ = tokio::time::timeout(CLOSE_GRACE, session.close(reason)).await;
    }
    if delivered_to != Some(Side::Upstream) && ending.by != Closer::Upstream {
        let frame = ending.to_upstream.as_ref().and_then(Closing::to_upstream);
        let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(Message::Close(frame))).await;
    }
    // Sends our close, or the answer tungstenite queued to the upstream's.
    let _ = tokio::time::timeout(CLOSE_GRACE, sink.flush()).await;
    if ending.by != Closer::Upstream {
        // The upstream's answer to our close ends its stream.
        let drain = async { while stream.next().await.is_some() {} };
        let _ = tokio::time::timeout(CLOSE_GRACE, drain).await;
    }
    Outcome {
        tally,
        close_code: ending.code,
        closed_by: ending.by,
        error: ending.error,
    }
}

async fn read_client(
    client: &mut AggregatedMessageStream,
    queue: Queue<'_>,
    activity: &Cell<Instant>,
) -> Stop {
    loop {
        let read = match client.recv().await {
            Some(Ok(message)) => Read::from(message),
            None | Some(Err(ProtocolError::Io(_))) => {
                return queue
                    .close(Ending::client_gone(
                        "client disconnected without a close frame",
                    ))
                    .await
            }
            Some(Err(e)) => {
                let client_code = match e {
                    ProtocolError::Overflow => code::TOO_BIG,
                    _ => code::PROTOCOL_ERROR,
                };
                let error = format!("client broke the protocol: {e}");
                return Stop::Abort(Ending::gateway(client_code, &e.to_string(), error));
            }
        };
        match read {
            Read::Frame(frame) => {
                if frame.is_data() {
                    activity.set(Instant::now());
                }
                if let Err(ending) = queue.push(frame).await {
                    return Stop::Abort(ending);
                }
            }
            Read::Close(closing) => {
                let ending = Ending {
                    by: Closer::Client,
                    code: closing.as_ref().map(|c| c.code),
                    to_client: closing.clone(),
                    to_upstream: closing,
                    error: None,
                };
                return queue.close(ending).await;
            }
            Read::Skip => {}
        }
    }
}

async fn read_upstream(
    upstream: &mut SplitStream<UpstreamSocket>,
    queue: Queue<'_>,
    activity: &Cell<Instant>,
    on_text: &mut dyn FnMut(&str),
) -> Stop {
    loop {
        let read = match upstream.next().await {
            Some(Ok(message)) => Read::from(message),
            Some(Err(WsError::Capacity(e))) => {
                let error = format!("upstream message over the size limit: {e}");
                let mut ending =
                    Ending::gateway(code::INTERNAL_ERROR, "upstream message too big", error);
                ending.to_upstream = Some(Closing::new(code::TOO_BIG, "message too big"));
                return Stop::Abort(ending);
            }
            Some(Err(e)) => return queue.close(Ending::upstream_lost(&e.to_string())).await,
            None => {
                let error = "closed without a close frame";
                return queue.close(Ending::upstream_lost(error)).await;
            }
        };
        match read {
            Read::Frame(frame) => {
                if let Frame::Text(text) = &frame {
                    on_text(text.as_str());
                }
                if frame.is_data() {
                    activity.set(Instant::now());
                }
                if let Err(ending) = queue.push(frame).await {
                    return Stop::Abort(ending);
                }
            }
            Read::Close(closing) => {
                let ending = Ending {
                    by: Closer::Upstream,
                    code: closing.as_ref().map(|c| c.code),
                    to_client: closing,
                    // tungstenite answers the upstream's close itself.
                    to_upstream: None,
                    error: None,
                };
                return queue.close(ending).await;
            }
            Read::Skip => {}
        }
    }
}

async fn write_client(
    session: &mut Session,
    queue: &mut mpsc::Receiver<Item>,
    queued: &Cell<usize>,
    count: &mut Count,
) -> Stop {
    while let Some(item) = queue.recv().await {
        match item {
            Item::Frame(frame) => {
                let len = frame.payload_len();
                let data = frame.is_data();
                let sent = match frame {
                    Frame::Text(text) => session.text(text.as_str()).await,
                    Frame::Binary(bytes) => session.binary(bytes).await,
                    Frame::Ping(bytes) => session.ping(&bytes).await,
                    Frame::Pong(bytes) => session.pong(&bytes).await,
                };
                queued.set(queued.get().saturating_sub(len));
                if sent.is_err() {
                    return Stop::Abort(Ending::client_gone("client connection closed"));
                }
                count.add(data, len);
            }
            Item::Close(ending) => {
                let reason = ending.to_client.as_ref().and_then(Closing::to_client);
                let _ = session.clone().close(reason).await;
                return Stop::Delivered(ending, Side::Client);
            }
        }
    }
    pending().await
}

async fn write_upstream(
    sink: &mut SplitSink<UpstreamSocket, Message>,
    queue: &mut mpsc::Receiver<Item>,
    queued: &Cell<usize>,
    count: &mut Count,
) -> Stop {
    while let Some(item) = queue.recv().await {
        match item {
            Item::Frame(frame) => {
                let len = frame.payload_len();
                let data = frame.is_data();
                let sent = sink.send(frame.into_upstream()).await;
                queued.set(queued.get().saturating_sub(len));
                if let Err(e) = sent {
                    return Stop::Abort(Ending::upstream_lost(&e.to_string()));
                }
                count.add(data, len);
            }
            Item::Close(ending) => {
                let frame = ending.to_upstream.as_ref().and_then(Closing::to_upstream);
                let _ = sink.send(Message::Close(frame)).await;
                return Stop::Delivered(ending, Side::Upstream);
            }
        }
    }
    pending().await
}

async fn idle(activity: &Cell<Instant>, limit: Duration) -> Stop {
    loop {
        let deadline = activity.get() + limit;
        if Instant::now() >= deadline {
            let error = format!("idle for {}s", limit.as_secs());
            let mut ending = Ending::gateway(code::GOING_AWAY, "idle timeout", error);
            ending.to_upstream = Some(Closing::new(code::GOING_AWAY, "idle timeout"));
            return Stop::Abort(ending);
        }
        tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
    }
}

impl Count {
    fn add(&mut self, data: bool, len: usize) {
        if data {
            self.frames += 1;
            self.bytes += len as u64;
        }
    }
}
