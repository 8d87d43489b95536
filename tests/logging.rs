//! The log file: off by default, turned on by environment or configuration,
//! rotated by size with the retention count respected under a flood of lines
//! (also from two processes at once), text or JSON lines; `bioxen logs` reads it.
mod common;
use common::{Home, stderr, stdout};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn logs_dir(home: &Home) -> PathBuf {
    home.path().join("data/logs")
}

fn log_files(home: &Home) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(logs_dir(home))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n != "bioxen.log.lock")
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Every retained line, oldest file first.
fn retained_lines(home: &Home) -> Vec<String> {
    let mut files = log_files(home);
    files.sort_by_key(|n| {
        std::cmp::Reverse(n.rsplit('.').next().unwrap().parse::<u32>().unwrap_or(0))
    });
    let mut lines = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(logs_dir(home).join(f)).unwrap();
        lines.extend(text.lines().map(str::to_string));
    }
    lines
}

fn flood(home: &Home, tag: &str, n: usize, env: &[(&str, &str)]) -> Command {
    let code = format!(
        "for i = 1, {n} do bioxen.log.info(('{tag} %06d '):format(i) .. ('x'):rep(50)) end"
    );
    let mut c = home.cmd(&["-e", &code]);
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

#[test]
fn no_log_file_unless_configured() {
    let home = Home::new();
    common::lua_ok(&home, "bioxen.log.warn('console only')");
    assert!(
        !logs_dir(&home).exists(),
        "a log folder appeared without file logging"
    );
    let o = home.run(&["logs"], None);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("no log file") && err.contains("BIOXEN_LOG_FILE=info"),
        "{err}"
    );
}

#[test]
fn a_flood_of_lines_rotates_by_size_and_keeps_the_retention_count() {
    let home = Home::new();
    let env = [
        ("BIOXEN_LOG_FILE", "info"),
        ("BIOXEN_LOG_MAX_SIZE", "16K"),
        ("BIOXEN_LOG_KEEP", "3"),
    ];
    let o = flood(&home, "flood", 20_000, &env).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        log_files(&home),
        ["bioxen.log", "bioxen.log.1", "bioxen.log.2", "bioxen.log.3"]
    );
    for f in log_files(&home) {
        let size = std::fs::metadata(logs_dir(&home).join(&f)).unwrap().len();
        assert!(size <= 16 * 1024, "{f} is {size} bytes, over the 16K limit");
    }
    let lines = retained_lines(&home);
    let numbers: Vec<usize> = lines
        .iter()
        .map(|l| {
            let at = l.find("flood ").expect(l) + 6;
            l[at..at + 6].parse().unwrap()
        })
        .collect();
    assert_eq!(*numbers.last().unwrap(), 20_000, "the newest line is kept");
    for w in numbers.windows(2) {
        assert_eq!(w[1], w[0] + 1, "lines lost between retained files");
    }
    // `bioxen logs` reads them back in order, oldest file first.
    let o = home.run(&["logs", "-n", "2"], None);
    let out = stdout(&o);
    assert!(
        out.contains("flood 019999") && out.contains("flood 020000"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 2);
}

#[test]
fn two_processes_share_one_rotating_file_without_torn_lines() {
    let home = Home::new();
    let env = [
        ("BIOXEN_LOG_FILE", "info"),
        ("BIOXEN_LOG_MAX_SIZE", "32K"),
        ("BIOXEN_LOG_KEEP", "4"),
    ];
    let a = flood(&home, "alpha", 8_000, &env).spawn().unwrap();
    let b = flood(&home, "beta", 8_000, &env).spawn().unwrap();
    for mut c in [a, b] {
        assert!(c.wait().unwrap().success());
    }
    let files = log_files(&home);
    assert_eq!(files.len(), 5, "current file + 4 kept: {files:?}");
    let line_len = retained_lines(&home)[0].len() as u64 + 1;
    for f in &files {
        let size = std::fs::metadata(logs_dir(&home).join(f)).unwrap().len();
        // Two writers may each add one line after the other checked the size.
        assert!(size <= 32 * 1024 + line_len, "{f} is {size} bytes");
    }
    let mut last = std::collections::HashMap::new();
    for l in retained_lines(&home) {
        let tag = if l.contains(" alpha ") {
            "alpha"
        } else {
            "beta"
        };
        let at = l
            .find(&format!("{tag} "))
            .unwrap_or_else(|| panic!("torn line: {l}"))
            + tag.len()
            + 1;
        assert!(l.ends_with(&"x".repeat(50)), "torn line: {l}");
        let n: usize = l[at..at + 6].parse().unwrap();
        if let Some(prev) = last.insert(tag, n) {
            assert_eq!(
                n,
                prev + 1,
                "{tag}: a line was lost inside the retained files"
            );
        }
    }
    // Whichever process finished last has its final line kept.
    assert!(last.values().any(|&n| n == 8_000), "{last:?}");
}

