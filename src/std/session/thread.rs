//! Interactive sessions on the thread backend: the VM is a sandboxed Lua
//! state in this process; its input queue is drained by an elastic pool of
//! session workers (a worker per session that is evaluating, idle workers
//! reused), so a session that runs a long loop never holds up another.
use super::Backend;
use super::front::Front;
use super::repl::{self, Sink};
use crate::library::vm::job::JobShared;
use crate::library::vm::sandbox::{Child, ExecResult, Options, find_in_path};
use crate::library::vm::watchdog;
use crate::runtime::interrupt::{Interrupter, Reason};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

enum Item {
    Text(String),
    Exec(Vec<u8>, Arc<JobShared>),
    Reset,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    scheduled: bool,
}

pub struct Inner {
    id: String,
    front: Arc<Front>,
    child: Mutex<Option<Child>>,
    interrupter: Arc<Interrupter>,
    queue: Mutex<Queue>,
    current: AtomicU64,
    /// An interrupt that came while no chunk was armed (between chunks of
    /// one input): the next chunk of that input stops at once.
    pending_interrupt: Arc<AtomicBool>,
    paths: Arc<Mutex<Vec<PathBuf>>>,
    closed: AtomicBool,
}

pub struct ThreadSession(Arc<Inner>);

pub fn create(opts: Options) -> mlua::Result<ThreadSession> {
    let paths = Arc::new(Mutex::new(opts.package_path.clone()));
    let p = paths.clone();
    let modules = Box::new(move |name: &str| find_in_path(&p.lock().unwrap(), name));
    let child = Child::new(opts, Some(modules))?;
    Ok(ThreadSession(Arc::new(Inner {
        id: child.opts.id.clone(),
        front: Arc::new(Front::default()),
        interrupter: child.interrupter.clone(),
        child: Mutex::new(Some(child)),
        queue: Mutex::new(Queue::default()),
        current: AtomicU64::new(0),
        pending_interrupt: Arc::new(AtomicBool::new(false)),
        paths,
        closed: AtomicBool::new(false),
    })))
}

impl ThreadSession {
    /// Runs `f` on the session's Lua state (None once it is closed).
    pub fn with_lua<R>(&self, f: impl FnOnce(&mlua::Lua) -> R) -> Option<R> {
        self.0.child.lock().unwrap().as_ref().map(|c| f(&c.lua))
    }
}

impl Inner {
    fn push(self: &Arc<Self>, item: Item) {
        let mut q = self.queue.lock().unwrap();
        q.items.push_back(item);
        if !q.scheduled {
            q.scheduled = true;
            drop(q);
            pool_submit(self.clone());
        }
    }

    fn drain(&self) {
        loop {
            let item = {
                let mut q = self.queue.lock().unwrap();
                match q.items.pop_front() {
                    Some(i) => i,
                    None => {
                        q.scheduled = false;
                        return;
                    }
                }
            };
            self.run(item);
        }
    }

    fn run(&self, item: Item) {
        let guard = self.child.lock().unwrap();
        let Some(child) = guard
            .as_ref()
            .filter(|_| !self.closed.load(Ordering::SeqCst))
        else {
            match item {
                Item::Text(_) => self.front.finished(false),
                Item::Exec(_, job) => job.complete(ExecResult::failure(
                    "Closed",
                    format!("session {} is closed", self.id),
                )),
                Item::Reset => {}
            }
            return;
        };
        let id = watchdog::next_id();
        self.current.store(id, Ordering::SeqCst);
        let interrupter = self.interrupter.clone();
        let pending = self.pending_interrupt.clone();
        let arm = move |t| -> Box<dyn std::any::Any> {
            let guard = watchdog::arm(id, &interrupter, t);
            if pending.swap(false, Ordering::SeqCst) {
                interrupter.interrupt(Reason::Cancelled);
            }
            Box::new(guard)
        };
        match item {
            Item::Text(text) => {
                let front = self.front.clone();
                let sink: Sink = Arc::new(move |b: &[u8]| front.append(b));
                let incomplete = repl::feed(child, &text, &arm, sink);
                self.current.store(0, Ordering::SeqCst);
                self.pending_interrupt.store(false, Ordering::SeqCst);
                self.front.finished(incomplete);
            }
            Item::Exec(code, job) => {
                let r = if job.cancelled.load(Ordering::SeqCst) {
                    ExecResult::failure("Cancelled", "the job was cancelled before it started")
                } else {
                    child.exec(&code, &arm)
                };
                self.current.store(0, Ordering::SeqCst);
                self.pending_interrupt.store(false, Ordering::SeqCst);
                job.complete(r);
            }
            Item::Reset => {
                repl::reset(child);
                self.current.store(0, Ordering::SeqCst);
                self.front.st.lock().unwrap().incomplete = false;
            }
        }
    }
}

