//! The REPL driven through a real pseudo-terminal, as a user types.
mod common;
use common::{Home, pty::Pty};
use std::time::Duration;

fn repl(home: &Home, args: &[&str]) -> Pty {
    let mut p = Pty::spawn(home.cmd(args));
    p.expect("> ");
    p
}

#[test]
fn expressions_print_values_and_statements_print_nothing() {
    let home = Home::new();
    let mut r = repl(&home, &[]);
    assert_eq!(r.eval("1 + 1"), "2");
    assert_eq!(r.eval("1, \"a\", nil"), "1\t\"a\"\tnil");
    assert_eq!(r.eval("=2 * 21"), "42");
    assert_eq!(r.eval("y = 5"), "");
    assert_eq!(r.eval("for i = 1, 3 do y = y + i end"), "");
    assert_eq!(r.eval("y"), "11");
    assert_eq!(r.eval("print('out')"), "out");
}

#[test]
fn top_level_locals_persist_without_becoming_globals() {
    let home = Home::new();
    let mut r = repl(&home, &[]);
    assert_eq!(r.eval("local x = 41"), "");
    assert_eq!(r.eval("x + 1"), "42");
    assert_eq!(r.eval("rawget(_G, 'x')"), "nil");
    assert_eq!(r.eval("local print = print"), "");
    assert_eq!(r.eval("local a, b = 1"), "");
    assert_eq!(r.eval("a, b"), "1\tnil");
    assert_eq!(
        r.eval("local function fact(n) return n < 2 and 1 or n * fact(n - 1) end"),
        ""
    );
    assert_eq!(r.eval("fact(5), rawget(_G, 'fact')"), "120\tnil");
    assert_eq!(r.eval("function getx() return x end"), "");
    assert_eq!(r.eval("x = 7"), "");
    assert_eq!(r.eval("getx(), rawget(_G, 'x')"), "7\tnil");
    assert_eq!(r.eval("do local inner = 1 end"), "");
    assert_eq!(r.eval("inner"), "nil");
}

#[test]
fn multi_line_input_continues_until_the_chunk_is_complete() {
    let home = Home::new();
    let mut r = repl(&home, &[]);
    r.line("function twice(n)");
    r.expect(">> ");
    r.line("  return n * 2");
    r.expect(">> ");
    r.line("end");
    r.expect("\n> ");
    assert_eq!(r.eval("twice(21)"), "42");
    r.line("t = {");
    r.expect(">> ");
    r.line("  1, 2,");
    r.expect(">> ");
    r.line("}");
    r.expect("\n> ");
    assert_eq!(r.eval("#t"), "2");
}

#[test]
fn values_print_nested_sorted_limited_and_quoted() {
    let home = Home::new();
    let mut r = repl(&home, &[]);
    assert_eq!(
        r.eval("{ b = 1, a = { c = 'x' }, 10, 20 }"),
        "{ 10, 20, a = { c = \"x\" }, b = 1 }"
    );
    assert_eq!(r.eval("'line\\nbreak'"), "\"line\\nbreak\"");
    r.eval("c = { name = 'cycle' } c.self = c");
    let cyc = r.eval("c");
    assert!(cyc.contains("self = <cycle table: 0x"), "{cyc}");
    let deep = r.eval("{ { { { { { 1 } } } } } }");
    assert!(deep.contains("{...}"), "{deep}");
    let long = r.eval("(function() local t = {} for i = 1, 100 do t[i] = i end return t end)()");
    assert!(long.contains("... (60 more)"), "{long}");
    let wide = r.eval("{ alpha = string.rep('a', 50), beta = string.rep('b', 50) }");
    assert!(wide.starts_with("{\n  alpha = \"aaa"), "{wide}");
    // stdout is this terminal: colours
    r.eval("'colour'");
    assert!(r.raw().contains("\x1b[32m\"colour\"\x1b[0m"), "{}", r.raw());
}

#[test]
fn no_colours_when_stdout_is_not_a_terminal() {
    let home = Home::new();
    let o = home.run(&["-i"], Some("'plain'\n{ 1, 'two' }\n"));
    let out = common::stdout(&o);
    assert!(out.contains("\"plain\"\n{ 1, \"two\" }"), "{out}");
    assert!(!out.contains('\x1b'), "{out:?}");
}

