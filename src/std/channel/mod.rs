//! `bioxen.channel`: bounded channels that copy values between Lua states, on the
//! same OS thread (tasks), across threads (thread-backend VMs) and, through
//! `remote`, across a process boundary (process-backend VMs).
//!
//! Rust holds queues of owned messages; the Lua half (stdlib/bioxen/channel.lua)
//! turns values into messages: strings and scalars go as they are, tables as
//! LuaJIT `string.buffer` encodings, which the receiving state decodes.
mod fast;
pub mod remote;

use crate::runtime::{builder::LibraryBuilder, error::BioxenError};
use crossbeam_queue::ArrayQueue;
use mlua::{AnyUserData, Lua, Result as LuaResult, Table, UserData, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// One copied value.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Nil,
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(Vec<u8>),
    /// A table, as `string.buffer` encoded it.
    Table(Vec<u8>),
}

/// What a receive found.
pub enum Recv {
    Item(Msg),
    Empty,
    Closed,
}

/// The queue shared by every handle of one channel, in any thread: a lock-free
/// bounded queue (crossbeam's `ArrayQueue`), with waiting on the side. Waiters
/// announce themselves in `recv_waiters`/`send_waiters`; the other side only
/// pays for a wake-up when someone is actually waiting.
pub struct Shared {
    queue: ArrayQueue<Msg>,
    closed: AtomicBool,
    recv_waiters: AtomicUsize,
    send_waiters: AtomicUsize,
    /// A wake-up is on its way to the receivers / senders: the other side does
    /// not signal again for every value until a waiter has looked (coalescing).
    recv_wake_pending: AtomicBool,
    send_wake_pending: AtomicBool,
    lock: Mutex<()>,
    cv: Condvar,
    notify: Notify,
}

pub fn closed_error() -> mlua::Error {
    BioxenError::new("Closed", "the channel is closed").into_lua_err()
}

impl Shared {
    pub fn new(capacity: usize) -> Arc<Shared> {
        Arc::new(Shared {
            queue: ArrayQueue::new(capacity),
            closed: AtomicBool::new(false),
            recv_waiters: AtomicUsize::new(0),
            recv_wake_pending: AtomicBool::new(false),
            send_wake_pending: AtomicBool::new(false),
            send_waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            cv: Condvar::new(),
            notify: Notify::new(),
        })
    }

    pub fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    fn wake(&self, sending: bool) {
        fence(Ordering::SeqCst);
        if self.waiters(sending).load(Ordering::SeqCst) > 0
            && !self.pending(sending).swap(true, Ordering::SeqCst)
        {
            drop(self.lock.lock().unwrap());
            self.cv.notify_all();
            self.notify.notify_waiters();
        }
    }

