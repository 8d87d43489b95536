//! Module resolution for the host: the `bioxen` global with lazily built
//! libraries, a searcher for `bioxen.*`, and the script folder on the path.
use super::stdlib;
use crate::library;
use mlua::{Function, Lua, Result as LuaResult, Table, Value};
use std::path::Path;

/// Installs the `bioxen` searcher and the lazy global `bioxen` table. Built
/// from Rust: start-up then parses no Lua.
pub fn install(lua: &Lua) -> LuaResult<()> {
    let package: Table = lua.globals().get("package")?;
    package
        .get::<Table>("loaders")?
        .raw_insert(2, lua.create_function(search)?)?;
    let bioxen = lua.create_table()?;
    bioxen.raw_set("error", super::error::constructor(lua)?)?;
    let meta = lua.create_table()?;
    meta.raw_set("__index", lua.create_function(lazy_field)?)?;
    bioxen.set_metatable(Some(meta))?;
    package.get::<Table>("loaded")?.raw_set("bioxen", &bioxen)?;
    lua.globals().raw_set("bioxen", bioxen)?;
    append_active_env(lua)
}

/// Fields of `bioxen` that are not libraries: bioxen.hotreload's functions,
/// also loaded on first use.
pub const HOTRELOAD_FIELDS: [&str; 2] = ["reload", "watch"];

/// `bioxen.NAME`: the library, required on first use and kept in the table;
/// `HOTRELOAD_FIELDS` come from bioxen.hotreload the same way.
fn lazy_field(lua: &Lua, (bioxen, name): (Table, Value)) -> LuaResult<Value> {
    let Value::String(name) = name else {
        return Ok(Value::Nil);
    };
    let name = name.to_str()?.to_string();
    let require: Function = lua.globals().get("require")?;
    let value = match name.as_str() {
        n if HOTRELOAD_FIELDS.contains(&n) => require
            .call::<Table>("bioxen.hotreload")?
            .get::<Value>(name.as_str())?,
        _ if exists(&name) => require.call::<Value>(format!("bioxen.{name}"))?,
        _ => return Ok(Value::Nil),
    };
    bioxen.raw_set(name, &value)?;
    Ok(value)
}

/// Appends the active package environment's tree (see stdlib/bioxen/pkg.lua) to
/// `package.path`/`package.cpath`, after LUA_PATH. Costs one small file read.
fn append_active_env(lua: &Lua) -> LuaResult<()> {
    let envs = super::paths::data_dir().join("envs");
    let name = std::env::var("BIOXEN_ENV")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::fs::read_to_string(envs.join("ACTIVE"))
                .ok()
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "default".into());
    let tree = envs.join(&name).join("current/tree");
    if name.contains('/') || !tree.exists() {
        return Ok(());
    }
    let t = tree.display();
    let package: Table = lua.globals().get("package")?;
    let path: String = package.get("path")?;
    let cpath: String = package.get("cpath")?;
    package.set(
        "path",
        format!("{path};{t}/share/lua/5.1/?.lua;{t}/share/lua/5.1/?/init.lua"),
    )?;
    package.set("cpath", format!("{cpath};{t}/lib/lua/5.1/?.so"))?;
    Ok(())
}

/// Whether `bioxen.NAME` is a library (native, Lua, or both).
pub fn exists(name: &str) -> bool {
    library::find(name).is_some()
        || stdlib::source(&stdlib::module_path(&format!("bioxen.{name}"))).is_some()
}

/// Searcher for `bioxen.NAME`: a registered library or any file under `stdlib/`.
fn search(lua: &Lua, name: String) -> LuaResult<Value> {
    let Some(rest) = name.strip_prefix("bioxen.") else {
        return Ok(Value::Nil);
    };
    let native = library::find(rest).and_then(|l| l.native);
    let source = stdlib::source(&stdlib::module_path(&name));
    if native.is_none() && source.is_none() {
        return Ok(Value::String(
            lua.create_string(format!("\n\tno embedded module '{name}'"))?,
        ));
    }
    let loader = lua.create_function(move |lua, _: mlua::MultiValue| load(lua, &name, native))?;
    Ok(Value::Function(loader))
}

/// Builds a library: the native table, passed to the Lua half when there is one.
fn load(lua: &Lua, name: &str, native: Option<library::NativeModule>) -> LuaResult<Value> {
    let native_table = native.map(|build| build(lua)).transpose()?;
    match stdlib::source(&stdlib::module_path(name)) {
        Some(src) => {
            let chunk: Function = lua
                .load(src.as_ref())
                .set_name(format!("@stdlib/{}", stdlib::module_path(name)))
                .into_function()?;
            chunk.call::<Value>((native_table, name))
        }
        None => Ok(native_table.map(Value::Table).unwrap_or(Value::Nil)),
    }
}

/// Puts the script's own folder first on `package.path` and `package.cpath`.
pub fn prepend_script_dir(lua: &Lua, script: &Path) -> LuaResult<()> {
    let dir = script
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = dir.to_string_lossy();
    let package: Table = lua.globals().get("package")?;
    let path: String = package.get("path")?;
    let cpath: String = package.get("cpath")?;
    package.set("path", format!("{dir}/?.lua;{dir}/?/init.lua;{path}"))?;
    package.set("cpath", format!("{dir}/?.so;{cpath}"))?;
    Ok(())
}
