//! Interactive sessions on the process backend: the VM is a `bioxen
//! --vm-child` process (src/std/vm/child.rs) with the vm backend's limits and
//! death signal. Input goes down as SESSION_INPUT frames, one at a time; the
//! child streams SESSION_OUTPUT frames while it evaluates and ends each input
//! with SESSION_DONE. A reader thread per session turns those frames into the
//! session's buffer and wakes readers; it also answers `require` requests from
//! the session's current package path and owns the process until it dies.
use super::Backend;
use super::front::Front;
use crate::library::vm::job::JobShared;
use crate::library::vm::process::{self as vmproc, Proc};
use crate::library::vm::protocol;
use crate::library::vm::sandbox::{ExecResult, Options, find_in_path};
use crate::library::vm::value::{Reader, put_bytes};
use crate::library::vm::watchdog;
use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

enum Item {
    Text(String),
    Exec(Vec<u8>, Arc<JobShared>),
    Reset,
}

enum InFlight {
    Text,
    Exec(Arc<JobShared>),
    Reset,
}

struct Io {
    tx: RawFd,
    alive: bool,
    queue: VecDeque<Item>,
    in_flight: Option<InFlight>,
}

struct Inner {
    id: String,
    front: Arc<Front>,
    io: Mutex<Io>,
    pid: i32,
    paths: Mutex<Vec<PathBuf>>,
    closed: AtomicBool,
}

pub struct ProcessSession(Arc<Inner>);

/// The key a session's channels and grants are registered under (apart from
/// process VMs of the same id).
pub fn extras_key(id: &str) -> String {
    format!("session:{id}")
}

pub fn create(opts: Options) -> Result<ProcessSession, String> {
    let proc = vmproc::start_session(&opts, &extras_key(&opts.id))?;
    let inner = Arc::new(Inner {
        id: opts.id.clone(),
        front: Arc::new(Front::default()),
        io: Mutex::new(Io {
            tx: proc.tx(),
            alive: true,
            queue: VecDeque::new(),
            in_flight: None,
        }),
        pid: proc.pid,
        paths: Mutex::new(opts.package_path.clone()),
        closed: AtomicBool::new(false),
    });
    let me = inner.clone();
    std::thread::Builder::new()
        .name("bioxen-session-reader".into())
        .spawn(move || reader(me, proc))
        .map_err(|e| format!("cannot start the session's reader thread: {e}"))?;
    Ok(ProcessSession(inner))
}

/// Sends the next queued item if nothing is in flight (caller holds the lock).
fn dispatch(io: &mut Io) {
    if io.in_flight.is_some() || !io.alive {
        return;
    }
    let Some(item) = io.queue.pop_front() else {
        return;
    };
    let (frame, flight) = match item {
        Item::Text(t) => (
            protocol::frame(protocol::SESSION_INPUT, t.as_bytes()),
            InFlight::Text,
        ),
        Item::Exec(code, job) => (protocol::frame(protocol::EXEC, &code), InFlight::Exec(job)),
        Item::Reset => (
            protocol::frame(protocol::SESSION_RESET, &[]),
            InFlight::Reset,
        ),
    };
    // A failed write means the child died: the reader thread reports it.
    let _ = protocol::write_all_fd(io.tx, &frame);
    io.in_flight = Some(flight);
}

