//! Channels across a process boundary. The host keeps the queue; a
//! process-backend child reaches it over the VM's own protocol pipe: during an
//! exec the child sends a channel request frame and the host, which is
//! waiting for the exec's result anyway, serves it against the real queue and
//! replies. No operation blocks the host for long: a full channel answers
//! "full" and waits are served in short slices, so the host keeps watching the
//! exec's deadline and the child keeps noticing its own timeout.
use super::{Msg, Recv, closed_error};
use crate::runtime::error::BioxenError;
use mlua::Result as LuaResult;
use std::io;
use std::time::Duration;

const SEND: u8 = 1;
const TRY_RECV: u8 = 2;
const WAIT: u8 = 3;
const CLOSE: u8 = 4;
const INFO: u8 = 5;

pub fn encode(m: &Msg, out: &mut Vec<u8>) {
    match m {
        Msg::Nil => out.push(0),
        Msg::Bool(false) => out.push(1),
        Msg::Bool(true) => out.push(2),
        Msg::Int(i) => {
            out.push(3);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Msg::Num(n) => {
            out.push(4);
            out.extend_from_slice(&n.to_le_bytes());
        }
        Msg::Str(s) => {
            out.push(5);
            out.extend_from_slice(s);
        }
        Msg::Table(s) => {
            out.push(6);
            out.extend_from_slice(s);
        }
    }
}

pub fn decode(b: &[u8]) -> io::Result<Msg> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad channel message");
    let eight = |b: &[u8]| -> io::Result<[u8; 8]> {
        b.get(1..9).and_then(|s| s.try_into().ok()).ok_or_else(bad)
    };
    Ok(match b.first() {
        Some(0) => Msg::Nil,
        Some(1) => Msg::Bool(false),
        Some(2) => Msg::Bool(true),
        Some(3) => Msg::Int(i64::from_le_bytes(eight(b)?)),
        Some(4) => Msg::Num(f64::from_le_bytes(eight(b)?)),
        Some(5) => Msg::Str(b[1..].to_vec()),
        Some(6) => Msg::Table(b[1..].to_vec()),
        _ => return Err(bad()),
    })
}

/// Sends one request to the queue's owner and returns its reply.
pub type Transport = Box<dyn Fn(&[u8]) -> Result<Vec<u8>, String> + Send + Sync>;

/// The child's end of one channel.
pub struct Link {
    name: String,
    transport: Transport,
}

/// The longest a host serves one wait before answering (the child asks again).
pub const WAIT_SLICE: Duration = Duration::from_millis(100);

impl Link {
    pub fn new(name: &str, transport: Transport) -> Link {
        Link {
            name: name.to_string(),
            transport,
        }
    }

    fn call(&self, req: &[u8]) -> LuaResult<Vec<u8>> {
        let mut framed = Vec::with_capacity(req.len() + self.name.len() + 1);
        framed.push(self.name.len() as u8);
        framed.extend_from_slice(self.name.as_bytes());
        framed.extend_from_slice(req);
        (self.transport)(&framed).map_err(|e| {
            BioxenError::new(
                "Closed",
                format!(
                    "channel {:?}: the link to the host is gone ({e})",
                    self.name
                ),
            )
            .into_lua_err()
        })
    }

    /// Queues `m`; false when the channel is full.
    pub fn send(&self, m: Msg) -> LuaResult<bool> {
        let mut req = vec![SEND];
        encode(&m, &mut req);
        match self.call(&req)?.first() {
            Some(0) => Ok(true),
            Some(3) => Ok(false),
            _ => Err(closed_error()),
        }
    }

    pub fn try_recv(&self) -> LuaResult<Recv> {
        let r = self.call(&[TRY_RECV])?;
        Ok(match r.first() {
            Some(1) => Recv::Item(
                decode(&r[1..])
                    .map_err(|e| BioxenError::new("Runtime", e.to_string()).into_lua_err())?,
            ),
            Some(3) => Recv::Closed,
            _ => Recv::Empty,
        })
    }

    pub fn wait(&self, sending: bool, timeout: Option<Duration>) -> LuaResult<bool> {
        let mut req = vec![WAIT, sending as u8];
        req.extend_from_slice(
            &timeout
                .map(|t| t.as_secs_f64())
                .unwrap_or(f64::NAN)
                .to_le_bytes(),
        );
        Ok(self.call(&req)?.first() == Some(&1))
    }

    pub fn close(&self) -> LuaResult<()> {
        self.call(&[CLOSE]).map(|_| ())
    }

    pub fn info(&self) -> LuaResult<(usize, usize, bool)> {
        let r = self.call(&[INFO])?;
        if r.len() < 17 {
            return Err(BioxenError::new("Runtime", "bad channel info reply").into_lua_err());
        }
        let len = u64::from_le_bytes(r[0..8].try_into().unwrap()) as usize;
        let cap = u64::from_le_bytes(r[8..16].try_into().unwrap()) as usize;
        Ok((len, cap, r[16] == 1))
    }
}

/// Host side: serves one request (`[name length][name][op...]`) against the
/// channels handed to the VM. Never blocks longer than `WAIT_SLICE`.
pub fn serve(channels: &[(String, super::Handle)], req: &[u8]) -> Vec<u8> {
    let Some((&n, rest)) = req.split_first() else {
        return vec![2];
    };
    let (name, req) = rest.split_at((n as usize).min(rest.len()));
    let shared = channels.iter().find_map(|(cn, h)| match h {
        super::Handle::Local(s) if cn.as_bytes() == name => Some(s.clone()),
        _ => None,
    });
    let Some(shared) = shared else {
        return vec![2];
    };
    match req.first() {
        Some(&SEND) => match decode(&req[1..]) {
            Err(_) => vec![2],
            Ok(m) => match shared.try_send(m) {
                Err(()) => vec![1],
                Ok(None) => vec![0],
                Ok(Some(_)) => vec![3],
            },
        },
        Some(&TRY_RECV) => match shared.try_recv() {
            Recv::Item(m) => {
                let mut r = vec![1];
                encode(&m, &mut r);
                r
            }
            Recv::Empty => vec![0],
            Recv::Closed => vec![3],
        },
        Some(&WAIT) if req.len() >= 10 => {
            let t = f64::from_le_bytes(req[2..10].try_into().unwrap());
            let t = Duration::from_secs_f64(t.clamp(0.0, WAIT_SLICE.as_secs_f64()));
            vec![shared.wait_blocking(req[1] == 1, Some(t)) as u8]
        }
        Some(&CLOSE) => {
            shared.close();
            vec![0]
        }
        Some(&INFO) => {
            let mut r = Vec::with_capacity(17);
            r.extend_from_slice(&(shared.len() as u64).to_le_bytes());
            r.extend_from_slice(&(shared.capacity() as u64).to_le_bytes());
            r.push(shared.is_closed() as u8);
            r
        }
        _ => vec![2],
    }
}
