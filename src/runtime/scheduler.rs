//! The host's event loop: a current-thread tokio runtime and a `LocalSet` on
//! which the main chunk and every `bioxen.task` run as Lua coroutines.
use mlua::{Function, IntoLuaMulti, MultiValue, Result as LuaResult};
use tokio::{runtime::Runtime, task::LocalSet};

pub struct Scheduler {
    runtime: Runtime,
    local: LocalSet,
}

impl Scheduler {
    pub fn new() -> std::io::Result<Scheduler> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Scheduler {
            runtime,
            local: LocalSet::new(),
        })
    }

    /// Runs `f(args)` as a task and returns when it finishes (other tasks
    /// progress meanwhile and keep running afterwards). Ctrl-C while the
    /// chunk is waiting (not running Lua) ends the wait with `Interrupted`.
    pub fn call(&self, f: &Function, args: impl IntoLuaMulti) -> LuaResult<MultiValue> {
        let fut = f.call_async::<MultiValue>(args);
        self.local.block_on(&self.runtime, async move {
            tokio::select! {
                biased;
                result = fut => result,
                _ = tokio::signal::ctrl_c() => Err(super::error::error("Interrupted", "interrupted while waiting")),
            }
        })
    }

    /// Runs until every spawned task has finished.
    pub fn drain(self) {
        self.runtime.block_on(self.local);
    }

    /// Drops every unfinished task without running it further (Ctrl-C ended
    /// the run). Inside the runtime, so that dropping their futures kills the
    /// processes they started (`kill_on_drop`) and closes their sockets.
    pub fn abandon(self) {
        let Scheduler { runtime, local } = self;
        let _inside = runtime.enter();
        drop(local);
    }
}
