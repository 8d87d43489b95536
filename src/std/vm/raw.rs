//! A child VM's Lua state at the level of LuaJIT's C API: created with
//! `lua_newstate` (mlua's allocator and limit accounting), its libraries opened directly, the
//! strict sandbox built with C closures instead of a Lua setup chunk, and
//! closed with one `lua_close`. mlua only wraps the finished state
//! (`Lua::get_or_init_from_ptr`), so a VM pays neither mlua's library loader
//! nor the full garbage collection mlua runs before closing a state it owns.
//! Profiled (callgrind, create + exec + close of a strict VM): this cut the
//! instructions per VM by about two thirds; see docs/vm.md.
use mlua::ffi::{self, lua_State};
use std::cell::Cell;
use std::os::raw::{c_int, c_void};
use std::ptr;

/// Bytes in use and the limit (0: none) of one state; the allocator's `ud`.
/// Laid out as mlua 0.12's `MemoryState` (repr(C)), so that states can use
/// mlua's own allocator: mlua then relaxes the limit for its internal
/// closures and skips protected calls while no limit is set, exactly as for
/// states it creates itself. `allocator` checks the layout at run time and
/// falls back to `allocate` (same accounting) if it ever differs.
#[repr(C)]
pub struct Memory {
    pub used: Cell<isize>,
    pub limit: Cell<isize>,
    ignore_limit: Cell<bool>,
}

/// mlua's allocator, if its state data is laid out as `Memory`.
fn allocator() -> ffi::lua_Alloc {
    static ALLOC: std::sync::OnceLock<ffi::lua_Alloc> = std::sync::OnceLock::new();
    *ALLOC.get_or_init(|| {
        let lua = mlua::Lua::new();
        let probe = 0x5a5a_0000_1234_isize;
        if lua.set_memory_limit(probe as usize).is_err() {
            return allocate;
        }
        let mut ud = ptr::null_mut();
        // SAFETY: reads the allocator of a live state we own.
        let f = unsafe { ffi::lua_getallocf(lua.state(), &mut ud) };
        if ud.is_null() {
            return allocate;
        }
        // SAFETY: mlua's state data is at least two isize (its used memory and limit).
        let m = unsafe { &*(ud as *const Memory) };
        if m.limit.get() == probe && m.used.get() == lua.used_memory() as isize {
            f
        } else {
            allocate
        }
    })
}

/// Our allocator when mlua's cannot be used: malloc, refusing growth past
/// the limit (LuaJIT then raises "not enough memory"; shrinking never fails).
unsafe extern "C" fn allocate(
    ud: *mut c_void,
    ptr: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    unsafe {
        let m = &*(ud as *const Memory);
        if nsize == 0 {
            if !ptr.is_null() {
                libc::free(ptr);
                m.used.set(m.used.get() - osize as isize);
            }
            return ptr::null_mut();
        }
        if nsize > isize::MAX as usize {
            return ptr::null_mut();
        }
        let diff = if ptr.is_null() {
            nsize as isize
        } else {
            nsize as isize - osize as isize
        };
        let limit = m.limit.get();
        if diff > 0 && limit > 0 && m.used.get() + diff > limit && !m.ignore_limit.get() {
            return ptr::null_mut();
        }
        let p = if ptr.is_null() {
            libc::malloc(nsize)
        } else {
            libc::realloc(ptr, nsize)
        };
        if !p.is_null() {
            m.used.set(m.used.get() + diff);
        }
        p
    }
}

/// An open state and its allocator data; closing it frees everything.
/// Every mlua handle on the state must be dropped before this is.
pub struct RawState {
    pub state: *mut lua_State,
    pub memory: *mut Memory,
}

// SAFETY: a state is used by one thread at a time (the VM's mutex, the
// builder and reaper threads hand it over whole).
unsafe impl Send for RawState {}
unsafe impl Sync for RawState {}

impl RawState {
    /// A new state with the libraries for `level` open: all of them for
    /// trusted, else base (with coroutine), table, string, math, bit, os and
    /// jit (so the JIT compiler is on; the sandbox removes the `jit` global).
    pub fn open(all: bool) -> Option<RawState> {
        let memory = Box::into_raw(Box::new(Memory {
            used: Cell::new(0),
            limit: Cell::new(0),
            ignore_limit: Cell::new(false),
        }));
        let alloc = allocator();
        // SAFETY: a fresh state; libraries are opened in protected mode.
        unsafe {
            let state = ffi::lua_newstate(alloc, memory.cast());
            if state.is_null() {
                drop(Box::from_raw(memory));
                return None;
            }
            let raw = RawState { state, memory };
            let f: ffi::lua_CFunction = if all { open_all } else { open_sandbox_libs };
            if ffi::lua_cpcall(state, f, ptr::null_mut()) != 0 {
                return None;
            }
            Some(raw)
        }
    }

