//! `bioxen.lrs` native half: the durable spool, the background sender, the
//! automatic-records hook ([`events`]) and raw HTTP for queries. Statement
//! building and xAPI validation are in `stdlib/bioxen/lrs.lua`.
pub mod events;
pub mod journal;
pub mod sender;
pub mod spool;

use crate::runtime::{
    builder::LibraryBuilder,
    error::{BioxenError, error},
    paths,
};
use events::{Event, Origin, kind};
use journal::Journal;
use mlua::{Lua, LuaSerdeExt, Result as LuaResult, Table, Value};
use sender::{Settings, Shared};
use serde_json::{Value as Json, json};
use spool::{Spool, Writer};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub fn module(lua: &Lua) -> LuaResult<Table> {
    LibraryBuilder::new(lua)
        .function("configure", |lua, text: String| configure(lua, &text))
        .function("settings", |lua, ()| settings_table(lua))
        .async_function("enqueue", |_, lines: Vec<String>| enqueue(lines))
        .async_function("flush", |_, timeout: Option<f64>| flush(timeout))
        .function("status", |lua, ()| status(lua))
        .function("pending", |_, n: Option<usize>| {
            Ok(pending_tail(n.unwrap_or(10)))
        })
        .function("rejected", |lua, ()| {
            let r = lrs().spool.rejected();
            lua.to_value(&r)
        })
        .async_function(
            "request",
            |_, (method, target, body): (String, String, Option<String>)| {
                request(method, target, body)
            },
        )
        .function("uuid", |_, ()| Ok(uuid::Uuid::new_v4().to_string()))
        .function("now", |_, ()| Ok(events::now_iso()))
        .function("registration", |_, ()| Ok(events::registration()))
        .function("record", |_, on: Option<bool>| {
            if let Some(on) = on {
                let l = lrs();
                let mut st = l.shared.state.lock().unwrap();
                let mut s = (*st.settings).clone();
                s.record = on;
                st.settings = Arc::new(s);
                refresh_state(&st.settings);
            }
            Ok(events::enabled())
        })
        .function("default_actor", |lua, ()| lua.to_value(&default_actor()))
        .function("_sync_recorder", |_, ()| {
            sync_recorder(Duration::from_secs(60));
            Ok(())
        })
        // Hooks for Lua halves of other libraries (bioxen.vm): cheap no-ops when off.
        // vm_created returns a token (nil when recording is off): the VM is then
        // also recorded as closed when it is collected or still open at exit.
        .function("hook_vm_created", |_, (vm, kind): (Value, Value)| {
            if !events::enabled() {
                return Ok(None);
            }
            let vm = text(&vm);
            events::record(Event::VmCreated {
                vm: vm.clone(),
                kind: text(&kind),
            });
            let l = lrs();
            let mut live = l.live_vms.lock().unwrap();
            live.0 += 1;
            let token = live.0;
            live.1.insert(token, (vm, Instant::now()));
            Ok(Some(token))
        })
        .function(
            "hook_vm_closed",
            |_, (vm, lifetime, token, by): (Value, Option<f64>, Option<u64>, Option<String>)| {
                let by = by.unwrap_or_else(|| "close".into());
                if let Some(token) = token {
                    // Recorded once: by close, by the collector or at exit, whichever comes first.
                    let Some((id, born)) = lrs().live_vms.lock().unwrap().1.remove(&token) else {
                        return Ok(());
                    };
                    events::record(Event::VmClosed {
                        vm: id,
                        lifetime: born.elapsed(),
                        closed_by: by,
                    });
                } else if events::enabled() {
                    events::record(Event::VmClosed {
                        vm: text(&vm),
                        lifetime: Duration::from_secs_f64(lifetime.unwrap_or(0.0).max(0.0)),
                        closed_by: by,
                    });
                }
                Ok(())
            },
        )
        .function(
            "hook_event",
            |_, (name, a, b, c, d): (String, Value, Value, Value, Value)| {
                if !events::enabled() {
                    return Ok(());
                }
                let (a, b, c) = (text(&a), text(&b), text(&c));
                let ev = match name.as_str() {
                    "session_attached" => Event::SessionAttached {
                        session: a,
                        target: b,
                    },
                    "session_detached" => Event::SessionDetached {
                        session: a,
                        target: b,
                    },
                    "package_installed" => Event::PackageInstalled {
                        name: a,
                        version: b,
                        hash: (!d.is_nil()).then(|| text(&d)),
                        target: c,
                    },
                    "package_removed" => Event::PackageRemoved {
                        name: a,
                        version: b,
                        target: c,
                    },
                    "guest_deployed" => Event::GuestDeployed {
                        pool: a,
                        guest: b,
                        template: c,
                    },
                    "guest_destroyed" => Event::GuestDestroyed { pool: a, guest: b },
                    other => {
                        return Err(error(
                            "Argument",
                            format!("no automatic record named {other:?}"),
                        ));
                    }
                };
                events::record(ev);
                Ok(())
            },
        )
        // The exec and call hooks are on the path of every VM exec: plain C
        // functions reading the Lua stack, so no argument is converted or referenced.
        .value("hook_code_executed", unsafe {
            lua.create_c_function(hook_code_executed)?
        })
        .value("hook_function_called", unsafe {
            lua.create_c_function(hook_function_called)?
        })
        .function("_bench_record", |_, (n, code): (u64, String)| {
            // Time of `n` automatic records of a code execution, in seconds.
            let start = Instant::now();
            for _ in 0..n {
                if events::enabled() {
                    submit_raw(
                        kind::CODE_EXECUTED,
                        &[b"bench", code.as_bytes(), b""],
                        &[1, 10_000, 0],
                    );
                }
            }
            Ok(start.elapsed().as_secs_f64())
        })
        .build()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string_lossy(),
        Value::Nil => String::new(),
        other => other.to_string().unwrap_or_default(),
    }
}

