//! Carries out a parsed command line in the host state: options in order, then
//! the script, stdin, a subcommand or the REPL; then waits for spawned tasks
//! (or, after Ctrl-C, drops them).
use crate::cli::{Action, Command, Target, USAGE};
use crate::runtime::{Host, interrupt, modules, report, scheduler::Scheduler, stdlib};
use mlua::{Function, Lua, Result as LuaResult, Table};
use std::io::{IsTerminal, Read};

pub fn run(cmd: Command) -> i32 {
    if cmd.help {
        println!(
            "{USAGE}\n\nCommands: {}\n\nLibraries (bioxen.NAME):",
            stdlib::subcommands().join(", ")
        );
        for lib in crate::library::LIBRARIES {
            println!("  {:<10} {}", lib.name, lib.summary);
        }
        return 0;
    }
    if cmd.watch {
        return crate::repl::watch::run(&cmd);
    }
    let (host, scheduler) = match (Host::new(), Scheduler::new()) {
        (Ok(h), Ok(s)) => (h, s),
        (Err(e), _) => return fail(&format!("cannot start Lua: {e}")),
        (_, Err(e)) => return fail(&format!("cannot start the event loop: {e}")),
    };
    interrupt::install_sigint(host.interrupter.clone());
    if let Err(e) = crate::repl::watch::report_required(&host.lua) {
        return fail(&format!("cannot start Lua: {e}"));
    }
    let status = match run_all(&host.lua, &scheduler, &cmd) {
        Ok(()) => 0,
        Err(e) => report_error(&host, &e),
    };
    if status == interrupt::SIGINT_EXIT {
        // Ctrl-C ends the tasks too; draining would let a task that was waiting
        // (a build, a download) run on after report_error disarmed the interrupt.
        scheduler.abandon();
    } else {
        scheduler.drain();
    }
    let lost_errors = crate::library::task::report_unobserved(&host.lua);
    // Closing the state would first run a full collection (mlua's drop); the
    // process is ending, and exit() flushes C stdio buffers anyway.
    std::mem::forget(host);
    if lost_errors && status == 0 {
        1
    } else {
        status
    }
}

fn run_all(lua: &Lua, scheduler: &Scheduler, cmd: &Command) -> LuaResult<()> {
    set_arg_table(lua, cmd)?;
    if cmd.version {
        print_version(lua)?;
    }
    for action in &cmd.actions {
        run_action(lua, scheduler, action)?;
    }
    let stdin_is_tty = std::io::stdin().is_terminal();
    let nothing_else = cmd.actions.is_empty() && !cmd.version;
    match &cmd.target {
        Target::Script(path) => run_script(lua, scheduler, path, &cmd.args)?,
        Target::Subcommand(name) => run_subcommand(lua, scheduler, name, &cmd.args)?,
        Target::Stdin => run_stdin(lua, scheduler, &cmd.args)?,
        Target::None if nothing_else && !stdin_is_tty && !cmd.interactive => {
            run_stdin(lua, scheduler, &cmd.args)?
        }
        Target::None => {}
    }
    let repl_by_default = matches!(cmd.target, Target::None) && nothing_else && stdin_is_tty;
    if cmd.interactive || repl_by_default {
        crate::repl::run(lua, scheduler)?;
    }
    Ok(())
}

fn run_action(lua: &Lua, scheduler: &Scheduler, action: &Action) -> LuaResult<()> {
    match action {
        Action::Exec(code) => {
            let f = lua
                .load(code.as_str())
                .set_name("=(command line)")
                .into_function()?;
            call_with_args(lua, scheduler, f, &[])?;
        }
        Action::Require(name) => {
            let f = lua
                .load("local name = ... _G[name] = require(name)")
                .set_name("=(command line)")
                .into_function()?;
            call_with_args(lua, scheduler, f, std::slice::from_ref(name))?;
        }
        Action::Jit(cmd) => jit_control(lua, cmd)?,
        Action::Optimize(opt) => {
            let start: Function = lua.load("return require('jit.opt').start").eval()?;
            if opt.is_empty() {
                start.call::<()>("3")?
            } else {
                start.call::<()>(opt.as_str())?
            };
        }
    }
    Ok(())
}