    /// A full garbage collection, in protected mode and with 64 KiB above
    /// the limit while it runs (a protected call first allocates a closure, which a
    /// state at its memory limit cannot; this is how a full VM recovers).
    /// Finalizers (trusted VMs) may raise; that error is dropped.
    pub fn collect(&self) {
        unsafe extern "C-unwind" fn collect(state: *mut lua_State) -> c_int {
            unsafe { ffi::lua_gc(state, ffi::LUA_GCCOLLECT, 0) };
            0
        }
        // The protected call allocates a closure: a full state could not.
        let m = self.memory();
        let limit = m.limit.get();
        if limit > 0 {
            m.limit.set(limit.max(m.used.get()) + 64 * 1024);
        }
        // SAFETY: called by the state's user, outside any callback.
        unsafe {
            if ffi::lua_cpcall(self.state, collect, ptr::null_mut()) != 0 {
                ffi::lua_settop(self.state, -2);
            }
        }
        m.limit.set(limit);
    }

    pub fn memory(&self) -> &Memory {
        // SAFETY: owned by this state, freed only when it is dropped.
        unsafe { &*self.memory }
    }
}

impl Drop for RawState {
    fn drop(&mut self) {
        // SAFETY: nothing uses the state any more (see the type's doc).
        unsafe {
            ffi::lua_close(self.state);
            drop(Box::from_raw(self.memory));
        }
    }
}

unsafe extern "C-unwind" fn open_all(state: *mut lua_State) -> c_int {
    unsafe { ffi::luaL_openlibs(state) };
    0
}

unsafe extern "C-unwind" fn open_sandbox_libs(state: *mut lua_State) -> c_int {
    let libs: [(ffi::lua_CFunction, &std::ffi::CStr); 7] = [
        (ffi::luaopen_base, c""),
        (ffi::luaopen_table, c"table"),
        (ffi::luaopen_string, c"string"),
        (ffi::luaopen_math, c"math"),
        (ffi::luaopen_bit, c"bit"),
        (ffi::luaopen_os, c"os"),
        (ffi::luaopen_jit, c"jit"),
    ];
    for (f, name) in libs {
        unsafe {
            ffi::lua_pushcfunction(state, f);
            ffi::lua_pushstring(state, name.as_ptr());
            ffi::lua_call(state, 1, 0);
        }
    }
    0
}

/// Globals the strict sandbox keeps as they are (print, load, loadstring,
/// collectgarbage and os are replaced; everything else is removed).
const KEEP: &[&[u8]] = &[
    b"assert",
    b"error",
    b"getmetatable",
    b"ipairs",
    b"next",
    b"pairs",
    b"pcall",
    b"rawequal",
    b"rawget",
    b"rawset",
    b"select",
    b"setmetatable",
    b"tonumber",
    b"tostring",
    b"type",
    b"unpack",
    b"xpcall",
    b"_G",
    b"_VERSION",
    b"coroutine",
    b"gcinfo",
    b"string",
    b"table",
    b"math",
    b"bit",
];

unsafe fn bytes<'a>(state: *mut lua_State, idx: c_int) -> Option<&'a [u8]> {
    unsafe {
        if ffi::lua_type(state, idx) != ffi::LUA_TSTRING {
            return None;
        }
        let mut len = 0;
        let p = ffi::lua_tolstring(state, idx, &mut len);
        Some(std::slice::from_raw_parts(p.cast(), len))
    }
}

/// Calls the `deny` function (upvalue `up`) with the string on top of the
/// stack; it raises the Sandbox error.
unsafe fn deny_top(state: *mut lua_State, up: c_int) -> c_int {
    unsafe {
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(up));
        ffi::lua_insert(state, -2);
        ffi::lua_call(state, 1, 0);
    }
    0
}

unsafe fn deny_str(state: *mut lua_State, up: c_int, what: &std::ffi::CStr) -> c_int {
    unsafe {
        ffi::lua_pushstring(state, what.as_ptr());
        deny_top(state, up)
    }
}