#[test]
fn tab_completes_globals_keywords_fields_and_libraries() {
    let home = Home::new();
    let mut r = repl(&home, &[]);
    r.send("pri\t");
    r.expect("print");
    clear_line(&mut r);
    r.send("whi\t");
    r.expect("while");
    clear_line(&mut r);
    // bioxen.* libraries load lazily: completion lists them from the registry
    r.send("bioxen.\t\t");
    // The listing may take several rows as libraries are added: read up to the
    // prompt rustyline prints again below it.
    let mut listing = r.expect("watch");
    listing.push_str(&r.expect("> bioxen."));
    for lib in ["hotreload", "json", "pretty", "reload", "task"] {
        assert!(listing.contains(lib), "{lib} missing from {listing}");
    }
    clear_line(&mut r);
    r.send("bioxen.json.\t\t");
    expect_listing(&mut r, &["array", "decode", "encode", "null"]);
    clear_line(&mut r);
    r.eval("obj = setmetatable({ own = 1 }, { __index = setmetatable({ inherited = 2 }, { __index = { deep = 3 } }) })");
    r.send("obj.\t\t");
    expect_listing(&mut r, &["deep", "inherited", "own"]);
    clear_line(&mut r);
    r.eval("s = 'text'");
    r.send("s:up\t");
    r.expect("s:upper");
    clear_line(&mut r);
    r.eval("local mine = 1");
    r.send("mi\t");
    r.expect("mine");
    clear_line(&mut r);
}

/// Ctrl-C at the prompt, then wait for the fresh prompt (typed-ahead keys
/// would reach the terminal before the editor is back in raw mode).
fn clear_line(r: &mut Pty) {
    r.ctrl_c();
    r.expect_empty_prompt();
}

/// Waits for a completion listing and checks it names `words` in order.
fn expect_listing(r: &mut Pty, words: &[&str]) {
    let listing = r.expect(words[words.len() - 1]);
    let mut rest = listing.as_str();
    for w in words {
        let at = rest
            .find(w)
            .unwrap_or_else(|| panic!("{w} missing from {listing}"));
        rest = &rest[at + w.len()..];
    }
}

#[test]
fn ctrl_c_clears_the_input_line() {
    let home = Home::new();
    let mut r = repl(&home, &[]);
    r.send("this is not lua");
    r.expect("this is not lua");
    clear_line(&mut r);
    assert_eq!(r.eval("1 + 2"), "3");
    r.line("function half_typed()");
    r.expect(">> ");
    clear_line(&mut r);
    assert_eq!(r.eval("type(half_typed)"), "\"nil\"");
}

#[test]
fn ctrl_c_stops_a_runaway_jit_loop_and_keeps_the_session() {
    let home = Home::new();
    let mut r = repl(&home, &[]);
    assert_eq!(r.eval("(jit.status())"), "true");
    r.eval("local kept = 'still here'");
    r.eval("n = 0");
    r.line("while true do n = n + 1 end");
    // let the loop run long enough to be compiled
    std::thread::sleep(Duration::from_millis(300));
    r.ctrl_c();
    r.expect("interrupted\nstack traceback:\n\tstdin:1: in main chunk\n> ");
    assert_eq!(r.eval("kept, n > 1000"), "\"still here\"\ttrue");
    // the traceback shows where the loop was
    r.eval("function spin() while true do end end");
    r.line("spin()");
    std::thread::sleep(Duration::from_millis(200));
    r.ctrl_c();
    r.expect("in function 'spin'");
    r.expect("\n> ");
    // the same again with an empty loop, pressing Ctrl-C twice
    r.line("while true do end");
    std::thread::sleep(Duration::from_millis(200));
    r.ctrl_c();
    r.ctrl_c();
    r.expect("interrupted");
    r.expect("\n> ");
    assert_eq!(r.eval("kept"), "\"still here\"");
    // pcall cannot swallow the interrupt
    r.line("while true do pcall(function() while true do end end) end");
    std::thread::sleep(Duration::from_millis(200));
    r.ctrl_c();
    r.expect("interrupted");
    r.expect("\n> ");
    assert_eq!(r.eval("kept"), "\"still here\"");
    // a wait on the event loop stops too
    r.line("bioxen.task.sleep(60)");
    std::thread::sleep(Duration::from_millis(100));
    r.ctrl_c();
    r.expect("interrupted");
    r.expect("\n> ");
    assert_eq!(r.eval("1"), "1");
    assert!(r.child.try_wait().unwrap().is_none(), "the REPL exited");
}

