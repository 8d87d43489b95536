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
pub mod stdlib;
pub mod tls;

use mlua::{Lua, LuaOptions, Result as LuaResult, StdLib};
use std::sync::Arc;

pub struct Host {
    pub lua: Lua,
    pub interrupter: Arc<interrupt::Interrupter>,
}

impl Host {
    pub fn new() -> LuaResult<Host> {
        // SAFETY: the host is trusted like the `luajit` binary, so it gets ffi and debug.
        let lua = unsafe { Lua::unsafe_new_with(StdLib::ALL, LuaOptions::default()) };
        error::install_error_metatable(&lua)?;
        modules::install(&lua)?;
        lua.set_app_data(crate::library::task::Unobserved::default());
        let interrupter = interrupt::Interrupter::attach(&lua);
        lua.set_app_data(interrupter.clone());
        Ok(Host { lua, interrupter })
    }
}