/// `getmetatable(os).__index`: upvalues (the real os table, deny).
unsafe extern "C-unwind" fn os_index(state: *mut lua_State) -> c_int {
    unsafe {
        if ffi::lua_type(state, 2) != ffi::LUA_TSTRING {
            return 0;
        }
        ffi::lua_pushvalue(state, 2);
        ffi::lua_rawget(state, ffi::lua_upvalueindex(1));
        let exists = ffi::lua_type(state, -1) != ffi::LUA_TNIL;
        ffi::lua_settop(state, 2);
        if exists {
            ffi::lua_pushstring(state, c"os.".as_ptr());
            ffi::lua_pushvalue(state, 2);
            ffi::lua_concat(state, 2);
            return deny_top(state, 2);
        }
        0
    }
}

/// `getmetatable(string).__index`: upvalue deny.
unsafe extern "C-unwind" fn string_index(state: *mut lua_State) -> c_int {
    unsafe {
        match bytes(state, 2) {
            Some(b"dump") | Some(b"buffer") => {
                ffi::lua_pushstring(state, c"string.".as_ptr());
                ffi::lua_pushvalue(state, 2);
                ffi::lua_concat(state, 2);
                deny_top(state, 1)
            }
            _ => 0,
        }
    }
}

/// `__index` of the globals: touching a forbidden name raises Sandbox.
unsafe extern "C-unwind" fn globals_index(state: *mut lua_State) -> c_int {
    unsafe {
        let forbidden = bytes(state, 2).is_some_and(|k| {
            super::sandbox::FORBIDDEN
                .iter()
                .any(|(n, _)| n.as_bytes() == k)
        });
        if forbidden {
            ffi::lua_pushvalue(state, 2);
            return deny_top(state, 1);
        }
        0
    }
}

/// `__newindex` of the string metatable's stand-in: upvalue deny.
unsafe extern "C-unwind" fn string_metatable_write(state: *mut lua_State) -> c_int {
    unsafe { deny_str(state, 1, c"changing the string metatable") }
}

fn is_bytecode(b: Option<&[u8]>) -> bool {
    b.is_some_and(|b| b.first() == Some(&27))
}

/// `load(chunk, name, mode, env)` in text mode only: upvalues (load, deny).
unsafe extern "C-unwind" fn sandbox_load(state: *mut lua_State) -> c_int {
    unsafe {
        ffi::lua_settop(state, 4);
        if is_bytecode(bytes(state, 1)) || bytes(state, 3) == Some(b"b") {
            return deny_str(state, 2, c"loading bytecode");
        }
        let with_env = ffi::lua_type(state, 4) != ffi::LUA_TNIL;
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_pushvalue(state, 1);
        ffi::lua_pushvalue(state, 2);
        ffi::lua_pushstring(state, c"t".as_ptr());
        if with_env {
            ffi::lua_pushvalue(state, 4);
        }
        ffi::lua_call(state, if with_env { 4 } else { 3 }, ffi::LUA_MULTRET);
        ffi::lua_gettop(state) - 4
    }
}

/// `loadstring(s, name)` in text mode only: upvalues (load, deny).
unsafe extern "C-unwind" fn sandbox_loadstring(state: *mut lua_State) -> c_int {
    unsafe {
        ffi::lua_settop(state, 2);
        if is_bytecode(bytes(state, 1)) {
            return deny_str(state, 2, c"loading bytecode");
        }
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_pushvalue(state, 1);
        ffi::lua_pushvalue(state, 2);
        ffi::lua_pushstring(state, c"t".as_ptr());
        ffi::lua_call(state, 3, ffi::LUA_MULTRET);
        ffi::lua_gettop(state) - 2
    }
}

/// `collectgarbage("count")` only: upvalues (collectgarbage, deny).
unsafe extern "C-unwind" fn sandbox_collectgarbage(state: *mut lua_State) -> c_int {
    unsafe {
        ffi::lua_settop(state, 1);
        if bytes(state, 1) == Some(b"count") {
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
            ffi::lua_pushvalue(state, 1);
            ffi::lua_call(state, 1, 1);
            return 1;
        }
        if ffi::lua_type(state, 1) == ffi::LUA_TSTRING {
            ffi::lua_pushstring(state, c"collectgarbage(\"".as_ptr());
            ffi::lua_pushvalue(state, 1);
            ffi::lua_pushstring(state, c"\")".as_ptr());
            ffi::lua_concat(state, 3);
            deny_top(state, 2)
        } else {
            deny_str(state, 2, c"collectgarbage()")
        }
    }
}

