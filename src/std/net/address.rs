//! Host and port validation, and the grants that limit a child VM's networking.
use crate::runtime::error::BioxenError;
use mlua::{Result as LuaResult, Value};
use std::net::IpAddr;

fn bad(message: String) -> mlua::Error {
    BioxenError::new("Networking", message).into_lua_err()
}

/// A host name or IP literal, normalised: lower case, no brackets around IPv6,
/// no trailing dot. Raises `Networking` naming what is wrong.
pub fn validate_host(host: &str) -> LuaResult<String> {
    if host.is_empty() {
        return Err(bad(
            "host is empty: give a name (example.org) or an address (127.0.0.1)".into(),
        ));
    }
    let inner = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = inner.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    if inner != host {
        return Err(bad(format!(
            "host {host:?}: brackets are only for IPv6 addresses"
        )));
    }
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if name.len() > 253 {
        return Err(bad(format!(
            "host name is {} characters long; the limit is 253",
            name.len()
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return Err(bad(format!(
            "host {host:?} has a bad character {c:?}: names use letters, digits, '-' and '.'"
        )));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(bad(format!(
                "host {host:?} has an empty label (two dots in a row, or a leading dot)"
            )));
        }
        if label.len() > 63 {
            return Err(bad(format!(
                "host {host:?} has a label longer than 63 characters"
            )));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad(format!(
                "host {host:?}: a label cannot start or end with '-'"
            )));
        }
    }
    if name
        .split('.')
        .next_back()
        .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(bad(format!(
            "host {host:?} looks like an IP address but is not a valid one"
        )));
    }
    Ok(name)
}

/// A port number 0-65535 (a number or a numeric string). Port 0 ("any free
/// port") is only accepted when `allow_zero`, as when listening.
pub fn validate_port(port: &Value, allow_zero: bool) -> LuaResult<u16> {
    let n: f64 = match port {
        Value::Integer(i) => *i as f64,
        Value::Number(n) => *n,
        Value::String(s) => {
            let s = s.to_string_lossy();
            s.trim()
                .parse::<f64>()
                .map_err(|_| bad(format!("port {s:?} is not a number")))?
        }
        Value::Nil => return Err(bad("port is missing: give a number 1-65535".into())),
        other => {
            return Err(bad(format!(
                "port must be a number, got a {}",
                other.type_name()
            )));
        }
    };
    if n.fract() != 0.0 || !n.is_finite() {
        return Err(bad(format!("port {n} is not a whole number")));
    }
    if !(0.0..=65535.0).contains(&n) {
        return Err(bad(format!("port {n} is out of range: ports are 1-65535")));
    }
    if n == 0.0 && !allow_zero {
        return Err(bad(
            "port 0 means any free port, but a fixed port is needed here: give 1-65535".into(),
        ));
    }
    Ok(n as u16)
}

/// What a child VM may reach: `host:port` or `host:*` entries. The host has none
/// (it is trusted); a child VM without grants has no networking at all.
#[derive(Debug, Clone, PartialEq)]
pub struct Grants {
    entries: Vec<(String, Option<u16>)>,
}

fn sandbox(message: String) -> mlua::Error {
    BioxenError::new("Sandbox", message).into_lua_err()
}

impl Grants {
    /// Parses `{"127.0.0.1:*", "example.org:443"}`; a bad entry is refused with `Sandbox`.
    pub fn parse(list: &[String]) -> LuaResult<Grants> {
        let mut entries = Vec::new();
        for entry in list {
            let (host, port) = entry.rsplit_once(':').ok_or_else(|| {
                sandbox(format!(
                    "net grant {entry:?} has no port: write \"host:port\" or \"host:*\""
                ))
            })?;
            if host == "*" || host.is_empty() {
                return Err(sandbox(format!(
                    "net grant {entry:?}: a grant names one host; wildcard hosts are not allowed"
                )));
            }
            let host = validate_host(host).map_err(|e| {
                sandbox(format!(
                    "net grant {entry:?}: {}",
                    crate::runtime::error::message_of(&e)
                ))
            })?;
            let port = if port == "*" {
                None
            } else {
                let p = port
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| {
                        sandbox(format!("net grant {entry:?}: port must be 1-65535 or *"))
                    })?;
                Some(p)
            };
            entries.push((host, port));
        }
        Ok(Grants { entries })
    }

    pub fn entries(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|(h, p)| match p {
                Some(p) => format!("{h}:{p}"),
                None => format!("{h}:*"),
            })
            .collect()
    }

    /// Refuses with `Sandbox` unless `host:port` is granted (port 0 needs `host:*`).
    pub fn check(&self, host: &str, port: u16, what: &str) -> LuaResult<()> {
        let allowed = self.entries.iter().any(|(h, p)| {
            h == host
                && match p {
                    None => true,
                    Some(p) => *p == port && port != 0,
                }
        });
        if allowed {
            return Ok(());
        }
        Err(BioxenError::new(
            "Sandbox",
            format!(
                "{what} {host}:{port} is not granted to this VM (grants: {})",
                if self.entries.is_empty() {
                    "none".to_string()
                } else {
                    self.entries().join(", ")
                }
            ),
        )
        .with("host", host)
        .with("port", port)
        .into_lua_err())
    }
}

/// The policy a module instance enforces: `None` for the trusted host.
pub type Policy = Option<std::sync::Arc<Grants>>;

pub fn check(policy: &Policy, host: &str, port: u16, what: &str) -> LuaResult<()> {
    match policy {
        None => Ok(()),
        Some(g) => g.check(host, port, what),
    }
}

/// The socket addresses of `host:port`. Addresses need no lookup; names are
/// resolved by tokio, or, in a process VM (which may not start the thread
/// tokio's resolver needs), by a direct blocking lookup on the VM's thread.
pub async fn resolve(host: &str, port: u16) -> std::io::Result<Vec<std::net::SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![std::net::SocketAddr::new(ip, port)]);
    }
    if super::child::single_threaded() {
        use std::net::ToSocketAddrs;
        return Ok((host, port).to_socket_addrs()?.collect());
    }
    Ok(tokio::net::lookup_host((host, port)).await?.collect())
}
