//! One tracing configuration for every component. Console logs go to stderr,
//! never stdout. `--log`/`--debug` win over `BIOXEN_LOG`; the default is `warn`.
//!
//! An optional log file (`<data>/logs/bioxen.log`) is turned on by
//! `BIOXEN_LOG_FILE` or the `log.file` key of the configuration file, rotated by
//! size (`log.max_size`) keeping `log.keep` old files, as text or JSON lines
//! (`log.format`). Each key has an environment variable that wins over it.
//! Without file logging start-up stays as cheap as before: one failed `open` of
//! the configuration file, no parsing and no filter building.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Level, Metadata, Subscriber, span};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, filter::LevelFilter, filter::Targets, prelude::*};

pub const DEFAULT_MAX_SIZE: u64 = 10 * 1024 * 1024;
pub const DEFAULT_KEEP: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    Text,
    Json,
}

/// The file logging in force for this process (see [`settings`]).
#[derive(Debug, Clone)]
pub struct FileSettings {
    pub path: PathBuf,
    pub filter: String,
    pub format: Format,
    pub max_size: u64,
    pub keep: usize,
    /// Values that were ignored, each "key: why" (reported by `bioxen doctor`).
    pub ignored: Vec<String>,
}

static SETTINGS: OnceLock<Option<FileSettings>> = OnceLock::new();

/// File logging as configured at start-up, or None when it is off.
pub fn settings() -> Option<&'static FileSettings> {
    SETTINGS.get_or_init(read_settings).as_ref()
}

pub fn init(spec: Option<&str>) {
    let console_spec = spec
        .map(str::to_string)
        .or_else(|| std::env::var("BIOXEN_LOG").ok().filter(|s| !s.is_empty()));
    match settings() {
        None => init_console_only(console_spec),
        Some(file) => init_with_file(console_spec, file),
    }
}

/// The cheap path: no file, and a plain level unless a filter was asked for.
fn init_console_only(spec: Option<String>) {
    let Some(spec) = spec else {
        let _ = WarnOnStderr::default().try_init();
        return;
    };
    let builder = console();
    let _ = match EnvFilter::try_new(&spec) {
        Ok(filter) => builder.with_env_filter(filter).try_init(),
        Err(e) => {
            eprintln!("bioxen: ignoring log filter {spec:?}: {e}");
            builder.with_max_level(LevelFilter::WARN).try_init()
        }
    };
}

type Console = tracing_subscriber::fmt::SubscriberBuilder<
    tracing_subscriber::fmt::format::DefaultFields,
    tracing_subscriber::fmt::format::Format,
    LevelFilter,
    fn() -> io::Stderr,
>;

fn console() -> Console {
    tracing_subscriber::fmt()
        .with_writer(io::stderr as fn() -> io::Stderr)
        .with_ansi(colour())
        .with_target(true)
}

/// Colour only on a terminal, and never with `NO_COLOR` set (as the REPL).
fn colour() -> bool {
    io::IsTerminal::is_terminal(&io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The default console logger (`warn` and above), built on the first event or
/// span that passes: tracing-subscriber's registry allocates its span slots up
/// front, a few percent of `bioxen -e ''`, and most runs log nothing.
#[derive(Default)]
struct WarnOnStderr {
    inner: OnceLock<Dispatch>,
}

impl WarnOnStderr {
    fn get(&self) -> &Dispatch {
        self.inner
            .get_or_init(|| Dispatch::new(console().with_max_level(LevelFilter::WARN).finish()))
    }
}

impl Subscriber for WarnOnStderr {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.enabled(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        *meta.level() <= Level::WARN
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::WARN)
    }
    fn new_span(&self, span: &span::Attributes<'_>) -> span::Id {
        self.get().new_span(span)
    }
    fn record(&self, span: &span::Id, values: &span::Record<'_>) {
        self.get().record(span, values)
    }
    fn record_follows_from(&self, span: &span::Id, follows: &span::Id) {
        self.get().record_follows_from(span, follows)
    }
    fn event(&self, event: &Event<'_>) {
        self.get().event(event)
    }
    fn enter(&self, span: &span::Id) {
        self.get().enter(span)
    }
    fn exit(&self, span: &span::Id) {
        self.get().exit(span)
    }
    fn clone_span(&self, id: &span::Id) -> span::Id {
        self.get().clone_span(id)
    }
    fn try_close(&self, id: span::Id) -> bool {
        self.get().try_close(id)
    }
}

fn init_with_file(spec: Option<String>, file: &FileSettings) {
    let console_filter = match spec {
        Some(spec) => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            eprintln!("bioxen: ignoring log filter {spec:?}: {e}");
            EnvFilter::new("warn")
        }),
        None => EnvFilter::new("warn"),
    };
    let console = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour())
        .with_target(true)
        .with_filter(console_filter)
        .boxed();
    // read_settings validated the filter already.
    let file_filter: Targets = file.filter.parse().unwrap_or_else(|_| Targets::new());
    let writer = RotatingWriter::new(&file.path, file.max_size, file.keep);
    let file_layer = match file.format {
        Format::Text => tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(false)
            .with_target(true)
            .with_filter(file_filter)
            .boxed(),
        Format::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(writer)
            .with_target(true)
            .with_filter(file_filter)
            .boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(vec![console, file_layer])
        .try_init();
}

