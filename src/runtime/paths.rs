//! bioxen's folders. `BIOXEN_HOME` replaces the platform defaults with
//! `$BIOXEN_HOME/{config,data,cache,run}` so tests and users get hermetic homes.
use std::path::PathBuf;

fn home_override(sub: &str) -> Option<PathBuf> {
    std::env::var_os("BIOXEN_HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(sub))
}

fn xdg(var: &str, fallback: &str) -> PathBuf {
    let base = std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir);
            home.join(fallback)
        });
    base.join("bioxen")
}

pub fn config_dir() -> PathBuf {
    home_override("config").unwrap_or_else(|| xdg("XDG_CONFIG_HOME", ".config"))
}

pub fn data_dir() -> PathBuf {
    home_override("data").unwrap_or_else(|| xdg("XDG_DATA_HOME", ".local/share"))
}

pub fn cache_dir() -> PathBuf {
    home_override("cache").unwrap_or_else(|| xdg("XDG_CACHE_HOME", ".cache"))
}

/// Per-user runtime folder for sockets (owner-only permissions are the caller's job).
pub fn runtime_dir() -> PathBuf {
    home_override("run").unwrap_or_else(|| {
        match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir).join("bioxen"),
            None => std::env::temp_dir().join(format!("bioxen-{}", unsafe { libc::getuid() })),
        }
    })
}