#[test]
fn ctrl_d_on_an_empty_line_exits() {
    let home = Home::new();
    let mut r = repl(&home, &[]);
    r.send("1");
    r.ctrl_d(); // not empty: deletes, does not exit
    r.send("\x7f");
    r.ctrl_d();
    let status = r
        .wait_exit(Duration::from_secs(5))
        .expect("exit after Ctrl-D");
    assert!(status.success());
}

#[test]
fn errors_print_a_short_traceback_and_the_repl_goes_on() {
    let home = Home::new();
    let mut r = repl(&home, &[]);
    r.eval("function inner() error('boom') end");
    r.eval("function outer() inner() end");
    let err = r.eval("outer()");
    assert!(err.starts_with("stdin:1: boom\nstack traceback:"), "{err}");
    assert!(err.contains("in function 'inner'"), "{err}");
    assert!(err.contains("in function 'outer'"), "{err}");
    for internal in ["repl.lua", "[bioxen", "xpcall", "[C]: in ?"] {
        assert!(!err.contains(internal), "REPL frame {internal} in {err}");
    }
    let kind = r.eval("error(bioxen.error('Timeout', 'too slow'))");
    assert!(kind.starts_with("stdin:1: Timeout: too slow"), "{kind}");
    // an error value raised inside a bioxen library names the user's line
    let lib = r.eval("bioxen.pretty.format(1, { colour = true })");
    assert!(
        lib.starts_with("stdin:1: Argument: unknown pretty option 'colour'"),
        "{lib}"
    );
    let syntax = r.eval("x = = 1");
    assert!(syntax.contains("unexpected symbol near '='"), "{syntax}");
    assert_eq!(r.eval("'still going'"), "\"still going\"");
}

#[test]
fn dot_commands() {
    let home = Home::new();
    let lib = home.write("lib.lua", "shared = 'from file'\nreturn 1, 2\n");
    let mut r = repl(&home, &[]);
    let help = r.eval(".help");
    assert!(
        help.contains(".load FILE") && help.contains(".reload MOD"),
        "{help}"
    );
    assert_eq!(r.eval(&format!(".load {}", lib.display())), "1\t2");
    assert_eq!(r.eval("shared"), "\"from file\"");
    assert!(r.eval(".load /no/such/file.lua").contains("cannot open"));
    r.eval("local gone = 1");
    assert!(r.eval(".clear").contains("cleared"));
    assert_eq!(r.eval("gone, shared"), "nil\t\"from file\"");
    assert!(r.eval(".nope").contains("unknown command .nope"));
    // .clear also drops an unfinished chunk
    r.line("function unfinished()");
    r.expect(">> ");
    assert!(r.eval(".clear").contains("cleared"));
    assert_eq!(r.eval("unfinished"), "nil");
    assert_eq!(r.eval(".5 + 1"), "1.5");
    r.line(".exit");
    let status = r
        .wait_exit(Duration::from_secs(5))
        .expect(".exit ends the REPL");
    assert!(status.success());
}

