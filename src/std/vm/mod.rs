//! `bioxen.vm`: sandboxed child VMs. The Rust half provides the backends'
//! primitives (`thread_create`, `process_create`); the Lua half
//! (stdlib/bioxen/vm.lua) is the public interface, the backend registry, the
//! id registry and `vm.run`/`vm.list`.
pub mod child;
pub mod job;
pub mod premade;
pub mod process;
pub mod protocol;
pub mod raw;
pub mod sandbox;
pub mod thread;
pub mod value;
pub mod watchdog;

use crate::runtime::{builder::LibraryBuilder, error::error};
use mlua::{Lua, MultiValue, Result as LuaResult, Table, Value};
use sandbox::{Level, Options};
use value::{Copier, Val};

pub fn module(lua: &Lua) -> LuaResult<Table> {
    LibraryBuilder::new(lua)
        .function("thread_create", |_, opts: Table| {
            // networked/grants/channels (bioxen.net, bioxen.channel)
            let extras = crate::library::net::child::Extras::parse(&opts)?;
            let vm = thread::create(parse_options(&opts)?)?;
            if !extras.is_empty() {
                vm.with_lua(|lua| extras.install(lua)).transpose()?;
            }
            Ok(vm)
        })
        .function("process_create", |_, opts: Table| {
            let restart = opts.raw_get::<Option<bool>>("restart")?.unwrap_or(true);
            let extras = crate::library::net::child::Extras::parse(&opts)?;
            let opts = parse_options(&opts)?;
            // one key per VM, so a closed VM's id reused later never shares its channels
            static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let key = format!("vm:{}:{serial}", opts.id);
            crate::library::net::child::register(&key, extras);
            process::create(opts, restart, key.clone()).inspect_err(|_| {
                crate::library::net::child::register(&key, Default::default());
            })
        })
        .function("process_pool", |_, n: usize| {
            process::set_pool_size(n.min(64));
            Ok(())
        })
        .function("now", |_, ()| Ok(clock_seconds()))
        .value("default_memory_limit", DEFAULT_MEMORY_LIMIT)
        .value("default_timeout", DEFAULT_TIMEOUT)
        .value("default_output_limit", DEFAULT_OUTPUT_LIMIT)
        .build()
}

pub const DEFAULT_MEMORY_LIMIT: usize = 64 << 20;
pub const DEFAULT_TIMEOUT: f64 = 10.0;
pub const DEFAULT_OUTPUT_LIMIT: usize = 1 << 20;
pub const DEFAULT_RESULT_LIMIT: usize = 16 << 20;

fn size(opts: &Table, name: &str, default: usize) -> LuaResult<usize> {
    match opts.raw_get::<Value>(name)? {
        Value::Nil => Ok(default),
        Value::Integer(i) if i >= 0 => Ok(i as usize),
        Value::Number(n) if n >= 0.0 && n.is_finite() => Ok(n as usize),
        other => Err(error(
            "Argument",
            format!(
                "option {name} must be a number of bytes >= 0, got {}",
                describe(&other)
            ),
        )),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("\"{}\"", s.to_string_lossy()),
        other => other.type_name().to_string(),
    }
}

/// Reads the options table the Lua half passes on (already checked for unknown keys).
pub fn parse_options(opts: &Table) -> LuaResult<Options> {
    let id: String = opts
        .raw_get::<Option<String>>("id")?
        .ok_or_else(|| error("Argument", "a VM needs an id"))?;
    let sandbox = match opts.raw_get::<Option<String>>("sandbox")? {
        None => Level::Strict,
        Some(s) => Level::parse(&s).ok_or_else(|| {
            error(
                "Argument",
                format!("unknown sandbox \"{s}\"; use \"strict\", \"standard\" or \"trusted\""),
            )
        })?,
    };
    let timeout = match opts.raw_get::<Value>("timeout")? {
        Value::Nil => DEFAULT_TIMEOUT,
        Value::Integer(i) if i >= 0 => i as f64,
        Value::Number(n) if n >= 0.0 => n,
        other => {
            return Err(error(
                "Argument",
                format!(
                    "option timeout must be seconds >= 0 (0 = none), got {}",
                    describe(&other)
                ),
            ));
        }
    };
    let package_path = match opts.raw_get::<Value>("package_path")? {
        Value::Nil => Vec::new(),
        Value::Table(t) => t
            .sequence_values::<String>()
            .collect::<LuaResult<Vec<_>>>()
            .map_err(|_| {
                error(
                    "Argument",
                    "option package_path must be a list of folder names",
                )
            })?
            .into_iter()
            .map(std::path::PathBuf::from)
            .collect(),
        Value::String(s) => s
            .to_string_lossy()
            .split(';')
            .map(std::path::PathBuf::from)
            .collect(),
        other => {
            return Err(error(
                "Argument",
                format!(
                    "option package_path must be a list of folders, got {}",
                    other.type_name()
                ),
            ));
        }
    };
    let globals = match opts.raw_get::<Value>("globals")? {
        Value::Nil => Val::Nil,
        v @ Value::Table(_) => Copier::new(usize::MAX)
            .copy(&v, "globals")
            .map_err(|e| error("Value", format!("cannot copy into the VM: {}", e.message)))?,
        other => {
            return Err(error(
                "Argument",
                format!("option globals must be a table, got {}", other.type_name()),
            ));
        }
    };
    Ok(Options {
        id,
        sandbox,
        memory_limit: size(opts, "memory_limit", DEFAULT_MEMORY_LIMIT)?,
        timeout,
        output_limit: size(opts, "output_limit", DEFAULT_OUTPUT_LIMIT)?,
        result_limit: size(opts, "result_limit", DEFAULT_RESULT_LIMIT)?,
        package_path,
        globals,
        lua_executable: opts.raw_get::<Option<String>>("lua_executable")?,
    })
}

/// Copies call arguments; an uncopyable one raises kind "Value" naming it.
pub fn copy_args(args: &MultiValue) -> LuaResult<Vec<Val>> {
    value::copy_all(args.iter(), "argument", usize::MAX)
        .map_err(|e| error("Value", format!("cannot copy into the VM: {}", e.message)))
}

/// Monotonic seconds since an arbitrary start, for timing (benchmarks, durations).
pub fn clock_seconds() -> f64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs_f64()
}
