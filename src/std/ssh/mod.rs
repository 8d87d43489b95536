//! `bioxen.ssh`: SSH connections on ssh2 (libssh2). ssh2 blocks, so every
//! operation runs on tokio's blocking pool and the Lua side awaits it: many
//! connections progress in parallel under `bioxen.task`. One connection is a
//! mutex-guarded session; its operations run one after another.
mod openssl_cpu;

use crate::runtime::builder::{LibraryBuilder, blocking};
use crate::runtime::error::{BioxenError, error};
use base64::Engine;
use mlua::{Lua, Result as LuaResult, Table, UserData, UserDataMethods, Value};
use sha2::{Digest, Sha256};
use ssh2::{CheckResult, KnownHostFileKind, Session};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn module(lua: &Lua) -> LuaResult<Table> {
    LibraryBuilder::new(lua)
        .async_function("connect", |_, opts: Table| connect(opts))
        .build()
}

fn ssh_err(message: impl Into<String>) -> mlua::Error {
    error("Ssh", message)
}

struct Inner {
    session: Mutex<Option<Session>>,
    fd: i32,
    closed: AtomicBool,
    target: String,
}

pub struct Connection {
    inner: Arc<Inner>,
}

struct Options {
    host: String,
    port: u16,
    user: String,
    key: Option<String>,
    agent: bool,
    password: Option<String>,
    known_hosts: PathBuf,
    accept_new: bool,
    timeout: f64,
    keepalive: u32,
}

fn options(o: &Table) -> LuaResult<Options> {
    let host: String = o
        .get::<Option<String>>("host")?
        .ok_or_else(|| error("Argument", "ssh.connect needs host="))?;
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    Ok(Options {
        host,
        port: o.get::<Option<u16>>("port")?.unwrap_or(22),
        user: o
            .get::<Option<String>>("user")?
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "root".into()),
        key: o.get("key")?,
        agent: o.get::<Option<bool>>("agent")?.unwrap_or(false),
        password: o.get("password")?,
        known_hosts: o
            .get::<Option<String>>("known_hosts")?
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(home).join(".ssh/known_hosts")),
        accept_new: o.get::<Option<bool>>("accept_new")?.unwrap_or(false),
        timeout: o.get::<Option<f64>>("timeout")?.unwrap_or(30.0),
        keepalive: o.get::<Option<u32>>("keepalive")?.unwrap_or(30),
    })
}

/// `SHA256:base64` as `ssh-keygen -l` prints it.
fn fingerprint(key: &[u8]) -> String {
    let digest = Sha256::digest(key);
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    )
}

async fn connect(o: Table) -> LuaResult<Connection> {
    let opts = options(&o)?;
    blocking(move || connect_blocking(opts)).await
}

fn connect_blocking(o: Options) -> LuaResult<Connection> {
    let target = format!("{}@{}:{}", o.user, o.host, o.port);
    let timeout = Duration::from_secs_f64(o.timeout.max(0.1));
    let addr = (o.host.as_str(), o.port)
        .to_socket_addrs()
        .map_err(|e| ssh_err(format!("cannot resolve {}: {e}", o.host)))?
        .next()
        .ok_or_else(|| ssh_err(format!("{} has no address", o.host)))?;
    let tcp = TcpStream::connect_timeout(&addr, timeout).map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::TimedOut {
            "Timeout"
        } else {
            "Ssh"
        };
        BioxenError::new(
            kind,
            format!("cannot connect to {}:{}: {e}", o.host, o.port),
        )
        .with("stage", "connect")
        .with("host", o.host.as_str())
        .into_lua_err()
    })?;
    let _ = tcp.set_nodelay(true);
    let fd = tcp.as_raw_fd();
    openssl_cpu::probe();
    let mut sess = Session::new().map_err(|e| ssh_err(format!("libssh2: {e}")))?;
    sess.set_tcp_stream(tcp);
    sess.set_timeout((o.timeout * 1000.0) as u32);
    sess.handshake().map_err(|e| {
        ssh_err(format!(
            "SSH handshake with {}:{} failed: {e}",
            o.host, o.port
        ))
    })?;
    check_host_key(&sess, &o)?;
    authenticate(&sess, &o)?;
    sess.set_timeout(0);
    sess.set_keepalive(true, o.keepalive.max(1));
    let inner = Arc::new(Inner {
        session: Mutex::new(Some(sess)),
        fd,
        closed: AtomicBool::new(false),
        target,
    });
    start_keepalive(Arc::downgrade(&inner), o.keepalive.max(1));
    Ok(Connection { inner })
}

