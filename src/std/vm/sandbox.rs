//! A child VM's Lua state: built from an explicit allow-list for each sandbox
//! level, with captured output and limits, and the code that runs an exec or a
//! call in it and reports a result. Used by the thread backend in the host and
//! by the process backend's child loop alike.
use super::raw::RawState;
use super::value::{Copier, Reader, Val, put_bytes};
use crate::runtime::error::{BioxenError, find_bioxen, kind_of, message_of};
use crate::runtime::interrupt::{Interrupter, Reason};
use mlua::chunk::ChunkMode;
use mlua::{Function, Lua, MultiValue, Result as LuaResult, Value};
use std::any::Any;
use std::mem::ManuallyDrop;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Strict,
    Standard,
    Trusted,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "strict" => Some(Level::Strict),
            "standard" => Some(Level::Standard),
            "trusted" => Some(Level::Trusted),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Level::Strict => "strict",
            Level::Standard => "standard",
            Level::Trusted => "trusted",
        }
    }
}

/// Everything a child VM is built from; also sent to process children.
#[derive(Clone, Debug)]
pub struct Options {
    pub id: String,
    pub sandbox: Level,
    /// Bytes; 0 means no limit.
    pub memory_limit: usize,
    /// Seconds per exec; 0 means none.
    pub timeout: f64,
    pub output_limit: usize,
    pub result_limit: usize,
    pub package_path: Vec<PathBuf>,
    /// A `Val::Table` of globals, or Nil.
    pub globals: Val,
    /// Process backend only: run this external interpreter (Lua 5.3+) instead
    /// of a bioxen child. Host-side only, never sent.
    pub lua_executable: Option<String>,
}

impl Options {
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_bytes(out, self.id.as_bytes());
        out.push(self.sandbox as u8);
        out.extend_from_slice(&(self.memory_limit as u64).to_le_bytes());
        out.extend_from_slice(&self.timeout.to_le_bytes());
        out.extend_from_slice(&(self.output_limit as u64).to_le_bytes());
        out.extend_from_slice(&(self.result_limit as u64).to_le_bytes());
        out.extend_from_slice(&(self.package_path.len() as u32).to_le_bytes());
        for p in &self.package_path {
            put_bytes(out, p.to_string_lossy().as_bytes());
        }
        self.globals.encode(out);
    }

    pub fn decode(r: &mut Reader) -> Result<Options, String> {
        let id = r.string()?;
        let sandbox = match r.u8()? {
            0 => Level::Strict,
            1 => Level::Standard,
            _ => Level::Trusted,
        };
        let u64_ = |r: &mut Reader| -> Result<usize, String> {
            Ok(u64::from_le_bytes(r.take(8)?.try_into().unwrap()) as usize)
        };
        let memory_limit = u64_(r)?;
        let timeout = r.f64()?;
        let output_limit = u64_(r)?;
        let result_limit = u64_(r)?;
        let n = r.u32()?;
        let mut package_path = Vec::new();
        for _ in 0..n {
            package_path.push(PathBuf::from(r.string()?));
        }
        let globals = Val::decode(r)?;
        Ok(Options {
            id,
            sandbox,
            memory_limit,
            timeout,
            output_limit,
            result_limit,
            package_path,
            globals,
            lua_executable: None,
        })
    }
}

/// The outcome of one exec or call, exactly what `r` holds in Lua.
#[derive(Clone, Debug, Default)]
pub struct ExecResult {
    pub ok: bool,
    pub values: Vec<Val>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub kind: Option<String>,
    pub error: Option<String>,
    pub duration: f64,
    pub truncated: bool,
}

impl ExecResult {
    pub fn failure(kind: &str, message: impl Into<String>) -> ExecResult {
        ExecResult {
            ok: false,
            kind: Some(kind.to_string()),
            error: Some(message.into()),
            ..Default::default()
        }
    }

