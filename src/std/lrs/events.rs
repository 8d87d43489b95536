//! The automatic-records hook. Other libraries call [`record`] when something
//! worth an audit trail happens; it is one atomic load when no LRS is
//! configured, and a channel send when one is (the statement is built, hashed,
//! spooled and synced on the recorder thread, off the path of the operation).
//!
//! ```ignore
//! use crate::library::lrs::events::{self, Event};
//! if events::enabled() {
//!     events::record(Event::PackageInstalled { name, version, hash, target });
//! }
//! ```
//! Checking `enabled()` first is optional; it saves building the event's
//! strings when recording is off. Statements of one process share one context
//! registration ([`registration`]). The verbs and IRIs are listed in docs/lrs.md.
use serde_json::Value as Json;
use sha2::Digest;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Something bioxen did that the audit trail records.
#[derive(Debug, Clone)]
#[allow(dead_code)] // constructed by the libraries that record (vm, sessions, pkg, xcpng)
pub enum Event {
    /// A VM was created. `kind`: "local", "xcpng", ...
    VmCreated { vm: String, kind: String },
    /// A VM was closed after `lifetime`; `closed_by` is "close", "collected"
    /// (garbage collection) or "exit" (still open when bioxen ended).
    VmClosed {
        vm: String,
        lifetime: Duration,
        closed_by: String,
    },
    /// Code ran in a VM. `failure` is the error kind when it failed.
    CodeExecuted {
        vm: String,
        code: String,
        success: bool,
        duration: Duration,
        output_bytes: u64,
        failure: Option<String>,
    },
    /// A global function of a VM was called (`vm:call`).
    FunctionCalled {
        vm: String,
        function: String,
        success: bool,
        duration: Duration,
        output_bytes: u64,
        failure: Option<String>,
    },
    /// A session was attached to a VM or guest (`target`).
    SessionAttached { session: String, target: String },
    /// A session was detached.
    SessionDetached { session: String, target: String },
    /// A package was installed into `target` ("host", a VM id, a guest...).
    PackageInstalled {
        name: String,
        version: String,
        hash: Option<String>,
        target: String,
    },
    /// A package was removed from `target`.
    PackageRemoved {
        name: String,
        version: String,
        target: String,
    },
    /// A guest was deployed on an XCP-ng pool from a template.
    GuestDeployed {
        pool: String,
        guest: String,
        template: String,
    },
    /// A pool guest was destroyed.
    GuestDestroyed { pool: String, guest: String },
}

pub const ADL: &str = "http://adlnet.gov/expapi/verbs/";
pub const BIOXEN: &str = "https://bioxen.dev/xapi/";

// 0: not looked at yet, 1: off, 2: on.
pub(super) static STATE: AtomicU8 = AtomicU8::new(0);

/// Whether automatic records are on (an LRS is configured and recording is
/// not switched off). The first call reads the configuration.
#[inline]
pub fn enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        2 => true,
        1 => false,
        _ => super::init_from_config(),
    }
}

/// Records an event (no-op when recording is off). Never blocks on I/O; the
/// event is in the journal (safe from a crash of bioxen) when this returns.
#[inline]
pub fn record(event: Event) {
    if enabled() {
        event.with_raw(super::submit_raw);
    }
}

/// Record kinds in the journal.
pub mod kind {
    pub const VM_CREATED: u8 = 1;
    pub const VM_CLOSED: u8 = 2;
    pub const CODE_EXECUTED: u8 = 3;
    pub const FUNCTION_CALLED: u8 = 4;
    pub const SESSION_ATTACHED: u8 = 5;
    pub const SESSION_DETACHED: u8 = 6;
    pub const PACKAGE_INSTALLED: u8 = 7;
    pub const PACKAGE_REMOVED: u8 = 8;
    pub const GUEST_DEPLOYED: u8 = 9;
    pub const GUEST_DESTROYED: u8 = 10;
}