/// known_hosts is read, checked and appended to under one process-wide lock,
/// so parallel connections with accept_new never read a half-written file.
static KNOWN_HOSTS: Mutex<()> = Mutex::new(());

fn check_host_key(sess: &Session, o: &Options) -> LuaResult<()> {
    let _guard = KNOWN_HOSTS.lock().unwrap_or_else(|e| e.into_inner());
    let (key, key_type) = sess
        .host_key()
        .ok_or_else(|| ssh_err(format!("{} offered no host key", o.host)))?;
    let offered = fingerprint(key);
    let mut kh = sess
        .known_hosts()
        .map_err(|e| ssh_err(format!("libssh2 known hosts: {e}")))?;
    if o.known_hosts.exists() {
        kh.read_file(&o.known_hosts, KnownHostFileKind::OpenSSH)
            .map_err(|e| ssh_err(format!("cannot read {}: {e}", o.known_hosts.display())))?;
    }
    let name = if o.port == 22 {
        o.host.clone()
    } else {
        format!("[{}]:{}", o.host, o.port)
    };
    match kh.check_port(&o.host, o.port, key) {
        CheckResult::Match => Ok(()),
        CheckResult::Mismatch => {
            let known: Vec<String> = kh
                .hosts()
                .unwrap_or_default()
                .iter()
                .filter(|h| h.name() == Some(name.as_str()))
                .filter_map(|h| {
                    let b64 = h.key();
                    let b64 = b64.split_whitespace().last().unwrap_or(b64).to_string();
                    base64::engine::general_purpose::STANDARD.decode(b64).ok()
                })
                .map(|k| fingerprint(&k))
                .collect();
            let known = if known.is_empty() { "(hashed entry)".to_string() } else { known.join(", ") };
            Err(BioxenError::new(
                "Ssh",
                format!(
                    "HOST KEY MISMATCH for {name}: {} records {known} but the host offered {offered}. \
                     Refusing to connect (possible man-in-the-middle). If the host was reinstalled, \
                     remove the old entry: ssh-keygen -R '{name}' -f {}",
                    o.known_hosts.display(),
                    o.known_hosts.display()
                ),
            )
            .with("host", name.as_str())
            .with("known_fingerprint", known.as_str())
            .with("offered_fingerprint", offered.as_str())
            .into_lua_err())
        }
        CheckResult::NotFound if o.accept_new => {
            kh.add(&name, key, "added by bioxen.ssh", key_type.into())
                .map_err(|e| ssh_err(format!("cannot record the host key: {e}")))?;
            // Append the one new line (never rewrite the file: other entries,
            // comments and concurrent writers stay intact).
            let added = kh
                .hosts()
                .ok()
                .and_then(|hs| hs.into_iter().rev().find(|h| h.name() == Some(name.as_str())))
                .ok_or_else(|| ssh_err("cannot record the host key"))?;
            let line = kh
                .write_string(&added, KnownHostFileKind::OpenSSH)
                .map_err(|e| ssh_err(format!("cannot record the host key: {e}")))?;
            if let Some(dir) = o.known_hosts.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let write = || -> std::io::Result<()> {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&o.known_hosts)?;
                f.write_all(format!("{}\n", line.trim_end()).as_bytes())
            };
            write().map_err(|e| ssh_err(format!("cannot write {}: {e}", o.known_hosts.display())))?;
            tracing::info!("ssh: recorded new host key {offered} for {name} in {}", o.known_hosts.display());
            Ok(())
        }
        CheckResult::NotFound => Err(BioxenError::new(
            "Ssh",
            format!(
                "unknown host {name} (key {offered}) is not in {}; pass accept_new = true to trust and record it",
                o.known_hosts.display()
            ),
        )
        .with("host", name.as_str())
        .with("offered_fingerprint", offered.as_str())
        .into_lua_err()),
        CheckResult::Failure => Err(ssh_err(format!("host key check for {name} failed"))),
    }
}

