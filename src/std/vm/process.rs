//! The process backend, host side: each VM is a `bioxen --vm-child` process
//! speaking the framed protocol over pipes (see protocol.rs and child.rs).
//! A helper thread keeps a small warm pool of started children, so `create`
//! pays only for building the Lua state. A child whose VM ran strict or
//! standard code gets a fresh state and goes back to the pool on close; one
//! that ran trusted code is killed.
//!
//! Death: a timeout the child cannot honour itself (the host waits `timeout +
//! GRACE`), a crash or a kill leaves the VM "dead"; the next exec starts a new
//! process (fresh globals from the options) unless `restart = false`, in which
//! case execs report kind "Dead".
use super::job::{Job, JobShared};
use super::protocol::{self, ReadError};
use super::sandbox::{ExecResult, Level, Options, find_in_path};
use super::value::{Reader, Val, put_bytes};
use super::watchdog::next_id;
use crate::runtime::error::error;
use mlua::{Result as LuaResult, UserData, UserDataMethods};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child as OsChild, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// How long past its timeout a child may take to stop itself before it is killed.
pub const GRACE: Duration = Duration::from_millis(500);

pub struct Proc {
    os: OsChild,
    pub pid: i32,
    stdin: ChildStdin,
    stdout: ChildStdout,
    dir: PathBuf,
}

impl Proc {
    pub fn tx(&self) -> RawFd {
        self.stdin.as_raw_fd()
    }
    pub fn rx(&self) -> RawFd {
        self.stdout.as_raw_fd()
    }

    /// Kills and reaps on a helper thread, then removes the private folder.
    pub fn discard(mut self) {
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        std::thread::spawn(move || {
            let _ = self.os.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        });
    }

    /// Waits (briefly) for a child whose pipe closed, and says how it died.
    pub fn death(mut self) -> (String, String) {
        let deadline = Instant::now() + Duration::from_millis(500);
        let status = loop {
            match self.os.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                _ => {
                    unsafe { libc::kill(self.pid, libc::SIGKILL) };
                    break self.os.wait().ok();
                }
            }
        };
        let _ = std::fs::remove_dir_all(&self.dir);
        match status.and_then(|s| s.signal().map(Ok).or(s.code().map(Err))) {
            Some(Ok(libc::SIGXCPU)) => (
                "Timeout".into(),
                "the VM process used up its CPU time limit and was stopped".into(),
            ),
            Some(Ok(sig)) => (
                "Crashed".into(),
                format!(
                    "the VM process died from signal {sig} ({})",
                    signal_name(sig)
                ),
            ),
            Some(Err(code)) => (
                "Crashed".into(),
                format!("the VM process exited with status {code}"),
            ),
            None => ("Crashed".into(), "the VM process disappeared".into()),
        }
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGSEGV => "segmentation fault",
        libc::SIGABRT => "aborted",
        libc::SIGKILL => "killed",
        libc::SIGBUS => "bus error",
        libc::SIGILL => "illegal instruction",
        libc::SIGFPE => "arithmetic fault",
        libc::SIGTERM => "terminated",
        _ => "signal",
    }
}

/// The folder holding this host's children's private working folders.
fn base_dir() -> PathBuf {
    std::env::temp_dir().join(format!("bioxen-vm-{}", std::process::id()))
}

/// Set once the host is exiting. The pool's spawner thread may be starting a
/// child at that moment: under this lock it either made its folder before the
/// removal or sees the flag and makes none, so no folder outlives the host.
static EXITING: std::sync::Mutex<bool> = std::sync::Mutex::new(false);

extern "C" fn remove_base_dir() {
    let mut exiting = EXITING.lock().unwrap_or_else(|e| e.into_inner());
    *exiting = true;
    let _ = std::fs::remove_dir_all(base_dir());
}

/// Makes a child's private working folder, unless the host is exiting.
fn make_child_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let exiting = EXITING.lock().unwrap_or_else(|e| e.into_inner());
    if *exiting {
        return Err(std::io::Error::other("the host is exiting"));
    }
    std::fs::create_dir_all(dir)
}

