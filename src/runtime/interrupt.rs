//! Stopping running Lua code from outside: Ctrl-C, timeouts, cancellation.
//!
//! `interrupt` may be called from a signal handler or another thread: it only
//! stores the reason and calls the raw `lua_sethook`, which is what `lua.c`
//! itself does from its SIGINT handler. LuaJIT's hooks are global to the
//! state (every coroutine sees them), and with `LUAJIT_ENABLE_CHECKHOOK` its
//! compiled loops check them too, so a JIT-compiled `while true do end` stops.
//! The hook stays armed with a count of 1 until `clear`: any instruction run
//! after a `pcall` caught the error raises again, so neither `pcall` loops nor
//! coroutines can swallow it.
use mlua::{Lua, ffi};
use std::os::raw::c_int;
use std::sync::atomic::{AtomicPtr, AtomicU8, AtomicU64, Ordering};

const REGISTRY_KEY: &std::ffi::CStr = c"bioxen.interrupter";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Reason {
    Interrupted = 1,
    Timeout = 2,
    Cancelled = 3,
}

impl Reason {
    fn from_u8(v: u8) -> Option<Reason> {
        match v {
            1 => Some(Reason::Interrupted),
            2 => Some(Reason::Timeout),
            3 => Some(Reason::Cancelled),
            _ => None,
        }
    }

    fn message(self) -> &'static std::ffi::CStr {
        match self {
            Reason::Interrupted => c"interrupted",
            Reason::Timeout => c"timeout: the time limit was reached",
            Reason::Cancelled => c"cancelled",
        }
    }
}

/// One per Lua state; must outlive the state (keep it in an `Arc` beside it).
pub struct Interrupter {
    state: AtomicPtr<ffi::lua_State>,
    reason: AtomicU8,
    /// When the pending interrupt was requested (monotonic milliseconds).
    since_ms: AtomicU64,
}

// SAFETY: the raw state pointer is only used for `lua_sethook`, which only writes
// hook fields and is designed to be called asynchronously (signal handlers).
unsafe impl Send for Interrupter {}
unsafe impl Sync for Interrupter {}

impl Interrupter {
    /// Binds to `lua`; call on the state's own thread, outside any callback.
    pub fn attach(lua: &Lua) -> std::sync::Arc<Interrupter> {
        let me = std::sync::Arc::new(Interrupter {
            state: AtomicPtr::new(lua.state()),
            reason: AtomicU8::new(0),
            since_ms: AtomicU64::new(0),
        });
        let ptr = std::sync::Arc::as_ptr(&me) as *mut std::ffi::c_void;
        unsafe {
            let state = lua.state();
            ffi::lua_pushlightuserdata(state, ptr);
            ffi::lua_setfield(state, ffi::LUA_REGISTRYINDEX, REGISTRY_KEY.as_ptr());
        }
        me
    }

    /// Makes the running code raise an error at its next instruction.
    pub fn interrupt(&self, reason: Reason) {
        self.since_ms.store(monotonic_ms(), Ordering::SeqCst);
        self.reason.store(reason as u8, Ordering::SeqCst);
        let mask = ffi::LUA_MASKCOUNT | ffi::LUA_MASKCALL | ffi::LUA_MASKRET;
        unsafe { ffi::lua_sethook(self.state.load(Ordering::SeqCst), Some(hook), mask, 1) };
    }

    /// The pending reason, if an interrupt was requested since the last `clear`.
    pub fn reason(&self) -> Option<Reason> {
        Reason::from_u8(self.reason.load(Ordering::SeqCst))
    }

    /// Disarms the hook; call on the state's thread once the code has stopped.
    pub fn clear(&self) -> Option<Reason> {
        unsafe { ffi::lua_sethook(self.state.load(Ordering::SeqCst), None, 0, 0) };
        Reason::from_u8(self.reason.swap(0, Ordering::SeqCst))
    }
}

unsafe extern "C-unwind" fn hook(state: *mut ffi::lua_State, _ar: *mut ffi::lua_Debug) {
    unsafe {
        ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, REGISTRY_KEY.as_ptr());
        let me = ffi::lua_touserdata(state, -1) as *const Interrupter;
        ffi::lua_settop(state, -2);
        let reason = if me.is_null() { None } else { (*me).reason() };
        let Some(reason) = reason else { return };
        ffi::lua_pushstring(state, reason.message().as_ptr());
        ffi::lua_error(state);
    }
}

/// Milliseconds on the monotonic clock (`clock_gettime` is async-signal-safe).
fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// How long a pending Ctrl-C must have gone unanswered before another one
/// exits the process (0: at once, for scripts).
static REPEAT_EXIT_GRACE_MS: AtomicU64 = AtomicU64::new(0);

/// The REPL sets a grace so that pressing Ctrl-C twice while a loop is being
/// stopped does not end the session; only code stuck that long (in a C
/// function that never returns to Lua) makes a further Ctrl-C exit.
pub fn set_repeat_exit_grace(grace: std::time::Duration) {
    REPEAT_EXIT_GRACE_MS.store(grace.as_millis() as u64, Ordering::SeqCst);
}

/// Ctrl-C for the host: the first SIGINT interrupts the running Lua code, a
/// second one (code that keeps running, e.g. in a C function) exits with 130,
/// after the grace set by `set_repeat_exit_grace` (none by default).
pub fn install_sigint(interrupter: std::sync::Arc<Interrupter>) {
    let action = move || {
        if interrupter.reason() == Some(Reason::Interrupted) {
            let since = interrupter.since_ms.load(Ordering::SeqCst);
            let grace = REPEAT_EXIT_GRACE_MS.load(Ordering::SeqCst);
            if monotonic_ms().saturating_sub(since) >= grace {
                unsafe { libc::_exit(130) };
            }
            return;
        }
        interrupter.interrupt(Reason::Interrupted);
    };
    // SAFETY: the action only does atomic stores and `lua_sethook`, both async-signal-safe.
    let _ = unsafe { signal_hook_registry::register(libc::SIGINT, action) };
}

/// Exit status for a script stopped by Ctrl-C, as shells expect.
pub const SIGINT_EXIT: c_int = 130;
