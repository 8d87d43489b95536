//! TCP: listeners and connections on tokio, with line, length-prefixed and raw reads.
use super::address::{Policy, check};
use super::child::block_on;
use crate::runtime::error::{BioxenError, error};
use mlua::{
    Function, Lua, MultiValue, Result as LuaResult, UserData, UserDataMethods, UserDataRef, Value,
};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, Notify};

/// The largest frame `read_frame` accepts unless told otherwise (64 MiB).
pub const MAX_FRAME: usize = 64 << 20;

pub fn net_err(message: impl Into<String>) -> mlua::Error {
    BioxenError::new("Networking", message).into_lua_err()
}

/// Runs `fut`, raising `Timeout` after `timeout` seconds when one is given.
pub async fn with_timeout<T>(
    timeout: Option<f64>,
    what: &str,
    fut: impl Future<Output = LuaResult<T>>,
) -> LuaResult<T> {
    match timeout {
        None => fut.await,
        Some(t) if !t.is_finite() || t < 0.0 => Err(error(
            "Argument",
            format!("timeout must be a number of seconds >= 0, got {t}"),
        )),
        Some(t) => match tokio::time::timeout(Duration::from_secs_f64(t), fut).await {
            Ok(r) => r,
            Err(_) => Err(
                BioxenError::new("Timeout", format!("{what} timed out after {t}s"))
                    .with("timeout", t)
                    .into_lua_err(),
            ),
        },
    }
}

pub struct Conn {
    reader: Mutex<Option<BufReader<OwnedReadHalf>>>,
    writer: Mutex<Option<OwnedWriteHalf>>,
    peer: String,
    local: String,
}

impl Conn {
    pub fn new(stream: TcpStream) -> Conn {
        let _ = stream.set_nodelay(true);
        let peer = stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let local = stream
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let (r, w) = stream.into_split();
        Conn {
            reader: Mutex::new(Some(BufReader::with_capacity(64 * 1024, r))),
            writer: Mutex::new(Some(w)),
            peer,
            local,
        }
    }

    fn io_err(&self, doing: &str, e: std::io::Error) -> mlua::Error {
        BioxenError::new("Networking", format!("{doing} {}: {e}", self.peer))
            .with("peer", self.peer.clone())
            .into_lua_err()
    }

    fn closed(&self) -> mlua::Error {
        net_err(format!("the connection to {} is closed", self.peer))
    }

    async fn read_line(&self) -> LuaResult<Option<Vec<u8>>> {
        let mut guard = self.reader.lock().await;
        let r = guard.as_mut().ok_or_else(|| self.closed())?;
        let mut line = Vec::new();
        let n = r
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| self.io_err("reading a line from", e))?;
        if n == 0 {
            return Ok(None);
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        Ok(Some(line))
    }

    async fn read_some(&self, max: usize) -> LuaResult<Option<Vec<u8>>> {
        let mut guard = self.reader.lock().await;
        let r = guard.as_mut().ok_or_else(|| self.closed())?;
        let mut buf = vec![0u8; max];
        let n = r
            .read(&mut buf)
            .await
            .map_err(|e| self.io_err("reading from", e))?;
        if n == 0 && max > 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some(buf))
    }

    async fn read_exact(
        r: &mut BufReader<OwnedReadHalf>,
        buf: &mut [u8],
    ) -> std::io::Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            let n = r.read(&mut buf[got..]).await?;
            if n == 0 {
                break;
            }
            got += n;
        }
        Ok(got)
    }

    /// Exactly `n` bytes; None when the peer closed before the first byte.
    async fn read_n(&self, n: usize) -> LuaResult<Option<Vec<u8>>> {
        let mut guard = self.reader.lock().await;
        let r = guard.as_mut().ok_or_else(|| self.closed())?;
        let mut buf = vec![0u8; n];
        let got = Self::read_exact(r, &mut buf)
            .await
            .map_err(|e| self.io_err("reading from", e))?;
        if got == 0 && n > 0 {
            return Ok(None);
        }
        if got < n {
            return Err(self.cut_short(got, n));
        }
        Ok(Some(buf))
    }

    fn cut_short(&self, got: usize, want: usize) -> mlua::Error {
        BioxenError::new(
            "Networking",
            format!(
                "{} closed the connection after {got} of {want} bytes",
                self.peer
            ),
        )
        .with("peer", self.peer.clone())
        .with("received", got)
        .into_lua_err()
    }

    async fn read_frame(&self, max: usize) -> LuaResult<Option<Vec<u8>>> {
        let mut guard = self.reader.lock().await;
        let r = guard.as_mut().ok_or_else(|| self.closed())?;
        let mut head = [0u8; 4];
        let got = Self::read_exact(r, &mut head)
            .await
            .map_err(|e| self.io_err("reading a frame from", e))?;
        if got == 0 {
            return Ok(None);
        }
        if got < 4 {
            return Err(self.cut_short(got, 4));
        }
        let len = u32::from_be_bytes(head) as usize;
        if len > max {
            return Err(BioxenError::new(
                "Networking",
                format!(
                    "{} sent a frame of {len} bytes; the limit is {max} (pass a larger max)",
                    self.peer
                ),
            )
            .into_lua_err());
        }
        let mut buf = vec![0u8; len];
        let got = Self::read_exact(r, &mut buf)
            .await
            .map_err(|e| self.io_err("reading a frame from", e))?;
        if got < len {
            return Err(self.cut_short(got, len));
        }
        Ok(Some(buf))
    }

    async fn write_parts(&self, parts: &[&[u8]]) -> LuaResult<()> {
        let mut guard = self.writer.lock().await;
        let w = guard.as_mut().ok_or_else(|| self.closed())?;
        for p in parts {
            w.write_all(p)
                .await
                .map_err(|e| self.io_err("writing to", e))?;
        }
        Ok(())
    }

    async fn close(&self) {
        if let Some(mut w) = self.writer.lock().await.take() {
            let _ = w.shutdown().await;
        }
        self.reader.lock().await.take();
    }
}

