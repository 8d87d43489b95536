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

/// Parses a `methodResponse` body: the plain XML XAPI sends goes through the
/// same fast scanner as method calls; anything else (faults, comments, CDATA,
/// odd spacing) through the crate's parser.
pub fn parse_response(body: Vec<u8>) -> Result<Value, String> {
    match fast::parse_response(&body) {
        Some(v) => Ok(v),
        None => parse_response_crate(body),
    }
}

/// The crate's parser (through a transport that hands it the bytes already received).
pub fn parse_response_crate(body: Vec<u8>) -> Result<Value, String> {
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

/// Parses a `methodCall` body: a fast scanner for the plain XML that XML-RPC
/// clients send, falling back to xml-rs for anything else (comments, CDATA,
/// attributes, odd spacing), so the simulator's own cost stays small next to
/// the clients it measures.
pub fn parse_call(body: &[u8]) -> Result<MethodCall, String> {
    match fast::parse_call(body) {
        Some(call) => Ok(call),
        None => parse_call_xml(body),
    }
}

fn parse_call_xml(body: &[u8]) -> Result<MethodCall, String> {
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

mod fast {
    use super::MethodCall;
    use std::collections::BTreeMap;
    use xmlrpc::Value;

    struct Scan<'a> {
        b: &'a [u8],
        i: usize,
    }

    impl<'a> Scan<'a> {
        fn skip_ws(&mut self) {
            while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
        }

        /// Consumes `<tag>` (after optional whitespace).
        fn open(&mut self, tag: &str) -> Option<()> {
            self.skip_ws();
            let t = tag.as_bytes();
            let rest = &self.b[self.i..];
            if rest.len() > t.len() + 1
                && rest[0] == b'<'
                && &rest[1..=t.len()] == t
                && rest[t.len() + 1] == b'>'
            {
                self.i += t.len() + 2;
                Some(())
            } else {
                None
            }
        }

        fn close(&mut self, tag: &str) -> Option<()> {
            self.skip_ws();
            let t = tag.as_bytes();
            let rest = &self.b[self.i..];
            if rest.len() > t.len() + 2
                && rest.starts_with(b"</")
                && &rest[2..2 + t.len()] == t
                && rest[2 + t.len()] == b'>'
            {
                self.i += t.len() + 3;
                Some(())
            } else {
                None
            }
        }

        fn peek_is(&mut self, s: &[u8]) -> bool {
            self.b[self.i..].starts_with(s)
        }

        /// Text up to the next `<`, entities decoded.
        fn text(&mut self) -> Option<String> {
            let start = self.i;
            while self.i < self.b.len() && self.b[self.i] != b'<' {
                self.i += 1;
            }
            let raw = std::str::from_utf8(&self.b[start..self.i]).ok()?;
            if !raw.contains('&') {
                return Some(raw.to_string());
            }
            let mut out = String::with_capacity(raw.len());
            let mut rest = raw;
            while let Some(p) = rest.find('&') {
                out.push_str(&rest[..p]);
                let end = rest[p..].find(';')? + p;
                let ent = &rest[p + 1..end];
                match ent {
                    "lt" => out.push('<'),
                    "gt" => out.push('>'),
                    "amp" => out.push('&'),
                    "quot" => out.push('"'),
                    "apos" => out.push('\''),
                    _ => {
                        let code = if let Some(h) = ent.strip_prefix("#x") {
                            u32::from_str_radix(h, 16).ok()?
                        } else {
                            ent.strip_prefix('#')?.parse().ok()?
                        };
                        out.push(char::from_u32(code)?);
                    }
                }
                rest = &rest[end + 1..];
            }
            out.push_str(rest);
            Some(out)
        }

        /// After `<value>`: the value and `</value>`.
        fn value(&mut self) -> Option<Value> {
            if !self.peek_is(b"<") || self.peek_is(b"</value>") {
                let t = self.text()?;
                self.close("value")?;
                return Some(Value::String(t));
            }
            let v = if self.open("string").is_some() {
                let t = self.text()?;
                self.close("string")?;
                Value::String(t)
            } else if self.peek_is(b"<string/>") {
                self.i += 9;
                Value::String(String::new())
            } else if self.open("i4").is_some() {
                let v = self.text()?.trim().parse().ok()?;
                self.close("i4")?;
                Value::Int(v)
            } else if self.open("int").is_some() {
                let v = self.text()?.trim().parse().ok()?;
                self.close("int")?;
                Value::Int(v)
            } else if self.open("boolean").is_some() {
                let v = match self.text()?.trim() {
                    "1" => true,
                    "0" => false,
                    _ => return None,
                };
                self.close("boolean")?;
                Value::Bool(v)
            } else if self.open("double").is_some() {
                let v = self.text()?.trim().parse().ok()?;
                self.close("double")?;
                Value::Double(v)
            } else if self.open("array").is_some() {
                self.open("data")?;
                let mut items = Vec::new();
                while self.open("value").is_some() {
                    items.push(self.value()?);
                }
                self.close("data")?;
                self.close("array")?;
                Value::Array(items)
            } else if self.open("struct").is_some() {
                let mut m = BTreeMap::new();
                while self.open("member").is_some() {
                    self.open("name")?;
                    let k = self.text()?;
                    self.close("name")?;
                    self.open("value")?;
                    let v = self.value()?;
                    self.close("member")?;
                    m.insert(k, v);
                }
                self.close("struct")?;
                Value::Struct(m)
            } else {
                return None;
            };
            self.close("value")?;
            Some(v)
        }
    }

    fn prolog(s: &mut Scan<'_>) -> Option<()> {
        s.skip_ws();
        if s.peek_is(b"<?xml") {
            s.i += s.b[s.i..].windows(2).position(|w| w == b"?>")? + 2;
        }
        Some(())
    }

    pub fn parse_response(body: &[u8]) -> Option<Value> {
        let mut s = Scan { b: body, i: 0 };
        prolog(&mut s)?;
        s.open("methodResponse")?;
        s.open("params")?;
        s.open("param")?;
        s.open("value")?;
        let v = s.value()?;
        s.close("param")?;
        s.close("params")?;
        s.close("methodResponse")?;
        s.skip_ws();
        (s.i == body.len()).then_some(v)
    }

    pub fn parse_call(body: &[u8]) -> Option<MethodCall> {
        let mut s = Scan { b: body, i: 0 };
        prolog(&mut s)?;
        s.open("methodCall")?;
        s.open("methodName")?;
        let name = s.text()?;
        s.close("methodName")?;
        let mut params = Vec::new();
        if s.open("params").is_some() {
            while s.open("param").is_some() {
                s.open("value")?;
                params.push(s.value()?);
                s.close("param")?;
            }
            s.close("params")?;
        }
        s.close("methodCall")?;
        s.skip_ws();
        (s.i == body.len()).then_some(MethodCall { name, params })
    }
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
        self.next_keeping(false)
    }

    /// The next event; whitespace-only text counts as text when `keep_space`
    /// (inside `<string>` and untyped values), and is skipped elsewhere.
    fn next_keeping(&mut self, keep_space: bool) -> Result<Ev, String> {
        loop {
            match self.reader.next().map_err(|e| e.to_string())? {
                XmlEvent::StartElement { name, .. } => return Ok(Ev::Open(name.local_name)),
                XmlEvent::EndElement { name } => return Ok(Ev::Close(name.local_name)),
                XmlEvent::Characters(s) | XmlEvent::CData(s) => return Ok(Ev::Text(s)),
                XmlEvent::Whitespace(s) if keep_space => return Ok(Ev::Text(s)),
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
        match self.next_keeping(tag == "string")? {
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
    fn the_fast_scanner_and_xml_rs_agree() {
        let mut m = BTreeMap::new();
        m.insert(
            "k<&>".to_string(),
            Value::String("a \"b\" 'c' \u{e9}".into()),
        );
        m.insert(
            "n".to_string(),
            Value::Array(vec![Value::Int(-3), Value::Double(0.5), Value::Bool(false)]),
        );
        let params = vec![
            Value::String("".into()),
            Value::Struct(m),
            Value::Array(vec![]),
        ];
        let body = write_call("x.y", &params);
        let fast = fast::parse_call(&body).expect("fast path takes the crate's own output");
        let slow = parse_call_xml(&body).unwrap();
        assert_eq!(fast.params, slow.params);
        assert_eq!(fast.params, params);
        let python = b"<?xml version='1.0'?>\n<methodCall>\n<methodName>VM.get_power_state</methodName>\n<params>\n<param>\n<value><string>OpaqueRef:1</string></value>\n</param>\n<param>\n<value><string>a&amp;b&#233;</string></value>\n</param>\n</params>\n</methodCall>\n";
        let call = fast::parse_call(python).unwrap();
        assert_eq!(call.params[1], Value::String("a&b\u{e9}".into()));
        // anything unusual goes to xml-rs
        assert!(
            fast::parse_call(b"<methodCall><!-- hi --><methodName>m</methodName></methodCall>")
                .is_none()
        );
        assert_eq!(
            parse_call(b"<methodCall><!-- hi --><methodName>m</methodName></methodCall>")
                .unwrap()
                .name,
            "m"
        );
    }

    #[test]
    fn responses_parse_the_same_both_ways() {
        let mut m = BTreeMap::new();
        m.insert("Status".to_string(), Value::String("Success".into()));
        m.insert(
            "Value".to_string(),
            Value::Array(vec![
                Value::String("x & <y>".into()),
                Value::Int(7),
                Value::Struct(BTreeMap::new()),
            ]),
        );
        let body = write_response(&Value::Struct(m.clone()));
        assert_eq!(fast::parse_response(&body), Some(Value::Struct(m.clone())));
        assert_eq!(parse_response_crate(body).unwrap(), Value::Struct(m));
        // a fault is not plain: the crate reports it
        let fault = b"<?xml version=\"1.0\"?><methodResponse><fault><value><struct><member><name>faultCode</name><value><int>1</int></value></member><member><name>faultString</name><value><string>no</string></value></member></struct></value></fault></methodResponse>";
        assert!(fast::parse_response(fault).is_none());
        assert!(parse_response(fault.to_vec()).is_err());
    }

    #[test]
    fn whitespace_strings_survive() {
        let body = b"<methodCall><methodName>m</methodName><params><param><value><string>  </string></value></param></params></methodCall>";
        assert_eq!(
            parse_call(body).unwrap().params,
            vec![Value::String("  ".into())]
        );
    }

    #[test]
    fn response_round_trips() {
        let v = Value::Array(vec![Value::String("a".into()), Value::Double(1.5)]);
        assert_eq!(parse_response(write_response(&v)).unwrap(), v);
    }
}
