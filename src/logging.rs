//! `-v` logging: tracing events of this crate to stderr, nothing else.
//!
//! Levels: 0 warnings only; 1 adds a summary of the requests sent (counts by
//! verb) and major steps; 2 adds one line per HTTP request (method, path and
//! query, status, time); 3 and more add everything this crate traces.
//!
//! The filter names only this crate. kube, hyper, h2, rustls and tower are
//! never enabled at any level, whatever `-v` or `RUST_LOG` say, because their
//! debug and trace output can include request headers, and with them bearer
//! tokens. Our own request log sits outside kube's auth layer and never sees
//! headers at all.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The filter directive for a verbosity level.
pub fn filter_directive(verbosity: u8) -> String {
    let level = match verbosity {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // "off" first: every other crate stays silent.
    format!("off,{}={level}", env!("CARGO_CRATE_NAME"))
}

/// Install the subscriber, writing to `writer` (the output's stderr). Call
/// once, before any work.
pub fn init<W>(verbosity: u8, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::builder().parse_lossy(filter_directive(verbosity));
    // A second initialisation (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(verbosity >= 3)
        .with_timer(tracing_subscriber::fmt::time::uptime())
        .with_ansi(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_level_enables_the_http_or_tls_crates() {
        for verbosity in 0..=10 {
            let directive = filter_directive(verbosity);
            assert!(directive.starts_with("off,"), "{directive}");
            for noisy in ["kube", "hyper", "h2", "rustls", "tower", "reqwest"] {
                assert!(!directive.contains(&format!("{noisy}=")), "{directive}");
            }
        }
    }

    #[test]
    fn higher_levels_show_more_of_this_crate() {
        assert!(filter_directive(0).ends_with("=warn"));
        assert!(filter_directive(1).ends_with("=info"));
        assert!(filter_directive(2).ends_with("=debug"));
        assert!(filter_directive(9).ends_with("=trace"));
    }
}
