//! The session host: a small daemon (`bioxen session host`, started on demand)
//! that keeps persistent sessions alive across scripts and terminals. It
//! listens on `sessions.sock` in the per-user runtime folder (folder 0700,
//! socket 0600, and peers must have our uid). Each connection is a thread;
//! messages are length-prefixed JSON (u32 little-endian + UTF-8 JSON), one
//! reply per request. A connection that attaches a session holds it until it
//! detaches or closes; `read` blocks that connection's thread until the input
//! sent so far was evaluated (or its timeout).
//!
//! `session-host.json` beside the socket records the host's pid and its
//! sessions, so when the host dies the next client can say which sessions
//! were lost before starting a new host.
use super::Backend;
use super::{process, thread};
use crate::library::vm::sandbox::{Level, Options};
use crate::library::vm::value::Val;
use crate::runtime::error::BioxenError;
use mlua::{Lua, LuaSerdeExt, Result as LuaResult, UserData, UserDataMethods, Value};
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub fn socket_path() -> PathBuf {
    crate::runtime::paths::runtime_dir().join("sessions.sock")
}

fn state_path() -> PathBuf {
    crate::runtime::paths::runtime_dir().join("session-host.json")
}

fn lock_path() -> PathBuf {
    crate::runtime::paths::runtime_dir().join("session-host.lock")
}

fn log_path() -> PathBuf {
    crate::runtime::paths::runtime_dir().join("session-host.log")
}

/// Creates the runtime folder owner-only and checks that we own it.
fn ensure_dir() -> Result<PathBuf, String> {
    let dir = crate::runtime::paths::runtime_dir();
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot create the runtime folder {}: {e}", dir.display()))?;
    let meta = std::fs::metadata(&dir).map_err(|e| e.to_string())?;
    use std::os::unix::fs::MetadataExt;
    if meta.uid() != unsafe { libc::getuid() } {
        return Err(format!(
            "the runtime folder {} belongs to another user; refusing to use it",
            dir.display()
        ));
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot make {} owner-only: {e}", dir.display()))?;
    Ok(dir)
}

pub fn write_msg(w: &mut impl Write, msg: &Json) -> std::io::Result<()> {
    let body = serde_json::to_vec(msg)?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);
    w.write_all(&frame)
}

pub fn read_msg(r: &mut impl Read) -> std::io::Result<Json> {
    let mut head = [0u8; 4];
    r.read_exact(&mut head)?;
    let n = u32::from_le_bytes(head) as usize;
    if n > 1 << 30 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "message too large",
        ));
    }
    let mut body = vec![0u8; n];
    r.read_exact(&mut body)?;
    serde_json::from_slice(&body)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Whether `pid` runs (a zombie, dead but not yet reaped, does not).
fn alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.trim_start().chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
        Err(_) => false,
    }
}

fn lost_path() -> PathBuf {
    crate::runtime::paths::runtime_dir().join("lost-sessions.json")
}

