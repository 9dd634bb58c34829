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
use tracing_subscriber::filter::{FilterFn, Filtered, filter_fn};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

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

/// [`Quiet`], seeing only actix's errors: whatever the log's own filter
/// lets through (`RUST_LOG=actix_http=off` too), malformed requests are
/// counted, and no other event is made for it.
pub fn layer<S>(counted: IntCounter) -> Filtered<Quiet, FilterFn, S>
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    Quiet(counted).with_filter(filter_fn(|metadata| {
        *metadata.level() == Level::ERROR && metadata.target() == DISPATCHER
    }))
}

/// Counts actix's log events of malformed requests (in
/// [`struct@MALFORMED`], as the server makes it), and drops them.
pub struct Quiet(IntCounter);

impl<S: Subscriber> Layer<S> for Quiet {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        let metadata = event.metadata();
        if *metadata.level() != Level::ERROR || metadata.target() != DISPATCHER {
            return true;
        }
        let mut message = Message(false);
        event.record(&mut message);
        if message.0 {
            self.0.inc();
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

    /// Logs through the stack `main` builds, filtered by `directives`:
    /// what was written, and how many malformed requests were counted.
    fn logged(directives: &str) -> (String, u64) {
        let written = Written::default();
        let writer = written.clone();
        let counted = IntCounter::new("malformed", "test").unwrap();
        let subscriber = tracing_subscriber::registry()
            .with(layer(counted.clone()))
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(move || writer.clone())
                    .with_filter(tracing_subscriber::EnvFilter::new(directives)),
            );
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
        (log, counted.get())
    }

    #[test]
    fn a_malformed_request_is_counted_not_logged_and_other_errors_still_are() {
        let (log, counted) = logged("info");
        assert!(!log.contains("invalid Header"), "{log}");
        assert!(log.contains("broken pipe"), "{log}");
        assert!(log.contains("not actix's"), "{log}");
        assert_eq!(counted, 1);
    }

    #[test]
    fn a_malformed_request_is_counted_though_the_log_leaves_actix_out() {
        let (log, counted) = logged("warn,actix_http=off");
        assert!(!log.contains("broken pipe"), "{log}");
        assert!(log.contains("not actix's"), "{log}");
        assert_eq!(counted, 1);
    }
}