/// `print(...)`: tostring each value, tabs between, a newline, one write.
/// Upvalues (tostring, write).
unsafe extern "C-unwind" fn sandbox_print(state: *mut lua_State) -> c_int {
    unsafe {
        let n = ffi::lua_gettop(state);
        ffi::luaL_checkstack(state, 40, c"print".as_ptr());
        let mut pieces = 0;
        for i in 1..=n {
            if i > 1 {
                ffi::lua_pushstring(state, c"\t".as_ptr());
                pieces += 1;
            }
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
            ffi::lua_pushvalue(state, i);
            ffi::lua_call(state, 1, 1);
            pieces += 1;
            if pieces >= 32 {
                ffi::lua_concat(state, pieces);
                pieces = 1;
            }
        }
        ffi::lua_pushstring(state, c"\n".as_ptr());
        ffi::lua_concat(state, pieces + 1);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(2));
        ffi::lua_insert(state, -2);
        ffi::lua_call(state, 1, 0);
        0
    }
}

/// `require(name)` of the standard sandbox: upvalues (the Rust finder, which
/// returns (chunk or value, is_value), and the table of loaded modules).
unsafe extern "C-unwind" fn sandbox_require(state: *mut lua_State) -> c_int {
    unsafe {
        ffi::lua_settop(state, 1);
        ffi::lua_pushvalue(state, 1);
        ffi::lua_rawget(state, ffi::lua_upvalueindex(2));
        if ffi::lua_type(state, -1) != ffi::LUA_TNIL {
            return 1;
        }
        ffi::lua_settop(state, 1);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_pushvalue(state, 1);
        ffi::lua_call(state, 1, 2);
        if ffi::lua_toboolean(state, 3) != 0 {
            ffi::lua_settop(state, 2);
        } else {
            ffi::lua_settop(state, 2);
            ffi::lua_pushvalue(state, 1);
            ffi::lua_call(state, 1, 1);
        }
        if ffi::lua_type(state, -1) == ffi::LUA_TNIL {
            ffi::lua_settop(state, -2);
            ffi::lua_pushboolean(state, 1);
        }
        ffi::lua_pushvalue(state, 1);
        ffi::lua_pushvalue(state, -2);
        ffi::lua_rawset(state, ffi::lua_upvalueindex(2));
        1
    }
}