fn authenticate(sess: &Session, o: &Options) -> LuaResult<()> {
    let target = format!("{}@{}:{}", o.user, o.host, o.port);
    let how;
    let result = if let Some(key) = &o.key {
        how = format!("key {key}");
        if !std::path::Path::new(key).exists() {
            return Err(ssh_err(format!("key file {key} does not exist")));
        }
        sess.userauth_pubkey_file(&o.user, None, std::path::Path::new(key), None)
    } else if let Some(pw) = &o.password {
        how = "password".into();
        sess.userauth_password(&o.user, pw)
    } else if o.agent {
        how = "ssh-agent".into();
        sess.userauth_agent(&o.user)
    } else {
        return Err(error(
            "Argument",
            "ssh.connect needs one of key = PATH, agent = true or password = ...",
        ));
    };
    match result {
        Ok(()) if sess.authenticated() => Ok(()),
        Ok(()) => Err(ssh_err(format!(
            "authentication failed for {target} with {how}"
        ))),
        Err(e) => Err(BioxenError::new(
            "Ssh",
            format!(
                "authentication failed for {target} with {how}: {}",
                e.message()
            ),
        )
        .with("host", o.host.as_str())
        .into_lua_err()),
    }
}

fn start_keepalive(inner: std::sync::Weak<Inner>, interval: u32) {
    let _ = std::thread::Builder::new()
        .name("ssh-keepalive".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(interval as u64));
                let Some(inner) = inner.upgrade() else { return };
                if inner.closed.load(Ordering::Relaxed) {
                    return;
                }
                if let Ok(guard) = inner.session.try_lock()
                    && let Some(sess) = guard.as_ref()
                {
                    let _ = sess.keepalive_send();
                }
            }
        });
}

struct ExecOpts {
    stdin: Option<Vec<u8>>,
    timeout: Option<f64>,
    env: Vec<(String, String)>,
}

fn exec_opts(o: Option<Table>) -> LuaResult<ExecOpts> {
    let mut e = ExecOpts {
        stdin: None,
        timeout: None,
        env: vec![],
    };
    if let Some(o) = o {
        e.stdin = o
            .get::<Option<mlua::LuaString>>("stdin")?
            .map(|s| s.as_bytes().to_vec());
        e.timeout = o.get("timeout")?;
        if let Some(env) = o.get::<Option<Table>>("env")? {
            for pair in env.pairs::<String, String>() {
                let (k, v) = pair?;
                if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(error(
                        "Argument",
                        format!("bad environment variable name {k:?}"),
                    ));
                }
                e.env.push((k, v));
            }
            e.env.sort();
        }
    }
    Ok(e)
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

struct Outcome {
    status: i32,
    signal: Option<String>,
}

