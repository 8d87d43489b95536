//! `bioxen.net`: host/port validation, TCP, UDP and an HTTP client, all async on
//! tokio so they yield under `bioxen.task`. The host's instance is unrestricted;
//! a child VM's instance (`module_with_grants`) checks every address against its grants.
pub mod address;
pub mod child;
pub mod http;
pub mod tcp;
pub mod udp;

use crate::runtime::{builder::LibraryBuilder, error::error};
use address::{Grants, Policy, validate_host, validate_port};
use mlua::{Lua, Result as LuaResult, Table, Value};
use std::sync::Arc;

pub fn module(lua: &Lua) -> LuaResult<Table> {
    module_with(lua, None, false)
}

/// The native table for a child VM: only the granted `host:port` entries are reachable.
/// `blocking`: for child VMs, whose code runs without an event loop; the Lua
/// half then runs every operation to completion through `block`.
pub fn module_with_grants(lua: &Lua, grants: Grants, blocking: bool) -> LuaResult<Table> {
    module_with(lua, Some(Arc::new(grants)), blocking)
}

/// The whole `bioxen.net` (Lua half included) for a child VM with `grants`
/// (`{"127.0.0.1:*", "example.org:443"}`); bad grants are refused with `Sandbox`.
pub fn child_module(lua: &Lua, grants: &[String]) -> LuaResult<Table> {
    let native = module_with_grants(lua, Grants::parse(grants)?, true)?;
    let src = crate::runtime::stdlib::source("bioxen/net.lua")
        .ok_or_else(|| error("Runtime", "stdlib/bioxen/net.lua is missing"))?;
    lua.load(src.as_ref())
        .set_name("@stdlib/bioxen/net.lua")
        .call((native, "bioxen.net"))
}

/// `{host = ..., port = ...}` read from an options table.
fn endpoint(
    opts: &Table,
    default_host: Option<&str>,
    allow_zero: bool,
) -> LuaResult<(String, u16)> {
    let host = match opts.get::<Value>("host")? {
        Value::Nil => match default_host {
            Some(h) => h.to_string(),
            None => {
                return Err(tcp::net_err(
                    "host is missing: give host = \"name or address\"",
                ));
            }
        },
        Value::String(s) => s.to_str()?.to_string(),
        other => {
            return Err(tcp::net_err(format!(
                "host must be a string, got a {}",
                other.type_name()
            )));
        }
    };
    let host = validate_host(&host)?;
    let port = match opts.get::<Value>("port")? {
        Value::Nil if allow_zero => 0,
        p => validate_port(&p, allow_zero)?,
    };
    Ok((host, port))
}

fn module_with(lua: &Lua, policy: Policy, blocking: bool) -> LuaResult<Table> {
    let client = http::client(&policy)?;
    let (p1, p2, p3, p4) = (
        policy.clone(),
        policy.clone(),
        policy.clone(),
        policy.clone(),
    );
    let grants = policy.as_ref().map(|g| g.entries());
    let restricted = policy.is_some();
    let b = LibraryBuilder::new(lua);
    // Only the unrestricted (host) instance can make restricted ones.
    let b = if restricted {
        b
    } else {
        b.function("restrict", |lua, list: Vec<String>| {
            module_with_grants(lua, Grants::parse(&list)?, false)
        })
    };
    let b = if blocking {
        b.function("block", child::block).value("blocking", true)
    } else {
        b
    };
    b.function("validate_host", |_, host: Value| match host {
        Value::String(s) => validate_host(&s.to_string_lossy()),
        Value::Nil => validate_host(""),
        other => Err(tcp::net_err(format!(
            "host must be a string, got a {}",
            other.type_name()
        ))),
    })
    .function(
        "validate_port",
        |_, (port, opts): (Value, Option<Value>)| {
            let allow_zero = match opts {
                Some(Value::Boolean(b)) => b,
                Some(Value::Table(t)) => t.get::<Option<bool>>("allow_zero")?.unwrap_or(false),
                None | Some(Value::Nil) => false,
                Some(other) => {
                    return Err(error(
                        "Argument",
                        format!(
                            "validate_port options must be a table, got a {}",
                            other.type_name()
                        ),
                    ));
                }
            };
            validate_port(&port, allow_zero)
        },
    )
    .async_function("listen", move |_, opts: Option<Table>| {
        let policy = p1.clone();
        async move {
            let opts =
                opts.ok_or_else(|| error("Argument", "net.listen needs {host = ..., port = ...}"))?;
            let (host, port) = endpoint(&opts, Some("127.0.0.1"), true)?;
            tcp::Listener::bind(policy, host, port).await
        }
    })
    .async_function("connect", move |_, opts: Option<Table>| {
        let policy = p2.clone();
        async move {
            let opts = opts
                .ok_or_else(|| error("Argument", "net.connect needs {host = ..., port = ...}"))?;
            let (host, port) = endpoint(&opts, None, false)?;
            let timeout = opts.get::<Option<f64>>("timeout")?;
            tcp::connect(policy, host, port, timeout).await
        }
    })
    .async_function("udp", move |_, opts: Option<Table>| {
        let policy = p3.clone();
        async move {
            let (host, port) = match opts {
                Some(o) => endpoint(&o, Some("127.0.0.1"), true)?,
                None => ("127.0.0.1".to_string(), 0),
            };
            udp::Udp::bind(policy, host, port).await
        }
    })
    .async_function("http_request", move |lua, req: Table| {
        let (policy, client) = (p4.clone(), client.clone());
        http::request(lua, client, policy, req)
    })
    .value("grants", grants)
    .value("json", crate::library::json::module(lua)?)
    .value("error", crate::runtime::error::constructor(lua)?)
    .build()
}