/// Makes the globals of a state opened by `open(false)` the strict sandbox
/// (docs/vm.md), plus `require` when `require_impl` (stack index 5) is a
/// function. Stack on entry: 1 deny, 2 write, 3 error `__index`, 4 error
/// `__tostring`, 5 require_impl or nil, 6 an error value (its metatable is
/// the one all error values share). Runs in protected mode.
pub unsafe fn build_sandbox(state: *mut lua_State) {
    const G: c_int = ffi::LUA_GLOBALSINDEX;
    unsafe {
        ffi::luaL_checkstack(state, 20, c"sandbox".as_ptr());
        // Error values: readable (e.kind, tostring) and their metatable locked.
        lock_error_metatable(state, 6, 3, 4, true);
        // 7 load, 8 collectgarbage, 9 os, 10 tostring, 11 string
        for name in [c"load", c"collectgarbage", c"os", c"tostring", c"string"] {
            ffi::lua_getfield(state, G, name.as_ptr());
        }
        // Remove every global not kept (setting existing fields to nil while
        // traversing is allowed).
        ffi::lua_pushnil(state);
        while ffi::lua_next(state, G) != 0 {
            ffi::lua_settop(state, -2);
            let keep = bytes(state, -1).is_some_and(|k| KEEP.contains(&k));
            if !keep {
                ffi::lua_pushvalue(state, -1);
                ffi::lua_pushnil(state);
                ffi::lua_rawset(state, G);
            }
        }
        ffi::lua_pushnil(state);
        ffi::lua_setfield(state, 11, c"dump".as_ptr());
        // os: four functions; the rest is named in the error
        ffi::lua_createtable(state, 0, 4);
        for name in [c"time", c"clock", c"date", c"difftime"] {
            ffi::lua_getfield(state, 9, name.as_ptr());
            ffi::lua_setfield(state, -2, name.as_ptr());
        }
        ffi::lua_createtable(state, 0, 1);
        ffi::lua_pushvalue(state, 9);
        ffi::lua_pushvalue(state, 1);
        ffi::lua_pushcclosure(state, os_index, 2);
        ffi::lua_setfield(state, -2, c"__index".as_ptr());
        ffi::lua_setmetatable(state, -2);
        ffi::lua_setfield(state, G, c"os".as_ptr());
        // string: dump and buffer named in the error
        ffi::lua_createtable(state, 0, 1);
        ffi::lua_pushvalue(state, 1);
        ffi::lua_pushcclosure(state, string_index, 1);
        ffi::lua_setfield(state, -2, c"__index".as_ptr());
        ffi::lua_setmetatable(state, 11);
        // The string metatable: getmetatable("") is a read-only stand-in.
        ffi::lua_pushstring(state, c"".as_ptr());
        ffi::lua_getmetatable(state, -1);
        ffi::lua_createtable(state, 0, 0); // the stand-in
        ffi::lua_createtable(state, 0, 3); // its metatable
        ffi::lua_pushvalue(state, -3);
        ffi::lua_setfield(state, -2, c"__index".as_ptr());
        ffi::lua_pushboolean(state, 0);
        ffi::lua_setfield(state, -2, c"__metatable".as_ptr());
        ffi::lua_pushvalue(state, 1);
        ffi::lua_pushcclosure(state, string_metatable_write, 1);
        ffi::lua_setfield(state, -2, c"__newindex".as_ptr());
        ffi::lua_setmetatable(state, -2);
        ffi::lua_setfield(state, -2, c"__metatable".as_ptr());
        ffi::lua_settop(state, 11);
        // load, loadstring, collectgarbage, print
        ffi::lua_pushvalue(state, 7);
        ffi::lua_pushvalue(state, 1);
        ffi::lua_pushcclosure(state, sandbox_load, 2);
        ffi::lua_setfield(state, G, c"load".as_ptr());
        ffi::lua_pushvalue(state, 7);
        ffi::lua_pushvalue(state, 1);
        ffi::lua_pushcclosure(state, sandbox_loadstring, 2);
        ffi::lua_setfield(state, G, c"loadstring".as_ptr());
        ffi::lua_pushvalue(state, 8);
        ffi::lua_pushvalue(state, 1);
        ffi::lua_pushcclosure(state, sandbox_collectgarbage, 2);
        ffi::lua_setfield(state, G, c"collectgarbage".as_ptr());
        ffi::lua_pushvalue(state, 10);
        ffi::lua_pushvalue(state, 2);
        ffi::lua_pushcclosure(state, sandbox_print, 2);
        ffi::lua_setfield(state, G, c"print".as_ptr());
        if ffi::lua_type(state, 5) == ffi::LUA_TFUNCTION {
            ffi::lua_pushvalue(state, 5);
            ffi::lua_createtable(state, 0, 0);
            ffi::lua_pushcclosure(state, sandbox_require, 2);
            ffi::lua_setfield(state, G, c"require".as_ptr());
        }
        // Forbidden globals raise Sandbox when touched.
        ffi::lua_createtable(state, 0, 1);
        ffi::lua_pushvalue(state, 1);
        ffi::lua_pushcclosure(state, globals_index, 1);
        ffi::lua_setfield(state, -2, c"__index".as_ptr());
        ffi::lua_setmetatable(state, G);
        ffi::lua_settop(state, 0);
    }
}

/// Sets `__index` and `__tostring` (stack indices) on the metatable of the
/// error value at `err`, and locks it (`__metatable = false`) when `lock`.
pub unsafe fn lock_error_metatable(
    state: *mut lua_State,
    err: c_int,
    index: c_int,
    tostring: c_int,
    lock: bool,
) {
    unsafe {
        if ffi::lua_getmetatable(state, err) == 0 {
            return;
        }
        ffi::lua_pushvalue(state, index);
        ffi::lua_setfield(state, -2, c"__index".as_ptr());
        ffi::lua_pushvalue(state, tostring);
        ffi::lua_setfield(state, -2, c"__tostring".as_ptr());
        if lock {
            ffi::lua_pushboolean(state, 0);
            ffi::lua_setfield(state, -2, c"__metatable".as_ptr());
        }
        ffi::lua_settop(state, -2);
    }
}
