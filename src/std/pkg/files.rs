//! File primitives for the curator: unpack archives, hash files and trees, link
//! trees (hard links, copying when linking fails), swap a symlink atomically,
//! run build commands, and the LuaJIT headers bioxen carries for C modules.
use super::fetch::hex;
use crate::runtime::{builder::blocking, error::BioxenError, error::error, paths};
use md5::Md5;
use mlua::{Lua, Result as LuaResult, Table};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;

fn io_err(kind: &str, what: String) -> impl Fn(std::io::Error) -> mlua::Error {
    let kind = kind.to_string();
    move |e| error(&kind, format!("{what}: {e}"))
}

/// `unpack(archive, dest)`: .zip/.rock, .tar.gz/.tgz, .tar, .tar.bz2 is refused clearly.
pub async fn unpack(_: Lua, (archive, dest): (String, String)) -> LuaResult<()> {
    blocking(move || unpack_sync(Path::new(&archive), Path::new(&dest))).await
}

fn unpack_sync(archive: &Path, dest: &Path) -> LuaResult<()> {
    let name = archive.to_string_lossy().to_lowercase();
    std::fs::create_dir_all(dest).map_err(io_err(
        "Unpack",
        format!("cannot create {}", dest.display()),
    ))?;
    let file = std::fs::File::open(archive).map_err(io_err(
        "Unpack",
        format!("cannot open {}", archive.display()),
    ))?;
    let bad = |e: &dyn std::fmt::Display| {
        BioxenError::new(
            "Unpack",
            format!("{} is not a readable archive: {e}", archive.display()),
        )
        .with("archive", archive.display().to_string())
        .into_lua_err()
    };
    if name.ends_with(".zip") || name.ends_with(".rock") {
        let mut z = zip::ZipArchive::new(file).map_err(|e| bad(&e))?;
        z.extract(dest).map_err(|e| bad(&e))?;
    } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        let mut t = tar::Archive::new(flate2::read::GzDecoder::new(file));
        t.set_preserve_mtime(true);
        t.unpack(dest).map_err(|e| bad(&e))?;
    } else if name.ends_with(".tar") {
        tar::Archive::new(file).unpack(dest).map_err(|e| bad(&e))?;
    } else {
        return Err(BioxenError::new(
            "Unpack",
            format!(
                "{}: unsupported archive format (bioxen reads .zip, .rock, .tar.gz, .tgz and .tar)",
                archive.display()
            ),
        )
        .into_lua_err());
    }
    Ok(())
}

fn hash_file(path: &Path) -> std::io::Result<(String, String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let (mut sha, mut md5, mut buf, mut size) = (Sha256::new(), Md5::new(), vec![0u8; 65536], 0);
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        md5.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex(&sha.finalize()), hex(&md5.finalize()), size))
}

/// `hash(path)` -> {sha256, md5, size}.
pub async fn hash(lua: Lua, path: String) -> LuaResult<Table> {
    let p = path.clone();
    let (sha, md5, size) = blocking(move || {
        hash_file(Path::new(&p)).map_err(io_err("Io", format!("cannot read {p}")))
    })
    .await?;
    let t = lua.create_table()?;
    t.set("sha256", sha)?;
    t.set("md5", md5)?;
    t.set("size", size)?;
    Ok(t)
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let ft = e.file_type()?;
        if ft.is_dir() {
            walk(base, &path, out)?;
        } else {
            out.push(path.strip_prefix(base).unwrap_or(&path).to_path_buf());
        }
    }
    Ok(())
}

/// `tree(dir)` -> {relpath = sha256} for every file under dir ({} when missing).
pub async fn tree(lua: Lua, dir: String) -> LuaResult<Table> {
    let d = dir.clone();
    let hashes = blocking(move || {
        let base = Path::new(&d);
        let mut files = Vec::new();
        if base.is_dir() {
            walk(base, base, &mut files).map_err(io_err("Io", format!("cannot list {d}")))?;
        }
        files
            .into_iter()
            .map(|rel| {
                let full = base.join(&rel);
                let h = if full.is_symlink() && !full.exists() {
                    format!(
                        "dangling link to {}",
                        std::fs::read_link(&full).unwrap_or_default().display()
                    )
                } else {
                    hash_file(&full)
                        .map_err(io_err("Io", format!("cannot read {}", full.display())))?
                        .0
                };
                Ok((rel.to_string_lossy().into_owned(), h))
            })
            .collect::<LuaResult<Vec<_>>>()
    })
    .await?;
    let t = lua.create_table()?;
    for (k, v) in hashes {
        t.set(k, v)?;
    }
    Ok(t)
}

