//! `bioxen.env` native half: system facts and bioxen's folders. Interpreter
//! detection, validation and the configuration file are in `stdlib/bioxen/env.lua`.
use crate::runtime::{builder::LibraryBuilder, paths};
use mlua::{Lua, Result as LuaResult, Table};

pub fn module(lua: &Lua) -> LuaResult<Table> {
    LibraryBuilder::new(lua)
        .function("facts", |lua, ()| facts(lua))
        .function("dirs", |lua, ()| dirs(lua))
        .build()
}

fn facts(lua: &Lua) -> LuaResult<Table> {
    let t = lua.create_table()?;
    t.set("os", std::env::consts::OS)?;
    t.set("arch", std::env::consts::ARCH)?;
    t.set(
        "cpus",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    )?;
    t.set("memory", total_memory())?;
    t.set("bioxen_version", env!("CARGO_PKG_VERSION"))?;
    t.set("pid", std::process::id())?;
    t.set(
        "executable",
        std::env::current_exe()
            .ok()
            .map(|p| p.display().to_string()),
    )?;
    Ok(t)
}

/// Total memory in bytes, from /proc/meminfo.
fn total_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn dirs(lua: &Lua) -> LuaResult<Table> {
    let t = lua.create_table()?;
    t.set("config", paths::config_dir().display().to_string())?;
    t.set("data", paths::data_dir().display().to_string())?;
    t.set("cache", paths::cache_dir().display().to_string())?;
    t.set("runtime", paths::runtime_dir().display().to_string())?;
    Ok(t)
}