fn bytes(lua: &Lua, v: Option<Vec<u8>>) -> LuaResult<Value> {
    match v {
        Some(b) => Ok(Value::String(lua.create_string(b)?)),
        None => Ok(Value::Nil),
    }
}

fn size(n: f64, what: &str) -> LuaResult<usize> {
    if !(n.is_finite() && n >= 0.0 && n.fract() == 0.0) {
        return Err(error(
            "Argument",
            format!("{what} must be a whole number >= 0, got {n}"),
        ));
    }
    Ok(n as usize)
}

impl UserData for Conn {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_async_method("read_line", |lua, this, timeout: Option<f64>| async move {
            let line = with_timeout(timeout, "read_line", this.read_line()).await?;
            bytes(&lua, line)
        });
        m.add_async_method(
            "read",
            |lua, this, (n, timeout): (Option<f64>, Option<f64>)| async move {
                let n = size(n.unwrap_or(65536.0), "read size")?;
                let data = with_timeout(timeout, "read", this.read_some(n)).await?;
                bytes(&lua, data)
            },
        );
        m.add_async_method(
            "read_exact",
            |lua, this, (n, timeout): (f64, Option<f64>)| async move {
                let n = size(n, "read_exact size")?;
                let data = with_timeout(timeout, "read_exact", this.read_n(n)).await?;
                bytes(&lua, data)
            },
        );
        m.add_async_method(
            "read_frame",
            |lua, this, (timeout, max): (Option<f64>, Option<f64>)| async move {
                let max = match max {
                    Some(m) => size(m, "max frame size")?,
                    None => MAX_FRAME,
                };
                let data = with_timeout(timeout, "read_frame", this.read_frame(max)).await?;
                bytes(&lua, data)
            },
        );
        m.add_async_method("write", |_, this, data: mlua::LuaString| async move {
            let b = data.as_bytes().to_vec();
            this.write_parts(&[&b]).await
        });
        m.add_async_method("write_line", |_, this, data: mlua::LuaString| async move {
            let b = data.as_bytes().to_vec();
            this.write_parts(&[&b, b"\n"]).await
        });
        m.add_async_method("write_frame", |_, this, data: mlua::LuaString| async move {
            let b = data.as_bytes().to_vec();
            let len = u32::try_from(b.len())
                .map_err(|_| net_err("a frame cannot be larger than 4 GiB"))?;
            this.write_parts(&[&len.to_be_bytes(), &b]).await
        });
        m.add_async_method("close", |_, this, ()| async move {
            this.close().await;
            Ok(())
        });
        // Blocking twins for child VMs (no event loop): the same futures, run
        // to completion here; cheaper than going through `block`.
        m.add_method("read_line_b", |lua, this, timeout: Option<f64>| {
            let line = block_on(lua, with_timeout(timeout, "read_line", this.read_line()))?;
            bytes(lua, line)
        });
        m.add_method(
            "read_frame_b",
            |lua, this, (timeout, max): (Option<f64>, Option<f64>)| {
                let max = match max {
                    Some(m) => size(m, "max frame size")?,
                    None => MAX_FRAME,
                };
                let data = block_on(
                    lua,
                    with_timeout(timeout, "read_frame", this.read_frame(max)),
                )?;
                bytes(lua, data)
            },
        );
        m.add_method(
            "read_b",
            |lua, this, (n, timeout): (Option<f64>, Option<f64>)| {
                let n = size(n.unwrap_or(65536.0), "read size")?;
                let data = block_on(lua, with_timeout(timeout, "read", this.read_some(n)))?;
                bytes(lua, data)
            },
        );
        m.add_method("write_b", |lua, this, data: mlua::LuaString| {
            block_on(lua, this.write_parts(&[&data.as_bytes()]))
        });
        m.add_method("write_line_b", |lua, this, data: mlua::LuaString| {
            block_on(lua, this.write_parts(&[&data.as_bytes(), b"\n"]))
        });
        m.add_method("write_frame_b", |lua, this, data: mlua::LuaString| {
            let b = data.as_bytes();
            let len = u32::try_from(b.len())
                .map_err(|_| net_err("a frame cannot be larger than 4 GiB"))?;
            block_on(lua, this.write_parts(&[&len.to_be_bytes(), &b]))
        });
        m.add_method("peer", |_, this, ()| Ok(this.peer.clone()));
        m.add_method("address", |_, this, ()| Ok(this.local.clone()));
        m.add_meta_method("__tostring", |_, this, ()| {
            Ok(format!("tcp connection {} -> {}", this.local, this.peer))
        });
    }
}