    /// The result table, built with the raw C API under one lock (each
    /// separate mlua operation would take the state's lock again).
    pub fn to_lua(&self, lua: &Lua) -> LuaResult<mlua::Table> {
        // SAFETY: the closure only pushes values and sets fields, leaving the
        // result table on the stack; it runs in protected mode.
        unsafe {
            lua.exec_raw::<mlua::Table>((), |state| {
                use mlua::ffi;
                ffi::lua_createtable(state, 0, 9);
                ffi::lua_pushboolean(state, self.ok as i32);
                ffi::lua_setfield(state, -2, c"ok".as_ptr());
                ffi::lua_createtable(state, self.values.len() as i32, 0);
                for (i, v) in self.values.iter().enumerate() {
                    push_val(state, v);
                    ffi::lua_rawseti(state, -2, i as i64 + 1);
                }
                ffi::lua_setfield(state, -2, c"values".as_ptr());
                ffi::lua_pushnumber(state, self.values.len() as f64);
                ffi::lua_setfield(state, -2, c"n".as_ptr());
                ffi::lua_pushlstring(state, self.stdout.as_ptr().cast(), self.stdout.len());
                ffi::lua_setfield(state, -2, c"stdout".as_ptr());
                ffi::lua_pushlstring(state, self.stderr.as_ptr().cast(), self.stderr.len());
                ffi::lua_setfield(state, -2, c"stderr".as_ptr());
                if let Some(k) = &self.kind {
                    ffi::lua_pushlstring(state, k.as_ptr().cast(), k.len());
                    ffi::lua_setfield(state, -2, c"kind".as_ptr());
                }
                if let Some(e) = &self.error {
                    ffi::lua_pushlstring(state, e.as_ptr().cast(), e.len());
                    ffi::lua_setfield(state, -2, c"error".as_ptr());
                }
                ffi::lua_pushnumber(state, self.duration);
                ffi::lua_setfield(state, -2, c"duration".as_ptr());
                ffi::lua_pushboolean(state, self.truncated as i32);
                ffi::lua_setfield(state, -2, c"truncated".as_ptr());
            })
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.ok as u8);
        out.push(self.truncated as u8);
        out.extend_from_slice(&self.duration.to_le_bytes());
        put_bytes(out, &self.stdout);
        put_bytes(out, &self.stderr);
        put_bytes(out, self.kind.as_deref().unwrap_or("").as_bytes());
        put_bytes(out, self.error.as_deref().unwrap_or("").as_bytes());
        out.extend_from_slice(&(self.values.len() as u32).to_le_bytes());
        for v in &self.values {
            v.encode(out);
        }
    }

    pub fn decode(r: &mut Reader) -> Result<ExecResult, String> {
        let ok = r.u8()? != 0;
        let truncated = r.u8()? != 0;
        let duration = r.f64()?;
        let stdout = r.bytes()?.to_vec();
        let stderr = r.bytes()?.to_vec();
        let kind = Some(r.string()?).filter(|s| !s.is_empty());
        let error = Some(r.string()?).filter(|s| !s.is_empty());
        let n = r.u32()?;
        let mut values = Vec::new();
        for _ in 0..n {
            values.push(Val::decode(r)?);
        }
        Ok(ExecResult {
            ok,
            values,
            stdout,
            stderr,
            kind,
            error,
            duration,
            truncated,
        })
    }
}

/// Pushes a copied value (raw C API; tables at most MAX_DEPTH deep, so the
/// stack check per level keeps this safe).
unsafe fn push_val(state: *mut mlua::ffi::lua_State, v: &Val) {
    use mlua::ffi;
    unsafe {
        match v {
            Val::Nil => ffi::lua_pushnil(state),
            Val::Bool(b) => ffi::lua_pushboolean(state, *b as i32),
            Val::Int(i) => ffi::lua_pushnumber(state, *i as f64),
            Val::Num(n) => ffi::lua_pushnumber(state, *n),
            Val::Str(s) => {
                ffi::lua_pushlstring(state, s.as_ptr().cast(), s.len());
            }
            Val::Table(entries) => {
                ffi::luaL_checkstack(state, 4, c"nested value".as_ptr());
                ffi::lua_createtable(state, 0, entries.len() as i32);
                for (k, v) in entries {
                    if matches!(k, Val::Nil) || matches!(k, Val::Num(n) if n.is_nan()) {
                        continue;
                    }
                    push_val(state, k);
                    push_val(state, v);
                    ffi::lua_rawset(state, -3);
                }
            }
        }
    }
}

/// Captured print output of the running exec (app data of the child state).
struct Output {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    limit: usize,
    truncated: bool,
}

