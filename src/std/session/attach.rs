//! `bioxen session attach NAME`: the REPL front end (src/repl/frontend.rs:
//! history, completion, multi-line input, dot commands) bound to a persistent
//! session through an [`Evaluator`] that talks to the session host. Ctrl-D or
//! `.exit`/`.detach` detaches; Ctrl-C while input runs interrupts it in the
//! session (through a second connection, so the waiting read is untouched).
use super::host::{self, ClientError, Conn};
use crate::repl::{Evaluator, Reply, frontend};
use crate::runtime::error::{BioxenError, error};
use mlua::{Lua, Result as LuaResult};
use serde_json::json;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

/// Who holds an attachment, as other clients are told.
pub fn holder(what: &str) -> String {
    let tty = unsafe {
        let p = libc::ttyname(0);
        if p.is_null() {
            "no terminal".to_string()
        } else {
            std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    };
    format!("pid {} on {tty} ({what})", std::process::id())
}

static SIGNAL_FD: AtomicI32 = AtomicI32::new(-1);

struct Remote {
    conn: Conn,
    name: String,
    /// The part of the current chunk already sent (the front end resends the
    /// whole buffer; the session accumulates lines itself).
    sent: String,
    wake: RawFd,
}

fn reply_error(e: ClientError) -> String {
    match e {
        ClientError::Reply(r) => format!(
            "{}: {}",
            r["kind"].as_str().unwrap_or("SessionHost"),
            r["message"].as_str().unwrap_or("")
        ),
        ClientError::Gone(why) => format!("InteractiveSession: {why}"),
    }
}

impl Remote {
    fn request(&mut self, req: serde_json::Value) -> Result<serde_json::Value, String> {
        self.conn.request(&req).map_err(reply_error)
    }

    /// Reads until the input sent so far is evaluated; Ctrl-C interrupts it.
    fn wait_output(&mut self) -> Result<(String, bool), String> {
        self.conn
            .send_only(&json!({ "op": "read", "name": self.name }))
            .map_err(|e| format!("InteractiveSession: the session host is gone ({e})"))?;
        loop {
            let mut fds = [
                libc::pollfd {
                    fd: self.conn.raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.wake,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if n < 0 {
                continue;
            }
            if fds[1].revents != 0 {
                let mut buf = [0u8; 64];
                unsafe { libc::read(self.wake, buf.as_mut_ptr().cast(), buf.len()) };
                if let Ok((mut c, _)) = host::connect(false) {
                    let _ = c.request(&json!({ "op": "interrupt", "name": self.name }));
                }
            }
            if fds[0].revents != 0 {
                let r = self.conn.recv().map_err(reply_error)?;
                let text = r["text"].as_str().unwrap_or("").to_string();
                return Ok((text, r["incomplete"].as_bool().unwrap_or(false)));
            }
        }
    }
}

impl Evaluator for Remote {
    fn eval(&mut self, source: &str) -> Reply {
        let new = match source.strip_prefix(self.sent.as_str()) {
            Some(rest) if !self.sent.is_empty() => rest.strip_prefix('\n').unwrap_or(rest),
            _ => {
                // A new chunk while the session still holds an unfinished one
                // (Ctrl-C at the `>>` prompt): drop that one first.
                if !self.sent.is_empty() {
                    self.sent.clear();
                    let _ = self.request(json!({ "op": "reset", "name": self.name }));
                }
                source
            }
        }
        .to_string();
        if let Err(e) = self.request(json!({ "op": "send", "name": self.name, "text": new + "\n" }))
        {
            self.sent.clear();
            return Reply::Error(e);
        }
        match self.wait_output() {
            Ok((_, true)) => {
                self.sent = source.to_string();
                Reply::Incomplete
            }
            Ok((text, false)) => {
                self.sent.clear();
                Reply::Output(text.strip_suffix('\n').unwrap_or(&text).to_string())
            }
            Err(e) => {
                self.sent.clear();
                Reply::Error(e)
            }
        }
    }

    fn load_file(&mut self, path: &str) -> Reply {
        match std::fs::read_to_string(path) {
            Ok(code) => {
                let r = self.request(json!({ "op": "send", "name": self.name, "text": code }));
                if let Err(e) = r {
                    return Reply::Error(e);
                }
                match self.wait_output() {
                    Ok((text, _)) => Reply::Output(text.trim_end_matches('\n').to_string()),
                    Err(e) => Reply::Error(e),
                }
            }
            Err(e) => Reply::Error(format!("cannot read {path}: {e}")),
        }
    }

    fn reload(&mut self, _module: &str) -> Reply {
        Reply::Error("`.reload` is not available in an attached session".into())
    }

    fn reset(&mut self) -> Reply {
        self.sent.clear();
        match self.request(json!({ "op": "reset", "name": self.name })) {
            Ok(_) => Reply::Output("unfinished input cleared".into()),
            Err(e) => Reply::Error(e),
        }
    }

    fn complete(&mut self, line: &str) -> (usize, Vec<String>) {
        let start = line
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let words = self
            .request(json!({ "op": "complete", "name": self.name, "prefix": &line[start..] }))
            .ok()
            .and_then(|r| {
                r["words"].as_array().map(|a| {
                    a.iter()
                        .filter_map(|w| w.as_str().map(String::from))
                        .collect()
                })
            })
            .unwrap_or_default();
        (start, words)
    }
}

pub fn run(lua: &Lua, name: &str, force: bool) -> LuaResult<()> {
    let (mut conn, lost) = host::connect(true).map_err(|e| error("SessionHost", e))?;
    if let Some(l) = lost {
        eprintln!("{}", host::lost_message(&l));
    }
    let who = holder("bioxen session attach");
    conn.request(&json!({ "op": "attach", "name": name, "force": force, "holder": who }))
        .map_err(|e| match e {
            ClientError::Reply(r) => {
                let mut err = BioxenError::new(
                    r["kind"].as_str().unwrap_or("Attach"),
                    r["message"].as_str().unwrap_or(""),
                );
                if let Some(h) = r["holder"].as_str() {
                    err = err.with("holder", h);
                }
                err.into_lua_err()
            }
            ClientError::Gone(why) => error("InteractiveSession", why),
        })?;
    let mut fds = [0 as RawFd; 2];
    unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
    SIGNAL_FD.store(fds[1], Ordering::SeqCst);
    let sig = unsafe {
        signal_hook_registry::register(libc::SIGINT, || {
            let fd = SIGNAL_FD.load(Ordering::SeqCst);
            if fd >= 0 {
                libc::write(fd, b"i".as_ptr().cast(), 1);
            }
        })
    }
    .ok();
    crate::runtime::interrupt::set_repeat_exit_grace(std::time::Duration::from_secs(86400));
    let remote = Remote {
        conn,
        name: name.to_string(),
        sent: String::new(),
        wake: fds[0],
    };
    let banner = format!(
        "attached to session '{name}' (session host pid {}): Ctrl-D or .detach detaches (the session keeps running), Ctrl-C stops running input, .clear drops unfinished input",
        remote.conn.host_pid
    );
    let result = frontend::run(remote, &banner);
    if let Some(id) = sig {
        signal_hook_registry::unregister(id);
    }
    SIGNAL_FD.store(-1, Ordering::SeqCst);
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    // Our own SIGINT handler ran beside the host's: forget its interrupt.
    if let Some(i) = lua.app_data_ref::<std::sync::Arc<crate::runtime::interrupt::Interrupter>>() {
        i.clear();
    }
    println!("detached from session '{name}'; it keeps running");
    result.map_err(|e| error("Io", format!("the line editor failed: {e}")))
}
