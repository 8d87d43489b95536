//! bioxen's one error type. Rust raises `BioxenError` through mlua; at the Lua
//! boundary it is a value with `kind`, `message` and any detail fields, and a
//! readable `tostring` (see `install_error_metatable`).
use mlua::{Lua, LuaSerdeExt, Result as LuaResult, Table, Value};
use serde_json::{Map, Value as Json};
use std::{fmt, sync::Arc};

#[derive(Debug, Clone)]
pub struct BioxenError {
    pub kind: String,
    pub message: String,
    pub details: Map<String, Json>,
}

impl BioxenError {
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        BioxenError {
            kind: kind.into(),
            message: message.into(),
            details: Map::new(),
        }
    }

    /// Adds a detail field, readable from Lua as `e.<name>`.
    pub fn with(mut self, name: &str, value: impl Into<Json>) -> Self {
        self.details.insert(name.to_string(), value.into());
        self
    }

    pub fn into_lua_err(self) -> mlua::Error {
        mlua::Error::ExternalError(Arc::new(self))
    }
}

impl fmt::Display for BioxenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for BioxenError {}

/// Shorthand for raising a kind from Rust: `Err(error("Timeout", "..."))`.
pub fn error(kind: &str, message: impl Into<String>) -> mlua::Error {
    BioxenError::new(kind, message).into_lua_err()
}

/// Finds the `BioxenError` inside an mlua error, through callback and context wrappers.
pub fn find_bioxen(err: &mlua::Error) -> Option<&BioxenError> {
    match err {
        mlua::Error::ExternalError(e) => e.downcast_ref::<BioxenError>(),
        mlua::Error::CallbackError { cause, .. } => find_bioxen(cause),
        mlua::Error::WithContext { cause, .. } => find_bioxen(cause),
        _ => None,
    }
}

/// The innermost error, without mlua's callback and context wrappers.
pub fn root_cause(err: &mlua::Error) -> &mlua::Error {
    match err {
        mlua::Error::CallbackError { cause, .. } => root_cause(cause),
        mlua::Error::WithContext { cause, .. } => root_cause(cause),
        other => other,
    }
}

/// The kind of any error: a bioxen kind, or one derived from mlua's variant.
pub fn kind_of(err: &mlua::Error) -> String {
    if let Some(b) = find_bioxen(err) {
        return b.kind.clone();
    }
    match root_cause(err) {
        mlua::Error::SyntaxError { .. } => "Syntax",
        mlua::Error::MemoryError(_) => "MemoryLimit",
        mlua::Error::BadArgument { .. } | mlua::Error::FromLuaConversionError { .. } => "Argument",
        mlua::Error::SerializeError(_) | mlua::Error::DeserializeError(_) => "Value",
        _ => "Runtime",
    }
    .to_string()
}

/// The message of any error without kind prefix or traceback.
pub fn message_of(err: &mlua::Error) -> String {
    if let Some(b) = find_bioxen(err) {
        return b.message.clone();
    }
    match root_cause(err) {
        mlua::Error::RuntimeError(m) | mlua::Error::MemoryError(m) => strip_traceback(m),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn strip_traceback(m: &str) -> String {
    m.split("\nstack traceback:")
        .next()
        .unwrap_or(m)
        .to_string()
}

/// Errors raised from Rust reach Lua as mlua's wrapped-failure userdata, whose
/// metatable mlua leaves open. Giving it `__index` and `__tostring` makes every
/// such error a value with `kind`, `message` and details, and because mlua
/// unwraps the same userdata back into the Rust error, the kind survives being
/// re-raised through Rust (task.wait, vm calls...), which a table would not.
pub fn install_error_metatable(lua: &Lua) -> LuaResult<()> {
    let (sample, index, tostring) = error_metatable_parts(lua)?;
    let meta = unsafe {
        // SAFETY: replaces the pushed sample by its metatable (or nil), one
        // value in, one out.
        lua.exec_raw::<Option<Table>>(sample, |state| {
            if mlua::ffi::lua_getmetatable(state, -1) == 0 {
                mlua::ffi::lua_pushnil(state);
            }
            mlua::ffi::lua_remove(state, -2);
        })?
    };
    let meta = meta.ok_or_else(|| mlua::Error::runtime("mlua's error values have no metatable"))?;
    meta.raw_set("__index", index)?;
    meta.raw_set("__tostring", tostring)
}

/// An error value (its metatable is the one every error value shares) and
/// the `__index` and `__tostring` functions that make error values readable;
/// child VMs install them with the C API (src/std/vm/raw.rs).
pub fn error_metatable_parts(lua: &Lua) -> LuaResult<(Value, mlua::Function, mlua::Function)> {
    // A wrapped error as a plain value (not raised) has the shared metatable,
    // without the cost of raising one and building its traceback.
    let sample = Value::Error(Box::new(error("Probe", "probe")));
    let index =
        lua.create_function(|lua, (err, key): (Value, String)| error_field(lua, &err, &key))?;
    let tostring = lua.create_function(|_, err: Value| Ok(describe(&err)))?;
    Ok((sample, index, tostring))
}

fn error_field(lua: &Lua, err: &Value, key: &str) -> LuaResult<Value> {
    let Value::Error(err) = err else {
        return Ok(Value::Nil);
    };
    match key {
        "kind" => lua.to_value(&kind_of(err)),
        "message" => lua.to_value(&message_of(err)),
        "traceback" => match err.as_ref() {
            mlua::Error::CallbackError { traceback, .. } => lua.to_value(traceback),
            _ => Ok(Value::Nil),
        },
        _ => match find_bioxen(err).and_then(|b| b.details.get(key)) {
            Some(v) => lua.to_value(v),
            None => Ok(Value::Nil),
        },
    }
}

/// `Kind: message`, the readable form of an error value.
pub fn describe(err: &Value) -> String {
    match err {
        Value::Error(e) => format!("{}: {}", kind_of(e), message_of(e)),
        other => other.to_string().unwrap_or_else(|_| format!("{other:?}")),
    }
}

/// Builds an error value for the Lua half: `bioxen.error(kind, message, details)`.
pub fn constructor(lua: &Lua) -> LuaResult<mlua::Function> {
    lua.create_function(
        |lua, (kind, message, details): (String, String, Option<Value>)| {
            let mut e = BioxenError::new(kind, message);
            if let Some(details) = details {
                let fields: Map<String, Json> = lua.from_value(details)?;
                e.details = fields;
            }
            Ok(Value::Error(Box::new(e.into_lua_err())))
        },
    )
}
