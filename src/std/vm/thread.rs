//! The thread backend: each VM is its own Lua state in the host process.
//! `exec` runs on the caller's thread (no hand-off, so a round trip costs only
//! the exec); `exec_async` runs on a small worker pool shared by every VM (many
//! VMs over few OS threads). States are built ahead of time and dropped on a
//! helper thread, off the caller's path.
use super::job::{Job, JobShared};
use super::sandbox::{Child, ExecResult, Options};
use super::value::Val;
use super::watchdog;
use crate::runtime::error::error;
use crate::runtime::interrupt::{Interrupter, Reason};
use mlua::{Result as LuaResult, UserData, UserDataMethods};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

enum Work {
    Exec(Vec<u8>),
    Call(String, Vec<Val>),
}

/// Work borrowed from the caller (synchronous execs copy nothing).
enum WorkRef<'a> {
    Exec(&'a [u8]),
    Call(&'a str, &'a [Val]),
}

impl Work {
    fn borrow(&self) -> WorkRef<'_> {
        match self {
            Work::Exec(code) => WorkRef::Exec(code),
            Work::Call(name, args) => WorkRef::Call(name, args),
        }
    }
}

struct Pending {
    job: Arc<JobShared>,
    work: Work,
}

pub struct VmShared {
    pub id: String,
    child: Mutex<Option<Child>>,
    interrupter: Arc<Interrupter>,
    queue: Mutex<VecDeque<Pending>>,
    scheduled: AtomicBool,
    running: AtomicUsize,
    /// Jobs submitted and not yet completed (busy from submission on).
    pending: AtomicUsize,
    current: AtomicU64,
    closed: AtomicBool,
}

impl VmShared {
    /// Runs work; `cancelled` is the job's flag, checked once the exec is
    /// armed (a cancel between the worker's check and arming still lands).
    fn run(&self, work: WorkRef, exec_id: u64, cancelled: Option<&AtomicBool>) -> ExecResult {
        let guard = self.child.lock().unwrap();
        let Some(child) = guard.as_ref() else {
            return ExecResult::failure("Closed", format!("VM {} is closed", self.id));
        };
        self.running.fetch_add(1, Ordering::SeqCst);
        self.current.store(exec_id, Ordering::SeqCst);
        let interrupter = self.interrupter.clone();
        let arm = move |t| -> Box<dyn std::any::Any> {
            let guard = watchdog::arm(exec_id, &interrupter, t);
            if cancelled.is_some_and(|c| c.load(Ordering::SeqCst)) {
                interrupter.interrupt(Reason::Cancelled);
            }
            Box::new(guard)
        };
        let r = match work {
            WorkRef::Exec(code) => child.exec(code, &arm),
            WorkRef::Call(name, args) => child.call(name, args, &arm),
        };
        self.current.store(0, Ordering::SeqCst);
        self.running.fetch_sub(1, Ordering::SeqCst);
        drop(guard);
        if self.closed.load(Ordering::SeqCst) {
            self.release();
        }
        r
    }

    fn status(&self) -> &'static str {
        if self.closed.load(Ordering::SeqCst) {
            "dead"
        } else if self.running.load(Ordering::SeqCst) > 0 || !self.queue.lock().unwrap().is_empty()
        {
            "busy"
        } else {
            "idle"
        }
    }

    /// Hands the state to the reaper if nobody is using it.
    fn release(&self) {
        if let Ok(mut g) = self.child.try_lock()
            && let Some(child) = g.take()
        {
            reap(child);
        }
    }

    fn close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let current = self.current.load(Ordering::SeqCst);
        if current != 0 {
            watchdog::interrupt(current, Reason::Cancelled);
        }
        let pending: Vec<Pending> = self.queue.lock().unwrap().drain(..).collect();
        for p in pending {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            p.job.complete(ExecResult::failure(
                "Cancelled",
                format!("VM {} was closed", self.id),
            ));
        }
        self.release();
    }

    fn submit(self: &Arc<Self>, work: Work) -> Arc<JobShared> {
        let job = JobShared::new(watchdog::next_id());
        if self.closed.load(Ordering::SeqCst) {
            job.complete(ExecResult::failure(
                "Closed",
                format!("VM {} is closed", self.id),
            ));
            return job;
        }
        let id = job.id;
        job.set_canceller(Box::new(move || {
            watchdog::interrupt(id, Reason::Cancelled);
        }));
        self.pending.fetch_add(1, Ordering::SeqCst);
        self.queue.lock().unwrap().push_back(Pending {
            job: job.clone(),
            work,
        });
        if !self.scheduled.swap(true, Ordering::SeqCst) {
            pool().push(self.clone());
        }
        job
    }
}

/// The worker pool: VMs with queued jobs wait here for a free worker.
struct Pool {
    ready: Mutex<VecDeque<Arc<VmShared>>>,
    wake: Condvar,
}

impl Pool {
    fn push(&self, vm: Arc<VmShared>) {
        self.ready.lock().unwrap().push_back(vm);
        self.wake.notify_one();
    }
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<&'static Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let p: &'static Pool = Box::leak(Box::new(Pool {
            ready: Mutex::new(VecDeque::new()),
            wake: Condvar::new(),
        }));
        let n = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(2, 16);
        for i in 0..n {
            std::thread::Builder::new()
                .name(format!("bioxen-vm-worker-{i}"))
                .spawn(move || worker(p))
                .expect("start a VM worker thread");
        }
        p
    })
}

