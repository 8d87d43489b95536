//! `bioxen.pkg` native half: the primitives the curator (stdlib/bioxen/pkg.lua)
//! composes. Sandboxed evaluation of rockspecs and manifests, parallel downloads
//! with hashes, archive unpacking, file-tree hashing and linking, atomic symlink
//! swaps, build processes, progress bars, and the LuaJIT headers bioxen carries.
use crate::runtime::builder::LibraryBuilder;
use mlua::{Lua, Result as LuaResult, Table};

mod eval;
mod fetch;
mod files;
mod progress;

pub fn module(lua: &Lua) -> LuaResult<Table> {
    LibraryBuilder::new(lua)
        .function("eval", eval::eval)
        .async_function("fetch", fetch::fetch)
        .async_function("unpack", files::unpack)
        .async_function("hash", files::hash)
        .async_function("tree", files::tree)
        .async_function("link_tree", files::link_tree)
        .async_function("remove_tree", files::remove_tree)
        .async_function("run", files::run)
        .function("swap_link", files::swap_link)
        .function("read_link", files::read_link)
        .function("list", files::list)
        .function("mkdirs", files::mkdirs)
        .function("is_dir", files::is_dir)
        .function("headers", files::headers)
        .function("progress", progress::new)
        .function("is_terminal", |_, ()| {
            Ok(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        })
        .build()
}