impl Output {
    fn write(&mut self, err: bool, data: &[u8]) -> LuaResult<()> {
        let room = self
            .limit
            .saturating_sub(self.stdout.len() + self.stderr.len());
        let buf = if err {
            &mut self.stderr
        } else {
            &mut self.stdout
        };
        if data.len() <= room {
            buf.extend_from_slice(data);
            return Ok(());
        }
        buf.extend_from_slice(&data[..room]);
        self.truncated = true;
        Err(BioxenError::new(
            "OutputLimit",
            format!(
                "output exceeded output_limit ({} bytes); raise output_limit to allow more",
                self.limit
            ),
        )
        .into_lua_err())
    }
}

/// What is absent in the strict and standard sandboxes, with how to grant it.
pub(super) const FORBIDDEN: &[(&str, &str)] = &[
    ("io", "trusted"),
    ("debug", "trusted"),
    ("ffi", "trusted"),
    ("jit", "trusted"),
    ("package", "trusted"),
    ("dofile", "trusted"),
    ("loadfile", "trusted"),
    ("module", "trusted"),
    ("newproxy", "trusted"),
    ("getfenv", "trusted"),
    ("setfenv", "trusted"),
    ("require", "standard"),
];

const PRINT: &str = r##"local write = ...
local tostring, select, concat = tostring, select, table.concat
print = function(...)
  local n = select("#", ...)
  if n == 1 then return write(tostring((...)) .. "\n") end
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  write(concat(parts, "\t") .. "\n")
end"##;

/// Setup chunks are parsed once per process and loaded as stripped bytecode
/// (our own, never the child's) into each new state: parsing costs more than
/// the rest of building a sandbox.
fn compiled(lua: &Lua, slot: usize, source: &str) -> LuaResult<Function> {
    static CACHE: [std::sync::OnceLock<Vec<u8>>; 3] = [
        std::sync::OnceLock::new(),
        std::sync::OnceLock::new(),
        std::sync::OnceLock::new(),
    ];
    let bytes = CACHE[slot].get_or_init(|| {
        let compiler = Lua::new();
        compiler
            .load(source)
            .set_name("=[bioxen sandbox]")
            .into_function()
            .expect("the sandbox setup compiles")
            .dump(true)
    });
    lua.load(&bytes[..])
        .set_name("=[bioxen sandbox]")
        .set_mode(ChunkMode::Binary)
        .into_function()
}

/// A child VM's state and what it needs to run execs.
pub struct Child {
    /// mlua's handle on `raw`; dropped before it (see `Drop`).
    pub lua: ManuallyDrop<Lua>,
    pub opts: Options,
    chunk_name: String,
    /// Recently run source -> its compiled chunk (see `compile`).
    chunks: std::sync::Mutex<Vec<(Vec<u8>, Function)>>,
    /// The state itself: `lua_close` when dropped.
    raw: RawState,
    /// Must outlive the state, so declared after `raw`.
    pub interrupter: Arc<Interrupter>,
}

impl Drop for Child {
    fn drop(&mut self) {
        // Every mlua handle on the state goes before the state is closed.
        match self.chunks.get_mut() {
            Ok(c) => c.clear(),
            Err(p) => p.into_inner().clear(),
        }
        // SAFETY: not used again; `raw` (dropped next) closes the state.
        unsafe { ManuallyDrop::drop(&mut self.lua) };
    }
}

/// How many distinct recent chunks a VM keeps compiled, and up to what size.
const CHUNK_CACHE: usize = 8;
const CHUNK_CACHE_MAX_LEN: usize = 1024;

fn sandbox_error(level: Level, what: &str) -> mlua::Error {
    let grant = FORBIDDEN
        .iter()
        .find(|(n, _)| *n == what)
        .map(|(_, g)| *g)
        .unwrap_or("trusted");
    let how = if grant == "standard" {
        "use sandbox = \"standard\" (pure-Lua modules from package_path) or \"trusted\""
    } else {
        "use sandbox = \"trusted\" (the full LuaJIT library, for code you wrote yourself)"
    };
    BioxenError::new(
        "Sandbox",
        format!(
            "{what} is not available in the {} sandbox; to grant it, {how}",
            level.name()
        ),
    )
    .with("name", what)
    .into_lua_err()
}

