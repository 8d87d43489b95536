//! `bioxen.session`: the native half of interactive sessions. A session is a
//! child VM fed like a REPL (`repl.rs`), with its unread output and progress
//! kept host-side (`front.rs`), on the thread backend (`thread.rs`), the
//! process backend (`process.rs`) or in the session host daemon (`host.rs`,
//! persistent sessions reached over a Unix socket). The manager, the session
//! objects and the `bioxen session` verbs are Lua: stdlib/bioxen/session.lua
//! and stdlib/bioxen/cli/session.lua.
pub mod attach;
pub mod front;
pub mod host;
pub mod process;
pub mod repl;
pub mod thread;

use crate::library::vm::job::{Job, JobShared};
use crate::runtime::{builder::LibraryBuilder, error::BioxenError};
use front::Front;
use mlua::{Lua, LuaSerdeExt, Result as LuaResult, Table, UserData, UserDataMethods};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use repl::feed;

/// What every session backend offers the Lua handle and the session host.
pub trait Backend: Send + Sync {
    fn front(&self) -> &Arc<Front>;
    /// Queues input; Err(why) when the session is closed or dead.
    fn send(&self, text: String) -> Result<(), String>;
    /// Runs code as `vm:exec` would (result table), in order with the input.
    fn exec(&self, code: Vec<u8>) -> Arc<JobShared>;
    fn interrupt(&self);
    /// Forgets an unfinished chunk.
    fn reset(&self);
    fn set_paths(&self, paths: Vec<PathBuf>);
    fn complete(&self, prefix: &str) -> Vec<String>;
    fn status(&self) -> &'static str;
    fn pid(&self) -> Option<i32>;
    fn close(&self);
    /// Whether input is evaluated on this process's worker threads, so an
    /// answer comes within microseconds and `read` should first wait awake
    /// (runtime::spin). Not for process sessions: their reader thread needs
    /// the CPU the spinning would take.
    fn evaluates_in_process(&self) -> bool {
        false
    }
}

pub fn module(lua: &Lua) -> LuaResult<Table> {
    LibraryBuilder::new(lua)
        .function("create", create)
        .async_function("host_connect", |lua, start: Option<bool>| async move {
            host::lua_connect(&lua, start.unwrap_or(true)).await
        })
        .function(
            "attach_repl",
            |lua, (name, force): (String, Option<bool>)| {
                attach::run(lua, &name, force.unwrap_or(false))
            },
        )
        .function("serve_host", |_, ()| {
            host::serve().map_err(|e| crate::runtime::error::error("SessionHost", e))
        })
        .function("host_status", |lua, ()| lua.to_value(&host::status()))
        .function("holder", |_, what: String| Ok(attach::holder(&what)))
        .function("decode_result", |lua, text: String| {
            let bytes = host::unhex(&text).ok_or_else(|| {
                crate::runtime::error::error("SessionHost", "a malformed exec result came back")
            })?;
            let r = crate::library::vm::sandbox::ExecResult::decode(
                &mut crate::library::vm::value::Reader::new(&bytes),
            )
            .map_err(|e| crate::runtime::error::error("SessionHost", e))?;
            r.to_lua(lua)
        })
        .function("runtime_dir", |_, ()| {
            Ok(crate::runtime::paths::runtime_dir()
                .to_string_lossy()
                .into_owned())
        })
        .build()
}

/// `create(opts)`: a thread or process session; opts as `vm.create`'s.
fn create(_: &Lua, opts: Table) -> LuaResult<Handle> {
    let backend: Option<String> = opts.raw_get("backend")?;
    // networked/grants/channels, as for VMs (bioxen.net, bioxen.channel)
    let extras = crate::library::net::child::Extras::parse(&opts)?;
    let parsed = crate::library::vm::parse_options(&opts)?;
    let id = parsed.id.clone();
    let b: Arc<dyn Backend> = match backend.as_deref().unwrap_or("thread") {
        "thread" => {
            let s = thread::create(parsed)?;
            if !extras.is_empty() {
                s.with_lua(|lua| extras.install(lua)).transpose()?;
            }
            Arc::new(s)
        }
        "process" => {
            let key = process::extras_key(&id);
            crate::library::net::child::register(&key, extras);
            Arc::new(process::create(parsed).map_err(|e| {
                crate::library::net::child::register(&key, Default::default());
                BioxenError::new(
                    "ProcessRegistry",
                    format!("cannot start the process of session {id}: {e}"),
                )
                .with("id", id.clone())
                .into_lua_err()
            })?)
        }
        other => {
            return Err(crate::runtime::error::error(
                "Argument",
                format!("sessions run on the \"thread\" or \"process\" backend, not \"{other}\""),
            ));
        }
    };
    Ok(Handle { b, id })
}

fn interactive_error(id: &str, why: String) -> mlua::Error {
    BioxenError::new("InteractiveSession", why)
        .with("id", id)
        .into_lua_err()
}

pub fn secs(t: Option<f64>) -> LuaResult<Option<Duration>> {
    match t {
        None => Ok(None),
        Some(t) if t.is_finite() && t >= 0.0 => Ok(Some(Duration::from_secs_f64(t))),
        Some(t) => Err(crate::runtime::error::error(
            "Argument",
            format!("read needs a timeout in seconds >= 0, got {t}"),
        )),
    }
}

/// A local session's handle; closes the session when collected.
pub struct Handle {
    b: Arc<dyn Backend>,
    id: String,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.b.close();
    }
}

impl UserData for Handle {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("send", |_, this, text: mlua::LuaString| {
            let text = String::from_utf8_lossy(&text.as_bytes()).into_owned();
            this.b
                .send(text)
                .map_err(|why| interactive_error(&this.id, why))
        });
        // read(timeout) -> text, busy, incomplete
        methods.add_async_method("read", |lua, this, timeout: Option<f64>| async move {
            let front = this.b.front().clone();
            if this.b.evaluates_in_process() {
                front.spin_until_evaluated();
            }
            let r = front.read(secs(timeout)?).await;
            Ok((lua.create_string(&r.text)?, r.busy, r.incomplete))
        });
        methods.add_method("exec_async", |_, this, code: mlua::LuaString| {
            Ok(Job(this.b.exec(code.as_bytes().to_vec())))
        });
        methods.add_method("interrupt", |_, this, ()| {
            this.b.interrupt();
            Ok(())
        });
        methods.add_method("reset", |_, this, ()| {
            this.b.reset();
            Ok(())
        });
        methods.add_method("set_path", |_, this, paths: Vec<String>| {
            this.b
                .set_paths(paths.into_iter().map(PathBuf::from).collect());
            Ok(())
        });
        methods.add_method("complete", |_, this, prefix: String| {
            Ok(this.b.complete(&prefix))
        });
        methods.add_method("status", |_, this, ()| Ok(this.b.status()));
        methods.add_method("pid", |_, this, ()| Ok(this.b.pid()));
        methods.add_method("close", |_, this, ()| {
            this.b.close();
            Ok(())
        });
        methods.add_method("dead", |_, this, ()| {
            Ok(this.b.front().st.lock().unwrap().dead.clone())
        });
        methods.add_meta_method("__tostring", |_, this, ()| {
            Ok(format!("session {} ({})", this.id, this.b.status()))
        });
    }
}