/// Sessions lost with a dead host, remembered so that later commands naming
/// one can say what happened to it: name -> message.
fn lost_sessions() -> serde_json::Map<String, Json> {
    std::fs::read_to_string(lost_path())
        .ok()
        .and_then(|t| serde_json::from_str::<Json>(&t).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

fn record_lost(l: &Lost) {
    let mut all = lost_sessions();
    for name in &l.sessions {
        all.insert(
            name.clone(),
            json!(format!(
                "it was lost when the session host (pid {}) died",
                l.pid
            )),
        );
    }
    let _ = std::fs::write(lost_path(), Json::Object(all).to_string());
}

fn forget_lost(name: &str) {
    let mut all = lost_sessions();
    if all.remove(name).is_some() {
        let _ = std::fs::write(lost_path(), Json::Object(all).to_string());
    }
}

// ---------------------------------------------------------------- the daemon

struct Sess {
    engine: Arc<dyn Backend>,
    backend: &'static str,
    created: f64,
    last_used: f64,
    sandbox: String,
    /// (connection id, description, process id) of the attached client.
    holder: Option<(u64, String, i32)>,
}

struct Host {
    sessions: Mutex<BTreeMap<String, Sess>>,
}

impl Host {
    fn save(&self, sessions: &BTreeMap<String, Sess>) {
        let names: Vec<&String> = sessions.keys().collect();
        let state = json!({ "pid": std::process::id(), "sessions": names });
        let tmp = state_path().with_extension("json.tmp");
        if std::fs::write(&tmp, state.to_string()).is_ok() {
            let _ = std::fs::rename(&tmp, state_path());
        }
    }
}

fn fail(kind: &str, message: impl Into<String>) -> Json {
    json!({ "ok": false, "kind": kind, "message": message.into() })
}

/// `bioxen session host`: binds the socket (or finds a live host), says
/// "ready" on stdout, then serves until killed or told to stop.
pub fn serve() -> Result<(), String> {
    ensure_dir()?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path())
        .map_err(|e| e.to_string())?;
    use std::os::fd::AsRawFd;
    unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    let sock = socket_path();
    if UnixStream::connect(&sock).is_ok() {
        println!("ready");
        return Ok(());
    }
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock)
        .map_err(|e| format!("cannot listen on {}: {e}", sock.display()))?;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    let host = Arc::new(Host {
        sessions: Mutex::new(BTreeMap::new()),
    });
    host.save(&host.sessions.lock().unwrap());
    drop(lock);
    println!("ready {}", std::process::id());
    let _ = std::io::stdout().flush();
    // The client that started us stops reading; nothing more goes to stdout.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        libc::dup2(null, 1);
        libc::close(null);
    }
    tracing::info!(
        "session host {} listening on {}",
        std::process::id(),
        sock.display()
    );
    static CONN: AtomicU64 = AtomicU64::new(1);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let Some(cred) = peer(&stream) else { continue };
        if cred.uid != unsafe { libc::getuid() } {
            continue;
        }
        let host = host.clone();
        let id = CONN.fetch_add(1, Ordering::Relaxed);
        let _ = std::thread::Builder::new()
            .name(format!("bioxen-session-conn-{id}"))
            .spawn(move || connection(host, stream, id, cred.pid));
    }
    Ok(())
}

fn peer(s: &UnixStream) -> Option<libc::ucred> {
    use std::os::fd::AsRawFd;
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(cred)
}

fn connection(host: Arc<Host>, stream: UnixStream, conn: u64, peer_pid: i32) {
    let mut r = std::io::BufReader::new(stream.try_clone().expect("clone socket"));
    let mut w = stream;
    while let Ok(req) = read_msg(&mut r) {
        let reply = handle(&host, &req, conn, peer_pid);
        if write_msg(&mut w, &reply).is_err() {
            break;
        }
        if req["op"] == "stop" {
            std::process::exit(0);
        }
    }
    // Closing the connection detaches whatever it held.
    for s in host.sessions.lock().unwrap().values_mut() {
        if s.holder.as_ref().is_some_and(|(c, _, _)| *c == conn) {
            s.holder = None;
        }
    }
}

fn options(name: &str, req: &Json) -> Result<Options, String> {
    let s = req["sandbox"].as_str().unwrap_or("strict");
    let sandbox = Level::parse(s).ok_or_else(|| {
        format!("unknown sandbox \"{s}\"; use \"strict\", \"standard\" or \"trusted\"")
    })?;
    let size = |k: &str, d: usize| req[k].as_f64().map_or(d, |v| v.max(0.0) as usize);
    let path = req["package_path"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(PathBuf::from))
                .collect()
        })
        .unwrap_or_default();
    Ok(Options {
        id: name.to_string(),
        sandbox,
        memory_limit: size("memory_limit", crate::library::vm::DEFAULT_MEMORY_LIMIT),
        timeout: req["timeout"].as_f64().unwrap_or(0.0),
        output_limit: size("output_limit", crate::library::vm::DEFAULT_OUTPUT_LIMIT),
        result_limit: crate::library::vm::DEFAULT_RESULT_LIMIT,
        package_path: path,
        globals: Val::Nil,
        lua_executable: None,
    })
}