/// Removes working folders left by hosts that are gone.
fn clean_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("bioxen-vm-")
            && pid.parse::<u32>().is_ok()
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The driver an external interpreter runs (Lua 5.3+, for string.pack).
const EXTERNAL_DRIVER: &str = include_str!("external_driver.lua");

fn spawn_child() -> std::io::Result<Proc> {
    spawn(None)
}

/// Finds an interpreter by name on the host's PATH.
fn find_executable(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    std::env::var_os("PATH")?
        .to_string_lossy()
        .split(':')
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// A bioxen child (`external` None), or an external interpreter running the
/// driver with the OS limits applied before exec (it cannot apply its own).
fn spawn(external: Option<(&str, &Options)>) -> std::io::Result<Proc> {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = base_dir().join(N.fetch_add(1, Ordering::Relaxed).to_string());
    make_child_dir(&dir)?;
    let cdir = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    unsafe {
        libc::chmod(cdir.as_ptr(), 0o700);
        if libc::getuid() == 0 {
            libc::chown(cdir.as_ptr(), super::child::NOBODY, super::child::NOBODY);
        }
    }
    let mut cmd = match external {
        None => {
            // /proc/self/exe works even after the binary on disk was replaced.
            let mut c = Command::new("/proc/self/exe");
            c.arg("--vm-child").arg(std::process::id().to_string());
            c
        }
        Some((name, _)) => {
            let exe = find_executable(name).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("no Lua interpreter '{name}' on PATH"),
                )
            })?;
            let mut c = Command::new(exe);
            // lua.c refuses an -e argument that starts with "-".
            c.arg("-e").arg(format!("\n{EXTERNAL_DRIVER}"));
            c
        }
    };
    let limits = external.map(|(_, o)| {
        (
            if o.memory_limit > 0 {
                (o.memory_limit as u64).saturating_add(super::child::ADDRESS_SPACE_HEADROOM)
            } else {
                libc::RLIM_INFINITY
            },
            std::process::id() as i32,
        )
    });
    cmd.env_clear()
        // mimalloc (the global allocator) reserves 1 GiB of address space at a
        // time; under the child's RLIMIT_AS that left LuaJIT no room for
        // machine code, so the JIT stopped (fib 9x slower). Reserve in small steps.
        .env("MIMALLOC_ARENA_RESERVE", "8MiB")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    unsafe {
        cmd.pre_exec(move || {
            // Own session: a terminal's Ctrl-C goes to the host, not to VMs.
            libc::setsid();
            // No inherited descriptors beyond 0, 1 and 2.
            const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
            if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) != 0 {
                for fd in 3..4096 {
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            if let Some((address_space, parent)) = limits {
                let lim = |r, v| {
                    libc::setrlimit(
                        r,
                        &libc::rlimit {
                            rlim_cur: v,
                            rlim_max: v,
                        },
                    )
                };
                lim(libc::RLIMIT_AS, address_space);
                lim(libc::RLIMIT_NOFILE, 64);
                lim(libc::RLIMIT_CORE, 0);
                lim(libc::RLIMIT_FSIZE, 1 << 30);
                if libc::getuid() == 0 {
                    libc::setgroups(0, std::ptr::null());
                    if libc::setgid(super::child::NOBODY) != 0
                        || libc::setuid(super::child::NOBODY) != 0
                    {
                        libc::_exit(71);
                    }
                }
                lim(libc::RLIMIT_NPROC, 0);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                if libc::getppid() != parent {
                    libc::_exit(0);
                }
            } else {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            }
            Ok(())
        });
    }
    let mut os = cmd.spawn()?;
    let stdin = os.stdin.take().unwrap();
    let stdout = os.stdout.take().unwrap();
    Ok(Proc {
        pid: os.id() as i32,
        os,
        stdin,
        stdout,
        dir,
    })
}