fn nanos(d: &Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

impl Event {
    /// The event as a journal record: kind, strings, numbers.
    pub fn with_raw<R>(&self, f: impl FnOnce(u8, &[&[u8]], &[u64]) -> R) -> R {
        fn b(s: &String) -> &[u8] {
            s.as_bytes()
        }
        fn opt(s: &Option<String>) -> &[u8] {
            s.as_deref().unwrap_or("").as_bytes()
        }
        match self {
            Event::VmCreated { vm, kind: k } => f(kind::VM_CREATED, &[b(vm), b(k)], &[]),
            Event::VmClosed {
                vm,
                lifetime,
                closed_by,
            } => f(kind::VM_CLOSED, &[b(vm), b(closed_by)], &[nanos(lifetime)]),
            Event::CodeExecuted {
                vm,
                code,
                success,
                duration,
                output_bytes,
                failure,
            } => f(
                kind::CODE_EXECUTED,
                &[b(vm), b(code), opt(failure)],
                &[*success as u64, nanos(duration), *output_bytes],
            ),
            Event::FunctionCalled {
                vm,
                function,
                success,
                duration,
                output_bytes,
                failure,
            } => f(
                kind::FUNCTION_CALLED,
                &[b(vm), b(function), opt(failure)],
                &[*success as u64, nanos(duration), *output_bytes],
            ),
            Event::SessionAttached { session, target } => {
                f(kind::SESSION_ATTACHED, &[b(session), b(target)], &[])
            }
            Event::SessionDetached { session, target } => {
                f(kind::SESSION_DETACHED, &[b(session), b(target)], &[])
            }
            Event::PackageInstalled {
                name,
                version,
                hash,
                target,
            } => f(
                kind::PACKAGE_INSTALLED,
                &[b(name), b(version), b(target), opt(hash)],
                &[],
            ),
            Event::PackageRemoved {
                name,
                version,
                target,
            } => f(
                kind::PACKAGE_REMOVED,
                &[b(name), b(version), b(target)],
                &[],
            ),
            Event::GuestDeployed {
                pool,
                guest,
                template,
            } => f(kind::GUEST_DEPLOYED, &[b(pool), b(guest), b(template)], &[]),
            Event::GuestDestroyed { pool, guest } => {
                f(kind::GUEST_DESTROYED, &[b(pool), b(guest)], &[])
            }
        }
    }

    /// The event a journal record holds (None for an unknown or malformed one).
    pub fn from_record(kind: u8, strs: &[String], nums: &[u64]) -> Option<Event> {
        let s = |i: usize| strs.get(i).cloned();
        let opt = |i: usize| strs.get(i).filter(|x| !x.is_empty()).cloned();
        let n = |i: usize| nums.get(i).copied();
        Some(match kind {
            kind::VM_CREATED => Event::VmCreated {
                vm: s(0)?,
                kind: s(1)?,
            },
            kind::VM_CLOSED => Event::VmClosed {
                vm: s(0)?,
                closed_by: s(1)?,
                lifetime: Duration::from_nanos(n(0)?),
            },
            kind::CODE_EXECUTED => Event::CodeExecuted {
                vm: s(0)?,
                code: s(1)?,
                failure: opt(2),
                success: n(0)? != 0,
                duration: Duration::from_nanos(n(1)?),
                output_bytes: n(2)?,
            },
            kind::FUNCTION_CALLED => Event::FunctionCalled {
                vm: s(0)?,
                function: s(1)?,
                failure: opt(2),
                success: n(0)? != 0,
                duration: Duration::from_nanos(n(1)?),
                output_bytes: n(2)?,
            },
            kind::SESSION_ATTACHED => Event::SessionAttached {
                session: s(0)?,
                target: s(1)?,
            },
            kind::SESSION_DETACHED => Event::SessionDetached {
                session: s(0)?,
                target: s(1)?,
            },
            kind::PACKAGE_INSTALLED => Event::PackageInstalled {
                name: s(0)?,
                version: s(1)?,
                target: s(2)?,
                hash: opt(3),
            },
            kind::PACKAGE_REMOVED => Event::PackageRemoved {
                name: s(0)?,
                version: s(1)?,
                target: s(2)?,
            },
            kind::GUEST_DEPLOYED => Event::GuestDeployed {
                pool: s(0)?,
                guest: s(1)?,
                template: s(2)?,
            },
            kind::GUEST_DESTROYED => Event::GuestDestroyed {
                pool: s(0)?,
                guest: s(1)?,
            },
            _ => return None,
        })
    }
}

/// Who and which run a statement belongs to: the actor (compact JSON), the
/// context registration and the process id.
pub struct Origin {
    pub actor: String,
    pub registration: String,
    pub pid: u64,
}

impl Origin {
    /// This process, with `actor`.
    pub fn here(actor: String) -> Origin {
        Origin {
            actor,
            registration: registration().to_string(),
            pid: std::process::id() as u64,
        }
    }
}

/// The context registration shared by every statement of this process.
pub fn registration() -> &'static str {
    static REG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    REG.get_or_init(|| {
        std::env::var("BIOXEN_LRS_REGISTRATION")
            .ok()
            .filter(|r| uuid::Uuid::parse_str(r).is_ok())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
    })
}

