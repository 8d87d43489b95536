//! How uncaught errors are shown: `bioxen: message` then a stack traceback.
use super::error::{find_bioxen, root_cause};

/// The message (with file and line where Lua gave one) and the traceback.
pub fn format_error(err: &mlua::Error) -> String {
    if let Some(b) = find_bioxen(err) {
        let mut text = b.to_string();
        if let Some(tb) = traceback_of(err) {
            text.push('\n');
            text.push_str(tb.trim_end());
        }
        return text;
    }
    match root_cause(err) {
        mlua::Error::RuntimeError(m) | mlua::Error::MemoryError(m) => m.trim_end().to_string(),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        _ => err.to_string().trim_end().to_string(),
    }
}

fn traceback_of(err: &mlua::Error) -> Option<&str> {
    match err {
        mlua::Error::CallbackError { traceback, cause } => {
            traceback_of(cause).or(Some(traceback.as_str()))
        }
        mlua::Error::WithContext { cause, .. } => traceback_of(cause),
        _ => None,
    }
    .filter(|t| !t.is_empty())
}

/// Wraps a top-level chunk so an uncaught error carries its traceback: the
/// handler runs where the error was raised, so the stack is still there. Only
/// the wrapper is Lua (a yield inside the chunk must cross `xpcall`); the
/// handler is Rust, so start-up parses three lines, not thirty.
const TRACED: &str = "local f, handler = ...
local function finish(ok, ...) if ok then return ... end error((...), 0) end
return function(...) return finish(xpcall(f, handler, ...)) end";

pub fn traced(lua: &mlua::Lua, f: mlua::Function) -> mlua::Result<mlua::Function> {
    let handler = lua.create_function(|lua, e: mlua::Value| {
        // LuaJIT's debug.traceback (level 2: below this handler), not mlua's
        // Lua 5.2-style rewrite, so reports read as the `luajit` binary's.
        let traceback: mlua::Function = lua
            .globals()
            .get::<mlua::Table>("debug")?
            .get("traceback")?;
        let text: String = traceback.call((located(lua, &e), 2))?;
        let text = without_wrapper_frames(&text);
        lua.set_app_data(LastTraceback(text));
        Ok(e)
    })?;
    lua.load(TRACED).set_name("=[bioxen]").call((f, handler))
}

/// The error's text; errors that are not strings (bioxen error values) get the
/// location of the innermost Lua frame, so every report names a file and line.
fn located(lua: &mlua::Lua, e: &mlua::Value) -> String {
    let text = super::error::describe(e);
    if matches!(e, mlua::Value::String(_)) {
        return text;
    }
    (1..50)
        .map_while(|level| {
            lua.inspect_stack(level, |d| {
                let line = d.current_line().filter(|l| *l > 0)?;
                Some(format!("{}:{line}: ", d.source().short_src?))
            })
        })
        .flatten()
        .next()
        .map_or(text.clone(), |at| at + &text)
}

/// The traceback `traced` captured for the last uncaught error.
pub struct LastTraceback(pub String);

fn without_wrapper_frames(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("[bioxen]") && !l.contains("in function 'xpcall'"))
        .collect();
    lines.join("\n")
}
