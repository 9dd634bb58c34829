//! Graceful shutdown that never drops an answer.
//!
//! On SIGTERM or SIGINT the server first *drains*: every new request gets a
//! 503 problem (with `Connection: close`) before any handler can queue a
//! write, and the requests already admitted run until their response body
//! has been handed to the connection. Only then is actix told to stop.
//!
//! Leaving it to actix alone is not enough: its accept thread hands a
//! connection to a worker before it counts it, and a worker told to stop in
//! that gap believes it is idle and drops the connection, even when its
//! handler has already queued a write that will be committed. The client is
//! then never told about a write that is stored.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::rt::signal;
use actix_web::rt::time::sleep;
use actix_web::web::{Bytes, Data};
use futures_util::future::{Either, select};

use crate::error::ApiError;
use crate::state::AppState;

/// Longest wait for admitted requests once draining has begun. With
/// [`CLOSE_LIMIT`] and the last commit, a stop takes well under the 30 s a
/// process manager gives by default (Kubernetes' grace period, systemd's
/// `TimeoutStopSec` is 90) before it kills.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(20);

/// After the drain, how long actix gives open connections to send their last
/// bytes and close before it drops them. Every admitted request has then
/// handed over its response, so this is short.
pub const CLOSE_LIMIT: Duration = Duration::from_secs(5);

/// How often the drain looks at the requests in flight.
const DRAIN_POLL: Duration = Duration::from_millis(5);

/// Whether the server is draining, and how many admitted requests have not
/// yet handed over their response. Cheap to clone: clones share the state.
#[derive(Clone, Debug, Default)]
pub struct Drain(Arc<State>);

#[derive(Debug, Default)]
struct State {
    draining: AtomicBool,
    in_flight: AtomicUsize,
}

impl Drain {
    /// From now on, new requests are refused.
    pub fn start(&self) {
        self.0.draining.store(true, Ordering::SeqCst);
    }

    /// Whether new requests are being refused.
    pub fn is_draining(&self) -> bool {
        self.0.draining.load(Ordering::SeqCst)
    }

    /// Admits a request unless draining. The request counts as in flight
    /// until the returned guard is dropped.
    ///
    /// The count goes up before the flag is read, and [`Drain::start`] sets
    /// the flag before [`Drain::until_idle`] reads the count (both
    /// sequentially consistent), so a request is either refused or waited for.
    fn admit(&self) -> Option<InFlight> {
        self.0.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(Arc::clone(&self.0));
        (!self.is_draining()).then_some(guard)
    }

    /// Resolves once no admitted request is in flight, or after `limit`.
    /// Returns whether every request finished.
    pub async fn until_idle(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let in_flight = self.0.in_flight.load(Ordering::SeqCst);
            if in_flight == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                tracing::warn!(in_flight, "requests still in flight after the drain limit");
                return false;
            }
            sleep(DRAIN_POLL).await;
        }
    }
}

/// One admitted request; dropping it takes the request out of the count.
#[derive(Debug)]
struct InFlight(Arc<State>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Resolves when the server should stop taking connections: after the first
/// SIGTERM or SIGINT, once the admitted requests have finished (at most
/// [`DRAIN_LIMIT`]). A second signal cuts the wait short.
pub async fn on_signal(drain: Drain) {
    let Ok(mut first) = Signals::new() else {
        tracing::error!("cannot listen for SIGTERM and SIGINT; stop the server with SIGKILL");
        return std::future::pending().await;
    };
    first.next().await;
    tracing::info!("draining: refusing new requests, finishing the ones in flight");
    drain.start();
    let idle = std::pin::pin!(drain.until_idle(DRAIN_LIMIT));
    let again = std::pin::pin!(first.next());
    if let Either::Right(_) = select(idle, again).await {
        tracing::warn!("second signal: stopping without waiting for requests in flight");
    }
}

/// SIGTERM and SIGINT, as one stream.
struct Signals {
    term: signal::unix::Signal,
    int: signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        use signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) {
        let term = std::pin::pin!(self.term.recv());
        let int = std::pin::pin!(self.int.recv());
        select(term, int).await;
    }
}

/// Middleware: refuses requests with a 503 problem while draining, and keeps
/// admitted ones counted until their response body is dropped, which is
/// after its last byte was handed to the connection.
pub async fn admit(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<Tracked<impl MessageBody>>>, actix_web::Error> {
    let admitted = match req.app_data::<Data<AppState>>() {
        Some(state) => state.drain.admit(),
        None => return Err(ApiError::Internal("no application state".into()).into()),
    };
    let Some(guard) = admitted else {
        let mut response = actix_web::ResponseError::error_response(&ApiError::ShuttingDown);
        response
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
        return Ok(req.into_response(response).map_into_right_body());
    };
    let response = next.call(req).await?;
    Ok(response
        .map_body(|_, body| Tracked {
            body,
            _guard: guard,
        })
        .map_into_left_body())
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request counted as in flight.
    pub struct Tracked<B> {
        #[pin]
        body: B,
        _guard: InFlight,
    }
}

impl<B: MessageBody> MessageBody for Tracked<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.project().body.poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn a_request_is_either_refused_or_waited_for() {
        let drain = Drain::default();
        let admitted = drain.admit().expect("not draining yet");
        drain.start();
        assert!(drain.admit().is_none(), "draining refuses new requests");
        assert!(
            !drain.until_idle(Duration::from_millis(20)).await,
            "the admitted request is still in flight"
        );
        drop(admitted);
        assert!(drain.until_idle(Duration::from_millis(20)).await);
    }
}
