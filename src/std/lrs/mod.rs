//! `bioxen.lrs` native half: the durable spool, the background sender, the
//! automatic-records hook ([`events`]) and raw HTTP for queries. Statement
//! building and xAPI validation are in `stdlib/bioxen/lrs.lua`.
pub mod events;
pub mod sender;
pub mod spool;

use crate::runtime::{
    builder::LibraryBuilder,
    error::{BioxenError, error},
    paths,
};
use events::Event;
use mlua::{Lua, LuaSerdeExt, Result as LuaResult, Table};
use sender::{Settings, Shared};
use serde_json::{Value as Json, json};
use spool::{Spool, Writer};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant, SystemTime};

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
        .function("_bench_record", |_, (n, code): (u64, String)| {
            // Time of `n` automatic records of a code execution, in seconds.
            let start = Instant::now();
            for _ in 0..n {
                events::record(Event::CodeExecuted {
                    vm: "bench".into(),
                    code: code.clone(),
                    success: true,
                    duration: Duration::from_micros(10),
                    output_bytes: 0,
                    failure: None,
                });
            }
            Ok(start.elapsed().as_secs_f64())
        })
        .build()
}

enum Msg {
    Event(SystemTime, Event),
    Sync(mpsc::SyncSender<()>),
}

struct Lrs {
    spool: Arc<Spool>,
    writer: Mutex<Writer>,
    shared: Arc<Shared>,
    events: mpsc::Sender<Msg>,
}

static LRS: OnceLock<Lrs> = OnceLock::new();

fn lrs() -> &'static Lrs {
    LRS.get_or_init(|| {
        let spool = Arc::new(Spool::new(paths::data_dir().join("lrs").join("spool")));
        let shared = Arc::new(Shared::default());
        let settings = load_settings();
        refresh_state(&settings);
        let has_endpoint = settings.endpoint.is_some();
        shared.state.lock().unwrap().settings = Arc::new(settings);
        let (tx, rx) = mpsc::channel();
        let l = Lrs {
            writer: Mutex::new(spool.writer()),
            spool: spool.clone(),
            shared: shared.clone(),
            events: tx,
        };
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

pub(crate) fn submit(at: SystemTime, event: Event) {
    let _ = lrs().events.send(Msg::Event(at, event));
}

/// The recorder thread: builds statements for events and spools them in groups.
fn recorder(rx: mpsc::Receiver<Msg>) {
    while let Ok(first) = rx.recv() {
        let mut lines = Vec::new();
        let mut syncs = Vec::new();
        let l = lrs();
        let actor = l
            .shared
            .state
            .lock()
            .unwrap()
            .settings
            .actor
            .clone()
            .unwrap_or_else(default_actor);
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                Msg::Event(at, ev) => {
                    lines.push(events::statement(&ev, &actor, at).to_string());
                }
                Msg::Sync(s) => syncs.push(s),
            }
            next = if lines.len() < 2000 {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if !lines.is_empty() {
            if let Err(e) = l.writer.lock().unwrap().append(&lines) {
                tracing::error!(target: "bioxen::lrs", "cannot spool {} automatic records: {e}", lines.len());
            }
            l.shared.wake();
        }
        for s in syncs {
            let _ = s.send(());
        }
    }
}

/// Waits until the recorder has spooled every event submitted so far.
fn sync_recorder(timeout: Duration) {
    let Some(l) = LRS.get() else { return };
    let (tx, rx) = mpsc::sync_channel(1);
    if l.events.send(Msg::Sync(tx)).is_ok() {
        let _ = rx.recv_timeout(timeout);
    }
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
        batch_size: 1000,
        max_backoff: 2.0,
        exit_timeout: 3.0,
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
            "batch_size" => s.batch_size = number(k, x)?.clamp(1.0, 10_000.0) as usize,
            "max_backoff" => s.max_backoff = number(k, x)?.max(0.01),
            "exit_timeout" => s.exit_timeout = number(k, x)?.max(0.0),
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
        let rejected_before = l.shared.state.lock().unwrap().rejected;
        let ends = l.spool.ends();
        if !l.spool.covered(&ends)
            && l.shared.state.lock().unwrap().settings.endpoint.is_some()
        {
            sender::start(l.spool.clone(), l.shared.clone());
        }
        sender::wait_covered(&l.spool, &l.shared, &ends, deadline, false)?;
        let st = l.shared.state.lock().unwrap();
        if st.rejected > rejected_before {
            let mut e = json!({
                "kind": "LrsRejected",
                "message": format!("the LRS refused {} statement(s); they are kept in {}", st.rejected - rejected_before, l.spool.dir().join("rejected.jsonl").display()),
                "rejected": st.rejected - rejected_before,
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
    sync_recorder(Duration::from_secs(5));
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
