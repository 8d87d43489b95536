//! Input fed like a REPL into a child VM's state: line by line (a send that
//! is a complete chunk by itself runs whole), a line that
//! leaves the chunk unfinished (Lua's `<eof>` syntax error) waits for more,
//! an expression prints its values, a statement prints nothing, an error
//! prints `Kind: message`. Values print with bioxen.pretty, as in `bioxen -i`. Output is streamed to a sink as it is printed.
//! Shared by the thread backend (sink = the session's buffer) and the process
//! backend's child (sink = output frames on the pipe).
use crate::library::vm::sandbox::Child;
use crate::library::vm::watchdog;
use crate::runtime::error::{BioxenError, kind_of, message_of};
use crate::runtime::interrupt::Reason;
use mlua::chunk::ChunkMode;
use mlua::{Function, Lua, MultiValue, Result as LuaResult, Value};
use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

pub type Sink = Arc<dyn Fn(&[u8]) + Send + Sync>;
pub type Arm<'a> = &'a dyn Fn(Option<Duration>) -> Box<dyn Any>;

/// Where `print` goes while input is being fed (app data of the child state).
struct SessionIo {
    sink: Option<Sink>,
    written: usize,
    limit: usize,
}

/// The REPL's state inside a child state: the unfinished chunk and the value printer.
struct ReplState {
    pending: String,
    show: Function,
}

