//! `bioxen.json`: JSON over serde_json.
//! Rules: a table with keys 1..n (n >= 1) and nothing else is an array; an empty
//! table is an object `{}` unless it carries `json.array`'s metatable (decoded
//! arrays do, so `[]` round-trips); `json.null` stands for JSON null.
use crate::runtime::{builder::LibraryBuilder, error::BioxenError};
use mlua::serde::{de::Options as DeserializeOptions, ser::Options as SerializeOptions};
use mlua::{Lua, LuaSerdeExt, Result as LuaResult, Table, Value};

pub fn module(lua: &Lua) -> LuaResult<Table> {
    LibraryBuilder::new(lua)
        .function("encode", encode)
        .function("decode", |lua, text: mlua::LuaString| {
            decode(lua, &text.as_bytes())
        })
        .function("array", |lua, t: Option<Table>| {
            let t = match t {
                Some(t) => t,
                None => lua.create_table()?,
            };
            t.set_metatable(Some(lua.array_metatable()))?;
            Ok(t)
        })
        .value("null", lua.null())
        .build()
}

fn encode(lua: &Lua, (value, opts): (Value, Option<Table>)) -> LuaResult<String> {
    let pretty = opts
        .as_ref()
        .map(|o| o.get::<Option<bool>>("pretty"))
        .transpose()?
        .flatten()
        .unwrap_or(false);
    let json: serde_json::Value = lua
        .from_value_with(
            value,
            DeserializeOptions::new()
                .deny_unsupported_types(true)
                .deny_recursive_tables(true),
        )
        .map_err(|e| {
            BioxenError::new(
                "Json",
                format!("cannot encode: {}", crate::runtime::error::message_of(&e)),
            )
            .into_lua_err()
        })?;
    let text = if pretty {
        serde_json::to_string_pretty(&json)
    } else {
        serde_json::to_string(&json)
    };
    text.map_err(|e| BioxenError::new("Json", format!("cannot encode: {e}")).into_lua_err())
}

/// Decodes JSON; errors name the line and column of bad input.
pub fn decode(lua: &Lua, text: &[u8]) -> LuaResult<Value> {
    let json: serde_json::Value = serde_json::from_slice(text).map_err(|e| {
        BioxenError::new(
            "Json",
            format!(
                "invalid JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ),
        )
        .with("line", e.line())
        .with("column", e.column())
        .into_lua_err()
    })?;
    lua.to_value_with(
        &json,
        SerializeOptions::new()
            .serialize_none_to_null(true)
            .set_array_metatable(true),
    )
}
