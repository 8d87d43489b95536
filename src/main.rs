//! bioxen: a Lua-first runtime. One executable embedding LuaJIT with the
//! `bioxen.*` standard library.
#![cfg_attr(not(test), no_main)]
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

/// mimalloc's arenas, set before any allocation makes one (a constructor of
/// the highest user priority):
/// - committed on demand: up front on Linux, the kernel backs them with 2 MiB
///   huge pages and `bioxen -e ''` was 6 MiB more resident (on demand measured
///   no slower for VM create/close);
/// - reserved 32 MiB at a time instead of 1 GiB: the first arena's bitmaps
///   were 36 of `bioxen -e ''`s page faults. Later arenas grow on their own.
#[used]
#[unsafe(link_section = ".init_array.00101")]
static SHAPE_ARENAS: extern "C" fn() = {
    extern "C" fn set() {
        // SAFETY: plain option values; mimalloc reads them when it reserves an arena.
        unsafe {
            libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
            libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_RESERVE, 32 * 1024);
        }
    }
    set
};
/// mimalloc's option numbers (libmimalloc-sys does not name them); the
/// reserve is in KiB.
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_ARENA_RESERVE: libmimalloc_sys::mi_option_t = 23;

/// The C entry point, in place of Rust's `lang_start`, which at every start
/// reads /proc/self/maps to find the main thread's stack and installs
/// stack-overflow handlers (a dozen system calls and ~80k instructions, a
/// tenth of `bioxen -e ''`); LuaJIT checks its own C stack. Arguments still
/// reach `std::env::args` (glibc passes them to Rust's own constructor).
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // Kept from lang_start: a write to a closed pipe fails with EPIPE (an
    // error Lua sees) instead of killing the process.
    // SAFETY: installs the ignore disposition, no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    std::panic::catch_unwind(bioxen_main).unwrap_or(101)
}

#[cfg_attr(test, allow(dead_code))]
fn bioxen_main() -> i32 {
    let argv: Vec<String> = std::env::args().skip(1).collect();
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
