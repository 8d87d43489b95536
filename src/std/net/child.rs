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
use crate::library::vm::value::{Reader, put_bytes};
use crate::runtime::error::{BioxenError, error};
use crate::runtime::interrupt::{Interrupter, Reason};
use mlua::{Function, Lua, MultiValue, Result as LuaResult, Table, Value};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
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
        remember_interrupter(lua);
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

    /// What a process child needs, appended to the VM's INIT frame: the
    /// grants and the channel names (the queues stay in the host).
    pub fn encode_init(&self, out: &mut Vec<u8>) {
        let put = |out: &mut Vec<u8>, s: &str| put_bytes(out, s.as_bytes());
        match &self.grants {
            None => out.push(0),
            Some(g) => {
                out.push(1);
                out.extend_from_slice(&(g.len() as u32).to_le_bytes());
                for x in g {
                    put(out, x);
                }
            }
        }
        out.extend_from_slice(&(self.channels.len() as u32).to_le_bytes());
        for (name, _) in &self.channels {
            put(out, name);
        }
    }
}

fn decode_init(b: &[u8]) -> Result<(Option<Vec<String>>, Vec<String>), String> {
    let mut r = Reader::new(b);
    let grants = match r.u8()? {
        0 => None,
        _ => {
            let n = r.u32()?;
            Some((0..n).map(|_| r.string()).collect::<Result<Vec<_>, _>>()?)
        }
    };
    let n = r.u32()?;
    let names = (0..n).map(|_| r.string()).collect::<Result<Vec<_>, _>>()?;
    Ok((grants, names))
}

/// Host side: the extras of each process VM, by id, for its (re)starts and its
/// channel requests.
fn registry() -> &'static Mutex<HashMap<String, Extras>> {
    static R: OnceLock<Mutex<HashMap<String, Extras>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// Records (or, when empty, forgets) the extras of a process VM or session
/// under its key (`vm:ID:SERIAL`, `session:ID`).
pub fn register(id: &str, extras: Extras) {
    let mut r = registry().lock().unwrap();
    if extras.is_empty() {
        r.remove(id);
    } else {
        r.insert(id.to_string(), extras);
    }
}

/// The bytes to append to the INIT frame of the process registered under `id` (empty when none).
pub fn init_payload(id: &str) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(x) = registry().lock().unwrap().get(id) {
        x.encode_init(&mut out);
    }
    out
}

/// Host side: serves a channel request from the process registered under `id`.
pub fn serve_channel(id: &str, req: &[u8]) -> Vec<u8> {
    let channels = registry()
        .lock()
        .unwrap()
        .get(id)
        .map(|x| x.channels.clone())
        .unwrap_or_default();
    channel::remote::serve(&channels, req)
}

/// Child side of a process VM: installs `net` and `channels` from the INIT
/// extras; channel requests go to the host through `transport`.
pub fn install_from_init(
    lua: &Lua,
    bytes: &[u8],
    transport: impl Fn(&[u8]) -> Result<Vec<u8>, String> + Send + Sync + Clone + 'static,
) -> Result<(), String> {
    if bytes.is_empty() {
        return Ok(());
    }
    let (grants, names) = decode_init(bytes)?;
    SINGLE_THREADED.store(true, std::sync::atomic::Ordering::Relaxed);
    let channels = names
        .into_iter()
        .map(|name| {
            let link = channel::remote::Link::new(&name, Box::new(transport.clone()));
            (name, Handle::Remote(Arc::new(link)))
        })
        .collect();
    Extras { grants, channels }
        .install(lua)
        .map_err(|e| e.to_string())
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

/// The address of the state's `Interrupter`, read once at install time: once a
/// VM is interrupted, its hook fails every protected call mlua makes (registry
/// reads included), so it cannot be looked up at the moment it matters.
struct InterrupterRef(usize);

/// Remembers the state's interrupter (set by `Interrupter::attach`), if any.
pub fn remember_interrupter(lua: &Lua) {
    if let Ok(p) = lua.named_registry_value::<mlua::LightUserData>("bioxen.interrupter")
        && !p.0.is_null()
    {
        lua.set_app_data(InterrupterRef(p.0 as usize));
    }
}

/// Why the state is being interrupted (VM timeout, cancel, Ctrl-C), if it is.
pub fn interrupt_reason(lua: &Lua) -> Option<Reason> {
    let p = lua.app_data_ref::<InterrupterRef>()?.0;
    // SAFETY: the state's own Interrupter, which outlives the state.
    unsafe { (*(p as *const Interrupter)).reason() }
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
    if SINGLE_THREADED.load(std::sync::atomic::Ordering::Relaxed) {
        return block_on_here(lua, fut);
    }
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

/// A process child may not start threads (RLIMIT_NPROC = 0) and runs one VM
/// on one thread, so its sockets live on a runtime driven by that thread.
static SINGLE_THREADED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True in a process VM: no threads, so no thread-based name resolution either.
pub fn single_threaded() -> bool {
    SINGLE_THREADED.load(std::sync::atomic::Ordering::Relaxed)
}

fn block_on_here<T>(lua: &Lua, fut: impl Future<Output = LuaResult<T>>) -> LuaResult<T> {
    thread_local! {
        static RT: Option<tokio::runtime::Runtime> = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok();
    }
    RT.with(|rt| {
        let rt = rt
            .as_ref()
            .ok_or_else(|| error("Networking", "cannot start the networking runtime"))?;
        rt.block_on(async {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            let mut fut = std::pin::pin!(fut);
            loop {
                tokio::select! {
                    r = &mut fut => return r,
                    _ = tick.tick() => {
                        if let Some(r) = interrupt_reason(lua) {
                            return Err(interrupted(r));
                        }
                    }
                }
            }
        })
    })
}

/// `block(f, ...)`: calls a (possibly async) function to completion, for child VMs.
pub fn block(lua: &Lua, (f, args): (Function, MultiValue)) -> LuaResult<MultiValue> {
    block_on(lua, f.call_async::<MultiValue>(args))
}