/// External interpreters are started on the spawner thread too (death signal).
fn spawn_external(exe: &str, opts: &Options) -> std::io::Result<Proc> {
    let s = spawner();
    let (tx, rx) = mpsc::channel();
    let _ =
        s.tx.lock()
            .unwrap()
            .send(Req::External(exe.to_string(), Box::new(opts.clone()), tx));
    rx.recv()
        .unwrap_or_else(|_| Err(std::io::Error::other("the VM spawner thread is gone")))
}

enum Req {
    External(String, Box<Options>, mpsc::Sender<std::io::Result<Proc>>),
    Spawn(mpsc::Sender<std::io::Result<Proc>>),
    Refill,
}

/// The warm pool and the long-lived thread that starts every child (the
/// death signal follows the thread that forked, so it must never exit).
struct Spawner {
    tx: Mutex<mpsc::Sender<Req>>,
    pool: Mutex<Vec<Proc>>,
    target: AtomicUsize,
}

fn spawner() -> &'static Spawner {
    static S: OnceLock<&'static Spawner> = OnceLock::new();
    S.get_or_init(|| {
        clean_stale();
        unsafe { libc::atexit(remove_base_dir) };
        let (tx, rx) = mpsc::channel::<Req>();
        let s: &'static Spawner = Box::leak(Box::new(Spawner {
            tx: Mutex::new(tx),
            pool: Mutex::new(Vec::new()),
            target: AtomicUsize::new(2),
        }));
        std::thread::Builder::new()
            .name("bioxen-vm-spawner".into())
            .spawn(move || {
                for req in rx {
                    match req {
                        Req::Spawn(reply) => {
                            let _ = reply.send(spawn_child());
                        }
                        Req::External(exe, opts, reply) => {
                            let _ = reply.send(spawn(Some((&exe, &opts))));
                        }
                        Req::Refill => loop {
                            let need =
                                s.pool.lock().unwrap().len() < s.target.load(Ordering::Relaxed);
                            if !need {
                                break;
                            }
                            match spawn_child() {
                                Ok(p) => s.pool.lock().unwrap().push(p),
                                Err(_) => break,
                            }
                        },
                    }
                }
            })
            .expect("start the VM spawner thread");
        s
    })
}

/// Sets the warm pool size (0 turns it off) and fills it.
pub fn set_pool_size(n: usize) {
    let s = spawner();
    s.target.store(n, Ordering::Relaxed);
    let extra: Vec<Proc> = {
        let mut pool = s.pool.lock().unwrap();
        let keep = pool.len().min(n);
        pool.drain(keep..).collect()
    };
    for p in extra {
        p.discard();
    }
    let _ = s.tx.lock().unwrap().send(Req::Refill);
}

fn acquire() -> std::io::Result<Proc> {
    let s = spawner();
    // The oldest child first: a child just given back is still closing its
    // last state and building a spare one (taking it made `create` wait).
    let pooled = {
        let mut pool = s.pool.lock().unwrap();
        (!pool.is_empty()).then(|| pool.remove(0))
    };
    let _ = s.tx.lock().unwrap().send(Req::Refill);
    if let Some(p) = pooled {
        return Ok(p);
    }
    let (tx, rx) = mpsc::channel();
    let _ = s.tx.lock().unwrap().send(Req::Spawn(tx));
    rx.recv()
        .unwrap_or_else(|_| Err(std::io::Error::other("the VM spawner thread is gone")))
}

/// Starts a child for an interactive session (src/std/session/process.rs).
/// A session's process: its channels and grants are registered under `key`
/// (see `crate::library::net::child::register`), not under the VM id.
pub fn start_session(opts: &Options, key: &str) -> Result<Proc, String> {
    start(opts, key)
}