/// Replaces `print` (and `io.write` where it exists) so that, while input is
/// fed, they stream to the sink; otherwise (exec, call) they capture as usual.
const INSTALL: &str = r##"
local emit, tostring, select, concat, io_, orig_print, pretty = ...
print = function(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  if not emit(concat(parts, "\t") .. "\n") then return orig_print(...) end
end
if type(io_) == "table" and io_.write then
  local orig_write = io_.write
  io_.write = function(...)
    local n = select("#", ...)
    local parts = {}
    for i = 1, n do parts[i] = tostring((select(i, ...))) end
    if not emit(concat(parts)) then return orig_write(...) end
    return io_
  end
end
if pretty then
  return function(n, ...) emit(pretty.values(nil, ...) .. "\n") end
end
return function(n, ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  emit(concat(parts, "\t") .. "\n")
end
"##;

fn install(child: &Child) -> LuaResult<()> {
    let lua = &child.lua;
    if lua.app_data_ref::<ReplState>().is_some() {
        return Ok(());
    }
    lua.set_app_data(SessionIo {
        sink: None,
        written: 0,
        limit: child.opts.output_limit,
    });
    let emit = lua.create_function(|lua, s: mlua::LuaString| {
        let mut io = lua.app_data_mut::<SessionIo>().expect("session io");
        let Some(sink) = io.sink.clone() else {
            return Ok(false);
        };
        let data = s.as_bytes();
        let room = io.limit.saturating_sub(io.written);
        if io.limit > 0 && data.len() > room {
            sink(&data[..room]);
            io.written = io.limit;
            return Err(BioxenError::new(
                "OutputLimit",
                format!(
                    "the input printed more than output_limit ({} bytes); raise output_limit to allow more",
                    io.limit
                ),
            )
            .into_lua_err());
        }
        io.written += data.len();
        sink(&data);
        Ok(true)
    })?;
    let g = lua.globals();
    let table: mlua::Table = g.raw_get("table")?;
    // Values print as in bioxen's own REPL (bioxen.pretty: pure Lua, loaded
    // into the child's state), or with tostring if it is not there.
    let pretty = match crate::runtime::stdlib::source("bioxen/pretty.lua") {
        Some(src) => lua
            .load(src.as_ref())
            .set_name("=[bioxen pretty]")
            .set_mode(ChunkMode::Text)
            .call::<Value>(())
            .unwrap_or(Value::Nil),
        None => Value::Nil,
    };
    let show: Function = lua.load(INSTALL).set_name("=[bioxen session]").call((
        emit,
        g.raw_get::<Value>("tostring")?,
        g.raw_get::<Value>("select")?,
        table.raw_get::<Value>("concat")?,
        g.raw_get::<Value>("io")?,
        g.raw_get::<Value>("print")?,
        pretty,
    ))?;
    lua.set_app_data(ReplState {
        pending: String::new(),
        show,
    });
    Ok(())
}

/// Feeds `text` to the child's REPL; returns true when an unfinished chunk
/// waits for more lines. A send without a final newline ends its last line.
pub fn feed(child: &Child, text: &str, arm: Arm, sink: Sink) -> bool {
    if let Err(e) = install(child) {
        sink(format!("{}: {}\n", kind_of(&e), message_of(&e)).as_bytes());
        return false;
    }
    let lua = &child.lua;
    let (mut pending, show) = {
        let mut st = lua.app_data_mut::<ReplState>().expect("repl state");
        (std::mem::take(&mut st.pending), st.show.clone())
    };
    {
        let mut io = lua.app_data_mut::<SessionIo>().expect("session io");
        io.sink = Some(sink.clone());
        io.written = 0;
    }
    let body = text.strip_suffix('\n').unwrap_or(text);
    // A send that is a whole chunk by itself (a pasted block, a script) runs
    // as one chunk, so its lines share their locals; anything else goes line
    // by line, as typed at a prompt.
    let name = format!("={}", child.opts.id);
    let whole = pending.is_empty() && body.contains('\n') && load(lua, body, &name).is_ok();
    let lines: Vec<&str> = if whole {
        vec![body]
    } else {
        body.split('\n').collect()
    };
    for line in lines {
        if !pending.is_empty() {
            pending.push('\n');
        }
        pending.push_str(line);
        if pending.trim().is_empty() {
            pending.clear();
            continue;
        }
        if !eval(child, lua, &pending, &show, arm, &sink) {
            pending.clear();
        }
    }
    lua.app_data_mut::<SessionIo>().expect("session io").sink = None;
    let incomplete = !pending.is_empty();
    lua.app_data_mut::<ReplState>().expect("repl state").pending = pending;
    incomplete
}

/// Forgets an unfinished chunk (`.clear`, Ctrl-C at the prompt).
pub fn reset(child: &Child) {
    if let Some(mut st) = child.lua.app_data_mut::<ReplState>() {
        st.pending.clear();
    }
}

/// Global names starting with `prefix` (completion for attached terminals).
pub fn complete(child: &Child, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(pairs) = child
        .lua
        .globals()
        .pairs::<Value, Value>()
        .collect::<LuaResult<Vec<_>>>()
    {
        for (k, _) in pairs {
            if let Value::String(s) = k {
                let s = s.to_string_lossy();
                if s.starts_with(prefix) {
                    out.push(s);
                }
            }
        }
    }
    out.sort();
    out
}

fn load(lua: &Lua, src: &str, name: &str) -> LuaResult<Function> {
    lua.load(src)
        .set_name(name)
        .set_mode(ChunkMode::Text)
        .into_function()
}

/// Evaluates one chunk; true when it is unfinished (nothing was run).
fn eval(child: &Child, lua: &Lua, src: &str, show: &Function, arm: Arm, sink: &Sink) -> bool {
    let name = format!("={}", child.opts.id);
    let compiled = match src.strip_prefix('=') {
        Some(expr) => load(lua, &format!("return {expr}"), &name),
        None => load(lua, &format!("return {src}"), &name)
            .or_else(|e| match src.rsplit_once('\n') {
                // A whole block whose last line is an expression on its own
                // (the lines before it complete by themselves) prints it.
                Some((head, last))
                    if !last.trim().is_empty()
                        && load(lua, head, &name).is_ok()
                        && load(lua, &format!("return {last}"), &name).is_ok() =>
                {
                    load(lua, &format!("{head}\nreturn {last}"), &name)
                }
                _ => Err(e),
            })
            .or_else(|_| load(lua, src, &name)),
    };
    let f = match compiled {
        Ok(f) => f,
        Err(e) => {
            if let mlua::Error::SyntaxError {
                incomplete_input: true,
                ..
            } = e
            {
                return true;
            }
            sink(format!("Syntax: {}\n", message_of(&e)).as_bytes());
            return false;
        }
    };
    child.interrupter.clear();
    let guard = arm(watchdog::secs(child.opts.timeout));
    let result = f.call::<MultiValue>(()).and_then(|mut values| {
        if values.is_empty() {
            return Ok(());
        }
        let n = values.len() as i64;
        values.push_front(Value::Integer(n));
        show.call::<()>(values)
    });
    drop(guard);
    let reason = child.interrupter.clear();
    if let Err(e) = result {
        let text = match reason {
            Some(Reason::Timeout) => format!(
                "Timeout: the input ran longer than its timeout of {} s and was stopped\n",
                child.opts.timeout
            ),
            Some(_) => "Interrupted: the evaluation was interrupted\n".to_string(),
            None => format!("{}: {}\n", kind_of(&e), message_of(&e)),
        };
        sink(text.as_bytes());
    }
    false
}