impl Child {
    /// Builds the state; `modules` finds `require`d source (default: read package_path).
    pub fn new(opts: Options, modules: Option<ModuleSource>) -> LuaResult<Child> {
        let trusted = opts.sandbox == Level::Trusted;
        let raw = RawState::open(trusted)
            .ok_or_else(|| crate::runtime::error::error("Runtime", "cannot create a Lua state"))?;
        // SAFETY: our own state, wrapped once; `Child` drops every mlua handle
        // before `raw` closes it. Sandboxed below, before any code runs.
        let lua = unsafe { Lua::get_or_init_from_ptr(raw.state) }.clone();
        lua.set_app_data(Output {
            stdout: Vec::new(),
            stderr: Vec::new(),
            limit: opts.output_limit,
            truncated: false,
        });
        let write = lua.create_function(|lua, s: mlua::LuaString| {
            lua.app_data_mut::<Output>()
                .expect("output buffer")
                .write(false, &s.as_bytes())
        })?;
        // error values with e.kind / e.message in the child (net and channel rely on it)
        let (sample, index, tostring) = crate::runtime::error::error_metatable_parts(&lua)?;
        if trusted {
            // SAFETY: only sets fields of the error metatable (protected mode).
            unsafe {
                lua.exec_raw::<()>((sample, index, tostring), |state| {
                    super::raw::lock_error_metatable(state, 1, 2, 3, false)
                })?;
            }
            Self::setup_trusted(&lua, write)?;
        } else {
            let level = opts.sandbox;
            let deny = lua.create_function(move |_, what: String| {
                Err::<(), _>(sandbox_error(level, &what))
            })?;
            let require_impl = if level == Level::Standard {
                let source = modules.unwrap_or_else(|| files_source(opts.package_path.clone()));
                Some(lua.create_function(move |lua, name: String| {
                    require_module(lua, &source, &name)
                })?)
            } else {
                None
            };
            // SAFETY: build_sandbox's stack contract is these six values; it
            // runs in protected mode.
            unsafe {
                lua.exec_raw::<()>(
                    (deny, write, index, tostring, require_impl, sample),
                    |state| super::raw::build_sandbox(state),
                )?;
            }
        }
        let interrupter = Interrupter::attach(&lua);
        Ok(Child {
            lua: ManuallyDrop::new(lua),
            chunk_name: format!("={}", opts.id),
            chunks: std::sync::Mutex::new(Vec::new()),
            opts,
            raw,
            interrupter,
        })
    }

    /// Bytes the state uses now.
    pub fn used_memory(&self) -> usize {
        self.raw.memory().used.get().max(0) as usize
    }

    /// Applies a VM's own options to a state built by `new` (possibly ahead
    /// of time with other limits): id, output limit, globals, memory limit.
    pub fn configure(mut self, opts: Options) -> LuaResult<Child> {
        self.lua
            .app_data_mut::<Output>()
            .expect("output buffer")
            .limit = opts.output_limit;
        if let Val::Table(entries) = &opts.globals {
            let g = self.lua.globals();
            for (k, v) in entries {
                g.raw_set(k.to_lua(&self.lua)?, v.to_lua(&self.lua)?)?;
            }
        }
        if opts.memory_limit > 0 {
            let used = self.used_memory();
            self.raw
                .memory()
                .limit
                .set(opts.memory_limit.max(used + 64 * 1024) as isize);
        }
        self.chunk_name = format!("={}", opts.id);
        self.opts = opts;
        Ok(self)
    }

    fn setup_trusted(lua: &Lua, write: Function) -> LuaResult<()> {
        let json = crate::library::json::module(lua)?;
        compiled(
            lua,
            1,
            r##"local json, write = ...
            package.preload["bioxen.json"] = function() return json end
            io.write = function(...)
              local t = { ... }
              for i = 1, select("#", ...) do t[i] = tostring(t[i]) end
              write(table.concat(t))
              return io
            end"##,
        )?
        .call::<()>((json, write.clone()))?;
        Self::install_print(lua, write)
    }

    fn install_print(lua: &Lua, write: Function) -> LuaResult<()> {
        compiled(lua, 2, PRINT)?.call::<()>(write)
    }

    /// Runs source code; `arm` starts the deadline and returns its guard.
    pub fn exec(&self, code: &[u8], arm: &dyn Fn(Option<Duration>) -> Box<dyn Any>) -> ExecResult {
        let start = Instant::now();
        self.begin();
        let guard = arm(super::watchdog::secs(self.opts.timeout));
        self.reclaim_if_full();
        let outcome = self.compile(code).and_then(|f| f.call::<MultiValue>(()));
        self.reclaim_after(&outcome);
        drop(guard);
        self.finish(outcome, start)
    }

