//! The command line behaves like `lua`/`luajit`: arguments, `arg`, shebang,
//! stdin, exit codes, tracebacks, Ctrl-C, C modules, module search.
mod common;
use common::{Home, stderr, stdout};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn e_runs_code_in_order_and_may_repeat() {
    let home = Home::new();
    let o = home.run(&["-e", "x = 1", "-e", "print(x + 1)"], None);
    assert_eq!(stdout(&o), "2\n");
    assert!(o.status.success());
}

#[test]
fn script_gets_arg_table_and_varargs_as_lua_sets_them() {
    let home = Home::new();
    let script = home.write(
        "s.lua",
        "print(arg[0], arg[1], arg[2], #arg, ...)\nprint(arg[-1], arg[-2] ~= nil)",
    );
    let s = script.to_str().unwrap();
    let o = home.run(&["-e", "", s, "a", "b"], None);
    let out = stdout(&o);
    let mut lines = out.lines();
    assert_eq!(lines.next().unwrap(), format!("{s}\ta\tb\t2\ta\tb"));
    assert_eq!(lines.next().unwrap(), "\ttrue");
}

#[test]
fn arg_negative_indices_hold_the_interpreter_and_its_options() {
    let home = Home::new();
    let script = home.write("s.lua", "print(arg[-1], arg[-2], arg[-3])");
    let o = home.run(&["-e", "", script.to_str().unwrap()], None);
    let out = stdout(&o);
    let fields: Vec<&str> = out.trim_end().split('\t').collect();
    assert_eq!(fields[0], "");
    assert_eq!(fields[1], "-e");
    assert!(fields[2].ends_with("bioxen"), "{out}");
}

