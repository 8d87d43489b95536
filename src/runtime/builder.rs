//! A small builder so a library's table reads top to bottom: name, function.
use mlua::{FromLuaMulti, IntoLua, IntoLuaMulti, Lua, Result as LuaResult, Table};
use std::future::Future;

pub struct LibraryBuilder<'a> {
    lua: &'a Lua,
    table: LuaResult<Table>,
}

impl<'a> LibraryBuilder<'a> {
    pub fn new(lua: &'a Lua) -> Self {
        LibraryBuilder {
            lua,
            table: lua.create_table(),
        }
    }

    pub fn function<A, R, F>(self, name: &str, f: F) -> Self
    where
        A: FromLuaMulti,
        R: IntoLuaMulti,
        F: Fn(&Lua, A) -> LuaResult<R> + mlua::MaybeSend + 'static,
    {
        let f = self.lua.create_function(f);
        self.set(name, f)
    }

    /// A function that may wait: under `bioxen.task` it yields to other tasks.
    pub fn async_function<A, R, F, FR>(self, name: &str, f: F) -> Self
    where
        A: FromLuaMulti + 'static,
        R: IntoLuaMulti,
        F: Fn(Lua, A) -> FR + mlua::MaybeSend + 'static,
        FR: Future<Output = LuaResult<R>> + mlua::MaybeSend + 'static,
    {
        let f = self.lua.create_async_function(f);
        self.set(name, f)
    }

    pub fn value(self, name: &str, v: impl IntoLua) -> Self {
        self.set(name, Ok(v))
    }

    fn set(mut self, name: &str, v: LuaResult<impl IntoLua>) -> Self {
        self.table = match (self.table, v) {
            (Ok(t), Ok(v)) => t.raw_set(name, v).map(|_| t),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        self
    }

    pub fn build(self) -> LuaResult<Table> {
        self.table
    }
}

/// Runs blocking work (files, processes, ssh2) on tokio's blocking pool, so the
/// Lua thread and the other tasks keep going; the one path for such work.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> LuaResult<T> + Send + 'static,
) -> LuaResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| super::error::error("Runtime", e.to_string()))?
}
