//! `bioxen --watch FILE`: runs FILE, and runs it again (in a fresh process,
//! so every run starts from a clean state) whenever FILE or a local module it
//! required changes. Changes are debounced: a burst of saves gives one rerun.
//! A run still going when a change comes is stopped first (SIGTERM, then
//! SIGKILL). Ctrl-C ends the watch and the running script.
use crate::cli::{Command, Target};
use crate::library::hotreload::FileWatcher;
use mlua::{Lua, Result as LuaResult};
use std::collections::HashSet;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The child writes the file of every module it requires to this file.
pub const REPORT_ENV: &str = "BIOXEN_WATCH_REPORT";
/// A burst of saves ends after this long without another change.
const QUIET: Duration = Duration::from_millis(150);
/// ...or after this long in any case.
const MAX_BURST: Duration = Duration::from_secs(2);

enum Event {
    Changed(PathBuf),
    Exited(u64),
}

pub fn run(cmd: &Command) -> i32 {
    let Target::Script(script) = &cmd.target else {
        eprintln!("bioxen: --watch needs a script file: bioxen --watch FILE [args]");
        return 1;
    };
    if !Path::new(script).is_file() {
        eprintln!("bioxen: --watch: cannot open {script}");
        return 1;
    }
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--watch") {
        args.remove(i);
    }
    match watch(script, &args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("bioxen: --watch: {e}");
            1
        }
    }
}

fn watch(script: &str, args: &[String]) -> std::io::Result<()> {
    let exe = std::env::current_exe()?;
    let report = std::env::temp_dir().join(format!("bioxen-watch-{}.list", std::process::id()));
    let (tx, rx) = mpsc::channel::<Event>();
    let changes = tx.clone();
    let mut watcher = FileWatcher::new(move |p| {
        let _ = changes.send(Event::Changed(p));
    })
    .map_err(std::io::Error::other)?;
    let mut watched = HashSet::new();
    watched.insert(watcher.add(Path::new(script))?);
    let _cleanup = RemoveOnDrop(report.clone());
    let mut generation = 0u64;
    loop {
        generation += 1;
        std::fs::write(&report, "")?;
        let mut child = std::process::Command::new(&exe);
        child.args(args).env(REPORT_ENV, &report);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            child.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = child.spawn()?;
        let pid = child.id() as libc::pid_t;
        let exited = tx.clone();
        let this_run = generation;
        std::thread::spawn(move || {
            let mut child = child;
            if child.wait().is_ok() {
                let _ = exited.send(Event::Exited(this_run));
            }
        });
        let mut running = true;
        // Wait for the first change of a burst.
        let changed = loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(Event::Changed(path)) => break path,
                Ok(Event::Exited(g)) if g == generation => running = false,
                Ok(Event::Exited(_)) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
            add_required(&mut watcher, &mut watched, &report);
        };
        // The rest of the burst.
        let start = Instant::now();
        while start.elapsed() < MAX_BURST {
            match rx.recv_timeout(QUIET) {
                Ok(Event::Changed(_)) => {}
                Ok(Event::Exited(g)) if g == generation => running = false,
                Ok(Event::Exited(_)) => {}
                Err(_) => break,
            }
        }
        add_required(&mut watcher, &mut watched, &report);
        if running {
            stop(pid, generation, &rx);
        }
        let _ = std::io::stdout().flush();
        let cwd = std::env::current_dir().unwrap_or_default();
        let shown = changed.strip_prefix(&cwd).unwrap_or(&changed);
        eprintln!(
            "── bioxen --watch: {} changed, running {script} again ──",
            shown.display()
        );
    }
}

/// Stops the current run: SIGTERM, then SIGKILL if it is still there after a second.
fn stop(pid: libc::pid_t, generation: u64, rx: &mpsc::Receiver<Event>) {
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut killed = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() && !killed {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
        match rx.recv_timeout(if killed { Duration::from_secs(2) } else { left }) {
            Ok(Event::Exited(g)) if g == generation => return,
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) if killed => return,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Watches the module files the current run reported.
fn add_required(watcher: &mut FileWatcher, watched: &mut HashSet<PathBuf>, report: &Path) {
    let Ok(text) = std::fs::read_to_string(report) else {
        return;
    };
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Ok(abs) = crate::library::hotreload::absolute(Path::new(line))
            && !watched.contains(&abs)
            && let Ok(abs) = watcher.add(Path::new(line))
        {
            tracing::debug!("watching {}", abs.display());
            watched.insert(abs);
        }
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// In a run under `--watch`: records the file of every module found on
/// `package.path`, so the watcher can watch the script's local modules.
pub fn report_required(lua: &Lua) -> LuaResult<()> {
    let Some(report) = std::env::var_os(REPORT_ENV) else {
        return Ok(());
    };
    let record = lua.create_function(move |_, path: String| {
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&report) {
            let _ = writeln!(f, "{path}");
        }
        Ok(())
    })?;
    lua.load(
        r#"local record = ...
        table.insert(package.loaders, 1, function(name)
          local path = package.searchpath(name, package.path)
          if path then record(path) end
          return nil
        end)"#,
    )
    .set_name("=[bioxen watch]")
    .call(record)
}
