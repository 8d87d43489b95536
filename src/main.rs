//! bioxen: a Lua-first runtime. One executable embedding LuaJIT with the
//! `bioxen.*` standard library.
mod cli;
#[path = "std/mod.rs"]
mod library;
mod repl;
mod run;
mod runtime;

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
