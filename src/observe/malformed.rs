//! Requests too malformed to parse as HTTP. Actix answers them 400 (431 for
//! a head too large), with no body, before any route or middleware of ours
//! sees them, and logs each at ERROR (`actix_http::h1::dispatcher`: "stream
//! error: request parse error: invalid Header provided"). They are the
//! client's fault, not the server's, and anyone could fill the log with
//! them. So they are counted in `frontpage_malformed_requests_total` and
//! left out of the log.

use std::fmt;
use std::sync::LazyLock;

use prometheus::IntCounter;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Where actix logs a connection's end with an error.
const DISPATCHER: &str = "actix_http::h1::dispatcher";
/// How it starts the message of a request it could not parse.
const PARSE_ERROR: &str = "stream error: request parse error";

/// Malformed requests seen by this process (every server in it).
pub static MALFORMED: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new(
        "frontpage_malformed_requests_total",
        "Requests that were not valid HTTP (a bad header line: 400; a head too \
         large: 431), answered before routing and not logged.",
    )
    .expect("a valid metric")
});

/// Counts actix's log events of malformed requests, and drops them.
pub struct Quiet;

impl<S: Subscriber> Layer<S> for Quiet {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        let metadata = event.metadata();
        if *metadata.level() != Level::ERROR || metadata.target() != DISPATCHER {
            return true;
        }
        let mut message = Message(false);
        event.record(&mut message);
        if message.0 {
            MALFORMED.inc();
        }
        !message.0
    }
}

/// Whether an event's message is [`PARSE_ERROR`]'s.
struct Message(bool);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}").starts_with(PARSE_ERROR);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// What a subscriber wrote.
    #[derive(Clone, Default)]
    struct Written(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Written {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_malformed_request_is_counted_not_logged_and_other_errors_still_are() {
        let written = Written::default();
        let writer = written.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .finish()
            .with(Quiet);
        let before = MALFORMED.get();
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(
                target: "actix_http::h1::dispatcher",
                "stream error: {}",
                "request parse error: invalid Header provided"
            );
            tracing::error!(target: "actix_http::h1::dispatcher", "stream error: I/O error: broken pipe");
            tracing::error!(target: "frontpage", "stream error: request parse error: not actix's");
        });
        let log = String::from_utf8(written.0.lock().unwrap().clone()).unwrap();
        assert!(!log.contains("invalid Header"), "{log}");
        assert!(log.contains("broken pipe"), "{log}");
        assert!(log.contains("not actix's"), "{log}");
        // Other tests in this process may count theirs too.
        assert!(MALFORMED.get() > before);
    }
}
