//! The reply's way back: the upstream body is pulled chunk by chunk as it
//! arrives (never collected here), passed through a [`BodyTransform`], and
//! handed to the client; an idle upstream times out; an upstream failure
//! mid-body becomes an error event where the format allows (else the
//! connection is cut so the client sees the truncation); and the request is
//! finished when the body ends or is dropped.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{LocalBoxStream, Stream, StreamExt};

use super::finish::{Ending, Finisher};
use super::transform::BodyTransform;

/// A body on its way to the client; errors are already messages.
pub type BodyStream = LocalBoxStream<'static, Result<Bytes, String>>;

struct Relay {
    upstream: BodyStream,
    transform: Box<dyn BodyTransform>,
    status: u16,
    idle: Duration,
    out: VecDeque<Bytes>,
    ending: Option<(Ending, bool)>,
    finisher: Option<Finisher>,
}

/// Relays `upstream` (whose first chunk, if already read to peek, is `first`).
pub fn relay(
    first: Option<Bytes>,
    upstream: BodyStream,
    transform: Box<dyn BodyTransform>,
    status: u16,
    idle: Duration,
    mut finisher: Finisher,
) -> impl Stream<Item = Result<Bytes, actix_web::Error>> {
    finisher.mark_first_byte();
    let mut relay = Relay {
        upstream,
        transform,
        status,
        idle,
        out: VecDeque::new(),
        ending: None,
        finisher: Some(finisher),
    };
    if let Some(first) = first {
        relay.transform.push(first, &mut relay.out);
    }
    futures_util::stream::unfold(relay, |mut relay| async move {
        loop {
            if let Some(chunk) = relay.out.pop_front() {
                return Some((Ok(chunk), relay));
            }
            if let Some((ending, told_client)) = relay.ending.take() {
                relay.finish(ending.clone());
                return match ending {
                    // A body that cannot carry an error event: cut the
                    // connection so the client sees the truncation.
                    Ending::UpstreamBroke { error, .. } if !told_client => {
                        Some((Err(actix_web::error::ErrorBadGateway(error)), relay))
                    }
                    _ => None,
                };
            }
            relay.finisher.as_ref()?;
            match tokio::time::timeout(relay.idle, relay.upstream.next()).await {
                Ok(Some(Ok(chunk))) => relay.transform.push(chunk, &mut relay.out),
                Ok(Some(Err(error))) => relay.fail(format!("upstream stream failed: {error}")),
                Ok(None) => match relay.transform.end(&mut relay.out) {
                    Ok(()) => {
                        relay.ending = Some((
                            Ending::Delivered {
                                status: relay.status,
                            },
                            true,
                        ))
                    }
                    Err(error) => relay.fail(error),
                },
                Err(_) => relay.fail(format!(
                    "upstream sent nothing for {} s",
                    relay.idle.as_secs()
                )),
            }
        }
    })
}

impl Relay {
    fn fail(&mut self, error: String) {
        log::warn!("{error}");
        let told_client = self.transform.fail(&error, &mut self.out);
        self.ending = Some((
            Ending::UpstreamBroke {
                status: self.status,
                error,
            },
            told_client,
        ));
    }

    fn finish(&mut self, ending: Ending) {
        if let Some(mut finisher) = self.finisher.take() {
            finisher.set_usage(self.transform.usage());
            finisher.finish(ending);
        }
    }
}