    /// Queues `m` unless the channel is full (then gives it back).
    pub fn try_send(&self, m: Msg) -> Result<Option<Msg>, ()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(());
        }
        match self.queue.push(m) {
            Err(m) => Ok(Some(m)),
            Ok(()) => {
                self.wake(false);
                Ok(None)
            }
        }
    }

    pub fn try_recv(&self) -> Recv {
        match self.queue.pop() {
            Some(m) => {
                self.wake(true);
                Recv::Item(m)
            }
            None if self.closed.load(Ordering::Acquire) => match self.queue.pop() {
                // a value queued just before closing is still delivered
                Some(m) => Recv::Item(m),
                None => Recv::Closed,
            },
            None => Recv::Empty,
        }
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        drop(self.lock.lock().unwrap());
        self.cv.notify_all();
        self.notify.notify_waiters();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    fn ready(&self, sending: bool) -> bool {
        self.closed.load(Ordering::Acquire)
            || if sending {
                !self.queue.is_full()
            } else {
                !self.queue.is_empty()
            }
    }

    fn pending(&self, sending: bool) -> &AtomicBool {
        if sending {
            &self.send_wake_pending
        } else {
            &self.recv_wake_pending
        }
    }

    fn waiters(&self, sending: bool) -> &AtomicUsize {
        if sending {
            &self.send_waiters
        } else {
            &self.recv_waiters
        }
    }

    /// Between threads the other side usually makes progress within
    /// microseconds: watching for that briefly costs far less than sleeping
    /// and being woken for every value.
    fn spin(&self, sending: bool) -> bool {
        let start = Instant::now();
        for i in 0u32.. {
            if self.ready(sending) {
                return true;
            }
            if i < 100 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
                if i % 16 == 0 && start.elapsed() > SPIN_FOR {
                    return false;
                }
            }
        }
        false
    }

    /// Blocks the thread until a send (or receive) could proceed or the channel
    /// is closed; false on timeout.
    pub fn wait_blocking(&self, sending: bool, timeout: Option<Duration>) -> bool {
        if self.spin(sending) {
            return true;
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        // Then nap without registering as a waiter: the other side need not
        // wake us for every value, and values pile up to be taken in a run.
        let napping_until = Instant::now() + NAP_FOR;
        while Instant::now() < napping_until && deadline.is_none_or(|d| Instant::now() < d) {
            std::thread::sleep(NAP);
            if self.ready(sending) {
                return true;
            }
        }
        let waiters = self.waiters(sending);
        waiters.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let mut g = self.lock.lock().unwrap();
        let result = loop {
            self.pending(sending).store(false, Ordering::SeqCst);
            if self.ready(sending) {
                break true;
            }
            match deadline {
                None => g = self.cv.wait(g).unwrap(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break false;
                    }
                    g = self.cv.wait_timeout(g, d - now).unwrap().0;
                }
            }
        };
        drop(g);
        waiters.fetch_sub(1, Ordering::SeqCst);
        result
    }

    /// The same as `wait_blocking`, yielding to other tasks meanwhile.
    pub async fn wait_async(&self, sending: bool, timeout: Option<Duration>) -> bool {
        let waiters = self.waiters(sending);
        waiters.fetch_add(1, Ordering::SeqCst);
        let wait = async {
            loop {
                let notified = self.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                self.pending(sending).store(false, Ordering::SeqCst);
                if self.ready(sending) {
                    return;
                }
                notified.await;
            }
        };
        let result = match timeout {
            None => {
                wait.await;
                true
            }
            Some(t) => tokio::time::timeout(t, wait).await.is_ok(),
        };
        waiters.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

/// A channel handle in one Lua state: a local queue or a link to one in another process.
#[derive(Clone)]
pub enum Handle {
    Local(Arc<Shared>),
    Remote(Arc<remote::Link>),
}

impl UserData for Handle {}

fn to_msg(v: Value, is_table: bool) -> LuaResult<Msg> {
    Ok(match v {
        Value::Nil => Msg::Nil,
        Value::Boolean(b) => Msg::Bool(b),
        Value::Integer(i) => Msg::Int(i),
        Value::Number(n) => Msg::Num(n),
        Value::String(s) if is_table => Msg::Table(s.as_bytes().to_vec()),
        Value::String(s) => Msg::Str(s.as_bytes().to_vec()),
        other => {
            return Err(BioxenError::new(
                "Value",
                format!(
                    "cannot send a {} through a channel: only nil, booleans, numbers, strings and tables of those are copied",
                    other.type_name()
                ),
            )
            .into_lua_err());
        }
    })
}

/// (payload, status): status 0 empty, 1 value, 2 encoded table, 3 closed.
fn from_recv(lua: &Lua, r: Recv) -> LuaResult<(Value, u8)> {
    Ok(match r {
        Recv::Empty => (Value::Nil, 0),
        Recv::Closed => (Value::Nil, 3),
        Recv::Item(m) => match m {
            Msg::Nil => (Value::Nil, 1),
            Msg::Bool(b) => (Value::Boolean(b), 1),
            Msg::Int(i) => (Value::Integer(i), 1),
            Msg::Num(n) => (Value::Number(n), 1),
            Msg::Str(s) => (Value::String(lua.create_string(&s)?), 1),
            Msg::Table(s) => (Value::String(lua.create_string(&s)?), 2),
        },
    })
}

fn secs(t: Option<f64>) -> LuaResult<Option<Duration>> {
    match t {
        None => Ok(None),
        Some(t) if t.is_finite() && t >= 0.0 => Ok(Some(Duration::from_secs_f64(t))),
        Some(t) => Err(BioxenError::new(
            "Argument",
            format!("timeout must be a number of seconds >= 0, got {t}"),
        )
        .into_lua_err()),
    }
}

unsafe extern "C-unwind" {
    fn luaopen_string_buffer(state: *mut mlua::ffi::lua_State) -> std::os::raw::c_int;
}

/// LuaJIT's `string.buffer` module, opened directly (child VMs have no `require`).
fn string_buffer(lua: &Lua) -> LuaResult<Value> {
    // SAFETY: luaopen_string_buffer is LuaJIT's own C loader for the module.
    let open = unsafe { lua.create_c_function(luaopen_string_buffer)? };
    open.call::<Value>(())
}

const SPIN_FOR: Duration = Duration::from_micros(20);
const NAP: Duration = Duration::from_micros(50);
const NAP_FOR: Duration = Duration::from_millis(2);
const SLICE: Duration = Duration::from_millis(100);

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

pub fn module(lua: &Lua) -> LuaResult<Table> {
    LibraryBuilder::new(lua)
        .function("new", |_, capacity: Option<f64>| {
            let c = capacity.unwrap_or(1024.0);
            if !(c.is_finite() && c >= 1.0 && c.fract() == 0.0) {
                return Err(BioxenError::new(
                    "Argument",
                    format!("channel capacity must be a whole number >= 1, got {c}"),
                )
                .into_lua_err());
            }
            Ok(Handle::Local(Shared::new(c as usize)))
        })
        // The per-value functions, bound to one handle: raw C closures for a
        // local queue (fast.rs), mlua closures for a link to the host.
        .function("bind", |lua, ud: AnyUserData| {
            let h = ud.borrow::<Handle>()?.clone();
            if let Handle::Local(shared) = &h {
                return fast::bind(lua, &ud, shared);
            }
            let (hs, hr) = (h.clone(), h.clone());
            let send = lua.create_function(move |_, (v, is_table): (Value, Option<bool>)| {
                let m = to_msg(v, is_table.unwrap_or(false))?;
                match &hs {
                    Handle::Local(s) => match s.try_send(m) {
                        Err(()) => Err(closed_error()),
                        Ok(full) => Ok(full.is_none()),
                    },
                    Handle::Remote(l) => l.send(m),
                }
            })?;
            let recv = lua.create_function(move |lua, ()| {
                let r = match &hr {
                    Handle::Local(s) => s.try_recv(),
                    Handle::Remote(l) => l.try_recv()?,
                };
                from_recv(lua, r)
            })?;
            let hb = h.clone();
            // Takes up to `max` queued values at once into `vals`/`kinds`
            // (kind 2: an encoded table); returns how many, or -1 when closed and drained.
            let recv_into =
                lua.create_function(move |lua, (vals, kinds, max): (Table, Table, usize)| {
                    let mut n = 0i64;
                    while (n as usize) < max {
                        let r = match &hb {
                            Handle::Local(s) => s.try_recv(),
                            Handle::Remote(l) => l.try_recv()?,
                        };
                        let (v, st) = from_recv(lua, r)?;
                        match st {
                            0 => break,
                            3 => return Ok(if n == 0 { -1 } else { n }),
                            _ => {
                                n += 1;
                                vals.raw_set(n, v)?;
                                kinds.raw_set(n, st)?;
                            }
                        }
                    }
                    Ok(n)
                })?;
            Ok((send, recv, recv_into))
        })
        .function(
            "wait_blocking",
            |lua, (h, sending, t): (mlua::UserDataRef<Handle>, bool, Option<f64>)| {
                let t = secs(t)?;
                // Waits in slices so that a VM timeout or cancel still stops the wait.
                let deadline = t.map(|t| Instant::now() + t);
                loop {
                    if let Some(r) = crate::library::net::child::interrupt_reason(lua) {
                        return Err(crate::library::net::child::interrupted(r));
                    }
                    let slice = match deadline {
                        None => SLICE,
                        Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
                    };
                    let ready = match &*h {
                        Handle::Local(s) => s.wait_blocking(sending, Some(slice)),
                        Handle::Remote(l) => l.wait(sending, Some(slice))?,
                    };
                    if ready {
                        return Ok(true);
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(false);
                    }
                }
            },
        )
        .async_function(
            "wait_async",
            |_, (h, sending, t): (mlua::UserDataRef<Handle>, bool, Option<f64>)| async move {
                let t = secs(t)?;
                let h = h.clone();
                match h {
                    Handle::Local(s) => Ok(s.wait_async(sending, t).await),
                    Handle::Remote(l) => tokio::task::spawn_blocking(move || l.wait(sending, t))
                        .await
                        .map_err(|e| BioxenError::new("Runtime", e.to_string()).into_lua_err())?,
                }
            },
        )
        .function("can_yield", |_, ()| {
            Ok(tokio::runtime::Handle::try_current().is_ok())
        })
        .function("close", |_, h: mlua::UserDataRef<Handle>| match &*h {
            Handle::Local(s) => {
                s.close();
                Ok(())
            }
            Handle::Remote(l) => l.close(),
        })
        .function("info", |_, h: mlua::UserDataRef<Handle>| match &*h {
            Handle::Local(s) => Ok((s.len(), s.capacity(), s.is_closed())),
            Handle::Remote(l) => l.info(),
        })
        .function("now", |_, ()| Ok(epoch().elapsed().as_secs_f64()))
        .value("error", crate::runtime::error::constructor(lua)?)
        .value("buffer", string_buffer(lua)?)
        .build()
}

/// The Lua-facing channel object for a handle, in any state (host or child VM):
/// loads the Lua half with a fresh native table, then wraps the handle.
pub fn wrap(lua: &Lua, handle: Handle) -> LuaResult<Value> {
    let lib: Table = match lua.named_registry_value::<Option<Table>>("bioxen.channel")? {
        Some(t) => t,
        None => {
            let native = module(lua)?;
            let src = crate::runtime::stdlib::source("bioxen/channel.lua").ok_or_else(|| {
                BioxenError::new("Runtime", "stdlib/bioxen/channel.lua is missing").into_lua_err()
            })?;
            let lib: Table = lua
                .load(src.as_ref())
                .set_name("@stdlib/bioxen/channel.lua")
                .call((native, "bioxen.channel"))?;
            lua.set_named_registry_value("bioxen.channel", &lib)?;
            lib
        }
    };
    let ud = lua.create_userdata(handle)?;
    lib.get::<mlua::Function>("wrap")?.call(ud)
}

/// The handle behind a channel object (the table `bioxen.channel` returns).
pub fn handle_of(v: &Value) -> Option<Handle> {
    let Value::Table(t) = v else { return None };
    let ud: AnyUserData = t.raw_get("handle").ok()?;
    ud.borrow::<Handle>().ok().map(|h| h.clone())
}
