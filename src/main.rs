//! bioxen: a Lua-first runtime. One executable embedding LuaJIT with the
//! `bioxen.*` standard library.
mod cli;
#[path = "std/mod.rs"]
mod library;
mod repl;
mod run;
mod runtime;

/// mimalloc instead of glibc malloc: a thread-backend VM is a Lua state of
/// ~1,500 small allocations made on one thread and freed on another; glibc's
/// malloc/free (consolidation, cross-thread frees) was half of the
/// instructions of creating and closing one (callgrind, docs/vm.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    runtime::tls::install();
    // Hidden: a process-backend child VM (see src/std/vm/child.rs).
    if argv.first().map(String::as_str) == Some("--vm-child") {
        std::process::exit(library::vm::child::main(&argv[1..]));
    }
    let command = match cli::parse(&argv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bioxen: {e}");
            std::process::exit(1);
        }
    };
    runtime::logging::init(command.log.as_deref());
    std::process::exit(run::run(command));
}
