//! W3C trace context (`traceparent`) in and out of Bulwark.
//!
//! The library emits plain `tracing` spans and knows nothing of
//! OpenTelemetry; the binary does. So the binary installs a [`Propagator`]
//! here when it exports traces, and the front doors and the upstream calls
//! go through these functions. Without one, an incoming `traceparent` is
//! ignored and none is sent: a trace id naming no exported span would
//! mislead whoever follows it.

use std::sync::OnceLock;

use tracing::Span;

/// The W3C Trace Context header.
pub const TRACEPARENT: &str = "traceparent";

/// A version-00 `traceparent` is 55 bytes; later versions may append
/// fields. Anything much longer is not one, and is not parsed.
pub const MAX_TRACEPARENT_BYTES: usize = 256;

/// Reads and writes `traceparent` for the binary's tracing backend.
pub trait Propagator: Send + Sync + 'static {
    /// Makes the trace `traceparent` names the parent of `span`; an
    /// invalid value is ignored.
    fn set_parent(&self, span: &Span, traceparent: &str);
    /// The `traceparent` naming `span`, when it is part of an exported trace.
    fn traceparent(&self, span: &Span) -> Option<String>;
}

static PROPAGATOR: OnceLock<Box<dyn Propagator>> = OnceLock::new();

/// Installs the process's propagator; false if one already was.
pub fn install(propagator: Box<dyn Propagator>) -> bool {
    PROPAGATOR.set(propagator).is_ok()
}

/// Makes a client's `traceparent` the parent of `span`, when it is short
/// enough to be one and a propagator is installed.
pub fn set_parent(span: &Span, traceparent: &[u8]) {
    if traceparent.len() > MAX_TRACEPARENT_BYTES {
        return;
    }
    if let (Some(propagator), Ok(traceparent)) =
        (PROPAGATOR.get(), std::str::from_utf8(traceparent))
    {
        propagator.set_parent(span, traceparent);
    }
}

/// The `traceparent` to send upstream from within `span`.
pub fn traceparent(span: &Span) -> Option<String> {
    PROPAGATOR.get()?.traceparent(span)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

    /// Records what reaches the backend; sends nothing upstream, so that
    /// the other tests in this binary are unaffected.
    struct Recording;

    impl Propagator for Recording {
        fn set_parent(&self, _span: &Span, traceparent: &str) {
            SEEN.lock().unwrap().push(traceparent.to_string());
        }

        fn traceparent(&self, _span: &Span) -> Option<String> {
            None
        }
    }

    #[test]
    fn only_a_bounded_utf8_traceparent_reaches_the_backend() {
        install(Box::new(Recording));
        let span = Span::none();
        let valid = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        set_parent(&span, "0".repeat(MAX_TRACEPARENT_BYTES + 1).as_bytes());
        set_parent(&span, b"00-\xff\xfe");
        set_parent(&span, valid.as_bytes());
        assert_eq!(*SEEN.lock().unwrap(), [valid]);
    }
}