impl Backend for ThreadSession {
    fn evaluates_in_process(&self) -> bool {
        true
    }
    fn front(&self) -> &Arc<Front> {
        &self.0.front
    }

    fn send(&self, text: String) -> Result<(), String> {
        if self.0.closed.load(Ordering::SeqCst) {
            return Err(format!("session {} is closed", self.0.id));
        }
        self.0.front.sent()?;
        self.0.push(Item::Text(text));
        Ok(())
    }

    fn exec(&self, code: Vec<u8>) -> Arc<JobShared> {
        let job = JobShared::new(watchdog::next_id());
        if self.0.closed.load(Ordering::SeqCst) {
            job.complete(ExecResult::failure(
                "Closed",
                format!("session {} is closed", self.0.id),
            ));
            return job;
        }
        let weak = Arc::downgrade(&self.0);
        job.set_canceller(Box::new(move || {
            if let Some(me) = weak.upgrade() {
                let cur = me.current.load(Ordering::SeqCst);
                if cur != 0 {
                    watchdog::interrupt(cur, Reason::Cancelled);
                }
            }
        }));
        self.0.push(Item::Exec(code, job.clone()));
        job
    }

    fn interrupt(&self) {
        let cur = self.0.current.load(Ordering::SeqCst);
        if cur != 0 && !watchdog::interrupt(cur, Reason::Cancelled) {
            self.0.pending_interrupt.store(true, Ordering::SeqCst);
        }
    }

    fn reset(&self) {
        self.0.push(Item::Reset);
    }

    fn set_paths(&self, paths: Vec<PathBuf>) {
        *self.0.paths.lock().unwrap() = paths;
    }

    fn complete(&self, prefix: &str) -> Vec<String> {
        match self.0.child.try_lock() {
            Ok(g) => g
                .as_ref()
                .map(|c| repl::complete(c, prefix))
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    fn status(&self) -> &'static str {
        if self.0.closed.load(Ordering::SeqCst) {
            "dead"
        } else if self.0.front.busy() || !self.0.queue.lock().unwrap().items.is_empty() {
            "busy"
        } else {
            "idle"
        }
    }

    fn pid(&self) -> Option<i32> {
        None
    }

    fn close(&self) {
        if self.0.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        self.interrupt();
        let items: Vec<Item> = self.0.queue.lock().unwrap().items.drain(..).collect();
        for item in items {
            if let Item::Exec(_, job) = item {
                job.complete(ExecResult::failure(
                    "Closed",
                    format!("session {} was closed", self.0.id),
                ));
            }
        }
        self.0
            .front
            .kill(format!("session {} was closed", self.0.id));
        // Drop the state now if no worker holds it; otherwise the worker's
        // next turn sees `closed` and the state goes with the last handle.
        if let Ok(mut g) = self.0.child.try_lock() {
            g.take();
        }
    }
}

/// The elastic worker pool shared by every thread-backend session.
struct Pool {
    st: Mutex<PoolState>,
    cv: Condvar,
}

#[derive(Default)]
struct PoolState {
    ready: VecDeque<Arc<Inner>>,
    /// Workers waiting without a wake-up token.
    idle: usize,
    tokens: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<&'static Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        Box::leak(Box::new(Pool {
            st: Mutex::new(PoolState::default()),
            cv: Condvar::new(),
        }))
    })
}

fn pool_submit(inner: Arc<Inner>) {
    let p = pool();
    let mut st = p.st.lock().unwrap();
    st.ready.push_back(inner);
    if st.idle > 0 {
        st.idle -= 1;
        st.tokens += 1;
        drop(st);
        p.cv.notify_one();
    } else {
        drop(st);
        std::thread::Builder::new()
            .name("bioxen-session".into())
            .spawn(move || worker(p))
            .expect("start a session worker thread");
    }
}

/// An idle session worker exits after this long without work.
const IDLE_EXIT: std::time::Duration = std::time::Duration::from_secs(30);

fn worker(p: &'static Pool) {
    loop {
        let inner = {
            let mut st = p.st.lock().unwrap();
            loop {
                if let Some(i) = st.ready.pop_front() {
                    break i;
                }
                st.idle += 1;
                loop {
                    let (g, timeout) = p.cv.wait_timeout(st, IDLE_EXIT).unwrap();
                    st = g;
                    if st.tokens > 0 {
                        st.tokens -= 1;
                        break;
                    }
                    if timeout.timed_out() {
                        // Nobody counted on this worker (no token): leave.
                        st.idle -= 1;
                        return;
                    }
                }
            }
        };
        inner.drain();
    }
}