fn reader(inner: Arc<Inner>, proc: Proc) {
    let rx = proc.rx();
    while let Ok((tag, payload)) = protocol::read_frame_deadline(rx, None) {
        match tag {
            protocol::SESSION_OUTPUT => inner.front.append(&payload),
            protocol::SESSION_DONE => {
                let mut io = inner.io.lock().unwrap();
                if let Some(InFlight::Text) = io.in_flight.take() {
                    inner.front.finished(payload.first() == Some(&1));
                } else {
                    inner.front.st.lock().unwrap().incomplete = false;
                }
                dispatch(&mut io);
            }
            protocol::RESULT => {
                let r = ExecResult::decode(&mut Reader::new(&payload))
                    .unwrap_or_else(|e| ExecResult::failure("Crashed", e));
                let mut io = inner.io.lock().unwrap();
                if let Some(InFlight::Exec(job)) = io.in_flight.take() {
                    job.complete(r);
                }
                dispatch(&mut io);
            }
            protocol::MODULE_REQUEST => {
                let name = Reader::new(&payload).string().unwrap_or_default();
                let found = find_in_path(&inner.paths.lock().unwrap(), &name);
                let mut reply = Vec::new();
                match found {
                    Ok(Some((chunk, src))) => {
                        reply.push(1);
                        put_bytes(&mut reply, chunk.as_bytes());
                        put_bytes(&mut reply, &src);
                    }
                    Ok(None) => {
                        reply.push(0);
                        put_bytes(&mut reply, b"not found");
                    }
                    Err(e) => {
                        reply.push(0);
                        put_bytes(&mut reply, e.as_bytes());
                    }
                }
                let io = inner.io.lock().unwrap();
                let _ = protocol::write_all_fd(
                    io.tx,
                    &protocol::frame(protocol::MODULE_SOURCE, &reply),
                );
            }
            // A channel handed to the session (`channels = {...}`), used by
            // the code being evaluated: served against the host's queue.
            protocol::CHANNEL_OP => {
                let reply =
                    crate::library::net::child::serve_channel(&extras_key(&inner.id), &payload);
                let io = inner.io.lock().unwrap();
                let _ = protocol::write_all_fd(
                    io.tx,
                    &protocol::frame(protocol::CHANNEL_REPLY, &reply),
                );
            }
            _ => break,
        }
    }
    let mut io = inner.io.lock().unwrap();
    io.alive = false;
    let flight = io.in_flight.take();
    let queued: Vec<Item> = io.queue.drain(..).collect();
    drop(io);
    let why = if inner.closed.load(Ordering::SeqCst) {
        proc.discard();
        format!("session {} was closed", inner.id)
    } else {
        let (kind, message) = proc.death();
        format!(
            "the process of session {} (pid {}) died: {kind}: {message}",
            inner.id, inner.pid
        )
    };
    let fail = |job: Arc<JobShared>| job.complete(ExecResult::failure("Crashed", why.clone()));
    if let Some(InFlight::Exec(job)) = flight {
        fail(job);
    }
    for item in queued {
        if let Item::Exec(_, job) = item {
            fail(job);
        }
    }
    if !inner.closed.load(Ordering::SeqCst) {
        inner.front.append(format!("Crashed: {why}\n").as_bytes());
    }
    inner.front.kill(why);
}

impl Backend for ProcessSession {
    fn front(&self) -> &Arc<Front> {
        &self.0.front
    }

    fn send(&self, text: String) -> Result<(), String> {
        let mut io = self.0.io.lock().unwrap();
        if !io.alive || self.0.closed.load(Ordering::SeqCst) {
            let st = self.0.front.st.lock().unwrap();
            return Err(st
                .dead
                .clone()
                .unwrap_or_else(|| format!("session {} is closed", self.0.id)));
        }
        self.0.front.sent()?;
        io.queue.push_back(Item::Text(text));
        dispatch(&mut io);
        Ok(())
    }

    fn exec(&self, code: Vec<u8>) -> Arc<JobShared> {
        let job = JobShared::new(watchdog::next_id());
        let mut io = self.0.io.lock().unwrap();
        if !io.alive {
            job.complete(ExecResult::failure(
                "Closed",
                format!("session {} is closed", self.0.id),
            ));
            return job;
        }
        let pid = self.0.pid;
        job.set_canceller(Box::new(move || unsafe {
            libc::kill(pid, libc::SIGUSR1);
        }));
        io.queue.push_back(Item::Exec(code, job.clone()));
        dispatch(&mut io);
        job
    }

    fn interrupt(&self) {
        if self.0.io.lock().unwrap().alive {
            unsafe { libc::kill(self.0.pid, libc::SIGUSR1) };
        }
    }

    fn reset(&self) {
        let mut io = self.0.io.lock().unwrap();
        if io.alive {
            io.queue.push_back(Item::Reset);
            dispatch(&mut io);
        }
    }

    fn set_paths(&self, paths: Vec<PathBuf>) {
        *self.0.paths.lock().unwrap() = paths;
    }

    fn complete(&self, _prefix: &str) -> Vec<String> {
        Vec::new()
    }

    fn status(&self) -> &'static str {
        let io = self.0.io.lock().unwrap();
        if !io.alive || self.0.closed.load(Ordering::SeqCst) {
            "dead"
        } else if io.in_flight.is_some() || !io.queue.is_empty() {
            "busy"
        } else {
            "idle"
        }
    }

    fn pid(&self) -> Option<i32> {
        self.0.io.lock().unwrap().alive.then_some(self.0.pid)
    }

    fn close(&self) {
        if self.0.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        // its channels are no longer reachable from it
        crate::library::net::child::register(&extras_key(&self.0.id), Default::default());
        // The reader thread sees the pipe close, reaps the process and
        // fails whatever was pending.
        if self.0.io.lock().unwrap().alive {
            unsafe { libc::kill(self.0.pid, libc::SIGKILL) };
        }
    }
}