/// `link_tree(src, dst, files?)`: hard-links every file (or the listed relative
/// paths) from src into dst, copying when a hard link is impossible.
pub async fn link_tree(
    _: Lua,
    (src, dst, files): (String, String, Option<Vec<String>>),
) -> LuaResult<u64> {
    blocking(move || {
        let (src, dst) = (PathBuf::from(src), PathBuf::from(dst));
        let files = match files {
            Some(f) => f.into_iter().map(PathBuf::from).collect(),
            None => {
                let mut v = Vec::new();
                if src.is_dir() {
                    walk(&src, &src, &mut v)
                        .map_err(io_err("Io", format!("cannot list {}", src.display())))?;
                }
                v
            }
        };
        let mut n = 0;
        for rel in files {
            let (from, to) = (src.join(&rel), dst.join(&rel));
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(io_err("Io", format!("cannot create {}", parent.display())))?;
            }
            let _ = std::fs::remove_file(&to);
            if std::fs::hard_link(&from, &to).is_err() {
                std::fs::copy(&from, &to).map_err(io_err(
                    "Io",
                    format!("cannot copy {} to {}", from.display(), to.display()),
                ))?;
            }
            n += 1;
        }
        Ok(n)
    })
    .await
}

/// `copy(from, to)`: copies one file (with its permissions), creating folders.
pub async fn copy(_: Lua, (from, to): (String, String)) -> LuaResult<()> {
    blocking(move || {
        if let Some(parent) = Path::new(&to).parent() {
            std::fs::create_dir_all(parent)
                .map_err(io_err("Io", format!("cannot create {}", parent.display())))?;
        }
        std::fs::copy(&from, &to)
            .map(|_| ())
            .map_err(io_err("Io", format!("cannot copy {from} to {to}")))
    })
    .await
}

/// `remove_tree(path)`: removes a folder and everything under it (no error when missing).
pub async fn remove_tree(_: Lua, path: String) -> LuaResult<()> {
    blocking(move || match std::fs::remove_dir_all(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(error("Io", format!("cannot remove {path}: {e}")))
        }
        _ => Ok(()),
    })
    .await
}

/// `run(argv, {cwd=, env={}})` -> {status, output} (stdout, then stderr).
pub async fn run(lua: Lua, (argv, opts): (Vec<String>, Option<Table>)) -> LuaResult<Table> {
    let Some((prog, args)) = argv.split_first() else {
        return Err(error("Argument", "run needs a command"));
    };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(o) = &opts {
        if let Some(cwd) = o.get::<Option<String>>("cwd")? {
            cmd.current_dir(cwd);
        }
        if let Some(env) = o.get::<Option<Table>>("env")? {
            for pair in env.pairs::<String, String>() {
                let (k, v) = pair?;
                cmd.env(k, v);
            }
        }
    }
    let child = cmd
        .spawn()
        .map_err(|e| error("Build", format!("cannot run {prog}: {e}")))?;
    // Ctrl-C stops the build at once: the child is killed when its future is dropped,
    // also when this runs in a task other than the main chunk.
    let out = tokio::select! {
        out = child.wait_with_output() => out.map_err(|e| error("Build", format!("cannot run {prog}: {e}")))?,
        _ = tokio::signal::ctrl_c() => {
            return Err(error("Interrupted", format!("interrupted while running {prog}")));
        }
    };
    let t = lua.create_table()?;
    t.set("status", out.status.code().unwrap_or(-1))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    t.set("output", text)?;
    Ok(t)
}