/// `-jon`, `-joff`, `-jflush` as in luajit; `-jname=args` loads `jit.name`.
fn jit_control(lua: &Lua, cmd: &str) -> LuaResult<()> {
    let (name, args) = cmd.split_once('=').unwrap_or((cmd, ""));
    let jit: Table = lua.globals().get("jit")?;
    if let Ok(f) = jit.get::<Function>(name) {
        return f.call(());
    }
    let require: Function = lua.globals().get("require")?;
    let module: Table = require.call(format!("jit.{name}"))?;
    module.get::<Function>("start")?.call(args)
}

fn print_version(lua: &Lua) -> LuaResult<()> {
    let jit_version: String = lua.load("return jit.version").eval()?;
    println!("bioxen {} ({jit_version})", env!("CARGO_PKG_VERSION"));
    Ok(())
}

/// `arg` as `lua` sets it: arg[0] the script, arg[1..n] its arguments,
/// negative indices the interpreter and its options.
fn set_arg_table(lua: &Lua, cmd: &Command) -> LuaResult<()> {
    let arg = lua.create_table()?;
    let exe = std::env::args().next().unwrap_or_else(|| "bioxen".into());
    let before = &cmd.interpreter_args;
    arg.raw_set(-(before.len() as i64) - 1, exe)?;
    for (i, a) in before.iter().enumerate() {
        arg.raw_set(i as i64 - before.len() as i64, a.as_str())?;
    }
    match &cmd.target {
        Target::Script(s) | Target::Subcommand(s) => arg.raw_set(0, s.as_str())?,
        Target::Stdin => arg.raw_set(0, "-")?,
        Target::None => {}
    }
    for (i, a) in cmd.args.iter().enumerate() {
        arg.raw_set(i as i64 + 1, a.as_str())?;
    }
    lua.globals().set("arg", arg)
}

/// Loads source, skipping a `#!` first line but keeping line numbers right.
fn load_source(lua: &Lua, source: &[u8], chunk_name: &str) -> LuaResult<Function> {
    let body = if source.starts_with(b"#!") {
        let end = source
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(source.len());
        &source[end..]
    } else {
        source
    };
    lua.load(body).set_name(chunk_name).into_function()
}

/// Runs a top-level chunk as a task, with a traceback on error.
fn call_with_args(lua: &Lua, scheduler: &Scheduler, f: Function, args: &[String]) -> LuaResult<()> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    report::call_traced(lua, scheduler, f, args)?;
    Ok(())
}

fn run_script(lua: &Lua, scheduler: &Scheduler, path: &str, args: &[String]) -> LuaResult<()> {
    let source = std::fs::read(path).map_err(|e| {
        crate::runtime::error::error("NotFound", format!("cannot open {path}: {e}"))
    })?;
    modules::prepend_script_dir(lua, std::path::Path::new(path))?;
    let f = load_source(lua, &source, &format!("@{path}"))?;
    call_with_args(lua, scheduler, f, args)
}

fn run_stdin(lua: &Lua, scheduler: &Scheduler, args: &[String]) -> LuaResult<()> {
    let mut source = Vec::new();
    std::io::stdin().read_to_end(&mut source).map_err(|e| {
        crate::runtime::error::error("Io", format!("cannot read standard input: {e}"))
    })?;
    let f = load_source(lua, &source, "=stdin")?;
    call_with_args(lua, scheduler, f, args)
}

fn run_subcommand(lua: &Lua, scheduler: &Scheduler, name: &str, args: &[String]) -> LuaResult<()> {
    let path = format!("bioxen/cli/{name}.lua");
    let source = stdlib::source(&path).expect("subcommand was found when parsing");
    let f = load_source(lua, source.as_bytes(), &format!("@stdlib/{path}"))?;
    call_with_args(lua, scheduler, f, args)
}

fn report_error(host: &Host, e: &mlua::Error) -> i32 {
    let interrupted = host.interrupter.clear() == Some(interrupt::Reason::Interrupted)
        || crate::runtime::error::kind_of(e) == "Interrupted";
    match host.lua.remove_app_data::<report::LastTraceback>() {
        Some(traced) => eprintln!("bioxen: {}", traced.0),
        None => eprintln!("bioxen: {}", report::format_error(e)),
    }
    if interrupted {
        interrupt::SIGINT_EXIT
    } else {
        1
    }
}

fn fail(message: &str) -> i32 {
    eprintln!("bioxen: {message}");
    1
}