/// `2026-11-21T12:40:01.123Z` for a time.
pub fn iso(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

pub fn now_iso() -> String {
    iso(SystemTime::now())
}

/// ISO 8601 duration with microseconds: `PT0.000125S`, `PT3.5S`.
pub fn iso_duration(d: Duration) -> String {
    let micros = d.as_micros();
    let (s, frac) = (micros / 1_000_000, micros % 1_000_000);
    if frac == 0 {
        format!("PT{s}S")
    } else {
        let f = format!("{frac:06}");
        format!("PT{s}.{}S", f.trim_end_matches('0'))
    }
}

/// Compact JSON written straight into a string: the recorder builds thousands
/// of statements a second, and a `serde_json::Value` tree costs four times more.
struct Out<'a>(&'a mut String);

enum X<'a> {
    S(&'a str),
    N(u64),
}

impl Out<'_> {
    fn raw(&mut self, s: &str) -> &mut Self {
        self.0.push_str(s);
        self
    }

    fn str(&mut self, s: &str) -> &mut Self {
        self.0.push('"');
        if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
            self.0.push_str(s); // nothing to escape: the usual case
            self.0.push('"');
            return self;
        }
        for c in s.chars() {
            match c {
                '"' => self.0.push_str("\\\""),
                '\\' => self.0.push_str("\\\\"),
                '\n' => self.0.push_str("\\n"),
                '\r' => self.0.push_str("\\r"),
                '\t' => self.0.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(self.0, "\\u{:04x}", c as u32);
                }
                c => self.0.push(c),
            }
        }
        self.0.push('"');
        self
    }

    fn verb(&mut self, base: &str, name: &str) -> &mut Self {
        self.raw("{\"id\":\"").raw(base);
        if base == BIOXEN {
            self.raw("verbs/");
        }
        self.raw(name)
            .raw("\",\"display\":{\"en-US\":\"")
            .raw(name)
            .raw("\"}}")
    }

    fn activity_id(&mut self, kind: &str, id: &str) -> &mut Self {
        self.raw("\"")
            .raw(BIOXEN)
            .raw("activities/")
            .raw(kind)
            .raw("/");
        for b in id.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                self.0.push(b as char);
            } else {
                let _ = write!(self.0, "%{b:02X}");
            }
        }
        self.raw("\"")
    }

    /// A full Activity (the statement's object).
    fn activity(&mut self, kind: &str, id: &str, name: &str) -> &mut Self {
        self.raw("{\"objectType\":\"Activity\",\"id\":")
            .activity_id(kind, id)
            .raw(",\"definition\":{\"type\":\"")
            .raw(BIOXEN)
            .raw("activity-types/")
            .raw(kind)
            .raw("\",\"name\":{\"en-US\":")
            .str(name)
            .raw("}}}")
    }

    fn extensions(&mut self, items: &[(&str, X)]) -> &mut Self {
        self.raw("{");
        for (i, (name, v)) in items.iter().enumerate() {
            if i > 0 {
                self.raw(",");
            }
            self.raw("\"")
                .raw(BIOXEN)
                .raw("extensions/")
                .raw(name)
                .raw("\":");
            match v {
                X::S(s) => {
                    self.str(s);
                }
                X::N(n) => {
                    let _ = write!(self.0, "{n}");
                }
            }
        }
        self.raw("}")
    }
}

use std::fmt::Write as _;

/// The xAPI statement (compact JSON) with id `id` for an event of `origin`, at `at`.
pub fn statement_json(event: &Event, origin: &Origin, id: &str, at: SystemTime) -> String {
    let mut s = String::with_capacity(1024);
    write_statement(&mut s, event, origin, id, at);
    s
}

