//! The process backend's child: `bioxen --vm-child PARENT_PID`, started by the
//! host with a cleared environment, no inherited descriptors and a private
//! working folder. It locks itself down (no privileges, no new processes, dies
//! with its parent), then serves frames: INIT builds a sandboxed state, EXEC
//! and CALL run code in it, RESET drops it so the process can go back to the
//! host's warm pool. `Session::handle` is the reusable part of the loop.
use super::protocol::{self, ReadError};
use super::sandbox::{Child, ExecResult, Level, ModuleSource, Options};
use super::value::{Reader, Val, put_bytes};
use crate::runtime::interrupt::{Interrupter, Reason};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, Ordering};
use std::time::Duration;

static IN_FD: AtomicI32 = AtomicI32::new(-1);
static OUT_FD: AtomicI32 = AtomicI32::new(-1);
static INTERRUPTER: AtomicPtr<Interrupter> = AtomicPtr::new(std::ptr::null_mut());
static RUNNING: AtomicBool = AtomicBool::new(false);

/// The uid/gid a root host drops its children to, so RLIMIT_NPROC applies.
pub const NOBODY: u32 = 65534;

pub fn main(args: &[String]) -> i32 {
    let parent: i32 = args.first().and_then(|p| p.parse().ok()).unwrap_or(0);
    unsafe {
        // The protocol moves off 0 and 1, which become /dev/null, so nothing a
        // trusted VM writes to stdout can corrupt the frames.
        let pin = libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3);
        let pout = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if pin < 0 || pout < 0 || null < 0 {
            return 70;
        }
        libc::dup2(null, 0);
        libc::dup2(null, 1);
        libc::close(null);
        IN_FD.store(pin, Ordering::SeqCst);
        OUT_FD.store(pout, Ordering::SeqCst);
        if libc::getuid() == 0 {
            libc::setgroups(0, std::ptr::null());
            if libc::setgid(NOBODY) != 0 || libc::setuid(NOBODY) != 0 {
                return 71;
            }
        }
        // Changing credentials clears the death signal, so set it afterwards,
        // then catch a parent that died before it was set.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        if parent != 0 && libc::getppid() != parent {
            return 0;
        }
        let none = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_NPROC, &none);
        libc::setrlimit(libc::RLIMIT_CORE, &none);
    }
    let _ = unsafe {
        signal_hook_registry::register(libc::SIGALRM, || interrupt_running(Reason::Timeout))
    };
    let _ = unsafe {
        signal_hook_registry::register(libc::SIGUSR1, || interrupt_running(Reason::Cancelled))
    };
    let mut session = Session::default();
    loop {
        session.prepare();
        let (tag, payload) = match protocol::read_frame_deadline(in_fd(), None) {
            Ok(f) => f,
            Err(_) => return 0,
        };
        if let Some((tag, reply)) = session.handle(tag, &payload)
            && protocol::write_all_fd(out_fd(), &protocol::frame(tag, &reply)).is_err()
        {
            return 0;
        }
    }
}

fn in_fd() -> RawFd {
    IN_FD.load(Ordering::SeqCst)
}

fn out_fd() -> RawFd {
    OUT_FD.load(Ordering::SeqCst)
}

/// Signal handler body: only atomics and `lua_sethook` (async-signal-safe).
fn interrupt_running(reason: Reason) {
    let p = INTERRUPTER.load(Ordering::SeqCst);
    if !p.is_null() && RUNNING.load(Ordering::SeqCst) {
        unsafe { (*p).interrupt(reason) };
    }
}

/// The VM state a child serves, between INIT and RESET.
#[derive(Default)]
pub struct Session {
    child: Option<Child>,
    /// A strict state built while the process waits in the warm pool, so INIT
    /// for a strict VM only configures it.
    spare: Option<Child>,
}

impl Session {
    /// Between VMs, builds a spare strict state (before waiting for INIT).
    pub fn prepare(&mut self) {
        if self.child.is_none() && self.spare.is_none() {
            self.spare = Child::new(super::premade::template(), None).ok();
        }
    }