/// Runs a command, handing output chunks to `sink(1 = stdout | 2 = stderr, bytes)`.
fn run(
    inner: &Inner,
    cmd: &str,
    o: &ExecOpts,
    sink: &mut dyn FnMut(u8, &[u8]),
) -> LuaResult<Outcome> {
    let guard = inner.session.lock().unwrap();
    let sess = guard
        .as_ref()
        .ok_or_else(|| ssh_err(format!("{}: the connection is closed", inner.target)))?;
    let lost = |e: ssh2::Error| {
        ssh_err(format!(
            "connection to {} lost while running {cmd:?}: {}",
            inner.target,
            e.message()
        ))
    };
    let mut full = String::new();
    for (k, v) in &o.env {
        full.push_str(&format!("export {k}={}; ", quote(v)));
    }
    full.push_str(cmd);
    sess.set_blocking(true);
    let mut ch = sess.channel_session().map_err(lost)?;
    ch.exec(&full).map_err(lost)?;
    if let Some(input) = &o.stdin {
        ch.write_all(input)
            .map_err(|e| ssh_err(format!("{}: writing stdin: {e}", inner.target)))?;
    }
    ch.send_eof().map_err(lost)?;
    sess.set_blocking(false);
    let deadline = o
        .timeout
        .map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0)));
    let mut buf = vec![0u8; 32 * 1024];
    let result = (|| -> LuaResult<()> {
        loop {
            let mut progressed = false;
            for which in [1u8, 2u8] {
                loop {
                    let r = if which == 1 {
                        ch.read(&mut buf)
                    } else {
                        ch.stderr().read(&mut buf)
                    };
                    match r {
                        Ok(0) => break,
                        Ok(n) => {
                            sink(which, &buf[..n]);
                            progressed = true;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            return Err(ssh_err(format!(
                                "connection to {} lost while running {cmd:?}: {e}",
                                inner.target
                            )));
                        }
                    }
                }
            }
            if ch.eof() {
                return Ok(());
            }
            if let Some(d) = deadline
                && Instant::now() > d
            {
                return Err(BioxenError::new(
                    "Timeout",
                    format!(
                        "{}: {cmd:?} still running after {}s",
                        inner.target,
                        o.timeout.unwrap_or(0.0)
                    ),
                )
                .into_lua_err());
            }
            if !progressed {
                let mut pfd = libc::pollfd {
                    fd: inner.fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                unsafe { libc::poll(&mut pfd, 1, 50) };
                if pfd.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                    // drain once more, then report the loss
                    let mut probe = [0u8; 1];
                    match ch.read(&mut probe) {
                        Ok(n) if n > 0 => sink(1, &probe[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        _ if ch.eof() => return Ok(()),
                        _ => {
                            return Err(ssh_err(format!(
                                "connection to {} lost while running {cmd:?} (the host went away)",
                                inner.target
                            )));
                        }
                    }
                }
            }
        }
    })();
    sess.set_blocking(true);
    if let Err(e) = result {
        let _ = ch.close();
        return Err(e);
    }
    sess.set_timeout(10_000);
    let closed = ch.wait_close();
    sess.set_timeout(0);
    closed.map_err(lost)?;
    let signal = ch.exit_signal().ok().and_then(|s| s.exit_signal);
    let status = ch.exit_status().map_err(lost)?;
    if signal.is_none() && status == 0 && !ch.eof() {
        return Err(ssh_err(format!("connection to {} lost", inner.target)));
    }
    Ok(Outcome { status, signal })
}

fn result_table(lua: &Lua, out: Outcome, stdout: &[u8], stderr: &[u8]) -> LuaResult<Table> {
    let t = lua.create_table()?;
    t.set("ok", out.status == 0 && out.signal.is_none())?;
    t.set("status", out.status)?;
    if let Some(sig) = out.signal {
        t.set("signal", sig)?;
    }
    t.set("stdout", lua.create_string(stdout)?)?;
    t.set("stderr", lua.create_string(stderr)?)?;
    Ok(t)
}

pub struct Stream {
    rx: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<(u8, Vec<u8>)>>,
    done: tokio::sync::Mutex<Option<tokio::task::JoinHandle<LuaResult<Outcome>>>>,
}

impl UserData for Stream {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        // read() -> "stdout"|"stderr", chunk; nil at the end.
        methods.add_async_method("read", |lua, this, ()| async move {
            let next = this.rx.lock().await.recv().await;
            Ok(match next {
                Some((w, data)) => (
                    Value::String(lua.create_string(if w == 1 { "stdout" } else { "stderr" })?),
                    Value::String(lua.create_string(&data)?),
                ),
                None => (Value::Nil, Value::Nil),
            })
        });
        // wait() -> {ok, status} once the command ends (unread output is dropped).
        methods.add_async_method("wait", |lua, this, ()| async move {
            let handle = this.done.lock().await.take();
            let Some(handle) = handle else {
                return Err(error(
                    "Argument",
                    "wait() was already called on this stream",
                ));
            };
            let out = handle
                .await
                .map_err(|e| error("Runtime", e.to_string()))??;
            result_table(&lua, out, b"", b"")
        });
    }
}

