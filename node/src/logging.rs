//! The process's log on stderr: text for people (colours only on a terminal, never escape codes
//! in a file or the journal) or JSON lines for a collector (`[log] format`), with repeats of one
//! warning or error held back: a dead follower makes openraft report it twice a second, which
//! was 230 MB a day on the leader. Of each such event at most `REPEATS_SHOWN` are written per
//! `REPEAT_WINDOW`; a line at the end of the window says how many more there were.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use config::LogFormat;
use tracing::callsite::Identifier;
use tracing::{Event, Level, Metadata};
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Warnings and errors from one place in the code written per window; the rest are counted.
pub const REPEATS_SHOWN: u32 = 5;
/// How long a window of repeats lasts, and how often the held-back counts are reported.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(60);
/// What is logged when `RUST_LOG` does not say.
const DEFAULT_FILTER: &str = "info,openraft=warn";
/// The target of the report of held-back events, which is never held back itself.
const REPORT_TARGET: &str = "xietong::log_repeats";

/// Events held back since the process started (`xietong_log_events_held_back_total`).
static HELD_BACK_TOTAL: AtomicU64 = AtomicU64::new(0);

pub fn held_back_total() -> u64 {
    HELD_BACK_TOTAL.load(Ordering::Relaxed)
}

/// Installs the process's logger. Call once, first thing.
pub fn init(format: LogFormat) {
    let repeats = Repeats::default();
    let env_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let ansi = std::io::stderr().is_terminal();
    let base = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    let layer = match format {
        LogFormat::Text => base.boxed(),
        // Where each event comes from, so a collector can group repeats as this filter does.
        LogFormat::Json => base.json().flatten_event(true).with_file(true).with_line_number(true).boxed(),
    };
    tracing_subscriber::registry().with(env_filter).with(layer.with_filter(repeats.clone())).init();
    repeats.report_every(REPEAT_WINDOW);
}

/// Per place in the code (a callsite), this window's warnings and errors: how many were
/// written, how many held back.
#[derive(Clone, Default)]
struct Repeats {
    windows: Arc<Mutex<HashMap<Identifier, Window>>>,
}

struct Window {
    metadata: &'static Metadata<'static>,
    started: Instant,
    shown: u32,
    held_back: u64,
}

impl Repeats {
    /// Whether an event from `metadata`'s callsite is written now.
    fn admit(&self, metadata: &'static Metadata<'static>, now: Instant) -> bool {
        if *metadata.level() > Level::WARN || metadata.target() == REPORT_TARGET {
            return true; // info and below: not an alarm, never held back
        }
        let mut windows = self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let window =
            windows.entry(metadata.callsite()).or_insert(Window { metadata, started: now, shown: 0, held_back: 0 });
        if now.duration_since(window.started) >= REPEAT_WINDOW && window.held_back == 0 {
            // A quiet callsite starts a new window at once; one with held-back events waits
            // for the report, which says how many there were.
            window.started = now;
            window.shown = 0;
        }
        if window.shown < REPEATS_SHOWN {
            window.shown += 1;
            true
        } else {
            window.held_back += 1;
            HELD_BACK_TOTAL.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// The callsites that held events back since the last report, with their counts; their
    /// windows start again.
    fn take_held_back(&self, now: Instant) -> Vec<(&'static Metadata<'static>, u64)> {
        let mut windows = self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut report = Vec::new();
        for window in windows.values_mut() {
            if window.held_back > 0 {
                report.push((window.metadata, window.held_back));
                window.held_back = 0;
                window.started = now;
                window.shown = 0;
            }
        }
        report
    }

    /// Reports the held-back counts from a thread of its own (an event logged from inside the
    /// subscriber would re-enter it).
    fn report_every(self, interval: Duration) {
        let spawned = std::thread::Builder::new().name("log-repeats".into()).spawn(move || loop {
            std::thread::sleep(interval);
            for (metadata, count) in self.take_held_back(Instant::now()) {
                tracing::warn!(
                    target: REPORT_TARGET,
                    held_back = count,
                    of_target = metadata.target(),
                    at = %format_args!("{}:{}", metadata.file().unwrap_or("?"), metadata.line().unwrap_or(0)),
                    "repeated log events not written in the last {} s",
                    interval.as_secs()
                );
            }
        });
        if let Err(error) = spawned {
            tracing::warn!(%error, "no thread for reporting held-back log events: repeats are counted, never reported");
        }
    }
}

impl<S> Filter<S> for Repeats {
    fn enabled(&self, _metadata: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &Event<'_>, _cx: &Context<'_, S>) -> bool {
        self.admit(event.metadata(), Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warning() -> &'static Metadata<'static> {
        struct Callsite;
        static CALLSITE: Callsite = Callsite;
        static META: Metadata<'static> = tracing::metadata! {
            name: "repeat",
            target: "test",
            level: Level::WARN,
            fields: &[],
            callsite: &CALLSITE,
            kind: tracing::metadata::Kind::EVENT,
        };
        impl tracing::callsite::Callsite for Callsite {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &Metadata<'_> {
                &META
            }
        }
        &META
    }

    #[test]
    fn repeats_beyond_the_allowance_are_counted_and_reported_once_per_window() {
        let repeats = Repeats::default();
        let start = Instant::now();
        let shown = (0..100).filter(|_| repeats.admit(warning(), start)).count();
        assert_eq!(shown, REPEATS_SHOWN as usize);
        // Still inside the window: held back, even past its end until reported.
        assert!(!repeats.admit(warning(), start + REPEAT_WINDOW / 2));
        assert!(!repeats.admit(warning(), start + REPEAT_WINDOW * 2));
        let report = repeats.take_held_back(start + REPEAT_WINDOW * 2);
        assert_eq!(report.len(), 1);
        assert_eq!(report[0].1, 100 - REPEATS_SHOWN as u64 + 2);
        assert!(repeats.take_held_back(start + REPEAT_WINDOW * 2).is_empty(), "each count is reported once");
        // After the report the allowance starts again.
        assert!(repeats.admit(warning(), start + REPEAT_WINDOW * 2));
    }

    #[test]
    fn a_quiet_callsite_gets_a_new_allowance_after_its_window() {
        let repeats = Repeats::default();
        let start = Instant::now();
        for _ in 0..REPEATS_SHOWN {
            assert!(repeats.admit(warning(), start));
        }
        assert!(repeats.admit(warning(), start + REPEAT_WINDOW), "nothing was held back: a new window");
    }
}