    /// Handles one frame; returns the reply frame, if any.
    pub fn handle(&mut self, tag: u8, payload: &[u8]) -> Option<(u8, Vec<u8>)> {
        match tag {
            protocol::INIT => Some(match self.init(payload) {
                Ok(()) => (protocol::READY, Vec::new()),
                Err(e) => (protocol::FAILED, e.into_bytes()),
            }),
            protocol::EXEC => Some((
                protocol::RESULT,
                encode(self.run(|c, arm| c.exec(payload, arm))),
            )),
            protocol::CALL => {
                let mut r = Reader::new(payload);
                let call = r.string().and_then(|name| {
                    let n = r.u32()?;
                    let args = (0..n)
                        .map(|_| Val::decode(&mut r))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok((name, args))
                });
                let result = match call {
                    Ok((name, args)) => self.run(|c, arm| c.call(&name, &args, arm)),
                    Err(e) => ExecResult::failure("Crashed", format!("bad call frame: {e}")),
                };
                Some((protocol::RESULT, encode(result)))
            }
            protocol::SESSION_INPUT => {
                let text = String::from_utf8_lossy(payload).into_owned();
                let mut incomplete = false;
                self.run(|c, arm| {
                    let sink = std::sync::Arc::new(|b: &[u8]| {
                        let f = protocol::frame(protocol::SESSION_OUTPUT, b);
                        let _ = protocol::write_all_fd(out_fd(), &f);
                    });
                    incomplete = crate::library::session::feed(c, &text, arm, sink);
                    ExecResult::default()
                });
                Some((protocol::SESSION_DONE, vec![incomplete as u8]))
            }
            protocol::SESSION_RESET => {
                if let Some(c) = self.child.as_ref() {
                    crate::library::session::repl::reset(c);
                }
                Some((protocol::SESSION_DONE, vec![0]))
            }
            protocol::RESET => {
                INTERRUPTER.store(std::ptr::null_mut(), Ordering::SeqCst);
                self.child = None;
                None
            }
            _ => Some((
                protocol::FAILED,
                format!("unknown frame tag {tag}").into_bytes(),
            )),
        }
    }

    fn init(&mut self, payload: &[u8]) -> Result<(), String> {
        let mut reader = Reader::new(payload);
        let opts = Options::decode(&mut reader)?;
        apply_limits(&opts);
        let child = match self.spare.take() {
            Some(spare) if opts.sandbox == Level::Strict => spare.configure(opts),
            _ => {
                let modules: ModuleSource = Box::new(fetch_module);
                Child::new(opts.clone(), Some(modules)).and_then(|c| c.configure(opts))
            }
        }
        .map_err(|e| e.to_string())?;
        // networked/grants/channels (bioxen.net, bioxen.channel) follow the options
        crate::library::net::child::install_from_init(
            &child.lua,
            &payload[reader.pos..],
            channel_request,
        )?;
        INTERRUPTER.store(
            std::sync::Arc::as_ptr(&child.interrupter) as *mut _,
            Ordering::SeqCst,
        );
        self.child = Some(child);
        Ok(())
    }

    fn run(
        &self,
        f: impl FnOnce(&Child, &dyn Fn(Option<Duration>) -> Box<dyn std::any::Any>) -> ExecResult,
    ) -> ExecResult {
        let Some(child) = self.child.as_ref() else {
            return ExecResult::failure(
                "Crashed",
                "the VM process has no state (INIT was not sent)",
            );
        };
        RUNNING.store(true, Ordering::SeqCst);
        let r = f(child, &|t| Box::new(Alarm::arm(t)));
        RUNNING.store(false, Ordering::SeqCst);
        r
    }
}

fn encode(r: ExecResult) -> Vec<u8> {
    let mut out = Vec::new();
    r.encode(&mut out);
    out
}