impl UserData for Connection {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_async_method(
            "exec",
            |lua, this, (cmd, o): (String, Option<Table>)| async move {
                let opts = exec_opts(o)?;
                let inner = this.inner.clone();
                let (out, so, se) = tokio::task::spawn_blocking(move || {
                    let (mut so, mut se) = (Vec::new(), Vec::new());
                    let out = run(&inner, &cmd, &opts, &mut |w, d| {
                        if w == 1 {
                            so.extend_from_slice(d)
                        } else {
                            se.extend_from_slice(d)
                        }
                    })?;
                    Ok::<_, mlua::Error>((out, so, se))
                })
                .await
                .map_err(|e| error("Runtime", e.to_string()))??;
                result_table(&lua, out, &so, &se)
            },
        );
        methods.add_method("stream", |_, this, (cmd, o): (String, Option<Table>)| {
            let opts = exec_opts(o)?;
            let inner = this.inner.clone();
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let handle = tokio::task::spawn_blocking(move || {
                run(&inner, &cmd, &opts, &mut |w, d| {
                    let _ = tx.send((w, d.to_vec()));
                })
            });
            Ok(Stream {
                rx: tokio::sync::Mutex::new(rx),
                done: tokio::sync::Mutex::new(Some(handle)),
            })
        });
        methods.add_async_method(
            "open",
            |_, this, (cmd, o): (String, Option<Table>)| async move {
                let opts = exec_opts(o)?;
                let inner = this.inner.clone();
                blocking(move || open_channel(inner, &cmd, &opts)).await
            },
        );
        methods.add_async_method(
            "upload",
            |_, this, (local, remote): (String, String)| async move {
                let inner = this.inner.clone();
                blocking(move || sftp_copy(&inner, &local, &remote, true)).await
            },
        );
        methods.add_async_method(
            "download",
            |_, this, (remote, local): (String, String)| async move {
                let inner = this.inner.clone();
                blocking(move || sftp_copy(&inner, &local, &remote, false)).await
            },
        );
        methods.add_async_method("close", |_, this, ()| async move {
            let inner = this.inner.clone();
            inner.closed.store(true, Ordering::Relaxed);
            tokio::task::spawn_blocking(move || {
                if let Some(sess) = inner.session.lock().unwrap().take() {
                    let _ = sess.disconnect(None, "bye", None);
                }
            })
            .await
            .map_err(|e| error("Runtime", e.to_string()))?;
            Ok(())
        });
        methods.add_method("target", |_, this, ()| Ok(this.inner.target.clone()));
        methods.add_meta_method("__tostring", |_, this, ()| {
            Ok(format!("ssh connection {}", this.inner.target))
        });
    }
}

/// Copies with large buffers: libssh2 pipelines SFTP packets within one
/// write or read, so 8 KiB steps (std::io::copy) would cost a round trip each.
fn copy_big(src: &mut dyn Read, dst: &mut dyn Write) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 4 << 20];
    let mut total = 0u64;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match src.read(&mut buf[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        if filled == 0 {
            return Ok(total);
        }
        dst.write_all(&buf[..filled])?;
        total += filled as u64;
    }
}

/// SFTP copy; `up` = local -> remote. Keeps the file mode on upload. Returns bytes copied.
fn sftp_copy(inner: &Inner, local: &str, remote: &str, up: bool) -> LuaResult<u64> {
    let guard = inner.session.lock().unwrap();
    let sess = guard
        .as_ref()
        .ok_or_else(|| ssh_err(format!("{}: the connection is closed", inner.target)))?;
    sess.set_blocking(true);
    let sftp = sess.sftp().map_err(|e| {
        ssh_err(format!(
            "{}: cannot start SFTP: {}",
            inner.target,
            e.message()
        ))
    })?;
    let io = |what: &str, e: std::io::Error| error("Io", format!("{what}: {e}"));
    if up {
        let mut src =
            std::fs::File::open(local).map_err(|e| io(&format!("cannot open {local}"), e))?;
        let mode = src
            .metadata()
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .unwrap_or(0o644);
        let mut dst = sftp
            .open_mode(
                std::path::Path::new(remote),
                ssh2::OpenFlags::WRITE | ssh2::OpenFlags::CREATE | ssh2::OpenFlags::TRUNCATE,
                mode as i32,
                ssh2::OpenType::File,
            )
            .map_err(|e| {
                ssh_err(format!(
                    "{}: cannot create {remote}: {}",
                    inner.target,
                    e.message()
                ))
            })?;
        copy_big(&mut src, &mut dst).map_err(|e| io(&format!("uploading {local} to {remote}"), e))
    } else {
        let mut src = sftp.open(std::path::Path::new(remote)).map_err(|e| {
            ssh_err(format!(
                "{}: cannot open {remote}: {}",
                inner.target,
                e.message()
            ))
        })?;
        let mut dst =
            std::fs::File::create(local).map_err(|e| io(&format!("cannot create {local}"), e))?;
        copy_big(&mut src, &mut dst).map_err(|e| io(&format!("downloading {remote} to {local}"), e))
    }
}