    /// Calls global function `name` with copied arguments.
    pub fn call(
        &self,
        name: &str,
        args: &[Val],
        arm: &dyn Fn(Option<Duration>) -> Box<dyn Any>,
    ) -> ExecResult {
        let start = Instant::now();
        self.begin();
        let f = match self.lua.globals().raw_get::<Value>(name) {
            Ok(Value::Function(f)) => f,
            Ok(other) => {
                let mut r = ExecResult::failure(
                    "Runtime",
                    format!(
                        "global '{name}' is {}, not a function, in VM {}",
                        other.type_name(),
                        self.opts.id
                    ),
                );
                r.duration = start.elapsed().as_secs_f64();
                return r;
            }
            Err(e) => return self.finish(Err(e), start),
        };
        let guard = arm(super::watchdog::secs(self.opts.timeout));
        self.reclaim_if_full();
        let outcome = args
            .iter()
            .map(|v| v.to_lua(&self.lua))
            .collect::<LuaResult<MultiValue>>()
            .and_then(|args| f.call::<MultiValue>(args));
        self.reclaim_after(&outcome);
        drop(guard);
        self.finish(outcome, start)
    }

    /// Compiles source, or reuses the chunk compiled the last time the same
    /// source ran. Only for code that defines no functions: rerunning a chunk
    /// whose inner closures are recreated defeats LuaJIT's traces (they guard
    /// on closure identity; fib(32) ran 1.3-1.7x slower that way). A main chunk
    /// has no upvalues and strict/standard have no getfenv/setfenv, so running
    /// the same chunk again is the same as compiling it again; trusted code
    /// could tell, so it is never cached.
    fn compile(&self, code: &[u8]) -> LuaResult<Function> {
        let cacheable = self.opts.sandbox != Level::Trusted
            && code.len() <= CHUNK_CACHE_MAX_LEN
            && !code.windows(8).any(|w| w == b"function");
        if cacheable
            && let Some((_, f)) = self.chunks.lock().unwrap().iter().find(|(c, _)| c == code)
        {
            return Ok(f.clone());
        }
        let f = self
            .lua
            .load(code)
            .set_name(&self.chunk_name)
            .set_mode(ChunkMode::Text)
            .into_function()?;
        if cacheable {
            let mut chunks = self.chunks.lock().unwrap();
            if chunks.len() >= CHUNK_CACHE {
                chunks.remove(0);
            }
            chunks.push((code.to_vec(), f.clone()));
        }
        Ok(f)
    }

    fn begin(&self) {
        self.interrupter.clear();
        let mut out = self.lua.app_data_mut::<Output>().expect("output buffer");
        out.stdout.clear();
        out.stderr.clear();
        out.truncated = false;
    }

    /// LuaJIT does not collect garbage when an allocation fails, so a state
    /// that ran into its memory limit would stay full of garbage and fail every
    /// later exec: collect when near the limit (under the exec's deadline, as a
    /// trusted VM's finalizers may run).
    fn reclaim_if_full(&self) {
        let limit = self.opts.memory_limit;
        if limit > 0 && self.used_memory() > limit / 4 * 3 {
            self.raw.collect();
        }
    }

    fn reclaim_after(&self, outcome: &LuaResult<MultiValue>) {
        if let Err(e) = outcome
            && kind_of(e) == "MemoryLimit"
        {
            self.raw.collect();
        }
    }

