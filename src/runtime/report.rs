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
/// handler runs where the error was raised, so the stack is still there.
/// Errors that are not strings (bioxen error values) get the location of the
/// innermost Lua frame, so every report names a file and line.
const TRACED: &str = r#"
local f, remember = ...
local function handler(e)
  local msg = tostring(e)
  if type(e) ~= "string" then
    for level = 2, 50 do
      local info = debug.getinfo(level, "Sl")
      if not info then break end
      if info.currentline and info.currentline > 0 then
        msg = info.short_src .. ":" .. info.currentline .. ": " .. msg
        break
      end
    end
  end
  remember(debug.traceback(msg, 2))
  return e
end
local function finish(ok, ...)
  if ok then return ... end
  error((...), 0)
end
return function(...) return finish(xpcall(f, handler, ...)) end
"#;

pub fn traced(lua: &mlua::Lua, f: mlua::Function) -> mlua::Result<mlua::Function> {
    let remember = lua.create_function(|lua, text: String| {
        lua.set_app_data(LastTraceback(without_wrapper_frames(&text)));
        Ok(())
    })?;
    lua.load(TRACED).set_name("=[bioxen]").call((f, remember))
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
