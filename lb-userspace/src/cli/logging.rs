//! The log subscriber on stderr: colours only on a terminal, and under systemd (stderr
//! being the journal's stream) no timestamps, since the journal stamps every line.

use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;

/// How log lines look.
#[derive(Debug, PartialEq, Eq)]
struct Style {
    ansi: bool,
    time: bool,
}

fn style(journal: bool, terminal: bool, no_color: bool) -> Style {
    Style {
        ansi: terminal && !journal && !no_color,
        time: !journal,
    }
}

/// `JOURNAL_STREAM` is `<device>:<inode>` of the stream systemd connected.
fn parse_stream(v: &str) -> Option<(u64, u64)> {
    let (dev, ino) = v.split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

/// True when stderr is still the journal stream that `JOURNAL_STREAM` names (a process
/// started from a service inherits the variable even where its stderr goes elsewhere).
fn stderr_is_journal() -> bool {
    let Some((dev, ino)) = std::env::var("JOURNAL_STREAM")
        .ok()
        .as_deref()
        .and_then(parse_stream)
    else {
        return false;
    };
    // The descriptor's own inode (for a socket too), not a path it was opened by.
    std::fs::metadata("/proc/self/fd/2").is_ok_and(|st| st.dev() == dev && st.ino() == ino)
}

/// Installs the subscriber: `RUST_LOG` filters (default `info`), `NO_COLOR` turns
/// colours off.
pub fn init() {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let s = style(
        stderr_is_journal(),
        std::io::stderr().is_terminal(),
        no_color,
    );
    let b = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(s.ansi);
    if s.time {
        b.init();
    } else {
        b.without_time().init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_gets_neither_colours_nor_timestamps() {
        assert_eq!(
            style(true, false, false),
            Style {
                ansi: false,
                time: false
            }
        );
        // A journal stream is no terminal, but the variable decides even if it were.
        assert!(!style(true, true, false).ansi);
        assert_eq!(
            style(false, true, false),
            Style {
                ansi: true,
                time: true
            }
        );
        assert!(!style(false, true, true).ansi);
        // A log file: no escape codes in it.
        assert_eq!(
            style(false, false, false),
            Style {
                ansi: false,
                time: true
            }
        );
    }

    #[test]
    fn journal_stream_variable() {
        assert_eq!(parse_stream("8:123456"), Some((8, 123_456)));
        assert_eq!(parse_stream("8"), None);
        assert_eq!(parse_stream("a:1"), None);
        assert_eq!(parse_stream(""), None);
    }
}
