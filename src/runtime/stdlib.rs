//! The Lua half of the standard library: embedded at build time, or read from
//! the folder named by `BIOXEN_STDLIB` so contributors can edit without rebuilding.
use std::borrow::Cow;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/stdlib_files.rs"));
}

/// The source of `stdlib/<path>` (e.g. `bioxen/vm.lua`), if it exists.
pub fn source(path: &str) -> Option<Cow<'static, str>> {
    if let Some(dir) = std::env::var_os("BIOXEN_STDLIB") {
        return std::fs::read_to_string(std::path::Path::new(&dir).join(path))
            .ok()
            .map(Cow::Owned);
    }
    let files = embedded::FILES;
    files
        .binary_search_by(|(p, _)| (*p).cmp(path))
        .ok()
        .map(|i| Cow::Borrowed(files[i].1))
}

/// The path of the Lua file that implements module `name` (`bioxen.cli.pkg` -> `bioxen/cli/pkg.lua`).
pub fn module_path(name: &str) -> String {
    format!("{}.lua", name.replace('.', "/"))
}

/// Subcommands are the files under `stdlib/bioxen/cli/`.
pub fn has_subcommand(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && source(&format!("bioxen/cli/{name}.lua")).is_some()
}

/// Names of the embedded subcommands, for `bioxen --help`.
pub fn subcommands() -> Vec<&'static str> {
    embedded::FILES
        .iter()
        .filter_map(|(p, _)| p.strip_prefix("bioxen/cli/")?.strip_suffix(".lua"))
        .filter(|n| !n.contains('/'))
        .collect()
}

/// Names of the embedded top-level modules `stdlib/bioxen/NAME.lua` (REPL completion).
pub fn library_files() -> Vec<&'static str> {
    embedded::FILES
        .iter()
        .filter_map(|(p, _)| p.strip_prefix("bioxen/")?.strip_suffix(".lua"))
        .filter(|n| !n.contains('/'))
        .collect()
}
