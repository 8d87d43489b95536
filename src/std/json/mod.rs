//! `bioxen.json`: JSON over serde_json, without an intermediate tree either way.
//! Rules: a table with keys 1..n (n >= 1) and nothing else is an array; an empty
//! table is an object `{}` unless it carries `json.array`'s metatable (decoded
//! arrays do, so `[]` round-trips); any other table is an object with every
//! key kept; `json.null` stands for JSON null.
use crate::runtime::{builder::LibraryBuilder, error::BioxenError};
use mlua::serde::ser::Options as SerializeOptions;
use mlua::{Lua, LuaSerdeExt, Result as LuaResult, Table, Value};
use serde::ser::{Error as _, Serialize, SerializeMap, SerializeSeq, Serializer};
use std::cell::RefCell;
use std::ffi::c_void;

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
    let value = Encoded {
        value,
        ctx: &Context {
            open: RefCell::new(Vec::new()),
            array: lua.array_metatable(),
        },
    };
    let text = if pretty {
        serde_json::to_vec_pretty(&value)
    } else {
        serde_json::to_vec(&value)
    };
    let text =
        text.map_err(|e| BioxenError::new("Json", format!("cannot encode: {e}")).into_lua_err())?;
    // SAFETY: serde_json writes only UTF-8.
    Ok(unsafe { String::from_utf8_unchecked(text) })
}

/// A Lua value written as JSON by the module's rule (see the top of this file),
/// straight to text.
struct Encoded<'a> {
    value: Value,
    ctx: &'a Context,
}

struct Context {
    /// The tables being written, to refuse cycles.
    open: RefCell<Vec<*const c_void>>,
    /// `json.array`'s metatable.
    array: Table,
}

impl Serialize for Encoded<'_> {
    fn serialize<S: Serializer>(&self, out: S) -> Result<S::Ok, S::Error> {
        match &self.value {
            Value::Nil => out.serialize_unit(),
            Value::LightUserData(p) if p.0.is_null() => out.serialize_unit(),
            Value::Boolean(b) => out.serialize_bool(*b),
            Value::Integer(i) => out.serialize_i64(*i),
            Value::Number(n) if n.is_finite() => out.serialize_f64(*n),
            Value::Number(n) => Err(S::Error::custom(format!("{n} is not a JSON number"))),
            Value::String(s) => match s.to_str() {
                Ok(s) => out.serialize_str(&s),
                Err(_) => Err(S::Error::custom("a string is not UTF-8")),
            },
            Value::Table(t) => self.table(t, out),
            other => Err(S::Error::custom(format!(
                "a {} has no JSON form",
                other.type_name()
            ))),
        }
    }
}

impl Encoded<'_> {
    fn nested(&self, value: Value) -> Encoded<'_> {
        Encoded {
            value,
            ctx: self.ctx,
        }
    }

    fn table<S: Serializer>(&self, t: &Table, out: S) -> Result<S::Ok, S::Error> {
        let id = t.to_pointer();
        if self.ctx.open.borrow().contains(&id) {
            return Err(S::Error::custom("a table contains itself"));
        }
        let length = array_length(t, &self.ctx.array).map_err(S::Error::custom)?;
        self.ctx.open.borrow_mut().push(id);
        let written = match length {
            Some(n) => self.array(t, n, out),
            None => self.object(t, out),
        };
        self.ctx.open.borrow_mut().pop();
        written
    }

    /// Values are fetched one at a time: each held value is a slot on mlua's
    /// reference stack, which a table of 100,000 entries would overflow.
    fn array<S: Serializer>(&self, t: &Table, n: usize, out: S) -> Result<S::Ok, S::Error> {
        let mut seq = out.serialize_seq(Some(n))?;
        for i in 1..=n {
            let v = t.raw_get::<Value>(i).map_err(S::Error::custom)?;
            seq.serialize_element(&self.nested(v))?;
        }
        seq.end()
    }

    /// Keys as strings (integers as digits, other numbers in Rust's shortest
    /// round-trip form), sorted.
    fn object<S: Serializer>(&self, t: &Table, out: S) -> Result<S::Ok, S::Error> {
        let mut keys = Vec::new();
        t.for_each(|k: Value, _: Value| {
            keys.push(Key::of(&k)?);
            Ok(())
        })
        .map_err(|e| S::Error::custom(crate::runtime::error::message_of(&e)))?;
        keys.sort_by(|a, b| a.text.cmp(&b.text));
        let mut map = out.serialize_map(Some(keys.len()))?;
        for key in keys {
            let v = match key.number {
                Some(n) => t.raw_get::<Value>(n),
                None => t.raw_get::<Value>(key.text.as_str()),
            };
            map.serialize_entry(&key.text, &self.nested(v.map_err(S::Error::custom)?))?;
        }
        map.end()
    }
}

/// An object key: its JSON text, and the number it was in Lua, if one.
struct Key {
    text: String,
    number: Option<f64>,
}

impl Key {
    fn of(k: &Value) -> LuaResult<Key> {
        Ok(match k {
            Value::String(s) => Key {
                text: s.to_str()?.to_string(),
                number: None,
            },
            Value::Integer(i) => Key {
                text: i.to_string(),
                number: Some(*i as f64),
            },
            Value::Number(n) => Key {
                text: n.to_string(),
                number: Some(*n),
            },
            other => {
                return Err(mlua::Error::runtime(format!(
                    "a {} key has no JSON form",
                    other.type_name()
                )));
            }
        })
    }
}

/// The length when `t` is written as an array: it carries `json.array`'s
/// metatable, or its keys are exactly 1..n with n >= 1.
fn array_length(t: &Table, array: &Table) -> LuaResult<Option<usize>> {
    let n = t.raw_len();
    if t.metatable().is_some_and(|m| &m == array) {
        return Ok(Some(n));
    }
    if n == 0 {
        return Ok(None);
    }
    // n keys, each in 1..=n (a border n has t[n] set): exactly the keys 1..n.
    let mut count = 0;
    let mut only_indices = true;
    t.for_each(|k: Value, _: Value| {
        count += 1;
        only_indices &= match k {
            Value::Integer(i) => (1..=n as i64).contains(&i),
            Value::Number(f) => f.fract() == 0.0 && f >= 1.0 && f <= n as f64,
            _ => false,
        };
        Ok(())
    })?;
    Ok((only_indices && count == n).then_some(n))
}

/// Decodes JSON straight into Lua values (no intermediate tree); errors name
/// the line and column of bad input.
pub fn decode(lua: &Lua, text: &[u8]) -> LuaResult<Value> {
    let options = SerializeOptions::new()
        .serialize_none_to_null(true)
        .set_array_metatable(true);
    let mut json = serde_json::Deserializer::from_slice(text);
    let into_lua = mlua::serde::Serializer::new_with_options(lua, options);
    serde_transcode::transcode(&mut json, into_lua)
        .and_then(|value| json.end().map(|()| value).map_err(mlua::Error::external))
        .map_err(|e| invalid(text).unwrap_or(e))
}

/// The error for text that is not JSON, found by a second, validating parse
/// (the transcoder keeps only the parser's message, not its position); None
/// when the text is JSON and the failure was Lua's.
fn invalid(text: &[u8]) -> Option<mlua::Error> {
    let e = serde_json::from_slice::<serde::de::IgnoredAny>(text).err()?;
    let err = BioxenError::new(
        "Json",
        format!(
            "invalid JSON at line {} column {}: {e}",
            e.line(),
            e.column()
        ),
    )
    .with("line", e.line())
    .with("column", e.column())
    .into_lua_err();
    Some(err)
}