/// Appends the statement (compact JSON, no newline) to `out`.
pub fn write_statement(out: &mut String, event: &Event, origin: &Origin, id: &str, at: SystemTime) {
    let mut o = Out(out);
    o.raw("{\"id\":\"")
        .raw(id)
        .raw("\",\"actor\":")
        .raw(&origin.actor)
        .raw(",\"verb\":");
    let parent: Option<(&str, &str)>;
    let mut ctx_ext: Vec<(&str, X)> = Vec::new();
    let digest;
    match event {
        Event::VmCreated { vm, kind } => {
            o.verb(ADL, "launched")
                .raw(",\"object\":")
                .activity("vm", vm, &format!("VM {vm}"));
            ctx_ext.push(("vm-kind", X::S(kind)));
            parent = None;
        }
        Event::VmClosed {
            vm,
            lifetime,
            closed_by,
        } => {
            o.verb(ADL, "terminated")
                .raw(",\"object\":")
                .activity("vm", vm, &format!("VM {vm}"));
            o.raw(",\"result\":{\"duration\":\"")
                .raw(&iso_duration(*lifetime))
                .raw("\"}");
            ctx_ext.push(("closed-by", X::S(closed_by)));
            parent = None;
        }
        Event::FunctionCalled {
            vm,
            function,
            success,
            duration,
            output_bytes,
            failure,
        } => {
            o.verb(ADL, if *success { "completed" } else { "failed" })
                .raw(",\"object\":")
                .activity("function", function, &format!("function {function}"))
                .raw(",\"result\":{\"success\":")
                .raw(if *success { "true" } else { "false" })
                .raw(",\"completion\":true,\"duration\":\"")
                .raw(&iso_duration(*duration))
                .raw("\",\"extensions\":");
            let mut ext = vec![
                ("function", X::S(function)),
                ("output-bytes", X::N(*output_bytes)),
            ];
            if let Some(kind) = failure {
                ext.push(("failure-kind", X::S(kind)));
            }
            o.extensions(&ext).raw("}");
            parent = Some(("vm", vm));
        }
        Event::CodeExecuted {
            vm,
            code,
            success,
            duration,
            output_bytes,
            failure,
        } => {
            digest = hex(&sha2::Sha256::digest(code.as_bytes()));
            o.verb(ADL, if *success { "completed" } else { "failed" })
                .raw(",\"object\":")
                .activity("code", &digest, &format!("code sha256:{}", &digest[..12]))
                .raw(",\"result\":{\"success\":")
                .raw(if *success { "true" } else { "false" })
                .raw(",\"completion\":true,\"duration\":\"")
                .raw(&iso_duration(*duration))
                .raw("\",\"extensions\":");
            let mut ext = vec![
                ("code-sha256", X::S(&digest)),
                ("code-bytes", X::N(code.len() as u64)),
                ("output-bytes", X::N(*output_bytes)),
            ];
            if let Some(kind) = failure {
                ext.push(("failure-kind", X::S(kind)));
            }
            o.extensions(&ext).raw("}");
            parent = Some(("vm", vm));
        }
        Event::SessionAttached { session, target } | Event::SessionDetached { session, target } => {
            let verb = if matches!(event, Event::SessionAttached { .. }) {
                "attached"
            } else {
                "detached"
            };
            o.verb(BIOXEN, verb).raw(",\"object\":").activity(
                "session",
                session,
                &format!("session {session}"),
            );
            parent = Some(("target", target));
        }
        Event::PackageInstalled {
            name,
            version,
            hash,
            target,
        } => {
            o.verb(BIOXEN, "installed")
                .raw(",\"object\":")
                .activity("package", name, name);
            ctx_ext.push(("package-version", X::S(version)));
            if let Some(h) = hash {
                ctx_ext.push(("package-hash", X::S(h)));
            }
            parent = Some(("target", target));
        }
        Event::PackageRemoved {
            name,
            version,
            target,
        } => {
            o.verb(BIOXEN, "removed")
                .raw(",\"object\":")
                .activity("package", name, name);
            ctx_ext.push(("package-version", X::S(version)));
            parent = Some(("target", target));
        }
        Event::GuestDeployed {
            pool,
            guest,
            template,
        } => {
            o.verb(BIOXEN, "deployed").raw(",\"object\":").activity(
                "guest",
                guest,
                &format!("guest {guest}"),
            );
            ctx_ext.push(("template", X::S(template)));
            parent = Some(("pool", pool));
        }
        Event::GuestDestroyed { pool, guest } => {
            o.verb(BIOXEN, "destroyed").raw(",\"object\":").activity(
                "guest",
                guest,
                &format!("guest {guest}"),
            );
            parent = Some(("pool", pool));
        }
    }
    o.raw(",\"context\":{\"registration\":\"")
        .raw(&origin.registration)
        .raw(concat!(
            "\",\"platform\":\"bioxen ",
            env!("CARGO_PKG_VERSION"),
            "\""
        ));
    if let Some((kind, id)) = parent {
        o.raw(",\"contextActivities\":{\"parent\":[{\"objectType\":\"Activity\",\"id\":")
            .activity_id(kind, id)
            .raw("}]}");
    }
    ctx_ext.insert(0, ("pid", X::N(origin.pid)));
    o.raw(",\"extensions\":").extensions(&ctx_ext).raw("}");
    o.raw(",\"timestamp\":\"").raw(&iso(at)).raw("\"}");
}

