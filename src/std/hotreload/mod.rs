//! `bioxen.hotreload`, Rust half: watching module files for changes (notify).
//! The Lua half (stdlib/bioxen/hotreload.lua) reloads modules and patches
//! their tables; this side only reports which watched files changed, debounced.
use crate::runtime::{builder::LibraryBuilder, error::error};
use mlua::{Function, Lua, Result as LuaResult, Table};
use notify::{EventKind, RecursiveMode, Watcher};
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Watches individual files by watching their folders (editors often save by
/// writing a new file and renaming it over the old one, which a watch on the
/// file itself would miss). Calls `on_change` with the path of a watched file
/// that was written, created, renamed or removed.
pub struct FileWatcher {
    watcher: notify::RecommendedWatcher,
    dirs: HashSet<PathBuf>,
    files: Arc<Mutex<HashSet<PathBuf>>>,
}

impl FileWatcher {
    pub fn new(on_change: impl Fn(PathBuf) + Send + 'static) -> notify::Result<FileWatcher> {
        let files: Arc<Mutex<HashSet<PathBuf>>> = Arc::default();
        let wanted = files.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            for path in event.paths {
                if wanted.lock().unwrap().contains(&path) {
                    on_change(path);
                }
            }
        })?;
        Ok(FileWatcher {
            watcher,
            dirs: HashSet::new(),
            files,
        })
    }

    /// Starts watching `path`; returns the absolute path that changes will name.
    pub fn add(&mut self, path: &Path) -> std::io::Result<PathBuf> {
        let path = absolute(path)?;
        let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        if !self.dirs.contains(&dir) {
            self.watcher
                .watch(&dir, RecursiveMode::NonRecursive)
                .map_err(std::io::Error::other)?;
            self.dirs.insert(dir);
        }
        self.files.lock().unwrap().insert(path.clone());
        Ok(path)
    }

    pub fn remove(&mut self, path: &Path) {
        if let Ok(path) = absolute(path) {
            self.files.lock().unwrap().remove(&path);
        }
    }
}

/// The absolute path with a canonical folder (the file itself may not exist
/// between an editor's delete and write).
pub fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other(format!("{} names no file", path.display())))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok(std::fs::canonicalize(dir)?.join(name))
}

/// The watch state of one Lua state: changed files not yet taken.
struct Shared {
    watcher: Mutex<Option<FileWatcher>>,
    pending: Mutex<BTreeSet<PathBuf>>,
    last_event: Mutex<Instant>,
    changed: tokio::sync::Notify,
    started: std::sync::atomic::AtomicBool,
}

fn shared(lua: &Lua) -> Arc<Shared> {
    if let Some(s) = lua.app_data_ref::<Arc<Shared>>() {
        return s.clone();
    }
    let s = Arc::new(Shared {
        watcher: Mutex::new(None),
        pending: Mutex::default(),
        last_event: Mutex::new(Instant::now()),
        changed: tokio::sync::Notify::new(),
        started: Default::default(),
    });
    lua.set_app_data(s.clone());
    s
}

impl Shared {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.pending.lock().unwrap())
            .into_iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect()
    }

    /// Waits for a change, then for `quiet` without further changes (one
    /// result per burst of saves), and returns the changed files.
    async fn wait(&self, quiet: Duration) -> Vec<String> {
        loop {
            let notified = self.changed.notified();
            if self.pending.lock().unwrap().is_empty() {
                notified.await;
                continue;
            }
            let since = self.last_event.lock().unwrap().elapsed();
            if since >= quiet {
                return self.take();
            }
            tokio::time::sleep(quiet - since).await;
        }
    }
}

fn add(lua: &Lua, path: String) -> LuaResult<String> {
    let s = shared(lua);
    let mut guard = s.watcher.lock().unwrap();
    if guard.is_none() {
        let weak = Arc::downgrade(&s);
        let watcher = FileWatcher::new(move |path| {
            if let Some(s) = weak.upgrade() {
                s.pending.lock().unwrap().insert(path);
                *s.last_event.lock().unwrap() = Instant::now();
                s.changed.notify_one();
            }
        })
        .map_err(|e| error("Io", format!("cannot watch files: {e}")))?;
        *guard = Some(watcher);
    }
    let watcher = guard.as_mut().expect("created above");
    let abs = watcher
        .add(Path::new(&path))
        .map_err(|e| error("Io", format!("cannot watch {path}: {e}")))?;
    Ok(abs.to_string_lossy().into_owned())
}

fn remove(lua: &Lua, path: String) -> LuaResult<()> {
    if let Some(w) = shared(lua).watcher.lock().unwrap().as_mut() {
        w.remove(Path::new(&path));
    }
    Ok(())
}

fn quiet_of(seconds: Option<f64>) -> LuaResult<Duration> {
    let s = seconds.unwrap_or(0.1);
    if !s.is_finite() || s < 0.0 {
        return Err(error(
            "Argument",
            format!("the quiet time must be a number of seconds >= 0, got {s}"),
        ));
    }
    Ok(Duration::from_secs_f64(s))
}

/// Starts a background job on the event loop that calls `callback(paths)`
/// after each burst of changes. It does not keep the program alive: it runs
/// while the script or the REPL runs anything on the event loop, and ends with it.
fn start(lua: &Lua, (callback, quiet): (Function, Option<f64>)) -> LuaResult<bool> {
    let s = shared(lua);
    let quiet = quiet_of(quiet)?;
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return Ok(false);
    };
    if s.started.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return Ok(true);
    }
    let weak = lua.weak();
    handle.spawn(async move {
        loop {
            let paths = s.wait(quiet).await;
            let Some(lua) = weak.try_upgrade() else { break };
            let _ = lua;
            if let Err(e) = callback.call::<()>(paths) {
                tracing::error!("hot reload: {}", crate::runtime::report::format_error(&e));
            }
        }
    });
    Ok(true)
}

pub fn module(lua: &Lua) -> LuaResult<Table> {
    LibraryBuilder::new(lua)
        .function("add", add)
        .function("remove", remove)
        .function("take", |lua, ()| Ok(shared(lua).take()))
        .async_function("wait", |lua, quiet: Option<f64>| async move {
            let quiet = quiet_of(quiet)?;
            Ok(shared(&lua).wait(quiet).await)
        })
        .function("start", start)
        .build()
}