/// Starts (or takes from the pool) a child and builds its VM state.
/// Starts (or takes from the pool) a child and builds its VM state; its
/// networking and channels are those registered under `key`.
fn start(opts: &Options, key: &str) -> Result<Proc, String> {
    let mut last = String::new();
    for _ in 0..2 {
        let p = match &opts.lua_executable {
            Some(exe) => spawn_external(exe, opts),
            None => acquire(),
        }
        .map_err(|e| format!("cannot start a VM process: {e}"))?;
        let mut payload = Vec::new();
        opts.encode(&mut payload);
        // networked/grants/channels (bioxen.net, bioxen.channel)
        payload.extend(crate::library::net::child::init_payload(key));
        if protocol::write_all_fd(p.tx(), &protocol::frame(protocol::INIT, &payload)).is_err() {
            last = p.death().1;
            continue;
        }
        match protocol::read_frame_deadline(p.rx(), Some(Instant::now() + Duration::from_secs(10)))
        {
            Ok((protocol::READY, _)) => return Ok(p),
            Ok((_, msg)) => {
                let m = String::from_utf8_lossy(&msg).into_owned();
                p.discard();
                return Err(m);
            }
            Err(_) => last = p.death().1,
        }
    }
    Err(format!("cannot start a VM process: {last}"))
}

enum Work {
    Exec(Vec<u8>),
    Call(String, Vec<Val>),
}

pub struct ProcShared {
    pub id: String,
    /// Where this VM's networking and channels are registered
    /// (`crate::library::net::child::register`), apart from any other VM's.
    extras_key: String,
    opts: Options,
    restart: bool,
    proc: Mutex<Option<Proc>>,
    closed: AtomicBool,
    pid: AtomicI32,
    busy: AtomicUsize,
    queued: AtomicUsize,
    current_job: AtomicU64,
    last_death: Mutex<Option<String>>,
}

impl ProcShared {
    /// Runs work; `cancelled` is the job's flag. The canceller sets it, then
    /// signals the child if `current_job` is this job; here `current_job` is
    /// set, then the flag checked: whichever comes second sees the other.
    fn run(&self, work: &Work, job_id: u64, cancelled: Option<&AtomicBool>) -> ExecResult {
        let began = Instant::now();
        let mut g = self.proc.lock().unwrap();
        if self.closed.load(Ordering::SeqCst) {
            return ExecResult::failure("Closed", format!("VM {} is closed", self.id));
        }
        if g.is_none() {
            if !self.restart {
                let why = self.last_death.lock().unwrap().clone().unwrap_or_default();
                return ExecResult::failure(
                    "Dead",
                    format!(
                        "VM {} is dead ({why}) and restart = false; create a new VM",
                        self.id
                    ),
                );
            }
            match start(&self.opts, &self.extras_key) {
                Ok(p) => {
                    self.pid.store(p.pid, Ordering::SeqCst);
                    *g = Some(p);
                }
                Err(e) => return ExecResult::failure("Crashed", e),
            }
        }
        let p = g.as_mut().unwrap();
        self.busy.fetch_add(1, Ordering::SeqCst);
        self.current_job.store(job_id, Ordering::SeqCst);
        if cancelled.is_some_and(|c| c.load(Ordering::SeqCst)) {
            self.current_job.store(0, Ordering::SeqCst);
            self.busy.fetch_sub(1, Ordering::SeqCst);
            return ExecResult::failure("Cancelled", "the job was cancelled before it started");
        }
        let frame = match work {
            Work::Exec(code) => protocol::frame(protocol::EXEC, code),
            Work::Call(name, args) => {
                let mut payload = Vec::new();
                put_bytes(&mut payload, name.as_bytes());
                payload.extend_from_slice(&(args.len() as u32).to_le_bytes());
                for a in args {
                    a.encode(&mut payload);
                }
                protocol::frame(protocol::CALL, &payload)
            }
        };
        // A bioxen child stops itself at its timeout (the VM survives); the
        // host kills it GRACE later. An external interpreter is killed on time.
        let grace = if self.opts.lua_executable.is_some() {
            Duration::ZERO
        } else {
            GRACE
        };
        let deadline = super::watchdog::secs(self.opts.timeout).map(|t| Instant::now() + t + grace);
        let outcome = self.exchange(p, &frame, deadline);
        self.current_job.store(0, Ordering::SeqCst);
        self.busy.fetch_sub(1, Ordering::SeqCst);
        let r = match outcome {
            Ok(r) => return r,
            Err(ReadError::Timeout) => {
                let p = g.take().unwrap();
                p.discard();
                ExecResult::failure(
                    "Timeout",
                    format!(
                        "the exec ran longer than its timeout of {} s and did not stop, so the VM process was killed",
                        self.opts.timeout
                    ),
                )
            }
            Err(_) => {
                let p = g.take().unwrap();
                let (kind, message) = p.death();
                let message = if self.closed.load(Ordering::SeqCst) {
                    format!("VM {} was closed while running", self.id)
                } else {
                    message
                };
                ExecResult::failure(&kind, message)
            }
        };
        self.pid.store(0, Ordering::SeqCst);
        *self.last_death.lock().unwrap() = r.error.clone();
        ExecResult {
            duration: began.elapsed().as_secs_f64(),
            ..r
        }
    }

