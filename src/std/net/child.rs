//! What `bioxen.vm` hands a child VM from this issue: networking on request
//! (`networked = true`, `grants = { net = {"127.0.0.1:*", ...} }`) and channels
//! (`channels = { jobs = ch }`). Inside the child they appear as the globals
//! `net` (a grant-checked `bioxen.net`) and `channels` (name -> channel).
//!
//! Child code runs synchronously (no event loop), so the child's `net` runs each
//! operation to completion on a shared networking runtime (`block`), and its
//! channels wait by blocking their thread. Both give up when the VM is
//! interrupted (timeout, cancel, close).
use crate::library::channel::{self, Handle};
use crate::runtime::error::{BioxenError, error};
use crate::runtime::interrupt::{Interrupter, Reason};
use mlua::{Function, Lua, MultiValue, Result as LuaResult, Table, Value};
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// The extra options, read from `vm.create`'s table.
#[derive(Clone, Default)]
pub struct Extras {
    /// None: no networking.
    pub grants: Option<Vec<String>>,
    pub channels: Vec<(String, Handle)>,
}

impl std::fmt::Debug for Extras {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.channels.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Extras")
            .field("grants", &self.grants)
            .field("channels", &names)
            .finish()
    }
}

fn sandbox(message: impl Into<String>) -> mlua::Error {
    BioxenError::new("Sandbox", message).into_lua_err()
}

impl Extras {
    pub fn parse(opts: &Table) -> LuaResult<Extras> {
        let networked = match opts.raw_get::<Value>("networked")? {
            Value::Nil => false,
            Value::Boolean(b) => b,
            other => {
                return Err(error(
                    "Argument",
                    format!(
                        "option networked must be true or false, got a {}",
                        other.type_name()
                    ),
                ));
            }
        };
        let grants = match opts.raw_get::<Value>("grants")? {
            Value::Nil => None,
            Value::Table(t) => {
                for pair in t.pairs::<Value, Value>() {
                    let (k, _) = pair?;
                    if k.as_string()
                        .is_none_or(|k| k.as_bytes().as_ref() != b"net")
                    {
                        return Err(sandbox(format!(
                            "unknown grant {}: only grants = {{ net = {{\"host:port\", ...}} }} exists",
                            k.to_string().unwrap_or_else(|_| k.type_name().to_string())
                        )));
                    }
                }
                match t.raw_get::<Value>("net")? {
                    Value::Table(list) => {
                        let mut out = Vec::new();
                        for v in list.sequence_values::<Value>() {
                            match v? {
                                Value::String(s) => out.push(s.to_str()?.to_string()),
                                other => {
                                    return Err(sandbox(format!(
                                        "net grants are \"host:port\" strings, got a {}",
                                        other.type_name()
                                    )));
                                }
                            }
                        }
                        Some(out)
                    }
                    _ => {
                        return Err(sandbox(
                            "grants.net must be a list of \"host:port\" strings",
                        ));
                    }
                }
            }
            other => {
                return Err(sandbox(format!(
                    "option grants must be a table like {{ net = {{\"127.0.0.1:*\"}} }}, got a {}",
                    other.type_name()
                )));
            }
        };
        let grants = match (networked, grants) {
            (false, None) => None,
            (true, Some(g)) => {
                super::address::Grants::parse(&g)?;
                Some(g)
            }
            (true, None) => {
                return Err(sandbox(
                    "networked = true needs grants = { net = {\"host:port\", ...} } naming what the VM may reach",
                ));
            }
            (false, Some(_)) => {
                return Err(sandbox(
                    "grants.net given but networked is not true: set networked = true",
                ));
            }
        };
        let mut channels = Vec::new();
        match opts.raw_get::<Value>("channels")? {
            Value::Nil => {}
            Value::Table(t) => {
                for pair in t.pairs::<Value, Value>() {
                    let (k, v) = pair?;
                    let name = match &k {
                        Value::String(s) => s.to_str()?.to_string(),
                        _ => {
                            return Err(error(
                                "Argument",
                                "channels must be a table of name = channel",
                            ));
                        }
                    };
                    let h = channel::handle_of(&v).ok_or_else(|| {
                        error(
                            "Argument",
                            format!(
                                "channels.{name} is a {}, not a bioxen.channel",
                                v.type_name()
                            ),
                        )
                    })?;
                    channels.push((name, h));
                }
                channels.sort_by(|a, b| a.0.cmp(&b.0));
            }
            other => {
                return Err(error(
                    "Argument",
                    format!(
                        "option channels must be a table of name = channel, got a {}",
                        other.type_name()
                    ),
                ));
            }
        }
        Ok(Extras { grants, channels })
    }

