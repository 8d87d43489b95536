//! Channels across a process boundary. The parent keeps the queue; the child
//! process reaches it through a Unix socket pair inherited at spawn (named in
//! `BIOXEN_CHANNEL_FDS`), with one request and one reply per operation. A
//! thread in the parent serves each link, so back-pressure and waits happen
//! against the real queue.
use super::{Msg, Recv, Shared, closed_error};
use crate::runtime::error::BioxenError;
use mlua::Result as LuaResult;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const ENV: &str = "BIOXEN_CHANNEL_FDS";

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

fn write_frame(s: &mut UnixStream, body: &[u8]) -> io::Result<()> {
    let mut buf = Vec::with_capacity(body.len() + 4);
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(body);
    s.write_all(&buf)
}

fn read_frame(s: &mut UnixStream) -> io::Result<Vec<u8>> {
    let mut head = [0u8; 4];
    s.read_exact(&mut head)?;
    let mut body = vec![0u8; u32::from_be_bytes(head) as usize];
    s.read_exact(&mut body)?;
    Ok(body)
}

/// The child's end: one socket, one operation at a time.
pub struct Link {
    name: String,
    stream: Mutex<UnixStream>,
}

impl Link {
    fn call(&self, req: &[u8]) -> LuaResult<Vec<u8>> {
        let mut s = self.stream.lock().unwrap();
        write_frame(&mut s, req)
            .and_then(|_| read_frame(&mut s))
            .map_err(|e| {
                BioxenError::new(
                    "Closed",
                    format!(
                        "channel {:?}: the link to the parent process is gone ({e})",
                        self.name
                    ),
                )
                .into_lua_err()
            })
    }

    pub fn send(&self, m: Msg) -> LuaResult<()> {
        let mut req = vec![SEND];
        encode(&m, &mut req);
        match self.call(&req)?.first() {
            Some(0) => Ok(()),
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

/// Serves one link against the real queue until the child goes away.
fn serve(shared: Arc<Shared>, mut s: UnixStream) {
    while let Ok(req) = read_frame(&mut s) {
        let reply: Vec<u8> = match req.first() {
            Some(&SEND) => match decode(&req[1..]) {
                Err(_) => vec![2],
                Ok(mut m) => loop {
                    match shared.try_send(m) {
                        Err(()) => break vec![1],
                        Ok(None) => break vec![0],
                        Ok(Some(back)) => {
                            m = back;
                            shared.wait_blocking(true, None);
                        }
                    }
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
                let t = (!t.is_nan()).then(|| Duration::from_secs_f64(t.max(0.0)));
                vec![shared.wait_blocking(req[1] == 1, t) as u8]
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
            _ => break,
        };
        if write_frame(&mut s, &reply).is_err() {
            break;
        }
    }
}

/// Parent side, before spawning a child process: one socket pair per channel,
/// a serving thread on the parent's end, `BIOXEN_CHANNEL_FDS` and an fd the
/// child inherits. Drop the returned fds once the child is spawned.
pub fn export(
    cmd: &mut std::process::Command,
    channels: Vec<(String, Arc<Shared>)>,
) -> io::Result<Vec<OwnedFd>> {
    use std::os::unix::process::CommandExt;
    let mut names = Vec::new();
    let mut child_ends: Vec<OwnedFd> = Vec::new();
    for (name, shared) in channels {
        let (parent, child) = UnixStream::pair()?;
        std::thread::Builder::new()
            .name(format!("channel-{name}"))
            .spawn(move || serve(shared, parent))?;
        names.push(format!("{name}={}", child.as_raw_fd()));
        child_ends.push(child.into());
    }
    if names.is_empty() {
        return Ok(child_ends);
    }
    cmd.env(ENV, names.join(","));
    let fds: Vec<i32> = child_ends.iter().map(|f| f.as_raw_fd()).collect();
    // SAFETY: between fork and exec only fcntl is called, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            for fd in &fds {
                if libc::fcntl(*fd, libc::F_SETFD, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    Ok(child_ends)
}

/// Child side: the channels the parent passed, by name (empties the variable).
pub fn from_env() -> Vec<(String, super::Handle)> {
    let Ok(spec) = std::env::var(ENV) else {
        return Vec::new();
    };
    // SAFETY: called once at child start-up, before any other thread reads the environment.
    unsafe { std::env::remove_var(ENV) };
    spec.split(',')
        .filter_map(|item| {
            let (name, fd) = item.split_once('=')?;
            let fd: i32 = fd.parse().ok()?;
            // SAFETY: the parent passed this fd for us alone; we take ownership once.
            let stream = unsafe { UnixStream::from_raw_fd(fd) };
            let _ = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            let link = Link {
                name: name.to_string(),
                stream: Mutex::new(stream),
            };
            Some((name.to_string(), super::Handle::Remote(Arc::new(link))))
        })
        .collect()
}
