//! `exec_async` handles: `job:wait([timeout])`, `job:done()`, `job:cancel()`.
//! A backend fills the result from any thread; waiting is async, so under
//! `bioxen.task` it yields to other tasks instead of blocking them.
use super::sandbox::ExecResult;
use crate::runtime::error::error;
use mlua::{UserData, UserDataMethods};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

type Canceller = Box<dyn Fn() + Send + Sync>;

pub struct JobShared {
    pub id: u64,
    result: Mutex<Option<ExecResult>>,
    notify: Notify,
    pub cancelled: AtomicBool,
    canceller: Mutex<Option<Canceller>>,
}

impl JobShared {
    pub fn new(id: u64) -> Arc<JobShared> {
        Arc::new(JobShared {
            id,
            result: Mutex::new(None),
            notify: Notify::new(),
            cancelled: AtomicBool::new(false),
            canceller: Mutex::new(None),
        })
    }

    pub fn set_canceller(&self, f: Canceller) {
        *self.canceller.lock().unwrap() = Some(f);
    }

    /// Stores the result (the first one wins) and wakes every waiter.
    pub fn complete(&self, r: ExecResult) {
        let mut slot = self.result.lock().unwrap();
        if slot.is_none() {
            *slot = Some(r);
        }
        drop(slot);
        self.notify.notify_waiters();
    }

    pub fn is_done(&self) -> bool {
        self.result.lock().unwrap().is_some()
    }

    pub fn result(&self) -> Option<ExecResult> {
        self.result.lock().unwrap().clone()
    }

    pub async fn wait(&self) -> ExecResult {
        loop {
            let notified = self.notify.notified();
            if let Some(r) = self.result() {
                return r;
            }
            notified.await;
        }
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        if let Some(f) = self.canceller.lock().unwrap().as_ref() {
            f();
        }
    }
}

pub struct Job(pub Arc<JobShared>);

impl UserData for Job {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_async_method("wait", |lua, this, timeout: Option<f64>| async move {
            let shared = this.0.clone();
            let r = match timeout {
                None => shared.wait().await,
                Some(t) if t.is_finite() && t >= 0.0 => {
                    match tokio::time::timeout(std::time::Duration::from_secs_f64(t), shared.wait()).await {
                        Ok(r) => r,
                        Err(_) => {
                            return Err(error(
                                "Timeout",
                                format!("the job did not finish within {t} s; it keeps running (job:cancel() stops it)"),
                            ));
                        }
                    }
                }
                Some(t) => {
                    return Err(error("Argument", format!("job:wait needs a timeout in seconds >= 0, got {t}")));
                }
            };
            r.to_lua(&lua)
        });
        methods.add_method("done", |_, this, ()| Ok(this.0.is_done()));
        methods.add_method("cancel", |_, this, ()| {
            this.0.cancel();
            Ok(())
        });
        methods.add_method("status", |_, this, ()| {
            Ok(match this.0.result() {
                None => "running",
                Some(r) if r.ok => "done",
                Some(r) if r.kind.as_deref() == Some("Cancelled") => "cancelled",
                Some(_) => "failed",
            })
        });
        methods.add_meta_method("__tostring", |_, this, ()| {
            Ok(format!("vm job {}", this.0.id))
        });
    }
}