/// The statement as a JSON value (tests and tools).
#[allow(dead_code)]
pub fn statement(event: &Event, actor: &Json, at: SystemTime) -> Json {
    let id = uuid::Uuid::new_v4().to_string();
    serde_json::from_str(&statement_json(
        event,
        &Origin::here(actor.to_string()),
        &id,
        at,
    ))
    .expect("valid JSON")
}

fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_and_durations() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_265_201_123);
        assert_eq!(iso(t), "2026-11-21T12:46:41.123Z");
        assert_eq!(iso(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_duration(Duration::from_micros(125)), "PT0.000125S");
        assert_eq!(iso_duration(Duration::from_millis(3500)), "PT3.5S");
        assert_eq!(iso_duration(Duration::from_secs(2)), "PT2S");
    }

    fn ext(name: &str) -> String {
        format!("{BIOXEN}extensions/{name}")
    }

    #[test]
    fn every_event_is_valid_json_even_with_odd_names() {
        let odd = "we\"ird\\ name\n\u{1}é/?".to_string();
        let events = [
            Event::VmCreated {
                vm: odd.clone(),
                kind: odd.clone(),
            },
            Event::VmClosed {
                vm: odd.clone(),
                lifetime: Duration::from_secs(3),
                closed_by: odd.clone(),
            },
            Event::FunctionCalled {
                vm: odd.clone(),
                function: odd.clone(),
                success: false,
                duration: Duration::from_secs(1),
                output_bytes: 1,
                failure: Some(odd.clone()),
            },
            Event::SessionAttached {
                session: odd.clone(),
                target: odd.clone(),
            },
            Event::SessionDetached {
                session: odd.clone(),
                target: odd.clone(),
            },
            Event::PackageInstalled {
                name: odd.clone(),
                version: odd.clone(),
                hash: Some(odd.clone()),
                target: odd.clone(),
            },
            Event::PackageRemoved {
                name: odd.clone(),
                version: odd.clone(),
                target: odd.clone(),
            },
            Event::GuestDeployed {
                pool: odd.clone(),
                guest: odd.clone(),
                template: odd.clone(),
            },
            Event::GuestDestroyed {
                pool: odd.clone(),
                guest: odd.clone(),
            },
        ];
        for ev in &events {
            let back = ev.with_raw(|k, strs, nums| {
                let strs: Vec<String> = strs
                    .iter()
                    .map(|s| String::from_utf8(s.to_vec()).unwrap())
                    .collect();
                Event::from_record(k, &strs, nums).unwrap()
            });
            assert_eq!(format!("{back:?}"), format!("{ev:?}"));
            let s = statement(ev, &serde_json::json!({"mbox": "mailto:a@b.c"}), UNIX_EPOCH);
            assert_eq!(
                s["object"]["definition"]["name"]["en-US"]
                    .as_str()
                    .map(|n| n.contains(&odd)),
                Some(true),
                "{s}"
            );
            assert!(!s["object"]["id"].as_str().unwrap().contains(' '), "{s}");
            assert_eq!(s["context"]["registration"], registration());
        }
    }

    #[test]
    fn code_statements_carry_the_hash_and_outcome() {
        let ev = Event::CodeExecuted {
            vm: "v1".into(),
            code: "return 1".into(),
            success: false,
            duration: Duration::from_millis(2),
            output_bytes: 3,
            failure: Some("Runtime".into()),
        };
        let s = statement(
            &ev,
            &serde_json::json!({"mbox": "mailto:a@b.c"}),
            UNIX_EPOCH,
        );
        assert_eq!(s["verb"]["id"], "http://adlnet.gov/expapi/verbs/failed");
        assert_eq!(s["result"]["success"], false);
        let e = &s["result"]["extensions"];
        assert_eq!(e[ext("failure-kind")], "Runtime");
        assert_eq!(e[ext("code-sha256")].as_str().unwrap().len(), 64);
        assert_eq!(
            s["context"]["contextActivities"]["parent"][0]["id"],
            "https://bioxen.dev/xapi/activities/vm/v1"
        );
    }
}