fn handle(host: &Host, req: &Json, conn: u64, peer_pid: i32) -> Json {
    let op = req["op"].as_str().unwrap_or("");
    let name = req["name"].as_str().unwrap_or("").to_string();
    match op {
        "hello" => return json!({ "ok": true, "pid": std::process::id() }),
        "stop" => {
            for s in host.sessions.lock().unwrap().values() {
                s.engine.close();
            }
            let _ = std::fs::remove_file(state_path());
            let _ = std::fs::remove_file(socket_path());
            return json!({ "ok": true });
        }
        "list" => {
            let sessions = host.sessions.lock().unwrap();
            let list: Vec<Json> = sessions
                .iter()
                .map(|(n, s)| {
                    json!({
                        "name": n, "created": s.created, "last_used": s.last_used,
                        "attached": s.holder.as_ref().is_some_and(|h| alive(h.2)),
                        "holder": s.holder.as_ref().filter(|h| alive(h.2)).map(|h| h.1.clone()),
                        "status": s.engine.status(), "sandbox": s.sandbox,
                        "backend": s.backend,
                        "pid": s.engine.pid().unwrap_or(std::process::id() as i32),
                    })
                })
                .collect();
            return json!({ "ok": true, "sessions": list, "pid": std::process::id() });
        }
        "new" => {
            let mut sessions = host.sessions.lock().unwrap();
            if sessions.contains_key(&name) {
                return fail(
                    "SessionAlreadyExists",
                    format!(
                        "a persistent session named '{name}' already exists; attach to it or kill it first"
                    ),
                );
            }
            if name.is_empty() || name.len() > 100 || name.contains(char::is_whitespace) {
                return fail(
                    "Argument",
                    "a session name must be 1 to 100 characters without spaces",
                );
            }
            let opts = match options(&name, req) {
                Ok(o) => o,
                Err(e) => return fail("Argument", e),
            };
            let sandbox = opts.sandbox.name().to_string();
            let (backend, created): (&'static str, Result<Arc<dyn Backend>, String>) =
                match req["backend"].as_str().unwrap_or("thread") {
                    "thread" => (
                        "thread",
                        thread::create(opts)
                            .map(|e| Arc::new(e) as Arc<dyn Backend>)
                            .map_err(|e| e.to_string()),
                    ),
                    "process" => (
                        "process",
                        process::create(opts).map(|e| Arc::new(e) as Arc<dyn Backend>),
                    ),
                    other => {
                        return fail(
                            "Argument",
                            format!(
                                "persistent sessions run on the \"thread\" or \"process\" backend, not \"{other}\""
                            ),
                        );
                    }
                };
            let engine = match created {
                Ok(e) => e,
                Err(e) => return fail("VMManager", format!("cannot create session '{name}': {e}")),
            };
            let t = now();
            sessions.insert(
                name.clone(),
                Sess {
                    engine,
                    backend,
                    created: t,
                    last_used: t,
                    sandbox,
                    holder: None,
                },
            );
            host.save(&sessions);
            forget_lost(&name);
            return json!({ "ok": true, "pid": std::process::id() });
        }
        _ => {}
    }
    // Everything else names an existing session.
    let mut sessions = host.sessions.lock().unwrap();
    let Some(s) = sessions.get_mut(&name) else {
        if let Some(why) = lost_sessions().get(&name).and_then(|w| w.as_str()) {
            let mut e = fail(
                "SessionNotFound",
                format!("persistent session '{name}' no longer exists: {why}"),
            );
            e["lost"] = json!(true);
            return e;
        }
        return fail(
            "SessionNotFound",
            format!("no persistent session named '{name}' (bioxen session list shows them)"),
        );
    };
    s.last_used = now();
    // A request that waited in a dead client's connection (its process was
    // killed) must not take output that is now someone else's.
    if op == "read" && !alive(peer_pid) {
        return fail("Detach", "the client that asked is gone");
    }
    // A holder whose process died mid-read (its connection thread is still
    // waiting for the evaluation) holds nothing.
    if s.holder.as_ref().is_some_and(|(_, _, pid)| !alive(*pid)) {
        s.holder = None;
        s.engine.front().new_holder();
    }
    let mine = s.holder.as_ref().is_some_and(|(c, _, _)| *c == conn);
    let force = req["force"].as_bool().unwrap_or(false);
    let held_by_other = |s: &Sess| -> Option<Json> {
        let (_, who, _) = s.holder.as_ref()?;
        let mut e = fail(
            "Attach",
            format!(
                "session '{name}' is attached by {who}; detach it there, or force (bioxen session attach --force {name}, m:attach(id, {{force = true}}))"
            ),
        );
        e["holder"] = json!(who);
        Some(e)
    };
    match op {
        "attach" => {
            if !mine
                && !force
                && let Some(e) = held_by_other(s)
            {
                return e;
            }
            let who = req["holder"]
                .as_str()
                .unwrap_or("another client")
                .to_string();
            if !mine && s.holder.is_some() {
                // Forced: the previous holder's waiting read gives up.
                s.engine.front().new_holder();
            }
            s.holder = Some((conn, who, peer_pid));
            json!({
                "ok": true, "pid": std::process::id(), "backend": s.backend,
                "session_pid": s.engine.pid(), "created": s.created, "sandbox": s.sandbox,
            })
        }
        "detach" => {
            if !mine {
                return fail(
                    "Detach",
                    format!(
                        "session '{name}' is not attached by this client, so it cannot be detached here"
                    ),
                );
            }
            s.holder = None;
            json!({ "ok": true })
        }
        "kill" => {
            let s = sessions.remove(&name).unwrap();
            s.engine.close();
            host.save(&sessions);
            json!({ "ok": true })
        }
        "interrupt" => {
            s.engine.interrupt();
            json!({ "ok": true })
        }
        "status" => json!({ "ok": true, "status": s.engine.status() }),
        _ => {
            if !mine
                && !force
                && s.holder.is_some()
                && let Some(e) = held_by_other(s)
            {
                return e;
            }
            let engine = s.engine.clone();
            // Taken under the sessions lock, so a takeover after this point
            // ends the read below without giving it the new holder's output.
            let epoch = engine.front().epoch();
            drop(sessions);
            session_op(engine.as_ref(), op, &name, req, epoch)
        }
    }
}

fn session_op(engine: &dyn Backend, op: &str, name: &str, req: &Json, epoch: u64) -> Json {
    match op {
        "send" => match engine.send(req["text"].as_str().unwrap_or("").to_string()) {
            Ok(()) => json!({ "ok": true }),
            Err(why) => fail("InteractiveSession", why),
        },
        "read" => {
            let timeout = req["timeout"]
                .as_f64()
                .filter(|t| t.is_finite() && *t >= 0.0)
                .map(std::time::Duration::from_secs_f64);
            let r = engine.front().read_blocking(timeout, epoch);
            json!({
                "ok": true,
                "text": String::from_utf8_lossy(&r.text),
                "busy": r.busy,
                "incomplete": r.incomplete,
            })
        }
        "reset" => {
            engine.reset();
            json!({ "ok": true })
        }
        "exec" => {
            let code = req["code"].as_str().unwrap_or("").as_bytes().to_vec();
            let job = engine.exec(code);
            let r = match tokio::runtime::Builder::new_current_thread().build() {
                Ok(rt) => rt.block_on(job.wait()),
                Err(e) => return fail("SessionHost", format!("cannot wait for the exec: {e}")),
            };
            let mut bytes = Vec::new();
            r.encode(&mut bytes);
            json!({ "ok": true, "result": hex(&bytes) })
        }
        "complete" => {
            json!({ "ok": true, "words": engine.complete(req["prefix"].as_str().unwrap_or("")) })
        }
        "set_path" => {
            let paths = req["path"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.as_str().map(PathBuf::from))
                        .collect()
                })
                .unwrap_or_default();
            engine.set_paths(paths);
            json!({ "ok": true })
        }
        other => fail(
            "Argument",
            format!("unknown session host request '{other}' for session '{name}'"),
        ),
    }
}

