//! One WebSocket frame as the relay carries it, whichever library read it:
//! the client side speaks `actix-ws`, the upstream side `tokio-tungstenite`,
//! and the relay converts once, here, in each direction.

use actix_ws::{AggregatedMessage, CloseCode as ClientCloseCode, CloseReason};
use bytes::Bytes;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as UpstreamCloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Close codes the gateway sends on its own account (RFC 6455 §7.4.1).
pub mod code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const POLICY_VIOLATION: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL_ERROR: u16 = 1011;
}

/// A close frame's content: its code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closing {
    pub code: u16,
    pub reason: String,
}

impl Closing {
    pub fn new(code: u16, reason: &str) -> Self {
        Closing {
            code,
            reason: reason.to_string(),
        }
    }

    /// Codes that may appear on the wire (1005, 1006 and 1015 only describe
    /// what happened, they are never sent).
    fn sendable(&self) -> bool {
        UpstreamCloseCode::from(self.code).is_allowed()
    }

    /// For the client side; a code that cannot be sent becomes a bare close.
    pub fn to_client(&self) -> Option<CloseReason> {
        self.sendable().then(|| CloseReason {
            code: ClientCloseCode::from(self.code),
            description: Some(self.reason.clone()).filter(|r| !r.is_empty()),
        })
    }

    /// For the upstream side; a code that cannot be sent becomes a bare close.
    pub fn to_upstream(&self) -> Option<CloseFrame> {
        self.sendable().then(|| CloseFrame {
            code: UpstreamCloseCode::from(self.code),
            reason: Utf8Bytes::from(self.reason.clone()),
        })
    }
}

impl From<CloseReason> for Closing {
    fn from(reason: CloseReason) -> Self {
        Closing {
            code: u16::from(reason.code),
            reason: reason.description.unwrap_or_default(),
        }
    }
}

impl From<CloseFrame> for Closing {
    fn from(frame: CloseFrame) -> Self {
        Closing {
            code: u16::from(frame.code),
            reason: frame.reason.as_str().to_string(),
        }
    }
}

/// A frame in flight. Text stays UTF-8 checked; close frames travel apart
/// (see `relay::Ending`), since closing is more than passing a frame on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(Utf8Bytes),
    Binary(Bytes),
    Ping(Bytes),
    Pong(Bytes),
}

/// What one read from either side gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    Frame(Frame),
    /// A close frame, with its code and reason if it had them.
    Close(Option<Closing>),
    /// Nothing to relay (a raw frame tungstenite never yields when reading).
    Skip,
}

impl Frame {
    /// Payload bytes, for the queue's byte count.
    pub fn payload_len(&self) -> usize {
        match self {
            Frame::Text(text) => text.len(),
            Frame::Binary(bytes) | Frame::Ping(bytes) | Frame::Pong(bytes) => bytes.len(),
        }
    }

    /// Text and binary frames carry the session; pings and pongs only keep
    /// it alive (they count neither as activity nor in the tallies).
    pub fn is_data(&self) -> bool {
        matches!(self, Frame::Text(_) | Frame::Binary(_))
    }

    pub fn into_upstream(self) -> Message {
        match self {
            Frame::Text(text) => Message::Text(text),
            Frame::Binary(bytes) => Message::Binary(bytes),
            Frame::Ping(bytes) => Message::Ping(bytes),
            Frame::Pong(bytes) => Message::Pong(bytes),
        }
    }
}

impl From<AggregatedMessage> for Read {
    fn from(message: AggregatedMessage) -> Self {
        match message {
            AggregatedMessage::Text(text) => {
                // actix-ws has checked the UTF-8 already; the fallback is
                // for the type system.
                let bytes = text.into_bytes();
                let text = Utf8Bytes::try_from(bytes.clone()).unwrap_or_else(|_| {
                    Utf8Bytes::from(String::from_utf8_lossy(&bytes).into_owned())
                });
                Read::Frame(Frame::Text(text))
            }
            AggregatedMessage::Binary(bytes) => Read::Frame(Frame::Binary(bytes)),
            AggregatedMessage::Ping(bytes) => Read::Frame(Frame::Ping(bytes)),
            AggregatedMessage::Pong(bytes) => Read::Frame(Frame::Pong(bytes)),
            AggregatedMessage::Close(reason) => Read::Close(reason.map(Closing::from)),
        }
    }
}

impl From<Message> for Read {
    fn from(message: Message) -> Self {
        match message {
            Message::Text(text) => Read::Frame(Frame::Text(text)),
            Message::Binary(bytes) => Read::Frame(Frame::Binary(bytes)),
            Message::Ping(bytes) => Read::Frame(Frame::Ping(bytes)),
            Message::Pong(bytes) => Read::Frame(Frame::Pong(bytes)),
            Message::Close(frame) => Read::Close(frame.map(Closing::from)),
            Message::Frame(_) => Read::Skip,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_cross_both_libraries() {
        let from_client = Closing::from(CloseReason {
            code: ClientCloseCode::from(4001),
            description: Some("bye".into()),
        });
        assert_eq!(from_client, Closing::new(4001, "bye"));
        let upstream = from_client.to_upstream().unwrap();
        assert_eq!(u16::from(upstream.code), 4001);
        assert_eq!(upstream.reason.as_str(), "bye");
        let back = Closing::from(upstream).to_client().unwrap();
        assert_eq!(u16::from(back.code), 4001);
        assert_eq!(back.description.as_deref(), Some("bye"));
    }

    #[test]
    fn reserved_codes_are_never_sent() {
        assert!(Closing::new(1006, "abnormal").to_client().is_none());
        assert!(Closing::new(1005, "").to_upstream().is_none());
        assert!(Closing::new(code::POLICY_VIOLATION, "")
            .to_client()
            .is_some());
    }

    #[test]
    fn text_survives_both_ways() {
        let read = Read::from(AggregatedMessage::Text("héllo".into()));
        let Read::Frame(frame) = read else {
            panic!("expected a frame");
        };
        assert_eq!(frame.payload_len(), "héllo".len());
        assert!(frame.is_data());
        assert_eq!(frame.into_upstream(), Message::text("héllo"));
        assert!(!Frame::Ping(Bytes::new()).is_data());
    }
}