fn worker(p: &'static Pool) {
    loop {
        // A VM exec usually follows another within microseconds: stay awake.
        crate::runtime::spin::briefly(|| !p.ready.lock().unwrap().is_empty());
        let vm = {
            let mut ready = p.ready.lock().unwrap();
            loop {
                if let Some(vm) = ready.pop_front() {
                    break vm;
                }
                ready = p.wake.wait(ready).unwrap();
            }
        };
        let next = vm.queue.lock().unwrap().pop_front();
        if let Some(Pending { job, work }) = next {
            let r = if job.cancelled.load(Ordering::SeqCst) {
                ExecResult::failure("Cancelled", "the job was cancelled before it started")
            } else {
                vm.run(work.borrow(), job.id, Some(&job.cancelled))
            };
            vm.pending.fetch_sub(1, Ordering::SeqCst);
            job.complete(r);
        }
        // Keep the VM scheduled while work remains; one job per turn for fairness.
        let more = !vm.queue.lock().unwrap().is_empty();
        if more {
            p.push(vm);
        } else {
            vm.scheduled.store(false, Ordering::SeqCst);
            if !vm.queue.lock().unwrap().is_empty() && !vm.scheduled.swap(true, Ordering::SeqCst) {
                p.push(vm);
            }
        }
    }
}

/// Closes states on a helper thread so `close` returns at once: strict and
/// standard states on the builder thread (they hold no finalizers of their
/// own, so closing cannot hang it), trusted ones on a thread of their own (a
/// trusted VM's `__gc` can loop forever and take that thread with it).
fn reap(child: Child) {
    if child.opts.sandbox != super::sandbox::Level::Trusted {
        return super::premade::retire(child);
    }
    static REAPER: OnceLock<Mutex<std::sync::mpsc::Sender<Child>>> = OnceLock::new();
    let tx = REAPER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Child>();
        std::thread::Builder::new()
            .name("bioxen-vm-reaper".into())
            .spawn(move || {
                for c in rx {
                    drop(c)
                }
            })
            .expect("start the VM reaper thread");
        Mutex::new(tx)
    });
    let _ = tx.lock().unwrap().send(child);
}

/// The host's handle on a thread-backend VM; closing on drop (garbage collection, exit).
pub struct ThreadVm(pub Arc<VmShared>);

impl ThreadVm {
    /// Runs `f` on the child's state, e.g. to add globals at creation.
    pub fn with_lua<R>(&self, f: impl FnOnce(&mlua::Lua) -> R) -> Option<R> {
        self.0.child.lock().unwrap().as_ref().map(|c| f(&c.lua))
    }
}

impl Drop for ThreadVm {
    fn drop(&mut self) {
        self.0.close();
    }
}

pub fn create(opts: Options) -> LuaResult<ThreadVm> {
    let child = super::premade::take(opts)?;
    let interrupter = child.interrupter.clone();
    Ok(ThreadVm(Arc::new(VmShared {
        id: child.opts.id.clone(),
        child: Mutex::new(Some(child)),
        interrupter,
        queue: Mutex::new(VecDeque::new()),
        scheduled: AtomicBool::new(false),
        running: AtomicUsize::new(0),
        pending: AtomicUsize::new(0),
        current: AtomicU64::new(0),
        closed: AtomicBool::new(false),
    })))
}

fn closed_error(id: &str) -> mlua::Error {
    error(
        "Closed",
        format!("VM {id} is closed; create a new one with vm.create"),
    )
}

impl UserData for ThreadVm {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("exec", |lua, this, code: mlua::LuaString| {
            if this.0.closed.load(Ordering::SeqCst) {
                return Err(closed_error(&this.0.id));
            }
            let r = this
                .0
                .run(WorkRef::Exec(&code.as_bytes()), watchdog::next_id(), None);
            r.to_lua(lua)
        });
        methods.add_method("exec_async", |_, this, code: mlua::LuaString| {
            if this.0.closed.load(Ordering::SeqCst) {
                return Err(closed_error(&this.0.id));
            }
            Ok(Job(this.0.submit(Work::Exec(code.as_bytes().to_vec()))))
        });
        methods.add_method(
            "call",
            |lua, this, (name, args): (String, mlua::MultiValue)| {
                if this.0.closed.load(Ordering::SeqCst) {
                    return Err(closed_error(&this.0.id));
                }
                let args = super::copy_args(&args)?;
                let r = this
                    .0
                    .run(WorkRef::Call(&name, &args), watchdog::next_id(), None);
                r.to_lua(lua)
            },
        );
        methods.add_method(
            "call_async",
            |_, this, (name, args): (String, mlua::MultiValue)| {
                if this.0.closed.load(Ordering::SeqCst) {
                    return Err(closed_error(&this.0.id));
                }
                let args = super::copy_args(&args)?;
                Ok(Job(this.0.submit(Work::Call(name, args))))
            },
        );
        methods.add_method("status", |_, this, ()| Ok(this.0.status()));
        methods.add_method("close", |_, this, ()| {
            this.0.close();
            Ok(())
        });
        methods.add_method("pid", |_, _, ()| Ok(None::<u32>));
        methods.add_method("memory", |_, this, ()| {
            Ok(this
                .0
                .child
                .try_lock()
                .ok()
                .and_then(|g| g.as_ref().map(|c| c.used_memory())))
        });
    }
}