    fn exchange(
        &self,
        p: &Proc,
        frame: &[u8],
        deadline: Option<Instant>,
    ) -> Result<ExecResult, ReadError> {
        protocol::write_all_fd(p.tx(), frame).map_err(|_| ReadError::Closed)?;
        loop {
            let (tag, payload) = protocol::read_frame_deadline(p.rx(), deadline)?;
            match tag {
                protocol::RESULT => {
                    return ExecResult::decode(&mut Reader::new(&payload)).map_err(|e| {
                        ReadError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
                    });
                }
                protocol::MODULE_REQUEST => {
                    let name = Reader::new(&payload).string().unwrap_or_default();
                    let mut reply = Vec::new();
                    match find_in_path(&self.opts.package_path, &name) {
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
                    protocol::write_all_fd(
                        p.tx(),
                        &protocol::frame(protocol::MODULE_SOURCE, &reply),
                    )
                    .map_err(|_| ReadError::Closed)?;
                }
                protocol::CHANNEL_OP => {
                    let reply =
                        crate::library::net::child::serve_channel(&self.extras_key, &payload);
                    protocol::write_all_fd(
                        p.tx(),
                        &protocol::frame(protocol::CHANNEL_REPLY, &reply),
                    )
                    .map_err(|_| ReadError::Closed)?;
                }
                _ => return Err(ReadError::Closed),
            }
        }
    }

    fn status(&self) -> &'static str {
        if self.closed.load(Ordering::SeqCst) {
            return "dead";
        }
        if self.busy.load(Ordering::SeqCst) + self.queued.load(Ordering::SeqCst) > 0 {
            return "busy";
        }
        match self.proc.try_lock() {
            Ok(g) if g.is_none() => "dead",
            Ok(_) => "idle",
            Err(_) => "busy",
        }
    }

    fn close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        // its channels are no longer held for it
        crate::library::net::child::register(&self.extras_key, Default::default());
        match self.proc.try_lock() {
            Ok(mut g) => {
                if let Some(p) = g.take() {
                    if self.opts.lua_executable.is_some() {
                        p.discard();
                    } else {
                        recycle(p, self.opts.sandbox);
                    }
                }
            }
            Err(_) => {
                // Busy: kill it; the running exec reports the VM closed.
                let pid = self.pid.load(Ordering::SeqCst);
                if pid > 0 {
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        self.pid.store(0, Ordering::SeqCst);
    }

    fn submit(self: &Arc<Self>, work: Work) -> Arc<JobShared> {
        let job = JobShared::new(next_id());
        let (id, weak) = (job.id, Arc::downgrade(self));
        job.set_canceller(Box::new(move || {
            let Some(me) = weak.upgrade() else { return };
            let pid = me.pid.load(Ordering::SeqCst);
            if me.current_job.load(Ordering::SeqCst) != id || pid <= 0 {
                return;
            }
            unsafe { libc::kill(pid, libc::SIGUSR1) };
            // Escalate: a child stuck in a C function ignores the hook.
            let weak = Arc::downgrade(&me);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(1));
                if let Some(me) = weak.upgrade()
                    && me.current_job.load(Ordering::SeqCst) == id
                {
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            });
        }));
        // Busy from submission on, not only once the job's thread runs.
        self.queued.fetch_add(1, Ordering::SeqCst);
        let (me, j) = (self.clone(), job.clone());
        std::thread::Builder::new()
            .name("bioxen-vm-job".into())
            .spawn(move || {
                let r = if j.cancelled.load(Ordering::SeqCst) {
                    ExecResult::failure("Cancelled", "the job was cancelled before it started")
                } else {
                    me.run(&work, j.id, Some(&j.cancelled))
                };
                me.queued.fetch_sub(1, Ordering::SeqCst);
                j.complete(r);
            })
            .expect("start a VM job thread");
        job
    }
}

