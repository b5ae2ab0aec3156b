//! The control API of the unix socket, shared by the daemon and the CLI: one JSON
//! request line, one JSON answer line, both carrying the protocol version [`VERSION`]
//! so a CLI and a daemon of different releases refuse each other clearly instead of
//! misreading a field.
//!
//! ```text
//! → {"v":1,"cmd":"drain","member":3,"deadline_s":600}
//! ← {"v":1,"ok":true,"result":"member 3: draining"}
//! → {"v":1,"cmd":"drain","member":3,"migrate":{"batch":50,"interval_ms":1000}}
//! ← {"v":1,"ok":true,"result":{"message":"member 3: draining","migration":{...}}}
//! ```
//!
//! Fields added later are optional, so the version stays: a daemon that predates one
//! ignores it, and the CLI tells that from the answer (a drain without `migration`).
//!
//! `status` may be asked by root and by the configured `[status] group`; every other
//! command changes the daemon and only root may send it.

use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;

/// What a request asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Command {
    /// The daemon's state: roles, members, counters, config generation.
    Status,
    /// Re-read the configuration file and apply it all or nothing.
    Reload,
    /// Stop new redirects to `member` at the next table rebuild; with a deadline, the
    /// daemon logs at that time how many SAs the member still holds. With `migrate`
    /// (only on the member itself), also move its established IKE SAs to the other
    /// members; the answer is then an object with the migration's first progress.
    Drain {
        member: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline_s: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        migrate: Option<Migrate>,
    },
    /// Give `member` new clients again.
    Undrain { member: u32 },
    /// Exit leaving the fast path and the VIPs to the next `ikelb run` (a restart or
    /// an upgrade without a gap); refused unless the configuration file is valid.
    Restart,
}

/// How `drain --migrate` moves the SAs: `batch` redirects every `interval_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migrate {
    pub batch: u32,
    pub interval_ms: u64,
}

impl Command {
    /// Whether only root may send it (it changes the daemon).
    pub fn changes_state(&self) -> bool {
        !matches!(self, Command::Status)
    }
}

/// One request line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub v: u32,
    #[serde(flatten)]
    pub cmd: Command,
}

/// One answer line: `result` when `ok`, else `error`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub v: u32,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub result: Value,
}

impl Response {
    pub fn ok(result: Value) -> Self {
        Response {
            v: VERSION,
            ok: true,
            error: None,
            result,
        }
    }

    pub fn error(msg: impl Into<String>) -> Self {
        Response {
            v: VERSION,
            ok: false,
            error: Some(msg.into()),
            result: Value::Null,
        }
    }

    /// The answer line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_else(|e| {
            format!("{{\"v\":{VERSION},\"ok\":false,\"error\":\"{e}\"}}").into_bytes()
        });
        v.push(b'\n');
        v
    }
}

/// Parses a request line; the error is the answer to send back.
pub fn parse_request(line: &str) -> Result<Request, Response> {
    let raw: Value = serde_json::from_str(line)
        .map_err(|e| Response::error(format!("not a JSON request: {e}")))?;
    match raw.get("v").and_then(Value::as_u64) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => {
            return Err(Response::error(format!(
                "protocol version {v} is not spoken here (this daemon speaks {VERSION})"
            )));
        }
        None => return Err(Response::error("request without a protocol version `v`")),
    }
    serde_json::from_value(raw).map_err(|e| Response::error(format!("bad request: {e}")))
}

/// Sends `cmd` to the daemon at `socket` and returns its answer. A reload may take as
/// long as reading certificates does, hence the generous timeout.
pub fn request(socket: &Path, cmd: Command) -> io::Result<Response> {
    let mut s = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", socket.display())))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut line = serde_json::to_vec(&Request { v: VERSION, cmd }).map_err(io::Error::other)?;
    line.push(b'\n');
    s.write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer)?;
    let r: Response = serde_json::from_str(&answer)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("answer: {e}")))?;
    if r.v != VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the daemon speaks protocol {}, this CLI {VERSION}", r.v),
        ));
    }
    Ok(r)
}

/// [`request`], with a refused command as an error.
pub fn call(socket: &Path, cmd: Command) -> io::Result<Value> {
    let r = request(socket, cmd)?;
    if r.ok {
        Ok(r.result)
    } else {
        Err(io::Error::other(r.error.unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_carry_the_version() {
        for cmd in [
            Command::Status,
            Command::Reload,
            Command::Drain {
                member: 3,
                deadline_s: Some(600),
                migrate: None,
            },
            Command::Drain {
                member: 4,
                deadline_s: None,
                migrate: Some(Migrate {
                    batch: 50,
                    interval_ms: 1000,
                }),
            },
            Command::Undrain { member: 3 },
            Command::Restart,
        ] {
            let line = serde_json::to_string(&Request {
                v: VERSION,
                cmd: cmd.clone(),
            })
            .unwrap();
            assert_eq!(parse_request(&line).unwrap().cmd, cmd, "{line}");
        }
        let line = serde_json::to_string(&Request {
            v: VERSION,
            cmd: Command::Drain {
                member: 3,
                deadline_s: Some(600),
                migrate: None,
            },
        })
        .unwrap();
        // Without `migrate` the line is what earlier releases sent.
        assert_eq!(line, r#"{"v":1,"cmd":"drain","member":3,"deadline_s":600}"#);
        let line = r#"{"v":1,"cmd":"drain","member":3,"migrate":{"batch":5,"interval_ms":200}}"#;
        assert_eq!(
            parse_request(line).unwrap().cmd,
            Command::Drain {
                member: 3,
                deadline_s: None,
                migrate: Some(Migrate {
                    batch: 5,
                    interval_ms: 200
                }),
            }
        );
    }

    #[test]
    fn bad_requests_are_answered_with_why() {
        let e = |l: &str| parse_request(l).unwrap_err().error.unwrap();
        assert!(e("status").contains("not a JSON"));
        assert!(e(r#"{"cmd":"status"}"#).contains("version"));
        assert!(e(r#"{"v":2,"cmd":"status"}"#).contains("version 2"));
        assert!(e(r#"{"v":1,"cmd":"explode"}"#).contains("bad request"));
        assert!(e(r#"{"v":1,"cmd":"drain"}"#).contains("member"));
        assert!(!Command::Status.changes_state());
        assert!(Command::Reload.changes_state());
    }

    #[test]
    fn responses_serialize_compactly() {
        let ok = String::from_utf8(Response::ok(serde_json::json!({"a": 1})).to_line()).unwrap();
        assert_eq!(ok, "{\"v\":1,\"ok\":true,\"result\":{\"a\":1}}\n");
        let err = String::from_utf8(Response::error("no").to_line()).unwrap();
        assert_eq!(err, "{\"v\":1,\"ok\":false,\"error\":\"no\"}\n");
    }
}