    fn finish(&self, outcome: LuaResult<MultiValue>, start: Instant) -> ExecResult {
        let reason = self.interrupter.clear();
        let (stdout, stderr, truncated) = {
            let mut out = self.lua.app_data_mut::<Output>().expect("output buffer");
            (
                std::mem::take(&mut out.stdout),
                std::mem::take(&mut out.stderr),
                out.truncated,
            )
        };
        let mut r = match outcome {
            Ok(values) => {
                let mut copier = Copier::new(self.opts.result_limit);
                let copied: Result<Vec<Val>, _> = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        // Plain values need no name (names only serve error messages).
                        Value::Nil | Value::Boolean(_) | Value::Integer(_) | Value::Number(_) => {
                            copier.copy(v, "")
                        }
                        _ => copier.copy(v, &format!("result {}", i + 1)),
                    })
                    .collect();
                match copied {
                    Ok(values) => ExecResult {
                        ok: true,
                        values,
                        ..Default::default()
                    },
                    Err(e) if e.too_big => ExecResult::failure(
                        "OutputLimit",
                        format!(
                            "{} (result_limit is {} bytes)",
                            e.message, self.opts.result_limit
                        ),
                    ),
                    Err(e) => ExecResult::failure(
                        "Value",
                        format!("cannot return the values: {}", e.message),
                    ),
                }
            }
            Err(e) => {
                let kind = match reason {
                    Some(Reason::Timeout) => "Timeout".to_string(),
                    Some(Reason::Cancelled) => "Cancelled".to_string(),
                    Some(Reason::Interrupted) => "Interrupted".to_string(),
                    None => kind_of(&e),
                };
                let message = match reason {
                    Some(Reason::Timeout) => format!(
                        "the exec ran longer than its timeout of {} s and was stopped",
                        self.opts.timeout
                    ),
                    Some(Reason::Cancelled) => "the exec was cancelled".to_string(),
                    _ => match find_bioxen(&e) {
                        Some(b) => b.message.clone(),
                        None => message_of(&e),
                    },
                };
                ExecResult::failure(&kind, message)
            }
        };
        r.stdout = stdout;
        r.stderr = stderr;
        r.truncated = truncated;
        r.duration = start.elapsed().as_secs_f64();
        r
    }
}

/// Finds a module's source: `Ok(Some((chunk name, source)))`, `Ok(None)` when absent
/// (the error lists what was tried).
pub type ModuleSource =
    Box<dyn Fn(&str) -> Result<Option<(String, Vec<u8>)>, String> + Send + Sync>;

/// Reads `NAME.lua` or `NAME/init.lua` from the package_path folders (read-only).
pub fn files_source(path: Vec<PathBuf>) -> ModuleSource {
    Box::new(move |name: &str| find_in_path(&path, name))
}

pub fn find_in_path(path: &[PathBuf], name: &str) -> Result<Option<(String, Vec<u8>)>, String> {
    let rel = name.replace('.', "/");
    let mut tried = Vec::new();
    for dir in path {
        for candidate in [
            dir.join(format!("{rel}.lua")),
            dir.join(&rel).join("init.lua"),
        ] {
            if let Ok(src) = std::fs::read(&candidate) {
                return Ok(Some((format!("@{}", candidate.display()), src)));
            }
            tried.push(candidate.display().to_string());
        }
    }
    if tried.is_empty() {
        Err("no folders in package_path".into())
    } else {
        Err(format!("tried: {}", tried.join(", ")))
    }
}

/// `require` in the standard sandbox: bioxen.json, or pure Lua from package_path.
fn require_module(lua: &Lua, source: &ModuleSource, name: &str) -> LuaResult<(Value, bool)> {
    if name == "bioxen.json" {
        return Ok((Value::Table(crate::library::json::module(lua)?), true));
    }
    let native = [
        "ffi",
        "jit",
        "io",
        "os",
        "debug",
        "package",
        "string.buffer",
        "table.new",
        "table.clear",
    ];
    if native.contains(&name) || name.starts_with("jit.") || name.starts_with("bioxen.") {
        return Err(BioxenError::new(
            "Sandbox",
            format!("module '{name}' is not available in the standard sandbox; to grant it, use sandbox = \"trusted\""),
        )
        .into_lua_err());
    }
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
        && !name.contains("..");
    if !valid {
        return Err(
            BioxenError::new("Argument", format!("invalid module name '{name}'")).into_lua_err(),
        );
    }
    let found = source(name);
    match found {
        Ok(Some((chunk_name, src))) => {
            let f = lua
                .load(src)
                .set_name(chunk_name)
                .set_mode(ChunkMode::Text)
                .into_function()?;
            Ok((Value::Function(f), false))
        }
        Ok(None) | Err(_) => Err(BioxenError::new(
            "NotFound",
            format!(
                "module '{name}' not found in the VM's package_path ({}); only pure-Lua modules in package_path can be required",
                found.err().unwrap_or_default()
            ),
        )
        .with("module", name)
        .into_lua_err()),
    }
}
