//! Rockspecs and manifests are Lua programs. As LuaRocks does, each is run in a
//! separate Lua state with an empty environment; bioxen also refuses bytecode
//! (text-only load), turns the JIT off so the instruction hook sees every
//! instruction, and stops the program after an instruction limit. What the
//! program assigned (its globals) is copied into the host as plain data.
use crate::runtime::error::BioxenError;
use mlua::{
    HookTriggers, Lua, LuaOptions, Result as LuaResult, StdLib, Table, Value, chunk::ChunkMode,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const DEFAULT_LIMIT: u64 = 10_000_000;
const STEP: u32 = 1000;
const MAX_DEPTH: usize = 64;

/// `eval(text, name, {limit=N})` -> table of the globals the program set.
pub fn eval(
    lua: &Lua,
    (text, name, opts): (mlua::LuaString, String, Option<Table>),
) -> LuaResult<Table> {
    let limit = opts
        .as_ref()
        .map(|o| o.get::<Option<u64>>("limit"))
        .transpose()?
        .flatten()
        .unwrap_or(DEFAULT_LIMIT);
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        BioxenError::new("Rockspec", format!("{name}: {what}: {e}"))
            .with("file", name.clone())
            .into_lua_err()
    };
    // String methods work through the string metatable, as in LuaRocks' own state;
    // the program's environment stays empty.
    let child = Lua::new_with(StdLib::STRING | StdLib::JIT, LuaOptions::default())
        .map_err(|e| fail("cannot create a Lua state", &e))?;
    child
        .load("jit.off() jit.flush()")
        .exec()
        .map_err(|e| fail("cannot turn the JIT off", &e))?;
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    child
        .set_hook(
            HookTriggers::new().every_nth_instruction(STEP),
            move |_, _| {
                if counter.fetch_add(STEP as u64, Ordering::Relaxed) >= limit {
                    Err(mlua::Error::RuntimeError("instruction limit".into()))
                } else {
                    Ok(mlua::VmState::Continue)
                }
            },
        )
        .map_err(|e| fail("cannot set the instruction limit", &e))?;
    let env = child.create_table()?;
    let chunk = child
        .load(text.as_bytes().as_ref())
        .set_name(format!("={name}"))
        .set_mode(ChunkMode::Text)
        .set_environment(env.clone())
        .into_function()
        .map_err(|e| fail("not valid Lua text", &e))?;
    if let Err(e) = chunk.call::<()>(()) {
        if count.load(Ordering::Relaxed) >= limit {
            return Err(BioxenError::new(
                "Rockspec",
                format!("{name}: stopped after {limit} instructions (an endless loop?)"),
            )
            .with("file", name.clone())
            .into_lua_err());
        }
        let msg = crate::runtime::error::message_of(&e);
        return Err(BioxenError::new("Rockspec", format!("{name}: {msg}"))
            .with("file", name.clone())
            .into_lua_err());
    }
    match copy(lua, &Value::Table(env), 0)? {
        Value::Table(t) => Ok(t),
        _ => lua.create_table(),
    }
}

/// Copies plain data (tables, strings, numbers, booleans) from the child state.
fn copy(lua: &Lua, v: &Value, depth: usize) -> LuaResult<Value> {
    Ok(match v {
        Value::Nil => Value::Nil,
        Value::Boolean(b) => Value::Boolean(*b),
        Value::Integer(i) => Value::Integer(*i),
        Value::Number(n) => Value::Number(*n),
        Value::String(s) => Value::String(lua.create_string(s.as_bytes().as_ref())?),
        Value::Table(t) if depth < MAX_DEPTH => {
            let out = lua.create_table()?;
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair?;
                let (k, v) = (copy(lua, &k, depth + 1)?, copy(lua, &v, depth + 1)?);
                if !k.is_nil() && !v.is_nil() {
                    out.raw_set(k, v)?;
                }
            }
            Value::Table(out)
        }
        _ => Value::Nil,
    })
}
