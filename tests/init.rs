//! `bioxen init`: non-interactively with flags, interactively through a real
//! pseudo-terminal (answering each prompt as it appears), and `--project`.
mod common;
use common::{Home, stderr, stdout};
use serde_json::Value;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn config(home: &Home) -> Value {
    let text = std::fs::read_to_string(home.path().join("config/config.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A child on a pseudo-terminal: everything it prints is collected; `expect`
/// waits for text, `send` types a line.
struct Pty {
    child: Child,
    master: std::fs::File,
    output: Arc<Mutex<String>>,
    seen: usize,
}

impl Pty {
    fn spawn(mut cmd: std::process::Command) -> Pty {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: out-parameters for two descriptors; no name, termios or size.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty failed");
        let slave = unsafe { OwnedFd::from_raw_fd(slave) };
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        let child = cmd.spawn().unwrap();
        let master = unsafe { std::fs::File::from_raw_fd(master) };
        let output = Arc::new(Mutex::new(String::new()));
        let (mut reader, out) = (master.try_clone().unwrap(), output.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                out.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Pty {
            child,
            master,
            output,
            seen: 0,
        }
    }

    /// Waits until `text` appears after what was already matched.
    fn expect(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let out = self.output.lock().unwrap().clone();
            if let Some(at) = out[self.seen..].find(text) {
                self.seen += at + text.len();
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {text:?}; the terminal shows:\n{out}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn send(&mut self, line: &str) {
        self.master
            .write_all(format!("{line}\r").as_bytes())
            .unwrap();
    }

    fn finish(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "bioxen init did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(100));
        let out = self.output.lock().unwrap().clone();
        (status.code(), out)
    }
}

#[test]
fn interactive_set_up_on_a_terminal_asks_each_question() {
    let home = Home::new();
    let mut t = Pty::spawn(home.cmd(&["init"]));
    t.expect("Default package profile");
    t.expect("[standard]: ");
    t.send("minimal");
    t.expect("Create a package environment with the minimal profile now? (Y/n): ");
    t.send("n");
    t.expect("Configure a Learning Record Store (xAPI)? (y/N): ");
    t.send("maybe");
    t.expect("please answer y or n");
    t.send("y");
    t.expect("LRS endpoint");
    t.send("http://127.0.0.1:1/xAPI");
    t.expect("LRS user: ");
    t.send("ada");
    t.expect("LRS password: ");
    t.send("s3cret-pw");
    t.expect("Configure an XCP-ng pool? (y/N): ");
    t.send("");
    t.expect("Write a log file? (off, info, debug) [off]: ");
    t.send("info");
    let (code, out) = t.finish();
    // Answers are echoed by the terminal, except the password.
    assert!(out.contains("ada"), "{out}");
    assert!(
        !out.contains("s3cret-pw"),
        "the password was echoed:\n{out}"
    );
    assert!(out.contains("set pkg.profile = minimal"), "{out}");
    assert!(out.contains("set log.file = info"), "{out}");
    assert!(
        out.contains("LRS http://127.0.0.1:1/xAPI not saved: it is not reachable"),
        "{out}"
    );
    assert_eq!(code, Some(1), "a failed LRS test makes init fail:\n{out}");
    let c = config(&home);
    assert_eq!(c["pkg"]["profile"], "minimal");
    assert_eq!(c["log"]["file"], "info");
    assert!(c.get("lrs").is_none(), "an untested LRS was saved: {c}");
}

#[test]
fn non_interactive_set_up_takes_flags_and_defaults() {
    let home = Home::new();
    // (Creating the environment is tested against the rock mirror in doctor_peers.rs.)
    let o = home.run(
        &[
            "init",
            "--profile",
            "development",
            "--no-env",
            "--log-file",
            "debug",
        ],
        None,
    );
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    assert!(
        !out.contains("Default package profile"),
        "prompted without a terminal: {out}"
    );
    let c = config(&home);
    assert_eq!(c["pkg"]["profile"], "development");
    assert_eq!(c["log"]["file"], "debug");
    // The log file setting takes effect on the next run.
    common::lua_ok(&home, "bioxen.log.debug('after init')");
    let o = home.run(&["logs"], None);
    assert!(stdout(&o).contains("after init"), "{}", stdout(&o));
    // Type definitions are written and doctor finds them current.
    let o = home.run(&["doctor", "--json", "doctor"], None);
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let types = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "type definitions")
        .expect("a type definitions check");
    assert_eq!(types["status"], "ok", "{types}");
    let dir = types["detail"].as_str().unwrap().to_string();
    std::fs::write(format!("{dir}/doctor.lua"), "-- edited").unwrap();
    let o = home.run(&["doctor", "--json", "doctor"], None);
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let types = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "type definitions")
        .unwrap();
    assert_eq!(types["status"], "warning");
    assert_eq!(types["fix"], "bioxen init --types");
    assert!(home.run(&["init", "--types"], None).status.success());
    assert!(
        std::fs::read_to_string(format!("{dir}/doctor.lua"))
            .unwrap()
            .contains("---@meta")
    );
}

#[test]
fn an_unreachable_lrs_is_not_saved_and_init_fails() {
    let home = Home::new();
    let o = home.run(
        &[
            "init",
            "--yes",
            "--no-env",
            "--lrs",
            "http://127.0.0.1:1/xAPI",
            "--lrs-user",
            "u",
            "--lrs-password",
            "p",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("not saved: it is not reachable") && out.contains("Connection refused"),
        "{out}"
    );
    assert!(config(&home).get("lrs").is_none());
}

#[test]
fn unknown_flags_and_missing_values_are_refused() {
    let home = Home::new();
    let o = home.run(&["init", "--frob"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown argument --frob"));
    let o = home.run(&["init", "--profile"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--profile needs a value"));
}

#[test]
fn project_skeleton_runs_and_its_spec_passes() {
    let home = Home::new();
    let dir = home.path().join("work/genome-scan");
    let o = home.run(&["init", "--project", dir.to_str().unwrap()], None);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    for f in [
        "main.lua",
        "bioxen.lock",
        ".luarc.json",
        "spec/main_spec.lua",
    ] {
        assert!(dir.join(f).exists(), "no {f}");
    }
    let luarc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(".luarc.json")).unwrap()).unwrap();
    assert_eq!(luarc["runtime.version"], "LuaJIT");
    let lib = luarc["workspace.library"][0].as_str().unwrap();
    assert!(
        std::path::Path::new(lib).join("doctor.lua").exists(),
        ".luarc.json points at {lib}, which holds no type definitions"
    );
    let lock: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("bioxen.lock")).unwrap()).unwrap();
    assert!(lock.is_object());
    let mut run = home.cmd(&["main.lua", "Ada"]);
    run.current_dir(&dir);
    let o = run.output().unwrap();
    assert!(
        stdout(&o).starts_with("Hello, Ada!\nbioxen "),
        "{}",
        stdout(&o)
    );
    let mut test = home.cmd(&["test", "spec"]);
    test.current_dir(&dir);
    let o = test.output().unwrap();
    assert!(
        stdout(&o).contains("2 passed, 0 failed"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    // A second run refuses to overwrite without --force.
    let o = home.run(&["init", "--project", dir.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("already exists; use --force"),
        "{}",
        stderr(&o)
    );
    let o = home.run(
        &["init", "--project", dir.to_str().unwrap(), "--force"],
        None,
    );
    assert!(o.status.success());
}