pub async fn connect(
    policy: Policy,
    host: String,
    port: u16,
    timeout: Option<f64>,
) -> LuaResult<Conn> {
    check(&policy, &host, port, "connecting to")?;
    let addr = format!("{host}:{port}");
    let fut = async {
        let addrs = super::address::resolve(&host, port).await.map_err(|e| {
            BioxenError::new("Networking", format!("cannot resolve {addr}: {e}"))
                .with("host", host.clone())
                .with("port", port)
                .into_lua_err()
        })?;
        TcpStream::connect(&addrs[..]).await.map_err(|e| {
            BioxenError::new("Networking", format!("cannot connect to {addr}: {e}"))
                .with("host", host.clone())
                .with("port", port)
                .into_lua_err()
        })
    };
    let stream = with_timeout(Some(timeout.unwrap_or(30.0)), "connect", fut).await?;
    Ok(Conn::new(stream))
}

pub struct Listener {
    inner: StdMutex<Option<Arc<TcpListener>>>,
    closed: Arc<(AtomicBool, Notify)>,
    local: String,
    port: u16,
}

impl Listener {
    pub async fn bind(policy: Policy, host: String, port: u16) -> LuaResult<Listener> {
        check(&policy, &host, port, "listening on")?;
        let target = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let addrs = super::address::resolve(&host, port)
            .await
            .map_err(|e| net_err(format!("cannot resolve {target}: {e}")))?;
        let l = TcpListener::bind(&addrs[..]).await.map_err(|e| {
            BioxenError::new("Networking", format!("cannot listen on {target}: {e}"))
                .with("host", host.clone())
                .with("port", port)
                .into_lua_err()
        })?;
        let local = l.local_addr().map_err(|e| net_err(e.to_string()))?;
        Ok(Listener {
            inner: StdMutex::new(Some(Arc::new(l))),
            closed: Arc::new((AtomicBool::new(false), Notify::new())),
            local: local.to_string(),
            port: local.port(),
        })
    }

    /// The next connection, or None once the listener is closed.
    async fn accept(&self) -> LuaResult<Option<Conn>> {
        let closed = self.closed.clone();
        let notified = closed.1.notified();
        let Some(l) = self.inner.lock().unwrap().clone() else {
            return Ok(None);
        };
        if closed.0.load(Ordering::SeqCst) {
            return Ok(None);
        }
        tokio::select! {
            r = l.accept() => {
                let (s, _) = r.map_err(|e| net_err(format!("accept on {}: {e}", self.local)))?;
                Ok(Some(Conn::new(s)))
            }
            _ = notified => Ok(None),
        }
    }

    fn close(&self) {
        self.closed.0.store(true, Ordering::SeqCst);
        self.inner.lock().unwrap().take();
        self.closed.1.notify_waiters();
    }
}

fn conn_or_nil(lua: &Lua, c: Option<Conn>) -> LuaResult<Value> {
    match c {
        Some(c) => Ok(Value::UserData(lua.create_userdata(c)?)),
        None => Ok(Value::Nil),
    }
}

impl UserData for Listener {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_async_method("accept", |lua, this, timeout: Option<f64>| async move {
            let c = with_timeout(timeout, "accept", this.accept()).await?;
            conn_or_nil(&lua, c)
        });
        // `for conn in listener:connections() do ... end`: ends when the listener is closed.
        m.add_function("connections", |lua, this: mlua::AnyUserData| {
            let next = lua.create_async_function(move |lua, _: MultiValue| {
                let this = this.clone();
                async move {
                    let l: UserDataRef<Listener> = this.borrow()?;
                    let c = l.accept().await?;
                    conn_or_nil(&lua, c)
                }
            })?;
            Ok(next)
        });
        // Accepts until closed, running `handler(conn)` as a `bioxen.task` per connection.
        m.add_async_method(
            "serve",
            |lua, this, (handler, max): (Function, Option<f64>)| async move {
                let mut served = 0usize;
                let max = max.map(|m| size(m, "max connections")).transpose()?;
                while max.is_none_or(|m| served < m) {
                    let Some(c) = this.accept().await? else { break };
                    let c = lua.create_userdata(c)?;
                    crate::library::task::spawn(
                        &lua,
                        (
                            handler.clone(),
                            MultiValue::from_vec(vec![Value::UserData(c)]),
                        ),
                    )?;
                    served += 1;
                }
                Ok(served)
            },
        );
        m.add_method("close", |_, this, ()| {
            this.close();
            Ok(())
        });
        m.add_method("port", |_, this, ()| Ok(this.port));
        m.add_method("address", |_, this, ()| Ok(this.local.clone()));
        m.add_meta_method("__tostring", |_, this, ()| {
            Ok(format!("tcp listener {}", this.local))
        });
    }
}
