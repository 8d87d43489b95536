//! XML-RPC on the wire, as XAPI speaks it. Values and responses are written and
//! responses parsed by the `xmlrpc` crate; the crate has no server side, so
//! method calls are read here with `xml-rs` (the parser the crate itself uses).
use std::collections::BTreeMap;
use xml::reader::{EventReader, XmlEvent};
use xmlrpc::Value;

/// A method call: its name and parameters.
#[derive(Debug)]
pub struct MethodCall {
    pub name: String,
    pub params: Vec<Value>,
}

/// Serialises a call with the crate's request writer.
pub fn write_call(method: &str, params: &[Value]) -> Vec<u8> {
    let mut req = xmlrpc::Request::new(method);
    for p in params {
        req = req.arg(p.clone());
    }
    let mut out = Vec::with_capacity(256);
    req.write_as_xml(&mut out)
        .expect("writing to a Vec cannot fail");
    out
}

/// Parses a `methodResponse` body with the crate's parser (through a transport
/// that hands it the bytes already received).
pub fn parse_response(body: Vec<u8>) -> Result<Value, String> {
    struct Received(Vec<u8>);
    impl xmlrpc::Transport for Received {
        type Stream = std::io::Cursor<Vec<u8>>;
        fn transmit(
            self,
            _: &xmlrpc::Request<'_>,
        ) -> Result<Self::Stream, Box<dyn std::error::Error + Send + Sync>> {
            Ok(std::io::Cursor::new(self.0))
        }
    }
    xmlrpc::Request::new("")
        .call(Received(body))
        .map_err(|e| e.to_string())
}

/// Writes a `methodResponse` holding one value.
pub fn write_response(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"<?xml version=\"1.0\"?>\n<methodResponse><params><param>");
    value
        .write_as_xml(&mut out)
        .expect("writing to a Vec cannot fail");
    out.extend_from_slice(b"</param></params></methodResponse>\n");
    out
}

/// Parses a `methodCall` body.
pub fn parse_call(body: &[u8]) -> Result<MethodCall, String> {
    let mut events = Events {
        reader: EventReader::new(body),
    };
    events.open("methodCall")?;
    events.open("methodName")?;
    let name = events.text()?;
    events.close("methodName")?;
    let mut params = Vec::new();
    match events.next()? {
        Ev::Open(n) if n == "params" => loop {
            match events.next()? {
                Ev::Open(n) if n == "param" => {
                    events.open("value")?;
                    params.push(events.value()?);
                    events.close("param")?;
                }
                Ev::Close(n) if n == "params" => break,
                other => return Err(format!("expected <param>, found {other:?}")),
            }
        },
        Ev::Close(n) if n == "methodCall" => {}
        other => return Err(format!("expected <params>, found {other:?}")),
    }
    Ok(MethodCall { name, params })
}

#[derive(Debug)]
enum Ev {
    Open(String),
    Close(String),
    Text(String),
    End,
}

struct Events<'a> {
    reader: EventReader<&'a [u8]>,
}

