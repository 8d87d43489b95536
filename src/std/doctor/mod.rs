//! `bioxen.doctor` native half: the facts doctor needs from the OS and from the
//! binary itself. The checks, the report and the library contract are Lua
//! (`stdlib/bioxen/doctor.lua`).
use crate::runtime::{builder::LibraryBuilder, error::error};
use mlua::{Lua, Result as LuaResult, Table};
use std::ffi::CString;

mod types {
    include!(concat!(env!("OUT_DIR"), "/types_files.rs"));
}

pub fn module(lua: &Lua) -> LuaResult<Table> {
    LibraryBuilder::new(lua)
        .function("libraries", |lua, ()| libraries(lua))
        .function("native", |lua, name: String| native(lua, &name))
        .function("has_plugin", |_, name: String| {
            Ok(crate::runtime::stdlib::source(&format!("bioxen/doctor/{name}.lua")).is_some())
        })
        .function("free_space", |_, path: String| free_space(&path))
        .function("make_dir", |_, path: String| {
            Ok(std::fs::create_dir_all(&path)
                .map_err(|e| e.to_string())
                .err())
        })
        .function("path_kind", |_, path: String| Ok(path_kind(&path)))
        .function("isatty", |_, fd: i32| Ok(unsafe { libc::isatty(fd) } == 1))
        .function("type_definitions", |lua, ()| type_definitions(lua))
        .async_function("http_get", |lua, (url, opts): (String, Option<Table>)| {
            http_get(lua, url, opts)
        })
        .build()
}

/// The registry (`LIBRARIES`) in order: { name, summary, native }.
fn libraries(lua: &Lua) -> LuaResult<Table> {
    let list = lua.create_table()?;
    for lib in crate::library::LIBRARIES {
        let t = lua.create_table()?;
        t.set("name", lib.name)?;
        t.set("summary", lib.summary)?;
        t.set("native", lib.native.is_some())?;
        list.push(t)?;
    }
    Ok(list)
}

/// "directory", "file", "socket", "other", or nil when nothing is there
/// (symbolic links are followed).
fn path_kind(path: &str) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = std::fs::metadata(path).ok()?.file_type();
    Some(if t.is_dir() {
        "directory"
    } else if t.is_file() {
        "file"
    } else if t.is_socket() {
        "socket"
    } else {
        "other"
    })
}

/// A fresh copy of library `name`'s native half (nil for Lua-only libraries),
/// so checks can reach primitives its Lua half does not re-export.
fn native(lua: &Lua, name: &str) -> LuaResult<Option<Table>> {
    match crate::library::find(name).and_then(|l| l.native) {
        Some(build) => build(lua).map(Some),
        None => Ok(None),
    }
}

/// Bytes available to this user on the file system holding `path`.
fn free_space(path: &str) -> LuaResult<u64> {
    let c = CString::new(path).map_err(|_| error("Argument", "path contains a NUL byte"))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string and `st` a properly sized out-parameter.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(error(
            "Io",
            format!("cannot read free space of {path}: {e}"),
        ));
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// `GET url` for reachability and credential checks: { status, body }.
/// opts: { user, password, headers = { name = value }, timeout = seconds (5) }.
/// Raises `Unreachable` when no HTTP answer comes back (refused, DNS, timeout, TLS).
async fn http_get(lua: Lua, url: String, opts: Option<Table>) -> LuaResult<Table> {
    let mut timeout = 5.0;
    let mut user: Option<String> = None;
    let mut password: Option<String> = None;
    let mut headers = Vec::new();
    if let Some(o) = &opts {
        timeout = o.get::<Option<f64>>("timeout")?.unwrap_or(timeout);
        user = o.get("user")?;
        password = o.get("password")?;
        if let Some(h) = o.get::<Option<Table>>("headers")? {
            for pair in h.pairs::<String, String>() {
                headers.push(pair?);
            }
        }
    }
    if !timeout.is_finite() || timeout <= 0.0 {
        return Err(error("Argument", "timeout must be a number of seconds > 0"));
    }
    let client = crate::runtime::tls::client_builder()
        .timeout(std::time::Duration::from_secs_f64(timeout))
        .build()
        .map_err(|e| error("Runtime", format!("cannot build an HTTP client: {e}")))?;
    let mut req = client.get(&url);
    if let Some(u) = user {
        req = req.basic_auth(u, password);
    }
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = req.send().await.map_err(|e| {
        // The innermost cause says what happened (refused, timed out, DNS...).
        let mut why = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            why = c.to_string();
            cause = c.source();
        }
        if e.is_timeout() {
            why = format!("no answer within {timeout} s");
        }
        crate::runtime::error::BioxenError::new("Unreachable", format!("{url}: {why}"))
            .with("url", url.clone())
            .into_lua_err()
    })?;
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    let t = lua.create_table()?;
    t.set("status", status)?;
    t.set("body", body)?;
    Ok(t)
}

/// lua-language-server definitions carried in the binary: relative path -> text.
fn type_definitions(lua: &Lua) -> LuaResult<Table> {
    let t = lua.create_table()?;
    for (path, text) in types::FILES {
        t.set(*path, *text)?;
    }
    Ok(t)
}