unsafe extern "C-unwind" fn hook_code_executed(state: *mut mlua::ffi::lua_State) -> libc::c_int {
    unsafe { exec_hook(state, kind::CODE_EXECUTED) }
}

unsafe extern "C-unwind" fn hook_function_called(state: *mut mlua::ffi::lua_State) -> libc::c_int {
    unsafe { exec_hook(state, kind::FUNCTION_CALLED) }
}

/// `(vm_id, code_or_function_name, result)`: records a VM exec or call from its
/// result table { ok, duration, stdout, stderr, kind }. The strings are read in
/// place on the Lua stack and copied once, into the journal; nothing is built,
/// hashed or allocated here.
unsafe fn exec_hook(state: *mut mlua::ffi::lua_State, kind: u8) -> libc::c_int {
    use mlua::ffi;
    unsafe fn bytes<'a>(state: *mut ffi::lua_State, idx: libc::c_int) -> &'a [u8] {
        let mut len = 0usize;
        let p = unsafe { ffi::lua_tolstring(state, idx, &mut len) };
        if p.is_null() {
            &[]
        } else {
            unsafe { std::slice::from_raw_parts(p.cast(), len) }
        }
    }
    let on = std::panic::catch_unwind(events::enabled).unwrap_or(false);
    unsafe {
        if !on || ffi::lua_type(state, 3) != ffi::LUA_TTABLE {
            return 0;
        }
        let vm = if ffi::lua_type(state, 1) == ffi::LUA_TNIL {
            &[][..]
        } else {
            bytes(state, 1)
        };
        let code = bytes(state, 2);
        ffi::lua_getfield(state, 3, c"ok".as_ptr());
        let success = ffi::lua_toboolean(state, -1) != 0;
        ffi::lua_getfield(state, 3, c"duration".as_ptr());
        let duration = ffi::lua_tonumber(state, -1);
        let mut output = 0u64;
        for key in [c"stdout", c"stderr"] {
            if ffi::lua_getfield(state, 3, key.as_ptr()) == ffi::LUA_TSTRING {
                output += ffi::lua_objlen(state, -1) as u64;
            }
        }
        let failure: &[u8] = if success {
            b""
        } else if ffi::lua_getfield(state, 3, c"kind".as_ptr()) == ffi::LUA_TSTRING {
            bytes(state, -1)
        } else {
            b"Runtime"
        };
        let nums = [success as u64, (duration.max(0.0) * 1e9) as u64, output];
        let _ = std::panic::catch_unwind(|| submit_raw(kind, &[vm, code, failure], &nums));
    }
    0
}

struct Lrs {
    spool: Arc<Spool>,
    writer: Mutex<Writer>,
    shared: Arc<Shared>,
    events: Arc<Recorder>,
    pid: u32,
    /// VMs recorded as created and not yet as closed: token -> (id, created).
    live_vms: Mutex<(u64, LiveVms)>,
}