impl Events<'_> {
    fn next(&mut self) -> Result<Ev, String> {
        loop {
            match self.reader.next().map_err(|e| e.to_string())? {
                XmlEvent::StartElement { name, .. } => return Ok(Ev::Open(name.local_name)),
                XmlEvent::EndElement { name } => return Ok(Ev::Close(name.local_name)),
                XmlEvent::Characters(s) | XmlEvent::CData(s) => return Ok(Ev::Text(s)),
                XmlEvent::EndDocument => return Ok(Ev::End),
                _ => continue,
            }
        }
    }

    fn open(&mut self, tag: &str) -> Result<(), String> {
        match self.next()? {
            Ev::Open(n) if n == tag => Ok(()),
            other => Err(format!("expected <{tag}>, found {other:?}")),
        }
    }

    fn close(&mut self, tag: &str) -> Result<(), String> {
        match self.next()? {
            Ev::Close(n) if n == tag => Ok(()),
            other => Err(format!("expected </{tag}>, found {other:?}")),
        }
    }

    /// Text up to the closing tag (which is left for the caller).
    fn text(&mut self) -> Result<String, String> {
        match self.next()? {
            Ev::Text(s) => Ok(s),
            Ev::Close(_) => Err("empty element".into()),
            other => Err(format!("expected text, found {other:?}")),
        }
    }

    /// Reads the inside of `<value>` and its closing tag.
    fn value(&mut self) -> Result<Value, String> {
        let v = match self.next()? {
            // An untyped value is a string (how XAPI sends int64).
            Ev::Close(n) if n == "value" => return Ok(Value::String(String::new())),
            Ev::Text(s) => {
                self.close("value")?;
                return Ok(Value::String(s));
            }
            Ev::Open(t) => self.typed(&t)?,
            other => return Err(format!("expected a value, found {other:?}")),
        };
        self.close("value")?;
        Ok(v)
    }

    fn scalar(&mut self, tag: &str) -> Result<String, String> {
        match self.next()? {
            Ev::Text(s) => {
                self.close(tag)?;
                Ok(s)
            }
            Ev::Close(n) if n == tag => Ok(String::new()),
            other => Err(format!("expected text in <{tag}>, found {other:?}")),
        }
    }

    fn typed(&mut self, tag: &str) -> Result<Value, String> {
        let bad = |s: &str| format!("bad <{tag}> value {s:?}");
        Ok(match tag {
            "string" => Value::String(self.scalar(tag)?),
            "i4" | "int" => {
                let s = self.scalar(tag)?;
                Value::Int(s.trim().parse().map_err(|_| bad(&s))?)
            }
            "i8" => {
                let s = self.scalar(tag)?;
                Value::Int64(s.trim().parse().map_err(|_| bad(&s))?)
            }
            "double" => {
                let s = self.scalar(tag)?;
                Value::Double(s.trim().parse().map_err(|_| bad(&s))?)
            }
            "boolean" => {
                let s = self.scalar(tag)?;
                Value::Bool(match s.trim() {
                    "1" => true,
                    "0" => false,
                    _ => return Err(bad(&s)),
                })
            }
            "dateTime.iso8601" => Value::String(self.scalar(tag)?),
            "base64" => {
                use base64::Engine;
                let s = self.scalar(tag)?;
                Value::Base64(
                    base64::engine::general_purpose::STANDARD
                        .decode(s.trim())
                        .map_err(|_| bad(&s))?,
                )
            }
            "nil" => {
                self.close("nil")?;
                Value::Nil
            }
            "array" => {
                self.open("data")?;
                let mut items = Vec::new();
                loop {
                    match self.next()? {
                        Ev::Open(n) if n == "value" => items.push(self.value()?),
                        Ev::Close(n) if n == "data" => break,
                        other => return Err(format!("expected <value> in array, found {other:?}")),
                    }
                }
                self.close("array")?;
                Value::Array(items)
            }
            "struct" => {
                let mut map = BTreeMap::new();
                loop {
                    match self.next()? {
                        Ev::Open(n) if n == "member" => {
                            self.open("name")?;
                            let key = self.scalar("name")?;
                            self.open("value")?;
                            let v = self.value()?;
                            self.close("member")?;
                            map.insert(key, v);
                        }
                        Ev::Close(n) if n == "struct" => break,
                        other => return Err(format!("expected <member>, found {other:?}")),
                    }
                }
                Value::Struct(map)
            }
            other => return Err(format!("unknown value type <{other}>")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_round_trips_through_the_crate_writer() {
        let mut s = BTreeMap::new();
        s.insert("a".to_string(), Value::String("4294967296".into()));
        s.insert("b".to_string(), Value::Array(vec![Value::Bool(true)]));
        let params = vec![Value::String("x<y".into()), Value::Struct(s), Value::Int(3)];
        let body = write_call("VM.clone", &params);
        let call = parse_call(&body).unwrap();
        assert_eq!(call.name, "VM.clone");
        assert_eq!(call.params, params);
    }

    #[test]
    fn untyped_values_are_strings() {
        let body = b"<methodCall><methodName>m</methodName><params><param><value>12</value></param><param><value/></param></params></methodCall>";
        let call = parse_call(body).unwrap();
        assert_eq!(
            call.params,
            vec![Value::String("12".into()), Value::String("".into())]
        );
    }

    #[test]
    fn response_round_trips() {
        let v = Value::Array(vec![Value::String("a".into()), Value::Double(1.5)]);
        assert_eq!(parse_response(write_response(&v)).unwrap(), v);
    }
}