// ---------------------------------------------------------------- channels

enum ChanCmd {
    Write(Vec<u8>),
    Eof,
    Close,
}

enum ChanEvent {
    Data(u8, Vec<u8>),
    Exit(i32),
    Lost(String),
}

/// A long-running remote command with both directions open (`c:open(cmd)`):
/// a thread of its own pumps it, so reads wait without blocking Lua.
pub struct Channel {
    tx: std::sync::mpsc::Sender<ChanCmd>,
    wake: i32,
    rx: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<ChanEvent>>,
    status: Mutex<Option<i32>>,
    target: String,
}

impl Drop for Channel {
    fn drop(&mut self) {
        let _ = self.tx.send(ChanCmd::Close);
        self.poke();
        unsafe { libc::close(self.wake) };
    }
}

impl Channel {
    fn poke(&self) {
        let b = [1u8];
        unsafe { libc::write(self.wake, b.as_ptr().cast(), 1) };
    }
}

fn open_channel(inner: Arc<Inner>, cmd: &str, o: &ExecOpts) -> LuaResult<Channel> {
    let mut full = String::new();
    for (k, v) in &o.env {
        full.push_str(&format!("export {k}={}; ", quote(v)));
    }
    full.push_str(cmd);
    let mut ch = {
        let guard = inner.session.lock().unwrap();
        let sess = guard
            .as_ref()
            .ok_or_else(|| ssh_err(format!("{}: the connection is closed", inner.target)))?;
        sess.set_blocking(true);
        let lost = |e: ssh2::Error| {
            ssh_err(format!(
                "{}: cannot start {cmd:?}: {}",
                inner.target,
                e.message()
            ))
        };
        let mut ch = sess.channel_session().map_err(lost)?;
        ch.exec(&full).map_err(lost)?;
        ch
    };
    let mut fds = [0i32; 2];
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(error("Io", "cannot create a pipe"));
    }
    let (wake_read, wake_write) = (fds[0], fds[1]);
    let (tx, cmd_rx) = std::sync::mpsc::channel::<ChanCmd>();
    let (ev_tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let target = inner.target.clone();
    std::thread::Builder::new()
        .name("ssh-channel".into())
        .spawn(move || {
            pump(&inner, &mut ch, cmd_rx, ev_tx, wake_read);
            unsafe { libc::close(wake_read) };
        })
        .map_err(|e| error("Runtime", e.to_string()))?;
    Ok(Channel {
        tx,
        wake: wake_write,
        rx: tokio::sync::Mutex::new(rx),
        status: Mutex::new(None),
        target,
    })
}