/// Environment variables win over the configuration file, key by key. The
/// file is only parsed when it mentions "log".
fn read_settings() -> Option<FileSettings> {
    let config = config_log_section();
    let get = |env: &str, key: &str| -> Option<(String, String)> {
        if let Ok(v) = std::env::var(env) {
            return Some((env.to_string(), v));
        }
        let v = config.as_ref()?.get(key)?;
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Bool(b) => b.to_string(),
            other => other.to_string(),
        };
        Some((format!("log.{key} in the configuration file"), text))
    };
    let (_, filter) = get("BIOXEN_LOG_FILE", "file")?;
    let filter = match filter.trim() {
        "" | "off" | "false" | "0" | "no" => return None,
        "on" | "true" | "1" | "yes" => "info".to_string(),
        other => other.to_string(),
    };
    let mut ignored = Vec::new();
    let filter = match filter.parse::<Targets>() {
        Ok(_) => filter,
        Err(e) => {
            ignored.push(format!("log file filter {filter:?}: {e} (using \"info\")"));
            "info".to_string()
        }
    };
    let format = match get("BIOXEN_LOG_FORMAT", "format") {
        None => Format::Text,
        Some((_, v)) if v == "text" => Format::Text,
        Some((_, v)) if v == "json" => Format::Json,
        Some((from, v)) => {
            ignored.push(format!(
                "{from}: format {v:?} is not \"text\" or \"json\" (using text)"
            ));
            Format::Text
        }
    };
    let max_size = match get("BIOXEN_LOG_MAX_SIZE", "max_size") {
        None => DEFAULT_MAX_SIZE,
        Some((from, v)) => match parse_size(&v) {
            Some(n) if n > 0 => n,
            _ => {
                ignored.push(format!(
                    "{from}: {v:?} is not a size like 1048576, 512K, 10M or 1G (using 10M)"
                ));
                DEFAULT_MAX_SIZE
            }
        },
    };
    let keep = match get("BIOXEN_LOG_KEEP", "keep") {
        None => DEFAULT_KEEP,
        Some((from, v)) => v.trim().parse().unwrap_or_else(|_| {
            ignored.push(format!(
                "{from}: {v:?} is not a count of old files to keep (using {DEFAULT_KEEP})"
            ));
            DEFAULT_KEEP
        }),
    };
    Some(FileSettings {
        path: super::paths::data_dir().join("logs").join("bioxen.log"),
        filter,
        format,
        max_size,
        keep,
        ignored,
    })
}

/// The "log" object of the configuration file, if the file mentions one.
fn config_log_section() -> Option<serde_json::Map<String, serde_json::Value>> {
    let text = fs::read(super::paths::config_dir().join("config.json")).ok()?;
    if !text.windows(5).any(|w| w == b"\"log\"") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(&text).ok()?;
    match value.get("log")? {
        serde_json::Value::Object(m) => Some(m.clone()),
        _ => None,
    }
}

/// `1048576`, `512K`, `10M`, `1G` (powers of 1024).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, ""),
    };
    let n: u64 = digits.parse().ok()?;
    let mult = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// A log file rotated by size: `bioxen.log` is current, `bioxen.log.1` the
