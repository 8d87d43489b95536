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
use serde_json::{Value as Json, json};
use sha2::Digest;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Something bioxen did that the audit trail records.
#[derive(Debug, Clone)]
#[allow(dead_code)] // constructed by the libraries that record (vm, sessions, pkg, xcpng)
pub enum Event {
    /// A VM was created. `kind`: "local", "xcpng", ...
    VmCreated { vm: String, kind: String },
    /// A VM was closed after `lifetime`.
    VmClosed { vm: String, lifetime: Duration },
    /// Code ran in a VM. `failure` is the error kind when it failed.
    CodeExecuted {
        vm: String,
        code: String,
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

/// Records an event (no-op when recording is off). Never blocks on I/O.
#[inline]
pub fn record(event: Event) {
    if enabled() {
        super::submit(SystemTime::now(), event);
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

fn verb(base: &str, name: &str) -> Json {
    json!({ "id": format!("{base}{}", if base == BIOXEN { format!("verbs/{name}") } else { name.to_string() }), "display": { "en-US": name } })
}

fn activity(kind: &str, id: &str, name: String) -> Json {
    json!({
        "objectType": "Activity",
        "id": format!("{BIOXEN}activities/{kind}/{}", encode_segment(id)),
        "definition": { "type": format!("{BIOXEN}activity-types/{kind}"), "name": { "en-US": name } },
    })
}

/// Keeps an id usable as one IRI path segment.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn ext(name: &str) -> String {
    format!("{BIOXEN}extensions/{name}")
}

/// The xAPI statement for an event, by `actor`, at time `at`.
pub fn statement(event: &Event, actor: &Json, at: SystemTime) -> Json {
    let vm_activity = |vm: &str| activity("vm", vm, format!("VM {vm}"));
    let (verb, object, result, parent, extensions) = match event {
        Event::VmCreated { vm, kind } => (
            verb(ADL, "launched"),
            vm_activity(vm),
            None,
            None,
            json!({ ext("vm-kind"): kind }),
        ),
        Event::VmClosed { vm, lifetime } => (
            verb(ADL, "terminated"),
            vm_activity(vm),
            Some(json!({ "duration": iso_duration(*lifetime) })),
            None,
            json!({}),
        ),
        Event::CodeExecuted {
            vm,
            code,
            success,
            duration,
            output_bytes,
            failure,
        } => {
            let digest = hex(&sha2::Sha256::digest(code.as_bytes()));
            let mut result = json!({
                "success": success,
                "completion": true,
                "duration": iso_duration(*duration),
                "extensions": {
                    ext("code-sha256"): digest,
                    ext("code-bytes"): code.len(),
                    ext("output-bytes"): output_bytes,
                },
            });
            if let Some(kind) = failure {
                result["extensions"][ext("failure-kind")] = json!(kind);
            }
            (
                verb(ADL, if *success { "completed" } else { "failed" }),
                activity("code", &digest, format!("code sha256:{}", &digest[..12])),
                Some(result),
                Some(vm_activity(vm)),
                json!({}),
            )
        }
        Event::SessionAttached { session, target } => (
            verb(BIOXEN, "attached"),
            activity("session", session, format!("session {session}")),
            None,
            Some(activity("target", target, target.clone())),
            json!({}),
        ),
        Event::SessionDetached { session, target } => (
            verb(BIOXEN, "detached"),
            activity("session", session, format!("session {session}")),
            None,
            Some(activity("target", target, target.clone())),
            json!({}),
        ),
        Event::PackageInstalled {
            name,
            version,
            hash,
            target,
        } => (
            verb(BIOXEN, "installed"),
            activity("package", name, name.clone()),
            None,
            Some(activity("target", target, target.clone())),
            json!({ ext("package-version"): version, ext("package-hash"): hash }),
        ),
        Event::PackageRemoved {
            name,
            version,
            target,
        } => (
            verb(BIOXEN, "removed"),
            activity("package", name, name.clone()),
            None,
            Some(activity("target", target, target.clone())),
            json!({ ext("package-version"): version }),
        ),
        Event::GuestDeployed {
            pool,
            guest,
            template,
        } => (
            verb(BIOXEN, "deployed"),
            activity("guest", guest, format!("guest {guest}")),
            None,
            Some(activity("pool", pool, pool.clone())),
            json!({ ext("template"): template }),
        ),
        Event::GuestDestroyed { pool, guest } => (
            verb(BIOXEN, "destroyed"),
            activity("guest", guest, format!("guest {guest}")),
            None,
            Some(activity("pool", pool, pool.clone())),
            json!({}),
        ),
    };
    let mut ctx_ext = json!({ ext("pid"): std::process::id() });
    if let Json::Object(m) = extensions {
        for (k, v) in m {
            if !v.is_null() {
                ctx_ext[k] = v;
            }
        }
    }
    let mut context = json!({
        "registration": registration(),
        "platform": concat!("bioxen ", env!("CARGO_PKG_VERSION")),
        "extensions": ctx_ext,
    });
    if let Some(p) = parent {
        context["contextActivities"] = json!({ "parent": [p] });
    }
    let mut s = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "actor": actor,
        "verb": verb,
        "object": object,
        "context": context,
        "timestamp": iso(at),
    });
    if let Some(r) = result {
        s["result"] = r;
    }
    s
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
        let s = statement(&ev, &json!({"mbox": "mailto:a@b.c"}), UNIX_EPOCH);
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
