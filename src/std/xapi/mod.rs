//! `bioxen.xapi`, the Rust half: an XML-RPC transport for XAPI on the
//! project's HTTP client (reqwest, async so calls yield under `bioxen.task`),
//! Lua <-> XML-RPC value conversion with XAPI's int64-as-string rule, and the
//! pool simulator. Sessions, retries, sugar and tasks live in stdlib/bioxen/xapi.lua.
pub mod sim;
mod tls;
pub mod wire;

use crate::runtime::builder::LibraryBuilder;
use crate::runtime::error::{BioxenError, error};
use crate::runtime::spin::Adaptive;
use mlua::{
    Lua, LuaSerdeExt, Result as LuaResult, Table, UserData, UserDataMethods, Value as LuaValue,
};
use std::collections::BTreeMap;
use std::time::Duration;
use xmlrpc::Value;

pub fn module(lua: &Lua) -> LuaResult<Table> {
    LibraryBuilder::new(lua)
        .function("transport", transport)
        .async_function("simulator", simulator)
        .build()
}

// ---------------------------------------------------------------- transport

pub struct Transport {
    client: reqwest::Client,
    url: String,
    parsed: reqwest::Url,
    /// A simulator on this machine answers within the spin; a pool does not.
    spin: Adaptive,
}

fn xapi_error(code: &str, message: String) -> mlua::Error {
    BioxenError::new("Xapi", message)
        .with("code", code)
        .with("params", serde_json::Value::Array(vec![]))
        .into_lua_err()
}

/// `transport(url, {verify_tls, fingerprint, timeout})`
fn transport(_: &Lua, (url, opts): (String, Option<Table>)) -> LuaResult<Transport> {
    let (mut verify, mut fingerprint, mut timeout) = (true, None::<String>, 60.0);
    if let Some(o) = opts {
        verify = o.get::<Option<bool>>("verify_tls")?.unwrap_or(true);
        fingerprint = o.get("fingerprint")?;
        timeout = o.get::<Option<f64>>("timeout")?.unwrap_or(60.0);
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(error(
            "Argument",
            format!(
                "xapi url must start with https:// (or http:// for the simulator), got {url:?}"
            ),
        ));
    }
    let mut builder = crate::runtime::tls::client_builder()
        .timeout(Duration::from_secs_f64(timeout))
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .user_agent(concat!("bioxen/", env!("CARGO_PKG_VERSION")));
    if let Some(fp) = &fingerprint {
        builder = builder.tls_backend_preconfigured(tls::pinned(fp)?);
    } else if !verify {
        tracing::warn!(
            "TLS verification is OFF for {url}: anyone on the path can read and change this XAPI session (pin the certificate with fingerprint= instead)"
        );
        builder = builder.danger_accept_invalid_certs(true);
    }
    let client = builder
        .build()
        .map_err(|e| xapi_error("TLS", format!("cannot set up HTTPS for {url}: {e}")))?;
    let parsed = reqwest::Url::parse(&url)
        .map_err(|e| error("Argument", format!("bad xapi url {url:?}: {e}")))?;
    Ok(Transport {
        client,
        url,
        parsed,
        spin: Adaptive::default(),
    })
}

impl UserData for Transport {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("url", |_, this, ()| Ok(this.url.clone()));
        // call(method, {params}) -> true, value | false, {code, params...}
        methods.add_async_method(
            "call",
            |lua, this, (method, params): (String, Table)| async move {
                let mut args = Vec::with_capacity(params.raw_len());
                for v in params.sequence_values::<LuaValue>() {
                    args.push(to_xml(&v?, 0)?);
                }
                let body = wire::write_call(&method, &args);
                let reply = this
                    .spin
                    .wait(post(&this.client, &this.parsed, &method, body))
                    .await?;
                let value = wire::parse_response(reply).map_err(|e| {
                    xapi_error(
                        "XMLRPC",
                        format!("{method}: the server's reply is not XML-RPC: {e}"),
                    )
                })?;
                envelope(&lua, &method, value)
            },
        );
    }
}