/// `swap_link(target, link)`: points `link` at `target` atomically (new link, then rename).
pub fn swap_link(_: &Lua, (target, link): (String, String)) -> LuaResult<()> {
    let tmp = format!("{link}.new-{}", std::process::id());
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&target, &tmp)
        .map_err(io_err("Io", format!("cannot create link {tmp}")))?;
    std::fs::rename(&tmp, &link).map_err(io_err("Io", format!("cannot replace {link}")))
}

pub fn read_link(_: &Lua, link: String) -> LuaResult<Option<String>> {
    Ok(std::fs::read_link(&link)
        .ok()
        .map(|p| p.display().to_string()))
}

/// `list(dir)` -> sorted names ({} when missing).
pub fn list(_: &Lua, dir: String) -> LuaResult<Vec<String>> {
    let mut names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    Ok(names)
}

/// `mtime(path)` -> seconds since the epoch of the last change, or nil when missing.
pub fn mtime(_: &Lua, path: String) -> LuaResult<Option<f64>> {
    Ok(std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64()))
}

pub fn mkdirs(_: &Lua, dir: String) -> LuaResult<()> {
    std::fs::create_dir_all(&dir).map_err(io_err("Io", format!("cannot create {dir}")))
}

pub fn is_dir(_: &Lua, path: String) -> LuaResult<bool> {
    Ok(Path::new(&path).is_dir())
}

const HEADERS: &[(&str, &str)] = &[
    (
        "lua.h",
        include_str!("../../../vendor/luajit/include/lua.h"),
    ),
    (
        "lualib.h",
        include_str!("../../../vendor/luajit/include/lualib.h"),
    ),
    (
        "lauxlib.h",
        include_str!("../../../vendor/luajit/include/lauxlib.h"),
    ),
    (
        "luaconf.h",
        include_str!("../../../vendor/luajit/include/luaconf.h"),
    ),
    (
        "luajit.h",
        include_str!("../../../vendor/luajit/include/luajit.h"),
    ),
    (
        "lua.hpp",
        include_str!("../../../vendor/luajit/include/lua.hpp"),
    ),
];

/// `headers()` -> the folder holding the LuaJIT 2.1 headers bioxen carries,
/// written into the data folder the first time (and when they change).
pub fn headers(_: &Lua, _: ()) -> LuaResult<String> {
    let dir = paths::data_dir()
        .join("pkg/include")
        .join(env!("CARGO_PKG_VERSION"));
    for (name, text) in HEADERS {
        let p = dir.join(name);
        if std::fs::read_to_string(&p).ok().as_deref() != Some(*text) {
            std::fs::create_dir_all(&dir)
                .map_err(io_err("Io", format!("cannot create {}", dir.display())))?;
            let tmp = p.with_extension("tmp");
            std::fs::write(&tmp, text)
                .map_err(io_err("Io", format!("cannot write {}", tmp.display())))?;
            std::fs::rename(&tmp, &p)
                .map_err(io_err("Io", format!("cannot write {}", p.display())))?;
        }
    }
    Ok(dir.display().to_string())
}

/// An exclusive lock on a file (flock), released by `unlock()` or when collected.
pub struct FileLock(Option<std::fs::File>);

impl mlua::UserData for FileLock {
    fn add_methods<M: mlua::UserDataMethods<Self>>(m: &mut M) {
        m.add_method_mut("unlock", |_, lock, ()| {
            lock.0 = None;
            Ok(())
        });
    }
}

/// `lock(path)` -> a held lock, or nil and no wait when another process holds it
/// and `wait` is false; with `wait` it waits (without blocking other tasks).
pub async fn lock(_: Lua, (path, wait): (String, Option<bool>)) -> LuaResult<Option<FileLock>> {
    blocking(move || {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("Io", format!("cannot open the lock {path}")))?;
        let flags = if wait.unwrap_or(false) {
            libc::LOCK_EX
        } else {
            libc::LOCK_EX | libc::LOCK_NB
        };
        if unsafe { libc::flock(file.as_raw_fd(), flags) } != 0 {
            return Ok(None);
        }
        Ok(Some(FileLock(Some(file))))
    })
    .await
}
