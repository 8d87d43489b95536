//! Embeds `stdlib/` (the Lua half of `bioxen.*`) and `lua/types/` into the binary, and exports
//! the Lua C API so C modules can be `require`d.
use std::{env, fs, path::Path};

fn main() {
    let root = env::var("CARGO_MANIFEST_DIR").unwrap();
    let out = env::var("OUT_DIR").unwrap();
    embed(
        Path::new(&root),
        "stdlib",
        &Path::new(&out).join("stdlib_files.rs"),
    );
    // Type definitions for lua-language-server, written out by `bioxen init`.
    embed(
        Path::new(&root),
        "lua/types",
        &Path::new(&out).join("types_files.rs"),
    );
    // C modules built for Lua 5.1 resolve lua_* and luaL_* against the executable.
    // Export only the Lua C API: exporting every symbol would grow the dynamic
    // symbol table the loader reads at each start.
    let list = Path::new(&out).join("lua-api.list");
    fs::write(&list, "{ lua_*; luaL_*; luaopen_*; luaJIT_*; };\n").unwrap();
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--dynamic-list={}",
        list.display()
    );
    // Start-up speed: packed relative relocations and lazy binding cut the
    // dynamic loader's work, the largest cost of `bioxen -e ''` after Lua itself.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    // A position-dependent executable has its addresses fixed at link time, so
    // the loader does not rewrite (and so copy) the pages of pointer tables in
    // the statically linked C libraries at every start.
    println!("cargo:rustc-link-arg-bins=-no-pie");
    println!("cargo:rustc-link-arg-bins=-Wl,-z,lazy");
    // OpenSSL's start-up CPU probe waits for the first SSH session
    // (src/std/ssh/openssl_cpu.rs); tests link the same way.
    println!("cargo:rustc-link-arg=-Wl,--wrap=OPENSSL_cpuid_setup");
    order_startup_code(Path::new(&root));
}

/// Start-up memory: the functions that run at every start (listed by
/// bench/runtime/startup_symbols.sh) go together at the front of `.text`, so
/// the kernel maps a few hundred KiB of code rather than pages scattered over
/// the whole executable. Names missing from a build (the list is stale, or a
/// debug build) are skipped by the linker.
fn order_startup_code(root: &Path) {
    let list = root.join("src/runtime/startup-symbols.txt");
    println!("cargo:rerun-if-changed={}", list.display());
    if env::var("PROFILE").as_deref() == Ok("release") && list.exists() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            list.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// Writes `pub static FILES: &[(&str, &str)]`, sorted by path relative to `dir`.
fn embed(root: &Path, dir: &str, dest: &Path) {
    println!("cargo:rerun-if-changed={dir}");
    let base = root.join(dir);
    let mut files = Vec::new();
    collect(&base, &base, &mut files);
    files.sort();
    let mut code = String::from("pub static FILES: &[(&str, &str)] = &[\n");
    for rel in files {
        let abs = base.join(&rel);
        code.push_str(&format!(
            "    ({rel:?}, include_str!({:?})),\n",
            abs.display().to_string()
        ));
    }
    code.push_str("];\n");
    fs::write(dest, code).unwrap();
}

fn collect(base: &Path, dir: &Path, files: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(base, &path, files);
        } else if path.extension().is_some_and(|e| e == "lua") {
            let rel = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            files.push(rel);
        }
    }
}
