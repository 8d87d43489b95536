//! Values that cross between VMs: nil, booleans, numbers, strings and tables of
//! those, copied (never shared). Both directions go through `Val`, which also
//! has a compact binary form for the process backend's pipes.
use mlua::{Lua, Result as LuaResult, Table, Value};

/// Tables nested deeper than this cannot be copied (stops deep-nesting bombs).
pub const MAX_DEPTH: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Nil,
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(Vec<u8>),
    Table(Vec<(Val, Val)>),
}

/// Why a value could not be copied; `too_big` separates size from type problems.
#[derive(Debug)]
pub struct CopyError {
    pub message: String,
    pub too_big: bool,
}

/// Walks a Lua value, charging `budget` bytes; `what` names the value in errors.
pub struct Copier {
    pub budget: usize,
    seen: Vec<*const std::ffi::c_void>,
}

impl Copier {
    pub fn new(budget: usize) -> Copier {
        Copier {
            budget,
            seen: Vec::new(),
        }
    }

    fn charge(&mut self, n: usize, what: &str) -> Result<(), CopyError> {
        if n > self.budget {
            return Err(CopyError {
                message: format!("{what} is too large to copy (over the size limit)"),
                too_big: true,
            });
        }
        self.budget -= n;
        Ok(())
    }

    pub fn copy(&mut self, v: &Value, what: &str) -> Result<Val, CopyError> {
        self.copy_at(v, what, 0)
    }

    fn copy_at(&mut self, v: &Value, what: &str, depth: usize) -> Result<Val, CopyError> {
        self.charge(16, what)?;
        Ok(match v {
            Value::Nil => Val::Nil,
            Value::Boolean(b) => Val::Bool(*b),
            Value::Integer(i) => Val::Int(*i),
            Value::Number(n) => Val::Num(*n),
            Value::String(s) => {
                let b = s.as_bytes();
                self.charge(b.len(), what)?;
                Val::Str(b.to_vec())
            }
            Value::Table(t) => self.copy_table(t, what, depth)?,
            other => {
                return Err(CopyError {
                    message: format!(
                        "{what} is a {} (only nil, booleans, numbers, strings and tables of those can be copied between VMs)",
                        match other.type_name() {
                            "other" => "cdata",
                            t => t,
                        }
                    ),
                    too_big: false,
                });
            }
        })
    }

    fn copy_table(&mut self, t: &Table, what: &str, depth: usize) -> Result<Val, CopyError> {
        if depth >= MAX_DEPTH {
            return Err(CopyError {
                message: format!("{what} is nested more than {MAX_DEPTH} tables deep"),
                too_big: false,
            });
        }
        let what = if what.ends_with("[...][...]") {
            what.trim_end_matches("[...]").to_string() + "[...]"
        } else {
            what.to_string()
        };
        let what = what.as_str();
        let p = t.to_pointer();
        if self.seen.contains(&p) {
            return Err(CopyError {
                message: format!("{what} contains a cycle (a table that contains itself)"),
                too_big: false,
            });
        }
        self.seen.push(p);
        let mut entries = Vec::new();
        let mut failure = None;
        let _ = t.for_each::<Value, Value>(|k, v| {
            let key_name = if depth >= 4 {
                format!("{what}[...]")
            } else {
                match &k {
                    Value::String(s) => format!("{what}.{}", s.to_string_lossy()),
                    Value::Integer(i) => format!("{what}[{i}]"),
                    Value::Number(n) => format!("{what}[{n}]"),
                    other => format!("{what}[<{}>]", other.type_name()),
                }
            };
            let r = self
                .copy_at(&k, &format!("a key of {what}"), depth + 1)
                .and_then(|k| Ok((k, self.copy_at(&v, &key_name, depth + 1)?)));
            match r {
                Ok(pair) => {
                    entries.push(pair);
                    Ok(())
                }
                Err(e) => {
                    failure = Some(e);
                    Err(mlua::Error::RuntimeError(String::new()))
                }
            }
        });
        self.seen.pop();
        match failure {
            Some(e) => Err(e),
            None => Ok(Val::Table(entries)),
        }
    }
}

/// Copies host or child values into `Val`s (`what` is e.g. "argument").
pub fn copy_all<'a>(
    values: impl IntoIterator<Item = &'a Value>,
    what: &str,
    budget: usize,
) -> Result<Vec<Val>, CopyError> {
    let mut c = Copier::new(budget);
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| c.copy(v, &format!("{what} {}", i + 1)))
        .collect()
}

impl Val {
    pub fn to_lua(&self, lua: &Lua) -> LuaResult<Value> {
        Ok(match self {
            Val::Nil => Value::Nil,
            Val::Bool(b) => Value::Boolean(*b),
            Val::Int(i) => Value::Integer(*i),
            Val::Num(n) => Value::Number(*n),
            Val::Str(s) => Value::String(lua.create_string(s)?),
            Val::Table(entries) => {
                let t = lua.create_table_with_capacity(0, entries.len())?;
                for (k, v) in entries {
                    t.raw_set(k.to_lua(lua)?, v.to_lua(lua)?)?;
                }
                Value::Table(t)
            }
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Val::Nil => out.push(0),
            Val::Bool(false) => out.push(1),
            Val::Bool(true) => out.push(2),
            Val::Int(i) => {
                out.push(3);
                out.extend_from_slice(&i.to_le_bytes());
            }
            Val::Num(n) => {
                out.push(4);
                out.extend_from_slice(&n.to_le_bytes());
            }
            Val::Str(s) => {
                out.push(5);
                put_bytes(out, s);
            }
            Val::Table(entries) => {
                out.push(6);
                out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
                for (k, v) in entries {
                    k.encode(out);
                    v.encode(out);
                }
            }
        }
    }

    pub fn decode(r: &mut Reader) -> Result<Val, String> {
        Self::decode_at(r, 0)
    }

    fn decode_at(r: &mut Reader, depth: usize) -> Result<Val, String> {
        if depth > MAX_DEPTH + 1 {
            return Err("value nested too deep".into());
        }
        Ok(match r.u8()? {
            0 => Val::Nil,
            1 => Val::Bool(false),
            2 => Val::Bool(true),
            3 => Val::Int(i64::from_le_bytes(r.take(8)?.try_into().unwrap())),
            4 => Val::Num(f64::from_le_bytes(r.take(8)?.try_into().unwrap())),
            5 => Val::Str(r.bytes()?.to_vec()),
            6 => {
                let n = r.u32()? as usize;
                let mut entries = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    let k = Self::decode_at(r, depth + 1)?;
                    let v = Self::decode_at(r, depth + 1)?;
                    entries.push((k, v));
                }
                Val::Table(entries)
            }
            t => return Err(format!("bad value tag {t}")),
        })
    }
}

pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// A cursor over a received frame.
pub struct Reader<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.pos + n > self.buf.len() {
            return Err("truncated frame".into());
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    pub fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    pub fn f64(&mut self) -> Result<f64, String> {
        Ok(f64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    pub fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub fn string(&mut self) -> Result<String, String> {
        Ok(String::from_utf8_lossy(self.bytes()?).into_owned())
    }
}