#[test]
fn shebang_line_is_skipped_and_line_numbers_stay_right() {
    let home = Home::new();
    let script = home.write(
        "job.lua",
        "#!/usr/bin/env bioxen\nprint('ran')\nerror('on line 3')\n",
    );
    let o = home.run(&[script.to_str().unwrap()], None);
    assert_eq!(stdout(&o), "ran\n");
    assert!(
        stderr(&o).contains("job.lua:3: on line 3"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn executable_script_with_env_shebang_runs() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    let script = home.write(
        "job.lua",
        "#!/usr/bin/env bioxen\nprint('hello from', arg[1])\n",
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin_dir = std::path::Path::new(common::exe()).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let o = std::process::Command::new(&script)
        .arg("x")
        .env("PATH", path)
        .env("BIOXEN_HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "hello from\tx\n");
}

#[test]
fn stdin_runs_as_a_script_when_not_a_terminal() {
    let home = Home::new();
    assert_eq!(stdout(&home.run(&[], Some("print(6 * 7)"))), "42\n");
    assert_eq!(stdout(&home.run(&["-", "a"], Some("print(...)"))), "a\n");
}

#[test]
fn uncaught_error_prints_message_with_line_and_traceback_and_exits_1() {
    let home = Home::new();
    let script = home.write(
        "bad.lua",
        "local function f()\n  error('broken')\nend\nf()\n",
    );
    let o = home.run(&[script.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.starts_with("bioxen: "), "{err}");
    assert!(err.contains("bad.lua:2: broken"), "{err}");
    assert!(
        err.contains("stack traceback:") && err.contains("in function 'f'"),
        "{err}"
    );
    assert!(
        !err.contains("[bioxen]"),
        "wrapper frames leak into the traceback: {err}"
    );
}

#[test]
fn error_values_report_kind_message_and_location() {
    let home = Home::new();
    let o = home.run(
        &["-e", "error(bioxen.error('Timeout', 'took too long'))"],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("bioxen: (command line):1: Timeout: took too long"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn syntax_error_names_file_and_line_and_exits_1() {
    let home = Home::new();
    let script = home.write("syn.lua", "print('a')\nx = = 2\n");
    let o = home.run(&[script.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("syn.lua:2:"), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
}

#[test]
fn os_exit_sets_status_after_flushing_output() {
    let home = Home::new();
    let o = home.run(&["-e", "io.write('pending') os.exit(7)"], None);
    assert_eq!(o.status.code(), Some(7));
    assert_eq!(stdout(&o), "pending");
}

#[test]
fn missing_script_is_a_one_line_error() {
    let home = Home::new();
    let o = home.run(&["no_such_script.lua"], None);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot open no_such_script.lua"), "{err}");
}

#[test]
fn unknown_option_is_refused_with_help_pointer() {
    let home = Home::new();
    let o = home.run(&["-Z"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("unrecognized option '-Z'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn version_names_bioxen_and_luajit() {
    let home = Home::new();
    let out = stdout(&home.run(&["-v"], None));
    assert!(
        out.starts_with("bioxen ") && out.contains("LuaJIT 2.1"),
        "{out}"
    );
}

#[test]
fn help_lists_options_commands_and_libraries() {
    let home = Home::new();
    let out = stdout(&home.run(&["--help"], None));
    for needle in ["-e CODE", "-l MOD", "Commands:", "test", "task"] {
        assert!(out.contains(needle), "{needle} missing from help:\n{out}");
    }
}

#[test]
fn l_requires_a_module_and_sets_the_global() {
    let home = Home::new();
    home.write(
        "mods/greet.lua",
        "return { hi = function() return 'hi' end }",
    );
    let mut c = home.cmd(&["-l", "greet", "-e", "print(greet.hi())"]);
    c.env(
        "LUA_PATH",
        format!("{}/mods/?.lua;;", home.path().display()),
    );
    let o = common::run_with_stdin(c, None);
    assert_eq!(stdout(&o), "hi\n", "{}", stderr(&o));
}

#[test]
fn j_controls_the_jit() {
    let home = Home::new();
    assert_eq!(
        stdout(&home.run(&["-joff", "-e", "print((jit.status()))"], None)),
        "false\n"
    );
    assert_eq!(
        stdout(&home.run(&["-joff", "-jon", "-e", "print((jit.status()))"], None)),
        "true\n"
    );
    assert_eq!(
        stdout(&home.run(&["-e", "print((jit.status()))"], None)),
        "true\n"
    );
}

#[test]
fn require_searches_the_script_folder_first_then_lua_path() {
    let home = Home::new();
    home.write("proj/util.lua", "return 'from script folder'");
    home.write("other/util.lua", "return 'from LUA_PATH'");
    home.write("other/only.lua", "return 'only on LUA_PATH'");
    let script = home.write(
        "proj/main.lua",
        "print(require('util')) print(require('only'))",
    );
    let mut c = home.cmd(&[script.to_str().unwrap()]);
    c.env(
        "LUA_PATH",
        format!("{}/other/?.lua;;", home.path().display()),
    );
    let o = common::run_with_stdin(c, None);
    assert_eq!(
        stdout(&o),
        "from script folder\nonly on LUA_PATH\n",
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_file_named_like_a_command_is_a_script() {
    let home = Home::new();
    home.write("test", "print('the script, not the command')");
    let mut c = home.cmd(&["test"]);
    c.current_dir(home.path());
    let o = common::run_with_stdin(c, None);
    assert_eq!(
        stdout(&o),
        "the script, not the command\n",
        "{}",
        stderr(&o)
    );
}

#[test]
fn libraries_load_lazily_and_by_require() {
    let home = Home::new();
    let code = "print(rawget(bioxen, 'json') == nil) local j = require('bioxen.json') print(bioxen.json == j, bioxen.nope)";
    assert_eq!(common::lua_ok(&home, code), "true\ntrue\tnil\n");
}

#[test]
fn stdlib_override_reads_lua_from_a_folder() {
    let home = Home::new();
    home.write(
        "stdlib/bioxen/hello.lua",
        "return { msg = 'from override' }",
    );
    let mut c = home.cmd(&["-e", "print(bioxen.hello.msg)"]);
    c.env("BIOXEN_STDLIB", home.path().join("stdlib"));
    let o = common::run_with_stdin(c, None);
    assert_eq!(stdout(&o), "from override\n", "{}", stderr(&o));
}

#[test]
fn bioxen_home_holds_every_folder() {
    let home = Home::new();
    let out = common::lua_ok(
        &home,
        "local d = bioxen.env.dirs() print(d.config, d.data, d.cache)",
    );
    let h = home.path().display();
    assert_eq!(out, format!("{h}/config\t{h}/data\t{h}/cache\n"));
}

#[test]
fn spawned_task_errors_are_reported_not_lost() {
    let home = Home::new();
    let o = home.run(
        &["-e", "bioxen.task.spawn(function() error('lost?') end)"],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("lost?"), "{}", stderr(&o));
}

#[test]
fn process_waits_for_spawned_tasks() {
    let home = Home::new();
    let out = common::lua_ok(
        &home,
        "bioxen.task.spawn(function() bioxen.task.sleep(0.05) print('late') end) print('main done')",
    );
    assert_eq!(out, "main done\nlate\n");
}

#[test]
fn logs_go_to_stderr_never_stdout() {
    let home = Home::new();
    let o = home.run(
        &[
            "--log",
            "info",
            "-e",
            "bioxen.log.info('hello log', {n = 1}) print('out')",
        ],
        None,
    );
    assert_eq!(stdout(&o), "out\n");
    assert!(stderr(&o).contains("hello log n=1"), "{}", stderr(&o));
    let quiet = home.run(&["-e", "bioxen.log.info('hidden')"], None);
    assert_eq!(stderr(&quiet), "");
}

fn interrupt_after_start(code: &str) -> (std::process::Output, Duration) {
    let home = Home::new();
    let mut c = home.cmd(&["-e", code]);
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let child = c.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    (out, start.elapsed())
}

#[test]
fn ctrl_c_stops_a_jit_compiled_loop_with_traceback_and_130() {
    let (o, took) = interrupt_after_start("local n = 0 while true do n = n + 1 end");
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("interrupted") && stderr(&o).contains("stack traceback"),
        "{}",
        stderr(&o)
    );
    assert!(took < Duration::from_secs(2));
}

#[test]
fn ctrl_c_is_not_swallowed_by_pcall_loops() {
    let (o, _) = interrupt_after_start("while true do pcall(function() while true do end end) end");
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
}

#[test]
fn ctrl_c_while_waiting_exits_130() {
    let (o, took) = interrupt_after_start("bioxen.task.sleep(30)");
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(took < Duration::from_secs(2));
}

#[test]
fn ctrl_c_ends_waiting_tasks_instead_of_running_them_on() {
    // The task sleeps past the Ctrl-C; before, the run waited for it and it printed.
    let (o, took) = interrupt_after_start(
        "bioxen.task.spawn(function() bioxen.task.sleep(5) io.stderr:write('task ran on') end) \
         bioxen.task.sleep(30)",
    );
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(!stderr(&o).contains("task ran on"), "{}", stderr(&o));
    assert!(took < Duration::from_secs(3), "{took:?}");
}

/// C modules built for Lua 5.1 (Debian's lua-cjson and lua-socket) load in the host.
#[test]
fn c_modules_for_lua51_load_with_require() {
    let home = Home::new();
    let mut c = home.cmd(&[
        "-e",
        "print(require('cjson').encode{1,2}) print(type(require('socket').gettime()))",
    ]);
    c.env("LUA_CPATH", "/usr/lib/x86_64-linux-gnu/lua/5.1/?.so;;")
        .env("LUA_PATH", "/usr/share/lua/5.1/?.lua;;");
    let o = common::run_with_stdin(c, None);
    assert_eq!(stdout(&o), "[1,2]\nnumber\n", "{}", stderr(&o));
}