/// newest old file up to `bioxen.log.KEEP`. Safe across processes: the file is
/// opened for appending, its size is read from the open file before each line,
/// and rotation happens under an exclusive lock on `bioxen.log.lock`, after
/// checking that no other process rotated first.
#[derive(Clone)]
pub struct RotatingWriter {
    inner: Arc<Mutex<Rotating>>,
}

struct Rotating {
    path: PathBuf,
    max_size: u64,
    keep: usize,
    file: Option<File>,
}

impl RotatingWriter {
    pub fn new(path: &Path, max_size: u64, keep: usize) -> RotatingWriter {
        RotatingWriter {
            inner: Arc::new(Mutex::new(Rotating {
                path: path.to_path_buf(),
                max_size,
                keep,
                file: None,
            })),
        }
    }
}

pub struct LineWriter<'a>(&'a RotatingWriter);

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut r = self.0.inner.lock().unwrap_or_else(|p| p.into_inner());
        r.write_line(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for RotatingWriter {
    type Writer = LineWriter<'a>;
    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(self)
    }
}

impl Rotating {
    fn open(&mut self) -> io::Result<&mut File> {
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                fs::create_dir_all(dir)?;
            }
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.file = Some(f);
        }
        Ok(self.file.as_mut().unwrap())
    }

    fn write_line(&mut self, buf: &[u8]) -> io::Result<()> {
        // At most twice: another process may fill the file we reopen.
        for _ in 0..2 {
            let max = self.max_size;
            let size = self.open()?.metadata()?.len();
            if size == 0 || size + buf.len() as u64 <= max {
                break;
            }
            self.rotate(buf.len() as u64)?;
        }
        self.open()?.write_all(buf)
    }

    fn rotate(&mut self, incoming: u64) -> io::Result<()> {
        let lock_path = self.path.with_extension("log.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        // SAFETY: flock on a file descriptor we own; released when `lock` closes.
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
        let ours = self.open()?.metadata()?.ino();
        let still_ours = match fs::metadata(&self.path) {
            Ok(m) => m.ino() == ours && m.len() + incoming > self.max_size,
            Err(_) => false,
        };
        if still_ours {
            self.shift()?;
        }
        self.file = None;
        drop(lock);
        Ok(())
    }

    fn shift(&self) -> io::Result<()> {
        let numbered = |n: usize| PathBuf::from(format!("{}.{n}", self.path.display()));
        if self.keep == 0 {
            return fs::remove_file(&self.path);
        }
        let _ = fs::remove_file(numbered(self.keep));
        for n in (1..self.keep).rev() {
            let from = numbered(n);
            if from.exists() {
                fs::rename(&from, numbered(n + 1))?;
            }
        }
        fs::rename(&self.path, numbered(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("512K"), Some(512 * 1024));
        assert_eq!(parse_size("10M"), Some(10 << 20));
        assert_eq!(parse_size("1 GiB"), Some(1 << 30));
        assert_eq!(parse_size("ten"), None);
        assert_eq!(parse_size("5X"), None);
    }

    #[test]
    fn rotation_keeps_the_newest_lines_and_the_retention_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/bioxen.log");
        let w = RotatingWriter::new(&path, 1000, 3);
        for i in 0..2000 {
            // One write per line, as tracing's formatter does.
            let line = format!("line {i:05} {}\n", "x".repeat(40));
            w.make_writer().write_all(line.as_bytes()).unwrap();
        }
        let mut names: Vec<String> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "bioxen.log",
                "bioxen.log.1",
                "bioxen.log.2",
                "bioxen.log.3",
                "bioxen.log.lock"
            ]
        );
        let mut lines = Vec::new();
        for name in ["bioxen.log.3", "bioxen.log.2", "bioxen.log.1", "bioxen.log"] {
            let text = fs::read_to_string(path.parent().unwrap().join(name)).unwrap();
            assert!(text.len() <= 1000, "{name} has {} bytes", text.len());
            lines.extend(text.lines().map(str::to_string));
        }
        assert!(lines.last().unwrap().starts_with("line 01999"));
        // The retained lines are consecutive: nothing lost between files.
        let first: usize = lines[0][5..10].parse().unwrap();
        for (k, l) in lines.iter().enumerate() {
            assert!(l.starts_with(&format!("line {:05}", first + k)), "{l}");
        }
    }
}