// ---------------------------------------------------------------- the client

/// What the client found when the host was not running.
#[derive(Default, Clone, serde::Serialize)]
pub struct Lost {
    pub pid: i32,
    pub sessions: Vec<String>,
}

pub struct Conn {
    r: std::io::BufReader<UnixStream>,
    w: UnixStream,
    pub host_pid: i32,
}

#[derive(Debug)]
pub enum ClientError {
    /// The host answered with an error.
    Reply(Json),
    /// The connection broke: the host died.
    Gone(String),
}

impl Conn {
    pub fn request(&mut self, req: &Json) -> Result<Json, ClientError> {
        let gone = |e: std::io::Error| {
            ClientError::Gone(format!(
                "the session host (pid {}) is gone ({e}); its sessions are lost; the next command starts a new host",
                self.host_pid
            ))
        };
        write_msg(&mut self.w, req).map_err(gone)?;
        let reply = read_msg(&mut self.r).map_err(gone)?;
        if reply["ok"].as_bool() == Some(true) {
            Ok(reply)
        } else {
            Err(ClientError::Reply(reply))
        }
    }

    /// Writes a request without waiting (see `recv`).
    pub fn send_only(&mut self, req: &Json) -> std::io::Result<()> {
        write_msg(&mut self.w, req)
    }