/// Token -> (VM id, created).
type LiveVms = HashMap<u64, (String, Instant)>;

static LRS: OnceLock<Lrs> = OnceLock::new();

fn lrs() -> &'static Lrs {
    LRS.get_or_init(|| {
        let spool = Arc::new(Spool::new(paths::data_dir().join("lrs").join("spool")));
        let shared = Arc::new(Shared::default());
        let settings = load_settings();
        refresh_state(&settings);
        let has_endpoint = settings.endpoint.is_some();
        shared.state.lock().unwrap().settings = Arc::new(settings);
        let recorder_state = Arc::new(Recorder::default());
        let rx = recorder_state.clone();
        let l = Lrs {
            writer: Mutex::new(spool.writer()),
            spool: spool.clone(),
            shared: shared.clone(),
            events: recorder_state,
            pid: std::process::id(),
            live_vms: Mutex::new((0, HashMap::new())),
        };
        recover(&spool, &l.writer);
        std::thread::Builder::new()
            .name("bioxen-lrs-recorder".into())
            .spawn(move || recorder(rx))
            .expect("start the LRS recorder thread");
        if has_endpoint {
            sender::start(spool, shared);
        }
        // Runs on every way out (end of script, os.exit, std::process::exit).
        unsafe { libc::atexit(exit_handler) };
        l
    })
}

/// First use of the hook: reads the configuration; true when recording is on.
pub(crate) fn init_from_config() -> bool {
    lrs();
    events::STATE.load(Ordering::Relaxed) == 2
}

fn refresh_state(s: &Settings) {
    let on = s.endpoint.is_some() && s.record;
    events::STATE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
}

/// Events waiting for the recorder thread: records in this process's journal
/// (durable against a crash of bioxen as soon as they are written), or in
/// memory when the journal is full or cannot be made. Producers write under an
/// uncontended mutex and wake the recorder only when it is parked, so a burst
/// of records costs no system call on the recording thread.
#[derive(Default)]
struct Recorder {
    queue: Mutex<Queue>,
    cond: std::sync::Condvar,
}

#[derive(Default)]
struct Queue {
    journal: Option<Journal>,
    /// Whether making the journal was tried (once per process).
    tried: bool,
    /// Seed of statement ids (the journal's, so recovery finds the same ids).
    seed: u128,
    seq: u64,
    /// Encoded records that are not in the journal.
    overflow: Vec<u8>,
    syncs: Vec<mpsc::SyncSender<()>>,
    parked: bool,
}

impl Recorder {
    fn push(&self, f: impl FnOnce(&mut Queue)) {
        let mut q = self.queue.lock().unwrap();
        f(&mut q);
        if q.parked {
            q.parked = false;
            drop(q);
            self.cond.notify_one();
        }
    }
}

/// Records an event given as a journal record (see [`journal`]): kind,
/// strings, numbers. The caller's only cost is copying them into the journal.
pub(crate) fn submit_raw(kind: u8, strs: &[&[u8]], nums: &[u64]) {
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let l = lrs();
    l.events.push(|q| {
        if !q.tried {
            q.tried = true;
            let actor = current_actor();
            match Journal::create(l.spool.dir(), events::registration(), &actor) {
                Ok(j) => {
                    q.seed = j.seed;
                    q.journal = Some(j);
                }
                Err(e) => {
                    q.seed = uuid::Uuid::new_v4().as_u128();
                    tracing::warn!(target: "bioxen::lrs", "no journal for automatic records ({e}): they are kept in memory until spooled");
                }
            }
        }
        q.seq += 1;
        let seq = q.seq;
        if !q
            .journal
            .as_mut()
            .is_some_and(|j| j.put(kind, seq, at, strs, nums))
        {
            let start = q.overflow.len();
            q.overflow
                .resize(start + journal::record_len(strs, nums), 0);
            journal::encode(&mut q.overflow[start..], kind, seq, at, strs, nums);
        }
    });
}

fn current_actor() -> String {
    lrs()
        .shared
        .state
        .lock()
        .unwrap()
        .settings
        .actor
        .clone()
        .unwrap_or_else(default_actor)
        .to_string()
}