fn pump(
    inner: &Inner,
    ch: &mut ssh2::Channel,
    cmds: std::sync::mpsc::Receiver<ChanCmd>,
    events: tokio::sync::mpsc::UnboundedSender<ChanEvent>,
    wake: i32,
) {
    let mut pending: Vec<u8> = Vec::new();
    let (mut want_eof, mut eof_sent) = (false, false);
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        loop {
            match cmds.try_recv() {
                Ok(ChanCmd::Write(d)) => pending.extend_from_slice(&d),
                Ok(ChanCmd::Eof) => want_eof = true,
                Ok(ChanCmd::Close) | Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    if let Ok(g) = inner.session.lock()
                        && let Some(sess) = g.as_ref()
                    {
                        sess.set_blocking(true);
                        let _ = ch.close();
                    }
                    return;
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
            }
        }
        let mut progressed = false;
        {
            let guard = inner.session.lock().unwrap();
            let Some(sess) = guard.as_ref() else {
                let _ = events.send(ChanEvent::Lost("the connection was closed".into()));
                return;
            };
            sess.set_blocking(false);
            while !pending.is_empty() {
                match ch.write(&pending) {
                    Ok(n) => {
                        pending.drain(..n);
                        progressed = true;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        sess.set_blocking(true);
                        let _ = events.send(ChanEvent::Lost(format!("writing: {e}")));
                        return;
                    }
                }
            }
            if pending.is_empty() && want_eof && !eof_sent && ch.send_eof().is_ok() {
                eof_sent = true;
            }
            for which in [1u8, 2u8] {
                loop {
                    let r = if which == 1 {
                        ch.read(&mut buf)
                    } else {
                        ch.stderr().read(&mut buf)
                    };
                    match r {
                        Ok(0) => break,
                        Ok(n) => {
                            progressed = true;
                            if events
                                .send(ChanEvent::Data(which, buf[..n].to_vec()))
                                .is_err()
                            {
                                sess.set_blocking(true);
                                return;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            sess.set_blocking(true);
                            let _ = events.send(ChanEvent::Lost(format!("{e}")));
                            return;
                        }
                    }
                }
            }
            if ch.eof() {
                sess.set_blocking(true);
                sess.set_timeout(5000);
                let _ = ch.wait_close();
                sess.set_timeout(0);
                let _ = events.send(ChanEvent::Exit(ch.exit_status().unwrap_or(-1)));
                return;
            }
            sess.set_blocking(true);
        }
        if !progressed {
            let mut p = [
                libc::pollfd {
                    fd: inner.fd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: wake,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            unsafe { libc::poll(p.as_mut_ptr(), 2, 200) };
            if p[1].revents != 0 {
                let mut sink = [0u8; 64];
                while unsafe { libc::read(wake, sink.as_mut_ptr().cast(), sink.len()) } > 0 {}
            }
            if p[0].revents & (libc::POLLHUP | libc::POLLERR) != 0
                && p[0].revents & libc::POLLIN == 0
            {
                let _ = events.send(ChanEvent::Lost("the host went away".into()));
                return;
            }
        }
    }
}

impl UserData for Channel {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("write", |_, this, data: mlua::LuaString| {
            this.tx
                .send(ChanCmd::Write(data.as_bytes().to_vec()))
                .map_err(|_| ssh_err(format!("{}: the channel is closed", this.target)))?;
            this.poke();
            Ok(())
        });
        methods.add_method("close_stdin", |_, this, ()| {
            let _ = this.tx.send(ChanCmd::Eof);
            this.poke();
            Ok(())
        });
        // read() -> "stdout"|"stderr", chunk; nil, exit status at the end.
        methods.add_async_method("read", |lua, this, ()| async move {
            let next = this.rx.lock().await.recv().await;
            match next {
                Some(ChanEvent::Data(w, d)) => Ok((
                    Value::String(lua.create_string(if w == 1 { "stdout" } else { "stderr" })?),
                    Value::String(lua.create_string(&d)?),
                )),
                Some(ChanEvent::Exit(status)) => {
                    *this.status.lock().unwrap() = Some(status);
                    Ok((Value::Nil, Value::Integer(status as i64)))
                }
                Some(ChanEvent::Lost(why)) => Err(ssh_err(format!(
                    "connection to {} lost: {why}",
                    this.target
                ))),
                None => Ok((Value::Nil, Value::Nil)),
            }
        });
        methods.add_method("close", |_, this, ()| {
            let _ = this.tx.send(ChanCmd::Close);
            this.poke();
            Ok(())
        });
        methods.add_method("status", |_, this, ()| Ok(*this.status.lock().unwrap()));
    }
}
