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

/// LuaJIT's own `xpcall`, kept before any user code can replace the global.
struct Xpcall(mlua::Function);

/// Keeps `xpcall` for [`call_traced`]; called when the host state is built.
pub fn install(lua: &mlua::Lua) -> mlua::Result<()> {
    lua.set_app_data(Xpcall(lua.globals().raw_get("xpcall")?));
    Ok(())
}

/// Runs a top-level chunk as `xpcall(f, handler, ...)` in a task, so an
/// uncaught error carries its traceback: the handler runs where the error was
/// raised, while the stack is still there. `xpcall` itself is the task's body
/// (LuaJIT lets a yield cross it), so no Lua wrapper is parsed at start-up.
pub fn call_traced(
    lua: &mlua::Lua,
    scheduler: &super::scheduler::Scheduler,
    f: mlua::Function,
    args: Vec<&str>,
) -> mlua::Result<mlua::MultiValue> {
    let xpcall = lua
        .app_data_ref::<Xpcall>()
        .map(|x| x.0.clone())
        .expect("report::install ran when the host was built");
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
    let mut out = scheduler.call(&xpcall, (f, handler, mlua::Variadic::from_iter(args)))?;
    match out.pop_front() {
        Some(mlua::Value::Boolean(true)) => Ok(out),
        _ => Err(as_error(out.pop_front().unwrap_or(mlua::Value::Nil))),
    }
}

/// The error `xpcall` caught, as mlua would have raised it.
fn as_error(v: mlua::Value) -> mlua::Error {
    match v {
        mlua::Value::Error(e) => *e,
        v => mlua::Error::RuntimeError(super::error::describe(&v)),
    }
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
        // The task's base frame is `xpcall` itself, shown as a builtin.
        .filter(|l| !l.contains("in function 'xpcall'") && !l.trim_start().starts_with("[builtin#"))
        .collect();
    lines.join("\n")
}