/// OS limits from the VM's options. Reusable (strict, standard) children only
/// lower soft limits so the next VM can have others; trusted ones lower both.
fn apply_limits(opts: &Options) {
    let hard_too = opts.sandbox == Level::Trusted;
    let set = |res, v: u64| unsafe {
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::getrlimit(res, &mut cur);
        let v = v.min(cur.rlim_max);
        let new = libc::rlimit {
            rlim_cur: v,
            rlim_max: if hard_too { v } else { cur.rlim_max },
        };
        libc::setrlimit(res, &new);
    };
    if opts.memory_limit > 0 {
        set(
            libc::RLIMIT_AS,
            (opts.memory_limit as u64).saturating_add(ADDRESS_SPACE_HEADROOM),
        );
    } else {
        set(libc::RLIMIT_AS, libc::RLIM_INFINITY);
    }
    set(libc::RLIMIT_NOFILE, 64);
    set(libc::RLIMIT_FSIZE, 1 << 30);
}

/// Address space beyond the Lua memory limit: the executable, LuaJIT's machine
/// code and the allocator's own reservations.
pub const ADDRESS_SPACE_HEADROOM: u64 = 512 << 20;

/// SIGALRM at the exec's deadline; also a CPU-time limit a little beyond it.
struct Alarm;

impl Alarm {
    fn arm(t: Option<Duration>) -> Alarm {
        if let Some(t) = t {
            let it = libc::itimerval {
                it_interval: libc::timeval {
                    tv_sec: 0,
                    tv_usec: 0,
                },
                it_value: libc::timeval {
                    tv_sec: t.as_secs() as libc::time_t,
                    tv_usec: t.subsec_micros().max(1) as libc::suseconds_t,
                },
            };
            unsafe {
                libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut());
                let mut ru: libc::rusage = std::mem::zeroed();
                libc::getrusage(libc::RUSAGE_SELF, &mut ru);
                let used = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) as u64;
                let mut cur = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::getrlimit(libc::RLIMIT_CPU, &mut cur);
                let soft = (used + t.as_secs() + 3).min(cur.rlim_max);
                libc::setrlimit(
                    libc::RLIMIT_CPU,
                    &libc::rlimit {
                        rlim_cur: soft,
                        rlim_max: cur.rlim_max,
                    },
                );
            }
        }
        Alarm
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        let zero: libc::itimerval = unsafe { std::mem::zeroed() };
        unsafe { libc::setitimer(libc::ITIMER_REAL, &zero, std::ptr::null_mut()) };
    }
}

/// A channel operation: the host serves it against the real queue.
fn channel_request(req: &[u8]) -> Result<Vec<u8>, String> {
    protocol::write_all_fd(out_fd(), &protocol::frame(protocol::CHANNEL_OP, req))
        .map_err(|e| e.to_string())?;
    match protocol::read_frame_deadline(in_fd(), None) {
        Ok((protocol::CHANNEL_REPLY, reply)) => Ok(reply),
        Ok((tag, _)) => Err(format!(
            "unexpected frame {tag} while waiting for a channel reply"
        )),
        Err(ReadError::Io(e)) => Err(e.to_string()),
        Err(other) => Err(format!("{other:?}")),
    }
}

/// `require` in a standard child asks the host, which reads package_path:
/// the child itself never opens files.
fn fetch_module(name: &str) -> Result<Option<(String, Vec<u8>)>, String> {
    let mut payload = Vec::new();
    put_bytes(&mut payload, name.as_bytes());
    protocol::write_all_fd(
        out_fd(),
        &protocol::frame(protocol::MODULE_REQUEST, &payload),
    )
    .map_err(|e| e.to_string())?;
    let (tag, reply) = protocol::read_frame_deadline(in_fd(), None).map_err(|e| match e {
        ReadError::Io(e) => e.to_string(),
        other => format!("{other:?}"),
    })?;
    if tag != protocol::MODULE_SOURCE {
        return Err(format!("unexpected frame {tag} while waiting for a module"));
    }
    let mut r = Reader::new(&reply);
    match r.u8()? {
        1 => Ok(Some((r.string()?, r.bytes()?.to_vec()))),
        _ => Err(r.string()?),
    }
}