async fn post(
    client: &reqwest::Client,
    url: &reqwest::Url,
    method: &str,
    body: Vec<u8>,
) -> LuaResult<Vec<u8>> {
    let resp = client
        .post(url.clone())
        .header("Content-Type", "text/xml")
        .body(body)
        .send()
        .await
        .map_err(|e| {
            let cause = error_chain(&e);
            let code = if cause.contains("certificate")
                || cause.contains("tls")
                || cause.contains("TLS")
            {
                "TLS"
            } else {
                "HTTP"
            };
            xapi_error(code, format!("{method}: cannot reach {url}: {cause}"))
        })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(xapi_error(
            "HTTP",
            format!("{method}: {url} answered HTTP {status}"),
        ));
    }
    resp.bytes().await.map(|b| b.to_vec()).map_err(|e| {
        xapi_error(
            "HTTP",
            format!(
                "{method}: reading the reply from {url}: {}",
                error_chain(&e)
            ),
        )
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// XAPI's envelope: `{Status="Success", Value=v}` or `{Status="Failure", ErrorDescription={...}}`.
fn envelope(lua: &Lua, method: &str, v: Value) -> LuaResult<(bool, LuaValue)> {
    let Value::Struct(mut m) = v else {
        return Err(xapi_error(
            "XMLRPC",
            format!("{method}: the reply has no Status envelope"),
        ));
    };
    match m.get("Status").and_then(|s| s.as_str()) {
        Some("Success") => Ok((true, to_lua(lua, m.remove("Value").unwrap_or(Value::Nil))?)),
        Some("Failure") => {
            let d = m.remove("ErrorDescription").unwrap_or(Value::Array(vec![]));
            Ok((false, to_lua(lua, d)?))
        }
        other => Err(xapi_error(
            "XMLRPC",
            format!("{method}: unexpected Status {other:?} in the reply"),
        )),
    }
}

/// Lua -> XML-RPC. Whole numbers go as untyped-int64 strings (XAPI's rule);
/// `xapi.double(x)` and `xapi.array{}` mark the cases a Lua value cannot say.
fn to_xml(v: &LuaValue, depth: usize) -> LuaResult<Value> {
    if depth > 64 {
        return Err(error("Argument", "value nested too deeply for XAPI"));
    }
    Ok(match v {
        LuaValue::Boolean(b) => Value::Bool(*b),
        LuaValue::Integer(i) => Value::String(i.to_string()),
        LuaValue::Number(n) => {
            if n.fract() == 0.0 && n.abs() < 9.007e15 {
                Value::String((*n as i64).to_string())
            } else {
                Value::Double(*n)
            }
        }
        LuaValue::String(s) => Value::String(s.to_str()?.to_string()),
        LuaValue::Table(t) => {
            let mark: Option<String> = t
                .metatable()
                .and_then(|mt| mt.raw_get::<Option<String>>("__xapi").ok().flatten());
            match mark.as_deref() {
                Some("double") => Value::Double(t.raw_get::<f64>(1)?),
                Some("array") => Value::Array(
                    t.sequence_values::<LuaValue>()
                        .map(|x| to_xml(&x?, depth + 1))
                        .collect::<LuaResult<_>>()?,
                ),
                _ if t.raw_len() > 0 => Value::Array(
                    t.sequence_values::<LuaValue>()
                        .map(|x| to_xml(&x?, depth + 1))
                        .collect::<LuaResult<_>>()?,
                ),
                _ => {
                    let mut m = BTreeMap::new();
                    for pair in t.pairs::<LuaValue, LuaValue>() {
                        let (k, x) = pair?;
                        let key = match k {
                            LuaValue::String(s) => s.to_str()?.to_string(),
                            LuaValue::Integer(i) => i.to_string(),
                            LuaValue::Number(n) => n.to_string(),
                            other => {
                                return Err(error(
                                    "Argument",
                                    format!(
                                        "XAPI map keys must be strings, got a {}",
                                        other.type_name()
                                    ),
                                ));
                            }
                        };
                        m.insert(key, to_xml(&x, depth + 1)?);
                    }
                    Value::Struct(m)
                }
            }
        }
        LuaValue::Nil => {
            return Err(error(
                "Argument",
                "nil cannot be sent to XAPI (use \"OpaqueRef:NULL\" for a missing reference)",
            ));
        }
        other => {
            return Err(error(
                "Argument",
                format!("a {} cannot be sent to XAPI", other.type_name()),
            ));
        }
    })
}

/// XML-RPC -> Lua. Strings stay strings (the Lua half converts known int64 fields).
fn to_lua(lua: &Lua, v: Value) -> LuaResult<LuaValue> {
    Ok(match v {
        Value::Int(i) => LuaValue::Number(i as f64),
        Value::Int64(i) => LuaValue::Number(i as f64),
        Value::Bool(b) => LuaValue::Boolean(b),
        Value::String(s) => LuaValue::String(lua.create_string(&s)?),
        Value::Double(d) => LuaValue::Number(d),
        Value::DateTime(d) => lua.to_value(&format!("{d:?}"))?,
        Value::Base64(b) => LuaValue::String(lua.create_string(&b)?),
        Value::Struct(m) => {
            let t = lua.create_table_with_capacity(0, m.len())?;
            for (k, x) in m {
                t.raw_set(k, to_lua(lua, x)?)?;
            }
            LuaValue::Table(t)
        }
        Value::Array(a) => {
            let t = lua.create_table_with_capacity(a.len(), 0)?;
            for (i, x) in a.into_iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, x)?)?;
            }
            LuaValue::Table(t)
        }
        Value::Nil => LuaValue::Nil,
    })
}