/// Back to the warm pool with a fresh state, or killed.
fn recycle(p: Proc, level: Level) {
    let s = spawner();
    // Up to twice the target: a recycled child is cheaper than a new one.
    let room = s.pool.lock().unwrap().len() < 2 * s.target.load(Ordering::Relaxed).max(1);
    if level != Level::Trusted
        && room
        && protocol::write_all_fd(p.tx(), &protocol::frame(protocol::RESET, &[])).is_ok()
    {
        s.pool.lock().unwrap().push(p);
    } else {
        p.discard();
    }
}

pub struct ProcessVm(pub Arc<ProcShared>);

impl Drop for ProcessVm {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// A process VM whose networking and channels were registered under `extras_key`.
pub fn create(opts: Options, restart: bool, extras_key: String) -> LuaResult<ProcessVm> {
    let p = start(&opts, &extras_key).map_err(|e| error("Crashed", e))?;
    Ok(ProcessVm(Arc::new(ProcShared {
        id: opts.id.clone(),
        extras_key,
        pid: AtomicI32::new(p.pid),
        proc: Mutex::new(Some(p)),
        opts,
        restart,
        closed: AtomicBool::new(false),
        busy: AtomicUsize::new(0),
        queued: AtomicUsize::new(0),
        current_job: AtomicU64::new(0),
        last_death: Mutex::new(None),
    })))
}

fn check_open(s: &ProcShared) -> LuaResult<()> {
    if s.closed.load(Ordering::SeqCst) {
        return Err(error(
            "Closed",
            format!("VM {} is closed; create a new one with vm.create", s.id),
        ));
    }
    Ok(())
}

impl UserData for ProcessVm {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("exec", |lua, this, code: mlua::LuaString| {
            check_open(&this.0)?;
            this.0
                .run(&Work::Exec(code.as_bytes().to_vec()), next_id(), None)
                .to_lua(lua)
        });
        methods.add_method("exec_async", |_, this, code: mlua::LuaString| {
            check_open(&this.0)?;
            Ok(Job(this.0.submit(Work::Exec(code.as_bytes().to_vec()))))
        });
        methods.add_method(
            "call",
            |lua, this, (name, args): (String, mlua::MultiValue)| {
                check_open(&this.0)?;
                let args = super::copy_args(&args)?;
                this.0
                    .run(&Work::Call(name, args), next_id(), None)
                    .to_lua(lua)
            },
        );
        methods.add_method(
            "call_async",
            |_, this, (name, args): (String, mlua::MultiValue)| {
                check_open(&this.0)?;
                let args = super::copy_args(&args)?;
                Ok(Job(this.0.submit(Work::Call(name, args))))
            },
        );
        methods.add_method("status", |_, this, ()| Ok(this.0.status()));
        methods.add_method("close", |_, this, ()| {
            this.0.close();
            Ok(())
        });
        methods.add_method("pid", |_, this, ()| {
            let pid = this.0.pid.load(Ordering::SeqCst);
            Ok((pid > 0).then_some(pid))
        });
    }
}