/// Statements (compact JSON, one per line) for encoded records, with ids
/// from `seed`, appended to `out`; returns how many.
fn statements_of(records: &[u8], seed: u128, origin: &Origin, out: &mut String) -> usize {
    let mut n = 0;
    let mut id = uuid::Uuid::encode_buffer();
    for r in journal::decode(records) {
        let Some(ev) = Event::from_record(r.kind, &r.strs, &r.nums) else {
            tracing::error!(target: "bioxen::lrs", "unknown automatic record kind {}", r.kind);
            continue;
        };
        let id = journal::statement_id(seed, r.seq)
            .hyphenated()
            .encode_lower(&mut id);
        let at = UNIX_EPOCH + Duration::from_nanos(r.at_nanos);
        events::write_statement(out, &ev, origin, id, at);
        out.push('\n');
        n += 1;
    }
    n
}

/// The recorder thread: builds statements for journaled events and spools
/// them in groups (one sync per group), then advances the journal and waits
/// 10 ms to let the next group gather.
fn recorder(rec: Arc<Recorder>) {
    // Background work: lower priority, so that on a busy machine the operations
    // being recorded get the CPU first (Linux: nice applies per thread).
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
    // Fault injection for the tests: hold each group back this long, so that a
    // kill lands while the records are only in the journal.
    let hold = std::env::var("BIOXEN_LRS_TEST_RECORDER_HOLD_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis);
    let mut lines = String::new();
    loop {
        let actor = current_actor();
        let (records, upto, overflow, syncs, seed) = {
            let mut q = rec.queue.lock().unwrap();
            while q.journal.as_ref().is_none_or(Journal::is_empty)
                && q.overflow.is_empty()
                && q.syncs.is_empty()
            {
                q.parked = true;
                q = rec.cond.wait(q).unwrap();
            }
            q.parked = false;
            let (records, upto) = match q.journal.as_mut() {
                Some(j) => {
                    j.set_actor(&actor);
                    j.unconsumed()
                }
                None => ([&[][..]; 2], 0),
            };
            (
                records,
                upto,
                std::mem::take(&mut q.overflow),
                std::mem::take(&mut q.syncs),
                q.seed,
            )
        };
        if let Some(h) = hold {
            std::thread::sleep(h);
        }
        let l = lrs();
        let origin = Origin::here(actor);
        lines.clear();
        let mut count = 0;
        for part in records {
            count += statements_of(part, seed, &origin, &mut lines);
        }
        count += statements_of(&overflow, seed, &origin, &mut lines);
        let mut failed = false;
        if count > 0 {
            match l.writer.lock().unwrap().append_lines(lines.as_bytes()) {
                Ok(()) => {
                    let mut q = rec.queue.lock().unwrap();
                    if let Some(j) = q.journal.as_mut() {
                        j.consumed(upto);
                    }
                }
                Err(e) => {
                    // They stay in the journal (and in memory) for the next try or run.
                    tracing::error!(target: "bioxen::lrs", "cannot spool {count} automatic records: {e}");
                    let mut q = rec.queue.lock().unwrap();
                    let newer = std::mem::replace(&mut q.overflow, overflow);
                    q.overflow.extend_from_slice(&newer);
                    failed = true;
                }
            }
            l.shared.wake();
        }
        for s in syncs {
            let _ = s.send(());
        }
        if failed {
            std::thread::sleep(Duration::from_secs(1));
        } else if count > 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Spools the automatic records left in the journals of processes that died
/// (killed before their recorder spooled them), then removes those journals.
fn recover(spool: &Spool, writer: &Mutex<Writer>) {
    let orphans = journal::orphans(spool.dir());
    if orphans.is_empty() {
        return;
    }
    let fallback_actor = std::cell::OnceCell::new();
    for o in orphans {
        let mut lines = Vec::new();
        if !o.records.is_empty() {
            // Killed between the spool's sync and the journal's update, the dead
            // recorder may have spooled some already: skip ids its segments hold.
            let tag = format!("-{}-", o.pid);
            let spooled: Vec<String> = spool
                .segments()
                .into_iter()
                .filter(|s| s.contains(&tag))
                .filter_map(|s| {
                    std::fs::read_to_string(spool.dir().join(format!("{s}.jsonl"))).ok()
                })
                .collect();
            let actor = if o.actor.starts_with('{') {
                o.actor.clone()
            } else {
                fallback_actor
                    .get_or_init(|| {
                        load_settings()
                            .actor
                            .unwrap_or_else(default_actor)
                            .to_string()
                    })
                    .clone()
            };
            let origin = Origin {
                actor,
                registration: o.registration.clone(),
                pid: o.pid as u64,
            };
            for r in &o.records {
                let id = journal::statement_id(o.seed, r.seq).to_string();
                let needle = format!("{{\"id\":\"{id}\"");
                if spooled.iter().any(|text| text.contains(&needle)) {
                    continue;
                }
                let Some(ev) = Event::from_record(r.kind, &r.strs, &r.nums) else {
                    continue;
                };
                let at = UNIX_EPOCH + Duration::from_nanos(r.at_nanos);
                lines.push(events::statement_json(&ev, &origin, &id, at));
            }
        }
        if let Err(e) = writer.lock().unwrap().append(&lines) {
            tracing::error!(target: "bioxen::lrs", "cannot recover the automatic records of {}: {e}", o.path.display());
            continue;
        }
        if !lines.is_empty() {
            tracing::info!(target: "bioxen::lrs", "recovered {} automatic record(s) of process {} from its journal", lines.len(), o.pid);
        }
        let _ = std::fs::remove_file(&o.path);
    }
}

/// Waits until the recorder has spooled every event submitted so far.
fn sync_recorder(timeout: Duration) {
    let Some(l) = LRS.get() else { return };
    let (tx, rx) = mpsc::sync_channel(1);
    l.events.push(|q| q.syncs.push(tx));
    let _ = rx.recv_timeout(timeout);
}

fn user_name() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| format!("uid{}", unsafe { libc::getuid() }))
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(0);
    if ok && end > 0 {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "localhost".into()
    }
}

/// The actor when none is configured: the local user on this host.
pub fn default_actor() -> Json {
    let user = user_name();
    json!({
        "objectType": "Agent",
        "name": user,
        "account": { "homePage": format!("https://bioxen.dev/hosts/{}", host_name()), "name": user },
    })
}

fn base_settings() -> Settings {
    Settings {
        verify_tls: true,
        record: true,
        batch_size: 10_000,
        max_backoff: 2.0,
        exit_timeout: 3.0,
        request_timeout: 60.0,
        ..Settings::default()
    }
}

/// Settings from the config file (`lrs.*`), then BIOXEN_LRS_* variables.
fn load_settings() -> Settings {
    let mut s = base_settings();
    let path = paths::config_dir().join("config.json");
    if let Ok(text) = std::fs::read_to_string(&path) {
        match serde_json::from_str::<Json>(&text) {
            Ok(v) if v["lrs"].is_object() => {
                if let Err(e) = apply(&mut s, &v["lrs"]) {
                    tracing::warn!(target: "bioxen::lrs", "ignoring lrs settings in {}: {e}", path.display());
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(target: "bioxen::lrs", "cannot read {}: {e}", path.display())
            }
        }
    }
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    if let Some(e) = var("BIOXEN_LRS_ENDPOINT") {
        s.endpoint = Some(e);
    }
    if let Some(u) = var("BIOXEN_LRS_USER") {
        s.user = Some(u);
        s.token = None;
    }
    if let Some(p) = var("BIOXEN_LRS_PASSWORD") {
        s.password = Some(p);
    }
    if let Some(t) = var("BIOXEN_LRS_TOKEN") {
        s.token = Some(t);
    }
    s
}

fn apply(s: &mut Settings, v: &Json) -> Result<(), String> {
    let Some(map) = v.as_object() else {
        return Err("lrs settings must be an object".into());
    };
    let string = |k: &str, x: &Json| -> Result<Option<String>, String> {
        match x {
            Json::Null => Ok(None),
            Json::String(s) => Ok(Some(s.clone())),
            _ => Err(format!("lrs.{k} must be a string")),
        }
    };
    let number = |k: &str, x: &Json| {
        x.as_f64()
            .ok_or_else(|| format!("lrs.{k} must be a number"))
    };
    for (k, x) in map {
        match k.as_str() {
            "endpoint" => s.endpoint = string(k, x)?,
            "auth" => {
                s.user = string("auth.user", &x["user"])?;
                s.password = string("auth.password", &x["password"])?;
                s.token = string("auth.token", &x["token"])?;
            }
            "user" => s.user = string(k, x)?,
            "password" => s.password = string(k, x)?,
            "token" => s.token = string(k, x)?,
            "actor" => s.actor = (!x.is_null()).then(|| x.clone()),
            "verify_tls" => s.verify_tls = x.as_bool().ok_or("lrs.verify_tls must be a boolean")?,
            "record" => s.record = x.as_bool().ok_or("lrs.record must be a boolean")?,
            "batch_size" => s.batch_size = number(k, x)?.clamp(1.0, 50_000.0) as usize,
            "max_backoff" => s.max_backoff = number(k, x)?.max(0.01),
            "exit_timeout" => s.exit_timeout = number(k, x)?.max(0.0),
            "request_timeout" => s.request_timeout = number(k, x)?.max(0.01),
            _ => {}
        }
    }
    Ok(())
}

fn configure(lua: &Lua, text: &str) -> LuaResult<Table> {
    let v: Json = serde_json::from_str(text).map_err(|e| error("Argument", e.to_string()))?;
    let l = lrs();
    let spool = l.spool.clone();
    let mut st = l.shared.state.lock().unwrap();
    let mut s = if v["reset"].as_bool() == Some(true) {
        load_settings()
    } else {
        (*st.settings).clone()
    };
    apply(&mut s, &v).map_err(|e| error("Argument", e))?;
    refresh_state(&s);
    let has_endpoint = s.endpoint.is_some();
    st.settings = Arc::new(s);
    st.generation += 1;
    st.stopped = None;
    st.wake = true;
    drop(st);
    l.shared.cond.notify_all();
    if has_endpoint {
        spool.set_last_error(None);
        sender::start(spool, l.shared.clone());
    }
    settings_table(lua)
}

fn settings_table(lua: &Lua) -> LuaResult<Table> {
    let s = lrs().shared.state.lock().unwrap().settings.clone();
    let t = lua.create_table()?;
    t.set("endpoint", s.endpoint.clone())?;
    t.set("user", s.user.clone())?;
    t.set("has_password", s.password.is_some())?;
    t.set("has_token", s.token.is_some())?;
    t.set(
        "actor",
        lua.to_value(&s.actor.clone().unwrap_or_else(default_actor))?,
    )?;
    t.set("verify_tls", s.verify_tls)?;
    t.set("record", s.record)?;
    t.set("batch_size", s.batch_size)?;
    t.set("max_backoff", s.max_backoff)?;
    t.set("exit_timeout", s.exit_timeout)?;
    t.set("request_timeout", s.request_timeout)?;
    t.set("spool", lrs().spool.dir().display().to_string())?;
    Ok(t)
}

async fn enqueue(lines: Vec<String>) -> LuaResult<usize> {
    if let Some(bad) = lines.iter().position(|l| l.contains('\n')) {
        return Err(error(
            "Argument",
            format!("statement {} is not compact JSON", bad + 1),
        ));
    }
    let n = lines.len();
    tokio::task::spawn_blocking(move || {
        let l = lrs();
        l.writer.lock().unwrap().append(&lines)?;
        let has_endpoint = l.shared.state.lock().unwrap().settings.endpoint.is_some();
        if has_endpoint {
            sender::start(l.spool.clone(), l.shared.clone());
        }
        l.shared.wake();
        Ok::<_, std::io::Error>(())
    })
    .await
    .map_err(|e| error("Io", e.to_string()))?
    .map_err(|e| {
        BioxenError::new("Io", format!("cannot write to the LRS spool: {e}"))
            .with("spool", lrs().spool.dir().display().to_string())
            .into_lua_err()
    })?;
    Ok(n)
}

fn json_error(e: Json) -> mlua::Error {
    let kind = e["kind"].as_str().unwrap_or("Lrs").to_string();
    let message = e["message"].as_str().unwrap_or("LRS error").to_string();
    let mut b = BioxenError::new(kind, message);
    if let Json::Object(m) = e {
        for (k, v) in m {
            if k != "kind" && k != "message" {
                b = b.with(&k, v);
            }
        }
    }
    b.into_lua_err()
}

async fn flush(timeout: Option<f64>) -> LuaResult<bool> {
    if let Some(t) = timeout
        && (!t.is_finite() || t < 0.0)
    {
        return Err(error(
            "Argument",
            format!("flush needs a timeout in seconds >= 0, got {t}"),
        ));
    }
    tokio::task::spawn_blocking(move || {
        let deadline = timeout.map(|t| Instant::now() + Duration::from_secs_f64(t));
        sync_recorder(Duration::from_secs(5));
        let l = lrs();
        let ends = l.spool.ends();
        if !l.spool.covered(&ends)
            && l.shared.state.lock().unwrap().settings.endpoint.is_some()
        {
            sender::start(l.spool.clone(), l.shared.clone());
        }
        sender::wait_covered(&l.spool, &l.shared, &ends, deadline, false)?;
        // Refusals since the last flush (even those that happened before this call).
        let mut st = l.shared.state.lock().unwrap();
        let fresh = st.rejected - st.rejected_reported;
        st.rejected_reported = st.rejected;
        if fresh > 0 {
            let mut e = json!({
                "kind": "LrsRejected",
                "message": format!("the LRS refused {fresh} statement(s); they are kept in {}", l.spool.dir().join("rejected.jsonl").display()),
                "rejected": fresh,
            });
            if let Some(last) = &st.last_error {
                e["last_error"] = last.clone();
                if last["kind"] == "LrsConflict" {
                    e["kind"] = json!("LrsConflict");
                }
            }
            return Err(e);
        }
        Ok(true)
    })
    .await
    .map_err(|e| error("Io", e.to_string()))?
    .map_err(json_error)
}

fn status(lua: &Lua) -> LuaResult<Table> {
    sync_recorder(Duration::from_secs(2));
    let l = lrs();
    let (depth, first) = l.spool.depth();
    let t = lua.create_table()?;
    t.set("pending", depth)?;
    let oldest = first
        .and_then(|f| serde_json::from_str::<Json>(&f).ok())
        .and_then(|v| v["timestamp"].as_str().map(str::to_string));
    t.set("oldest", oldest)?;
    t.set("rejected", l.spool.rejected().len())?;
    t.set("spool", l.spool.dir().display().to_string())?;
    let st = l.shared.state.lock().unwrap();
    let last = st.last_error.clone().or_else(|| l.spool.last_error());
    t.set("last_error", lua.to_value(&last)?)?;
    t.set("stopped", st.stopped.is_some())?;
    t.set("sent", st.sent)?;
    t.set("endpoint", st.settings.endpoint.clone())?;
    t.set("recording", events::enabled())?;
    t.set("registration", events::registration())?;
    Ok(t)
}

fn pending_tail(n: usize) -> Vec<String> {
    sync_recorder(Duration::from_secs(2));
    let all = lrs().spool.pending(usize::MAX, usize::MAX);
    let skip = all.len().saturating_sub(n);
    all.into_iter().skip(skip).map(|e| e.json).collect()
}

/// One HTTP request to the LRS (queries, documents): returns status and body.
async fn request(method: String, target: String, body: Option<String>) -> LuaResult<(u16, String)> {
    let settings = lrs().shared.state.lock().unwrap().settings.clone();
    let Some(endpoint) = settings.endpoint.clone() else {
        return Err(error(
            "NotConfigured",
            "no LRS is configured: call bioxen.lrs.configure{endpoint=...} or set BIOXEN_LRS_ENDPOINT",
        ));
    };
    let url = resolve(&endpoint, &target);
    let http = settings
        .client()
        .map_err(|e| error("LrsConfig", e.to_string()))?;
    let m = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| error("Argument", format!("not an HTTP method: {method}")))?;
    let mut req = settings.authorize(http.request(m, &url));
    if let Some(b) = body {
        req = req.header("Content-Type", "application/json").body(b);
    }
    let resp = req.send().await.map_err(|e| {
        BioxenError::new("LrsUnreachable", format!("cannot reach {url}: {e}"))
            .with("url", url.clone())
            .into_lua_err()
    })?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| {
        error(
            "LrsUnreachable",
            format!("reading the answer from {url}: {e}"),
        )
    })?;
    Ok((status, text))
}

