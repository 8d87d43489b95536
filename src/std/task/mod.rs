//! `bioxen.task`: coroutines scheduled on tokio. The main chunk runs as a task,
//! so every async library function yields to the others instead of blocking.
use crate::runtime::{builder::LibraryBuilder, error::error};
use mlua::{Function, Lua, MultiValue, Result as LuaResult, Table, UserData, UserDataMethods};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

pub fn module(lua: &Lua) -> LuaResult<Table> {
    LibraryBuilder::new(lua)
        .function("spawn", spawn)
        .async_function("sleep", |_, seconds: f64| sleep(seconds))
        .async_function("wait", |_, task: mlua::UserDataRef<Task>| {
            let state = task.state.clone();
            async move { state.wait().await }
        })
        .function("cancel", |_, task: mlua::UserDataRef<Task>| {
            task.cancel();
            Ok(())
        })
        .build()
}

async fn sleep(seconds: f64) -> LuaResult<()> {
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(error(
            "Argument",
            format!("sleep needs a number of seconds >= 0, got {seconds}"),
        ));
    }
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    Ok(())
}

/// Failed tasks whose error nobody has seen through `wait`, reported at exit.
#[derive(Default)]
pub struct Unobserved(Mutex<Vec<Arc<TaskState>>>);

#[derive(Default)]
pub struct TaskState {
    outcome: Mutex<Option<LuaResult<MultiValue>>>,
    observed: std::sync::atomic::AtomicBool,
    finished: Notify,
}

impl TaskState {
    fn finish(self: &Arc<Self>, lua: &Lua, outcome: LuaResult<MultiValue>) {
        let failed = outcome.is_err();
        let mut slot = self.outcome.lock().unwrap();
        if slot.is_some() {
            return;
        }
        *slot = Some(outcome);
        drop(slot);
        if failed && let Some(u) = lua.app_data_ref::<Unobserved>() {
            u.0.lock().unwrap().push(self.clone());
        }
        self.finished.notify_waiters();
    }

    async fn wait(&self) -> LuaResult<MultiValue> {
        loop {
            let notified = self.finished.notified();
            if let Some(outcome) = self.outcome.lock().unwrap().as_ref() {
                self.observed
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                return outcome.clone();
            }
            notified.await;
        }
    }

    fn status(&self) -> &'static str {
        match self.outcome.lock().unwrap().as_ref() {
            None => "running",
            Some(Ok(_)) => "done",
            Some(Err(e)) if crate::runtime::error::kind_of(e) == "Cancelled" => "cancelled",
            Some(Err(_)) => "failed",
        }
    }
}

pub struct Task {
    state: Arc<TaskState>,
    abort: AbortHandle,
    lua: mlua::WeakLua,
}

impl Task {
    fn cancel(&self) {
        self.abort.abort();
        if let Some(lua) = self.lua.try_upgrade() {
            let cancelled = Err(error("Cancelled", "the task was cancelled"));
            self.state
                .observed
                .store(true, std::sync::atomic::Ordering::Relaxed);
            self.state.finish(&lua, cancelled);
        }
    }
}

impl UserData for Task {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_async_method("wait", |_, this, ()| async move { this.state.wait().await });
        methods.add_method("cancel", |_, this, ()| {
            this.cancel();
            Ok(())
        });
        methods.add_method("done", |_, this, ()| Ok(this.state.status() != "running"));
        methods.add_method("status", |_, this, ()| Ok(this.state.status()));
        methods.add_meta_method("__tostring", |_, this, ()| {
            Ok(format!("task ({})", this.state.status()))
        });
    }
}

/// `spawn(fn, ...)`: starts `fn(...)` as a task and returns its handle at once.
pub fn spawn(lua: &Lua, (func, args): (Function, MultiValue)) -> LuaResult<Task> {
    let thread = lua.create_thread(func)?;
    let run = thread.into_async::<MultiValue>(args)?;
    let state = Arc::new(TaskState::default());
    let (finish_state, weak) = (state.clone(), lua.weak());
    let handle = tokio::task::spawn_local(async move {
        let outcome = run.await;
        if let Some(lua) = weak.try_upgrade() {
            finish_state.finish(&lua, outcome);
        }
    });
    Ok(Task {
        state,
        abort: handle.abort_handle(),
        lua: lua.weak(),
    })
}

/// Prints the errors of failed tasks that nobody waited for; true when there were any.
pub fn report_unobserved(lua: &Lua) -> bool {
    let Some(u) = lua.app_data_ref::<Unobserved>() else {
        return false;
    };
    let mut reported = false;
    for state in u.0.lock().unwrap().iter() {
        if state.observed.load(std::sync::atomic::Ordering::Relaxed) {
            continue;
        }
        if let Some(Err(e)) = state.outcome.lock().unwrap().as_ref() {
            eprintln!(
                "bioxen: error in a task nobody waited for: {}",
                crate::runtime::report::format_error(e)
            );
            reported = true;
        }
    }
    reported
}
