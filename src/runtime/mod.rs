//! The trusted host state: full LuaJIT (ffi, jit, io, os, debug), bioxen's
//! module system, error values, and the event loop the main chunk runs in.
pub mod builder;
pub mod error;
pub mod interrupt;
pub mod logging;
pub mod modules;
pub mod paths;
pub mod report;
pub mod scheduler;
pub mod spin;
pub mod stdlib;
pub mod tls;

use mlua::{Lua, Result as LuaResult};
use std::sync::Arc;

pub struct Host {
    pub lua: Lua,
    pub interrupter: Arc<interrupt::Interrupter>,
}

impl Host {
    pub fn new() -> LuaResult<Host> {
        let lua = luajit_state()?;
        error::install_error_metatable(&lua)?;
        modules::install(&lua)?;
        report::install(&lua)?;
        lua.set_app_data(crate::library::task::Unobserved::default());
        let interrupter = interrupt::Interrupter::attach(&lua);
        lua.set_app_data(interrupter.clone());
        // SAFETY: restarts the collector luajit_state stopped; no values move.
        unsafe {
            lua.exec_raw::<()>((), |state| {
                // -1: the next cycle starts once the heap doubles, as luajit's.
                mlua::ffi::lua_gc(state, mlua::ffi::LUA_GCRESTART, -1);
            })?
        };
        Ok(Host { lua, interrupter })
    }
}

/// The state the `luajit` binary makes, `luaL_openlibs` (ffi and
/// string.buffer preloaded for `require`, as there) with the collector stopped
/// while the libraries are built (Host::new restarts it), as there; but on
/// mlua's allocator. mlua wraps each of its operations on a state with another
/// allocator in a protected call, in case it runs out of memory: on LuaJIT's
/// allocator that was ~200 calls at start-up and one per table entry that
/// `bioxen.json.decode` built. The state is never closed: the process ends
/// with it (see run.rs).
fn luajit_state() -> LuaResult<Lua> {
    // SAFETY: the host is trusted (C modules, bytecode, ffi); libraries are
    // opened in one protected call on the fresh state.
    unsafe {
        let lua = Lua::unsafe_new_with(mlua::StdLib::NONE, mlua::LuaOptions::new());
        lua.exec_raw::<()>((), |state| {
            mlua::ffi::lua_gc(state, mlua::ffi::LUA_GCSTOP, 0);
            mlua::ffi::luaL_openlibs(state);
        })?;
        Ok(lua)
    }
}