/// `statements?x=1` is relative to the endpoint; `/xAPI/...` (a `more` link) to its host.
fn resolve(endpoint: &str, target: &str) -> String {
    if target.starts_with("http://") || target.starts_with("https://") {
        return target.to_string();
    }
    if target.starts_with('/') {
        let after_scheme = endpoint.find("://").map(|i| i + 3).unwrap_or(0);
        let host_end = endpoint[after_scheme..]
            .find('/')
            .map(|i| i + after_scheme)
            .unwrap_or(endpoint.len());
        return format!("{}{target}", &endpoint[..host_end]);
    }
    format!("{}/{target}", endpoint.trim_end_matches('/'))
}

extern "C" fn exit_handler() {
    at_exit();
}

/// Called once when bioxen exits: spools pending automatic records, then gives
/// the sender up to `lrs.exit_timeout` seconds while the LRS is answering.
/// Whatever is left stays safely in the spool for the next run or `bioxen lrs flush`.
pub fn at_exit() {
    let Some(l) = LRS.get() else { return };
    if std::process::id() != l.pid {
        return; // a forked child: the recorder and sender threads are not here
    }
    // VMs still open: recorded as terminated by the exit.
    let open: Vec<(String, Instant)> = std::mem::take(&mut l.live_vms.lock().unwrap().1)
        .into_values()
        .collect();
    for (vm, born) in open {
        events::record(Event::VmClosed {
            vm,
            lifetime: born.elapsed(),
            closed_by: "exit".into(),
        });
    }
    sync_recorder(Duration::from_secs(5));
    {
        // Everything is spooled (synced): the journal has done its work.
        let q = l.events.queue.lock().unwrap();
        if let Some(j) = q.journal.as_ref()
            && j.is_empty()
        {
            j.remove(); // the mapping stays: a late record is still spooled
        }
    }
    let settings = l.shared.state.lock().unwrap().settings.clone();
    if settings.endpoint.is_none() {
        return;
    }
    let ends = l.spool.ends();
    if l.spool.covered(&ends) {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs_f64(settings.exit_timeout);
    if let Err(e) = sender::wait_covered(&l.spool, &l.shared, &ends, Some(deadline), true) {
        let (depth, _) = l.spool.depth();
        if depth > 0 {
            tracing::warn!(
                target: "bioxen::lrs",
                "{depth} statement(s) wait in the LRS spool ({}); `bioxen lrs flush` sends them",
                e["message"].as_str().unwrap_or("not delivered yet")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn recovery_spools_a_dead_journal_once_even_if_its_recorder_had_spooled_part() {
        use super::*;
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().to_path_buf());
        let origin = Origin::here("{\"mbox\":\"mailto:a@b.c\"}".into());
        let mut j = Journal::create(dir.path(), &origin.registration, &origin.actor).unwrap();
        let seed = j.seed;
        for seq in 1..=3u64 {
            assert!(j.put(
                kind::VM_CREATED,
                seq,
                1_000_000 * seq,
                &[b"vm", b"thread"],
                &[]
            ));
        }
        // The dead recorder had spooled the first record (then died before
        // advancing the journal's tail).
        let ([bytes, _], _) = j.unconsumed();
        let mut first = String::new();
        let n = statements_of(
            &bytes[..journal::record_len(&[b"vm", b"thread"], &[])],
            seed,
            &origin,
            &mut first,
        );
        assert_eq!(n, 1);
        let mut own = spool.writer();
        own.append_lines(first.as_bytes()).unwrap();
        drop(own);
        drop(j); // the process is gone: its lock is free
        let writer = Mutex::new(spool.writer());
        recover(&spool, &writer);
        recover(&spool, &writer); // nothing left to recover
        let pending: Vec<Json> = spool
            .pending(100, usize::MAX)
            .iter()
            .map(|e| serde_json::from_str(&e.json).unwrap())
            .collect();
        let mut ids: Vec<String> = pending
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), 3, "{pending:?}");
        ids.dedup();
        assert_eq!(ids.len(), 3);
        assert!(pending.iter().all(|s| s["actor"]["mbox"] == "mailto:a@b.c"));
        assert!(
            !std::fs::read_dir(dir.path())
                .unwrap()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".journal"))
        );
    }

    #[test]
    fn resolves_more_links_against_the_endpoint_host() {
        let e = "http://127.0.0.1:8100/xAPI/";
        assert_eq!(
            resolve(e, "/xAPI/statements?x=1"),
            "http://127.0.0.1:8100/xAPI/statements?x=1"
        );
        assert_eq!(
            resolve(e, "statements?y"),
            "http://127.0.0.1:8100/xAPI/statements?y"
        );
        assert_eq!(resolve(e, "https://a/b"), "https://a/b");
    }
}