    pub fn is_empty(&self) -> bool {
        self.grants.is_none() && self.channels.is_empty()
    }

    /// Installs `net` and `channels` as globals of the child's state.
    pub fn install(&self, lua: &Lua) -> LuaResult<()> {
        if let Some(g) = &self.grants {
            let net = super::child_module(lua, g)?;
            lua.globals().raw_set("net", net)?;
        }
        if !self.channels.is_empty() {
            let t = lua.create_table()?;
            for (name, h) in &self.channels {
                t.raw_set(name.as_str(), channel::wrap(lua, h.clone())?)?;
            }
            lua.globals().raw_set("channels", t)?;
        }
        Ok(())
    }

    /// The grants as one environment value for a process child (`BIOXEN_NET_GRANTS`).
    #[allow(dead_code)] // for the process backend
    pub fn grants_env(&self) -> Option<String> {
        self.grants.as_ref().map(|g| g.join(","))
    }
}

#[allow(dead_code)] // for the process backend
pub const GRANTS_ENV: &str = "BIOXEN_NET_GRANTS";

/// Child side of a process VM: the grants and channels its parent passed.
#[allow(dead_code)] // for the process backend
pub fn from_env() -> Extras {
    let grants = std::env::var(GRANTS_ENV).ok().map(|s| {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    });
    // SAFETY: read once at child start-up, before other threads look at the environment.
    unsafe { std::env::remove_var(GRANTS_ENV) };
    Extras {
        grants,
        channels: channel::remote::from_env(),
    }
}

/// The runtime the children's sockets live on (their own threads drive it).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bioxen-net")
            .enable_all()
            .build()
            .expect("start the networking runtime")
    })
}

struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// The interrupter attached to this state, if any (set by `Interrupter::attach`).
pub fn interrupt_reason(lua: &Lua) -> Option<Reason> {
    let p = lua
        .named_registry_value::<mlua::LightUserData>("bioxen.interrupter")
        .ok()?;
    if p.0.is_null() {
        return None;
    }
    // SAFETY: the pointer is the state's own Interrupter, which outlives the state.
    unsafe { (*(p.0 as *const Interrupter)).reason() }
}

pub fn interrupted(reason: Reason) -> mlua::Error {
    let (kind, msg) = match reason {
        Reason::Timeout => ("Timeout", "timeout: the time limit was reached"),
        Reason::Cancelled => ("Cancelled", "cancelled"),
        Reason::Interrupted => ("Interrupted", "interrupted"),
    };
    error(kind, msg)
}

/// Drives `fut` to completion on this thread, with the networking runtime's
/// reactor and timers; stops early when the state is interrupted.
pub fn block_on<T>(lua: &Lua, fut: impl Future<Output = LuaResult<T>>) -> LuaResult<T> {
    let _guard = runtime().enter();
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        if let Some(r) = interrupt_reason(lua) {
            return Err(interrupted(r));
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

/// `block(f, ...)`: calls a (possibly async) function to completion, for child VMs.
pub fn block(lua: &Lua, (f, args): (Function, MultiValue)) -> LuaResult<MultiValue> {
    block_on(lua, f.call_async::<MultiValue>(args))
}