    /// Reads the reply to a request sent with `send_only`.
    pub fn recv(&mut self) -> Result<Json, ClientError> {
        let reply = read_msg(&mut self.r).map_err(|e| {
            ClientError::Gone(format!(
                "the session host (pid {}) is gone ({e}); its sessions are lost",
                self.host_pid
            ))
        })?;
        if reply["ok"].as_bool() == Some(true) {
            Ok(reply)
        } else {
            Err(ClientError::Reply(reply))
        }
    }

    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.w.as_raw_fd()
    }

    fn open(sock: &PathBuf) -> std::io::Result<Conn> {
        let s = UnixStream::connect(sock)?;
        let mut c = Conn {
            r: std::io::BufReader::new(s.try_clone()?),
            w: s,
            host_pid: 0,
        };
        if let Ok(hello) = c.request(&json!({ "op": "hello" })) {
            c.host_pid = hello["pid"].as_i64().unwrap_or(0) as i32;
        }
        Ok(c)
    }
}

/// The state file, if a host wrote one: (pid, session names).
fn read_state() -> Option<(i32, Vec<String>)> {
    let text = std::fs::read_to_string(state_path()).ok()?;
    let v: Json = serde_json::from_str(&text).ok()?;
    let pid = v["pid"].as_i64()? as i32;
    let names = v["sessions"]
        .as_array()?
        .iter()
        .filter_map(|n| n.as_str().map(String::from))
        .collect();
    Some((pid, names))
}

/// What to tell the user when a host had died.
pub fn lost_message(l: &Lost) -> String {
    format!(
        "bioxen: the session host (pid {}) had died; sessions lost: {}; a new session host was started",
        l.pid,
        if l.sessions.is_empty() {
            "none".to_string()
        } else {
            l.sessions.join(", ")
        }
    )
}

/// Whether a host runs, and its pid and sessions as last recorded.
pub fn status() -> Json {
    let state = read_state();
    let running = UnixStream::connect(socket_path()).is_ok();
    json!({
        "running": running,
        "pid": state.as_ref().map(|s| s.0),
        "sessions": state.map(|s| s.1),
        "socket": socket_path().to_string_lossy(),
    })
}

