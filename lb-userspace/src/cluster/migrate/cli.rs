//! The CLI side of `ikelb drain <member> --migrate`: the request to the member's own
//! control socket, then the migration's progress from its `ikelb status`, one line
//! per change, until it ends.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::{Progress, State};
use crate::control::{self, Command, Migrate};

/// How often the CLI reads the progress while following.
const POLL: Duration = Duration::from_millis(200);

/// Sends the drain with `migrate` to `socket` and prints the first progress; with
/// `follow`, prints every change until the migration ends. An error when it could not
/// start, stopped or failed, or left SAs behind.
pub fn drain_and_migrate(
    socket: &Path,
    member: u32,
    deadline_s: Option<u64>,
    migrate: Migrate,
    follow: bool,
) -> Result<()> {
    let r = control::call(
        socket,
        Command::Drain {
            member,
            deadline_s,
            migrate: Some(migrate),
        },
    )
    .with_context(|| format!("{}", socket.display()))?;
    let mut last = first_progress(&r)?;
    println!("{}", r["message"].as_str().unwrap_or_default());
    println!("{}", last.summary());
    if !follow {
        return Ok(());
    }
    while last.state == State::Running {
        std::thread::sleep(POLL);
        let st = crate::status::query(socket).with_context(|| format!("{}", socket.display()))?;
        let Some(p) = st.cluster.and_then(|c| c.migration) else {
            bail!("the migration is gone from the daemon's status (undrained?)");
        };
        if p != last {
            println!("{}", p.summary());
        }
        last = p;
    }
    match last.state {
        State::Done if last.failed == 0 => Ok(()),
        State::Done => bail!(
            "{} of {} IKE SAs did not move (their peers ignored the redirect or do not \
             support it; charon's log names them)",
            last.failed,
            last.total
        ),
        s => bail!("the migration {}", s.name()),
    }
}

/// The progress in a drain answer; an answer without it comes from a daemon that
/// predates `--migrate` and only drained.
fn first_progress(r: &Value) -> Result<Progress> {
    match r.get("migration") {
        Some(p) => Ok(serde_json::from_value(p.clone())?),
        None => bail!(
            "the daemon drained the member but started no migration: it predates \
             `--migrate` (answer: {r})"
        ),
    }
}

/// `--interval`: a number with `ms`, `s` or `m` (`500ms`, `1s`, `1.5s`, `2m`).
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}`: a number with ms, s or m, e.g. 500ms or 1s"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("`{s}`: the unit must be ms, s or m")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_interval("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_interval("2m"), Ok(Duration::from_secs(120)));
        for bad in ["", "1", "s", "1h", "-1s", "1..2s", "1e9999s"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_answer_without_migration_is_an_older_daemon() {
        let e = first_progress(&serde_json::json!("member 3: draining")).unwrap_err();
        assert!(e.to_string().contains("predates"), "{e}");
        let p = Progress {
            total: 4,
            ..Progress::default()
        };
        let v = serde_json::json!({"message": "m", "migration": p});
        assert_eq!(first_progress(&v).unwrap(), p);
    }
}
