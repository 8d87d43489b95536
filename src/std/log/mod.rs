//! `bioxen.log`: levelled, structured logging on tracing, always to stderr.
use crate::runtime::builder::LibraryBuilder;
use mlua::{Lua, Result as LuaResult, Table, Value};
use tracing::Level;

pub fn module(lua: &Lua) -> LuaResult<Table> {
    LibraryBuilder::new(lua)
        .function("trace", |_, a: (String, Option<Table>)| {
            emit(Level::TRACE, a)
        })
        .function("debug", |_, a: (String, Option<Table>)| {
            emit(Level::DEBUG, a)
        })
        .function("info", |_, a: (String, Option<Table>)| emit(Level::INFO, a))
        .function("warn", |_, a: (String, Option<Table>)| emit(Level::WARN, a))
        .function("error", |_, a: (String, Option<Table>)| {
            emit(Level::ERROR, a)
        })
        .function("enabled", |_, level: String| {
            Ok(parse_level(&level).is_some_and(enabled))
        })
        .function("file", |lua, ()| file(lua))
        .function("file_id", |_, path: String| Ok(file_id(&path)))
        .function("clock", |_, ()| Ok(clock()))
        .build()
}

fn parse_level(name: &str) -> Option<Level> {
    name.parse().ok()
}

fn enabled(level: Level) -> bool {
    match level {
        Level::TRACE => tracing::enabled!(target: "lua", Level::TRACE),
        Level::DEBUG => tracing::enabled!(target: "lua", Level::DEBUG),
        Level::INFO => tracing::enabled!(target: "lua", Level::INFO),
        Level::WARN => tracing::enabled!(target: "lua", Level::WARN),
        Level::ERROR => tracing::enabled!(target: "lua", Level::ERROR),
    }
}

/// Fields are rendered `key=value`, sorted by key, after the message.
fn emit(level: Level, (message, fields): (String, Option<Table>)) -> LuaResult<()> {
    if !enabled(level) {
        return Ok(());
    }
    let mut pairs = Vec::new();
    if let Some(fields) = fields {
        for pair in fields.pairs::<Value, Value>() {
            let (k, v) = pair?;
            pairs.push(format!("{}={}", k.to_string()?, render(&v)?));
        }
    }
    pairs.sort();
    pairs.insert(0, message);
    let line = pairs.join(" ");
    match level {
        Level::TRACE => tracing::trace!(target: "lua", "{line}"),
        Level::DEBUG => tracing::debug!(target: "lua", "{line}"),
        Level::INFO => tracing::info!(target: "lua", "{line}"),
        Level::WARN => tracing::warn!(target: "lua", "{line}"),
        Level::ERROR => tracing::error!(target: "lua", "{line}"),
    }
    Ok(())
}

fn render(v: &Value) -> LuaResult<String> {
    Ok(match v {
        Value::String(s) => format!("{:?}", s.to_str()?.to_string()),
        other => other.to_string()?,
    })
}

/// The log file settings in force (see runtime/logging.rs), or nil when off.
fn file(lua: &Lua) -> LuaResult<Option<Table>> {
    let Some(s) = crate::runtime::logging::settings() else {
        return Ok(None);
    };
    let t = lua.create_table()?;
    t.set("path", s.path.display().to_string())?;
    t.set("filter", s.filter.as_str())?;
    let format = match s.format {
        crate::runtime::logging::Format::Text => "text",
        crate::runtime::logging::Format::Json => "json",
    };
    t.set("format", format)?;
    t.set("max_size", s.max_size)?;
    t.set("keep", s.keep)?;
    t.set(
        "ignored",
        lua.create_sequence_from(s.ignored.iter().cloned())?,
    )?;
    Ok(Some(t))
}

/// "device:inode" of the file at `path` (nil when absent), so `bioxen logs
/// --follow` notices when the log file was rotated under it.
fn file_id(path: &str) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(format!("{}:{}", m.dev(), m.ino()))
}

/// Monotonic seconds since the first call, for timing operations.
fn clock() -> f64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs_f64()
}