/// Connects to the host, starting one when none runs (if `start`). When a
/// host had died, the sessions it held are returned as lost.
pub fn connect(start: bool) -> Result<(Conn, Option<Lost>), String> {
    ensure_dir()?;
    let sock = socket_path();
    if let Ok(c) = Conn::open(&sock) {
        return Ok((c, None));
    }
    let mut lost = None;
    if let Some((pid, sessions)) = read_state()
        && !alive(pid)
    {
        let _ = std::fs::remove_file(state_path());
        let l = Lost { pid, sessions };
        record_lost(&l);
        lost = Some(l);
    }
    if !start {
        return Err(match &lost {
            Some(l) => format!(
                "the session host (pid {}) died; sessions lost: {}",
                l.pid,
                if l.sessions.is_empty() {
                    "none".into()
                } else {
                    l.sessions.join(", ")
                }
            ),
            None => "no session host is running".into(),
        });
    }
    start_host()?;
    let c = Conn::open(&sock).map_err(|e| {
        format!(
            "the session host started but cannot be reached at {}: {e}",
            sock.display()
        )
    })?;
    Ok((c, lost))
}

/// Starts `bioxen session host` in its own session, and waits (reading its
/// stdout, no polling) until it says it is ready.
fn start_host() -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path())
        .map_err(|e| format!("cannot open {}: {e}", log_path().display()))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["session", "host"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(log);
    unsafe {
        cmd.pre_exec(|| {
            // Its own session (no terminal signals), and none of our
            // descriptors beyond 0, 1 and 2 (a caller's pipes must not stay open).
            libc::setsid();
            const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the session host: {e}"))?;
    let out = child.stdout.take().unwrap();
    let mut line = String::new();
    let _ = std::io::BufReader::new(out).read_line(&mut line);
    if !line.starts_with("ready") {
        let _ = child.try_wait();
        return Err(format!(
            "the session host did not start; see {}",
            log_path().display()
        ));
    }
    // Reap it in the background if it exits while we live; otherwise init does.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}

// ---------------------------------------------------------------- Lua side

/// A connection to the session host for the Lua half (`bioxen.session`).
pub struct HostConn {
    conn: Arc<Mutex<Option<Conn>>>,
    pid: i32,
}

fn client_error(e: ClientError) -> mlua::Error {
    match e {
        ClientError::Reply(r) => {
            let kind = r["kind"].as_str().unwrap_or("SessionHost").to_string();
            let message = r["message"].as_str().unwrap_or("").to_string();
            let mut err = BioxenError::new(kind, message);
            if let Some(h) = r["holder"].as_str() {
                err = err.with("holder", h);
            }
            if r["lost"].as_bool() == Some(true) {
                err = err.with("lost", true);
            }
            err.into_lua_err()
        }
        ClientError::Gone(why) => BioxenError::new("InteractiveSession", why)
            .with("host_died", true)
            .into_lua_err(),
    }
}

pub async fn lua_connect(lua: &Lua, start: bool) -> LuaResult<(HostConn, Value)> {
    let (conn, lost) = tokio::task::spawn_blocking(move || connect(start))
        .await
        .map_err(|e| crate::runtime::error::error("SessionHost", e.to_string()))?
        .map_err(|e| crate::runtime::error::error("SessionHost", e))?;
    let lost = match lost {
        Some(l) => lua.to_value_with(&l, nil_for_null())?,
        None => Value::Nil,
    };
    let pid = conn.host_pid;
    Ok((
        HostConn {
            conn: Arc::new(Mutex::new(Some(conn))),
            pid,
        },
        lost,
    ))
}

impl UserData for HostConn {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_async_method("request", |lua, this, req: Value| async move {
            let req: Json = lua.from_value(req)?;
            let conn = this.conn.clone();
            let r = tokio::task::spawn_blocking(move || {
                let mut g = conn.lock().unwrap();
                match g.as_mut() {
                    Some(c) => c.request(&req),
                    None => Err(ClientError::Gone("the connection is closed".into())),
                }
            })
            .await
            .map_err(|e| crate::runtime::error::error("SessionHost", e.to_string()))?
            .map_err(client_error)?;
            lua.to_value_with(&r, nil_for_null())
        });
        methods.add_method("pid", |_, this, ()| Ok(this.pid));
        methods.add_method("close", |_, this, ()| {
            this.conn.lock().unwrap().take();
            Ok(())
        });
    }
}

fn nil_for_null() -> mlua::serde::SerializeOptions {
    mlua::serde::SerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false)
}

/// Exec results cross the socket in their exact binary form, as hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}