// ---------------------------------------------------------------- simulator

pub struct Simulator {
    running: std::sync::Mutex<sim::server::Running>,
}

impl UserData for Simulator {
    fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("url", |_, this| {
            Ok(this.running.lock().unwrap().url.clone())
        });
        fields.add_field_method_get("ssh_key", |_, this| {
            Ok(this.running.lock().unwrap().ssh_key.clone())
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        // Stops serving, stops every guest's sshd, and returns once that is done.
        methods.add_async_method("stop", |_, this, ()| async move {
            let finished = {
                let mut r = this.running.lock().unwrap();
                match r.stop.take() {
                    Some(stop) => {
                        let _ = stop.send(());
                        Some(r.finished.clone())
                    }
                    None => None,
                }
            };
            if let Some(f) = finished {
                let _ = tokio::task::spawn_blocking(move || {
                    f.lock().unwrap().recv_timeout(Duration::from_secs(10))
                })
                .await;
            }
            Ok(())
        });
        // Waits until the simulator stops (for `bioxen xapi-sim`: forever).
        methods.add_async_method("wait", |_, this, ()| async move {
            let done = this.running.lock().unwrap().done.take();
            if let Some(done) = done {
                let _ = done.await;
            }
            Ok(())
        });
    }
}

impl Drop for Simulator {
    /// A simulator left running at exit still stops its guests before the
    /// process ends (their sshd would outlive it otherwise).
    fn drop(&mut self) {
        let r = self.running.get_mut().unwrap();
        if let Some(stop) = r.stop.take() {
            let _ = stop.send(());
            let _ = r
                .finished
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(10));
        }
    }
}

/// `simulator{listen, user, password, pool}`: starts the pool simulator.
async fn simulator(lua: Lua, opts: Table) -> LuaResult<Simulator> {
    let listen: String = opts
        .get::<Option<String>>("listen")?
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let user: String = opts
        .get::<Option<String>>("user")?
        .ok_or_else(|| error("Argument", "simulator needs user= (the pool's login name)"))?;
    let password: String = opts
        .get::<Option<String>>("password")?
        .ok_or_else(|| error("Argument", "simulator needs password="))?;
    let spec: sim::PoolSpec = match opts.get::<LuaValue>("pool")? {
        LuaValue::Nil => sim::PoolSpec::default(),
        v => lua
            .from_value(v)
            .map_err(|e| error("Argument", format!("bad pool description: {e}")))?,
    };
    let tls = match opts.get::<Option<Table>>("tls")? {
        None => None,
        Some(t) => {
            let cert: String = t.get("cert")?;
            let key: String = t.get("key")?;
            Some(sim::server::tls_acceptor(&cert, &key).map_err(|e| error("Argument", e))?)
        }
    };
    let running =
        tokio::task::spawn_blocking(move || sim::server::start(&listen, user, password, spec, tls))
            .await
            .map_err(|e| error("Runtime", e.to_string()))?
            .map_err(|e| error("Xapi", format!("the simulator did not start: {e}")))?;
    Ok(Simulator {
        running: std::sync::Mutex::new(running),
    })
}