#[test]
fn reload_and_watch_from_the_repl() {
    let home = Home::new();
    home.write(
        "mods/greeter.lua",
        "return { hello = function() return 'v1' end }\n",
    );
    let mut cmd = home.cmd(&[]);
    cmd.current_dir(home.path().join("mods"));
    let mut r = Pty::spawn(cmd);
    r.expect("> ");
    r.eval("g = require('greeter')");
    assert_eq!(r.eval("g.hello()"), "\"v1\"");
    home.write(
        "mods/greeter.lua",
        "return { hello = function() return 'v2' end }\n",
    );
    assert_eq!(r.eval(".reload greeter"), "reloaded greeter");
    assert_eq!(r.eval("g.hello()"), "\"v2\"");
    r.eval("bioxen.watch('greeter')");
    home.write(
        "mods/greeter.lua",
        "return { hello = function() return 'v3' end }\n",
    );
    // the change is applied before the next input runs
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    loop {
        let out = r.eval("g.hello()");
        if out.ends_with("\"v3\"") {
            assert!(out.contains("reloaded greeter"), "{out}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no reload within 1 s: {out}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn tasks_run_in_the_repl() {
    let home = Home::new();
    let mut r = repl(&home, &[]);
    r.eval("t = bioxen.task.spawn(function() bioxen.task.sleep(0.01) return 7 end)");
    assert_eq!(r.eval("t:wait()"), "7");
}

#[test]
fn interactive_after_a_script_keeps_its_globals() {
    let home = Home::new();
    let script = home.write("setup.lua", "configured = { n = 3 }\nlocal hidden = 1\n");
    let mut r = repl(&home, &["-i", script.to_str().unwrap()]);
    assert_eq!(r.eval("configured.n"), "3");
    assert_eq!(r.eval("hidden"), "nil");
}

#[test]
fn history_is_kept_across_runs_without_duplicates_and_limited() {
    let home = Home::new();
    let file = home.path().join("data/repl_history");
    let mut r = repl(&home, &[]);
    r.eval("first = 1");
    r.eval("second = 2");
    r.eval("second = 2");
    r.line("function f()");
    r.expect(">> ");
    r.line("end");
    r.expect("\n> ");
    r.ctrl_d();
    r.wait_exit(Duration::from_secs(5)).expect("exit");
    let text = std::fs::read_to_string(&file).expect("history file in the data folder");
    assert_eq!(text.matches("second = 2").count(), 1, "{text}");
    assert!(text.contains("first = 1"), "{text}");

    // a new run recalls the last entry with the Up arrow
    let mut r = repl(&home, &[]);
    r.send("\x1b[A");
    r.expect("function f()");
    clear_line(&mut r);
    r.ctrl_d();
    r.wait_exit(Duration::from_secs(5)).expect("exit");

    // two sessions side by side both keep their entries
    let mut a = repl(&home, &[]);
    let mut b = repl(&home, &[]);
    a.eval("from_a = 1");
    b.eval("from_b = 2");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("from_a = 1") && text.contains("from_b = 2"),
        "{text}"
    );
    drop((a, b));

    // the file never grows beyond the limit
    let many: String = (0..1500).map(|i| format!("v{i} = {i}\n")).collect();
    std::fs::write(&file, many).unwrap();
    let mut r = repl(&home, &[]);
    r.eval("last = true");
    let text = std::fs::read_to_string(&file).unwrap();
    let entries = text.lines().filter(|l| l.contains(" = ")).count();
    assert!(entries <= 1000, "{entries} entries kept");
    assert!(text.contains("last = true"));
}

#[test]
fn code_stuck_in_c_ends_with_a_ctrl_c_after_the_grace() {
    let home = Home::new();
    let mut r = repl(&home, &[]);
    // io.read blocks in C on the terminal: the hook cannot stop it.
    // The marker shows the evaluation has started (the terminal is back in
    // cooked mode, so Ctrl-C is a signal, not a byte read by io.read). Under
    // load a Ctrl-C can land before io.read is reached; the Lua code then stops
    // as it should, the prompt returns, and the input is typed again.
    for attempt in 1.. {
        r.line("io.write('read', 'ing\\n') io.flush() io.read()");
        r.expect("reading\n");
        r.ctrl_c();
        r.ctrl_c(); // a quick second Ctrl-C is ignored
        assert!(
            r.wait_exit(Duration::from_millis(500)).is_none(),
            "exited on a quick second Ctrl-C"
        );
        // Once the first Ctrl-C has gone unanswered for 2 s, another one exits.
        std::thread::sleep(Duration::from_millis(1600));
        if !r.shows("interrupted") {
            break;
        }
        assert!(attempt < 5, "every Ctrl-C landed before io.read");
        r.expect_empty_prompt();
    }
    // Under load the first may be seen late, so keep pressing for a while.
    let mut status = None;
    for _ in 0..20 {
        r.ctrl_c();
        status = r.wait_exit(Duration::from_millis(500));
        if status.is_some() {
            break;
        }
    }
    assert_eq!(status.expect("exit after the grace").code(), Some(130));
}

#[test]
fn no_colours_on_a_terminal_with_no_color_set() {
    let home = Home::new();
    let mut cmd = home.cmd(&[]);
    cmd.env("NO_COLOR", "1");
    let mut r = Pty::spawn(cmd);
    r.expect("> ");
    assert_eq!(r.eval("'plain'"), "\"plain\"");
    assert!(!r.raw().contains("\x1b[32m"), "{:?}", r.raw());
}
