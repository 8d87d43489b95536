//! The per-value path of a local channel as plain C functions: no userdata
//! lookup and no registry references per call, which is most of the cost of a
//! mlua callback (and all of it in a memory-limited child VM, where mlua
//! protects every allocation). Each closure holds the queue's address as an
//! upvalue, plus the channel's userdata so the queue outlives the closure.
use super::{Msg, Recv, Shared};
use mlua::ffi::{self, lua_State};
use mlua::{AnyUserData, Function, Lua, Result as LuaResult};
use std::os::raw::c_int;

unsafe fn shared<'a>(state: *mut lua_State) -> &'a Shared {
    unsafe { &*(ffi::lua_touserdata(state, ffi::lua_upvalueindex(1)) as *const Shared) }
}

/// `send(payload, is_table)` -> true (queued) | false (full) | nil, "closed" | nil, "type".
unsafe extern "C-unwind" fn send(state: *mut lua_State) -> c_int {
    unsafe {
        let s = shared(state);
        let m = match ffi::lua_type(state, 1) {
            ffi::LUA_TNIL | ffi::LUA_TNONE => Msg::Nil,
            ffi::LUA_TBOOLEAN => Msg::Bool(ffi::lua_toboolean(state, 1) != 0),
            ffi::LUA_TNUMBER => Msg::Num(ffi::lua_tonumber(state, 1)),
            ffi::LUA_TSTRING => {
                let mut len = 0usize;
                let p = ffi::lua_tolstring(state, 1, &mut len) as *const u8;
                let bytes = std::slice::from_raw_parts(p, len).to_vec();
                if ffi::lua_toboolean(state, 2) != 0 {
                    Msg::Table(bytes)
                } else {
                    Msg::Str(bytes)
                }
            }
            _ => {
                ffi::lua_pushnil(state);
                ffi::lua_pushstring(state, c"type".as_ptr());
                return 2;
            }
        };
        match s.try_send(m) {
            Ok(None) => ffi::lua_pushboolean(state, 1),
            Ok(Some(_)) => ffi::lua_pushboolean(state, 0),
            Err(()) => {
                ffi::lua_pushnil(state);
                ffi::lua_pushstring(state, c"closed".as_ptr());
                return 2;
            }
        }
        1
    }
}

/// Pushes one message; returns its status (1 value, 2 encoded table).
unsafe fn push(state: *mut lua_State, m: Msg) -> i32 {
    unsafe {
        match m {
            Msg::Nil => ffi::lua_pushnil(state),
            Msg::Bool(b) => ffi::lua_pushboolean(state, b as c_int),
            Msg::Int(i) => ffi::lua_pushnumber(state, i as f64),
            Msg::Num(n) => ffi::lua_pushnumber(state, n),
            Msg::Str(b) => {
                ffi::lua_pushlstring(state, b.as_ptr() as *const _, b.len());
            }
            Msg::Table(b) => {
                ffi::lua_pushlstring(state, b.as_ptr() as *const _, b.len());
                return 2;
            }
        }
        1
    }
}

/// `recv()` -> value, status (0 empty, 1 value, 2 encoded table, 3 closed).
unsafe extern "C-unwind" fn recv(state: *mut lua_State) -> c_int {
    unsafe {
        let s = shared(state);
        match s.try_recv() {
            Recv::Item(m) => {
                let st = push(state, m);
                ffi::lua_pushinteger(state, st as ffi::lua_Integer);
            }
            Recv::Empty => {
                ffi::lua_pushnil(state);
                ffi::lua_pushinteger(state, 0);
            }
            Recv::Closed => {
                ffi::lua_pushnil(state);
                ffi::lua_pushinteger(state, 3);
            }
        }
        2
    }
}

/// `recv_into(vals, kinds, max)` -> n taken (-1 when closed and drained).
unsafe extern "C-unwind" fn recv_into(state: *mut lua_State) -> c_int {
    unsafe {
        let s = shared(state);
        let max = ffi::lua_tonumber(state, 3).max(0.0) as i64;
        let mut n: i64 = 0;
        while n < max {
            match s.try_recv() {
                Recv::Item(m) => {
                    n += 1;
                    let st = push(state, m);
                    ffi::lua_rawseti(state, 1, n as _);
                    ffi::lua_pushinteger(state, st as ffi::lua_Integer);
                    ffi::lua_rawseti(state, 2, n as _);
                }
                Recv::Empty => break,
                Recv::Closed => {
                    if n == 0 {
                        n = -1;
                    }
                    break;
                }
            }
        }
        ffi::lua_pushinteger(state, n as ffi::lua_Integer);
        1
    }
}

/// The three closures for the queue behind `ud` (whose handle is `shared`).
pub fn bind(
    lua: &Lua,
    ud: &AnyUserData,
    shared: &std::sync::Arc<Shared>,
) -> LuaResult<(Function, Function, Function)> {
    let ptr = std::sync::Arc::as_ptr(shared) as *mut std::ffi::c_void;
    let make = |f: ffi::lua_CFunction| -> LuaResult<Function> {
        // SAFETY: pushes two upvalues and makes a C closure of them; `ud` keeps
        // the Arc (and so `ptr`) alive as long as the closure can be called.
        unsafe {
            lua.exec_raw::<Function>(ud, |state| {
                ffi::lua_pushlightuserdata(state, ptr);
                ffi::lua_insert(state, -2);
                ffi::lua_pushcclosure(state, f, 2);
            })
        }
    };
    Ok((make(send)?, make(recv)?, make(recv_into)?))
}
