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
        .function("free_space", |_, path: String| free_space(&path))
        .function("make_dir", |_, path: String| {
            Ok(std::fs::create_dir_all(&path)
                .map_err(|e| e.to_string())
                .err())
        })
        .function("path_kind", |_, path: String| Ok(path_kind(&path)))
        .function("isatty", |_, fd: i32| Ok(unsafe { libc::isatty(fd) } == 1))
        .function("type_definitions", |lua, ()| type_definitions(lua))
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

/// lua-language-server definitions carried in the binary: relative path -> text.
fn type_definitions(lua: &Lua) -> LuaResult<Table> {
    let t = lua.create_table()?;
    for (path, text) in types::FILES {
        t.set(*path, *text)?;
    }
    Ok(t)
}