#[test]
fn configuration_file_keys_turn_on_json_lines_and_environment_wins() {
    let home = Home::new();
    home.write(
        "config/config.json",
        r#"{"log": {"file": "debug", "format": "json", "max_size": "1M", "keep": 2}}"#,
    );
    common::lua_ok(
        &home,
        "bioxen.log.debug('from config', {component = 'pkg'})",
    );
    let text = std::fs::read_to_string(logs_dir(&home).join("bioxen.log")).unwrap();
    let line = text.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(line).expect(line);
    assert_eq!(v["level"], "DEBUG");
    assert!(
        v["fields"]["message"]
            .as_str()
            .unwrap()
            .contains("from config")
    );
    let settings = common::lua_ok(
        &home,
        "local f = bioxen.log.file() print(f.filter, f.format, f.max_size, f.keep)",
    );
    assert_eq!(settings.trim(), "debug\tjson\t1048576\t2");
    // The environment wins over the file, key by key.
    let o = home
        .cmd(&["-e", "print(bioxen.log.file())"])
        .env("BIOXEN_LOG_FILE", "off")
        .output()
        .unwrap();
    assert_eq!(stdout(&o).trim(), "nil");
    let o = home.run(&["logs", "--component", "pkg"], None);
    assert!(stdout(&o).contains("from config"), "{}", stdout(&o));
    let o = home.run(&["logs", "--component", "vm"], None);
    assert_eq!(stdout(&o), "");
    // The same entries from Lua, with timings logged by bioxen.log.timed.
    let out = common::lua_ok(
        &home,
        "bioxen.log.timed('vm', 'exec', function() end) \
         local e = bioxen.log.entries({ component = 'vm', last = 1 })[1] \
         print(e.level, e.component, e.message:match('^exec took [%d.]+ ms') ~= nil)",
    );
    assert_eq!(out.trim(), "DEBUG\tvm\ttrue");
}

#[test]
fn bad_settings_are_ignored_and_doctor_names_them() {
    let home = Home::new();
    let o = home
        .cmd(&["doctor", "log"])
        .env("BIOXEN_LOG_FILE", "info")
        .env("BIOXEN_LOG_MAX_SIZE", "ten megabytes")
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(
        out.contains("BIOXEN_LOG_MAX_SIZE") && out.contains("ten megabytes"),
        "{out}"
    );
    assert!(out.contains("fix: fix the value"), "{out}");
}

#[test]
fn logs_follow_prints_new_lines_across_a_rotation() {
    let home = Home::new();
    let env = [
        ("BIOXEN_LOG_FILE", "info"),
        ("BIOXEN_LOG_MAX_SIZE", "4K"),
        ("BIOXEN_LOG_KEEP", "2"),
    ];
    assert!(flood(&home, "before", 10, &env).status().unwrap().success());
    let mut follower = home
        .cmd(&["logs", "--follow", "-n", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(first.contains("before 000010"), "{first}");
    // 200 lines of ~100 bytes, 30 at a time: several rotations of a 4K file
    // while following, at most one between two polls of the follower.
    let code = "for i = 1, 200 do bioxen.log.info(('after %06d '):format(i) .. ('x'):rep(50)) \
                if i % 30 == 0 then bioxen.task.sleep(0.4) end end";
    let mut writer = home.cmd(&["-e", code]);
    for (k, v) in env {
        writer.env(k, v);
    }
    assert!(writer.status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while Instant::now() < deadline && !seen.iter().any(|l: &String| l.contains("after 000200")) {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(l);
        }
    }
    follower.kill().unwrap();
    let _ = follower.wait();
    assert!(
        seen.iter().any(|l| l.contains("after 000200")),
        "--follow missed the newest line; saw {} lines",
        seen.len()
    );
    // Lines written between two polls of a rotated file are still printed.
    let numbers: Vec<usize> = seen
        .iter()
        .filter_map(|l| {
            l.find("after ")
                .map(|at| l[at + 6..at + 12].parse().unwrap())
        })
        .collect();
    assert_eq!(numbers, (1..=200).collect::<Vec<_>>(), "followed lines");
}

#[test]
fn vm_session_and_package_operations_log_their_durations_and_are_queryable() {
    let home = Home::new();
    let mut c = home.cmd(&[
        "-e",
        r#"local v = bioxen.vm.create{ backend = "thread" }
        v:exec("return 1")
        v:close()
        local m = bioxen.vm.manager()
        local s = m:session("s", { backend = "thread" })
        s:send("x = 1\n")
        s:read{ timeout = 5 }
        m:close()"#,
    ]);
    c.env("BIOXEN_LOG_FILE", "debug");
    let o = common::run_with_stdin(c, None);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let out = common::lua_ok(
        &home,
        r#"for _, comp in ipairs{ "vm", "session" } do
          for _, e in ipairs(bioxen.log.entries{ component = comp }) do print(comp, e.message) end
        end"#,
    );
    for op in [
        "vm\tcreate took",
        "vm\texec took",
        "vm\tclose took",
        "session\tsend took",
        "session\tread took",
    ] {
        assert!(out.contains(op), "{op} missing from the log:\n{out}");
    }
}
