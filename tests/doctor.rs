//! `bioxen doctor`: each test breaks one thing doctor checks and asserts the
//! report names the problem and its fix, and that the exit status says so.
mod common;
use common::{Home, stderr, stdout};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn report(cmd: &mut Command) -> (Value, Option<i32>) {
    let o = cmd.output().unwrap();
    let out = stdout(&o);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!(
            "doctor --json printed no JSON ({e}):\n{out}\n{}",
            stderr(&o)
        )
    });
    (v, o.status.code())
}

fn find<'a>(report: &'a Value, library: &str, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["library"] == library && c["name"] == name)
        .unwrap_or_else(|| panic!("no check {library}/{name} in {report:#}"))
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

#[test]
fn a_healthy_home_has_no_problem_and_exit_status_zero() {
    let home = Home::new();
    let (r, code) = report(&mut home.cmd(&["doctor", "--json"]));
    assert_eq!(r["problems"], 0, "{r:#}");
    assert_eq!(code, Some(0));
    for name in [
        "bioxen version",
        "JIT compiler",
        "config folder",
        "data folder",
        "cache folder",
        "runtime folder",
        "configuration file",
    ] {
        assert_eq!(find(&r, "env", name)["status"], "ok", "{name}");
    }
    assert!(text(&find(&r, "env", "bioxen version")["detail"]).contains("LuaJIT 2.1"));
    assert_eq!(find(&r, "doctor", "C compiler")["status"], "ok");
    // Child VMs of every backend run code.
    for backend in ["thread", "process"] {
        let c = find(&r, "vm", &format!("VM backend {backend}"));
        assert_eq!(c["status"], "ok", "{c}");
    }
    // The text report groups by library and ends with the counts.
    let o = home.run(&["doctor"], None);
    let out = stdout(&o);
    assert!(
        out.contains("\nenv\n") && out.contains("ok       data folder"),
        "{out}"
    );
    assert!(out.contains(", 0 problems, "), "{out}");
}

#[test]
fn an_unwritable_data_folder_is_a_problem_with_its_fix() {
    let home = Home::new();
    let data = home.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut cmd = home.cmd(&["doctor", "--json", "env"]);
    // Root writes anywhere, so as root doctor runs as nobody, owning the home
    // but not the read-only data folder.
    if unsafe { libc::geteuid() } == 0 {
        use std::os::unix::process::CommandExt;
        let nobody = 65534;
        for entry in ["", "config", "cache", "run"] {
            let p = home.path().join(entry);
            std::fs::create_dir_all(&p).unwrap();
            std::os::unix::fs::chown(&p, Some(nobody), Some(nobody)).unwrap();
        }
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        cmd.uid(nobody).gid(nobody).env("HOME", home.path());
    }
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o555)).unwrap();
    let (r, code) = report(&mut cmd);
    let c = find(&r, "env", "data folder");
    assert_eq!(c["status"], "problem", "{r:#}");
    assert!(text(&c["detail"]).contains("is not writable"), "{c}");
    assert!(
        text(&c["fix"]).contains(&format!("chmod u+rwx \"{}\"", data.display())),
        "{c}"
    );
    assert_eq!(code, Some(1));
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_file_where_a_folder_should_be_is_a_problem() {
    let home = Home::new();
    home.write("cache", "not a folder");
    let (r, code) = report(&mut home.cmd(&["doctor", "--json", "env"]));
    let c = find(&r, "env", "cache folder");
    assert_eq!(c["status"], "problem");
    assert!(
        text(&c["detail"]).contains("exists but is not a folder"),
        "{c}"
    );
    assert!(text(&c["fix"]).starts_with("mv "), "{c}");
    assert_eq!(code, Some(1));
}

#[test]
fn a_missing_compiler_is_a_problem_naming_how_to_install_one() {
    let home = Home::new();
    let empty = home.path().join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let mut cmd = home.cmd(&["doctor", "--json", "doctor"]);
    cmd.env("PATH", &empty).env_remove("CC");
    let (r, code) = report(&mut cmd);
    let c = find(&r, "doctor", "C compiler");
    assert_eq!(c["status"], "problem", "{c}");
    assert!(
        text(&c["detail"]).contains("no cc, gcc or clang on PATH"),
        "{c}"
    );
    assert!(text(&c["fix"]).contains("apt-get install gcc"), "{c}");
    assert_eq!(code, Some(1));
    // A CC that names nothing installed is reported as such.
    let mut cmd = home.cmd(&["doctor", "--json", "doctor"]);
    cmd.env("CC", "no-such-cc-7f3a");
    let (r, _) = report(&mut cmd);
    let c = find(&r, "doctor", "C compiler");
    assert!(
        text(&c["detail"]).contains("CC=no-such-cc-7f3a is not on PATH"),
        "{c}"
    );
    assert!(text(&c["fix"]).contains("set CC"), "{c}");
}

#[test]
fn a_stale_ssh_agent_socket_is_a_problem() {
    let home = Home::new();
    let sock = home.path().join("agent.sock");
    // A socket file nobody listens on any more, as a dead agent leaves behind.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    let mut cmd = home.cmd(&["doctor", "--json", "ssh"]);
    cmd.env("SSH_AUTH_SOCK", &sock);
    let (r, _) = report(&mut cmd);
    let c = find(&r, "ssh", "SSH agent");
    assert_eq!(c["status"], "problem", "{c}");
    assert!(
        text(&c["detail"]).contains("does not answer (stale socket)"),
        "{c}"
    );
    assert!(text(&c["fix"]).contains("ssh-agent"), "{c}");
    // Not a socket at all.
    let mut cmd = home.cmd(&["doctor", "--json", "ssh"]);
    cmd.env("SSH_AUTH_SOCK", home.path().join("gone.sock"));
    let (r, _) = report(&mut cmd);
    let c = find(&r, "ssh", "SSH agent");
    assert!(
        text(&c["detail"]).contains("is not a socket (stale agent)"),
        "{c}"
    );
}

#[test]
fn a_missing_known_hosts_file_is_a_warning_with_the_keyscan_fix() {
    let home = Home::new();
    let mut cmd = home.cmd(&["doctor", "--json", "ssh"]);
    cmd.env("HOME", home.path());
    let (r, _) = report(&mut cmd);
    let c = find(&r, "ssh", "SSH known_hosts");
    assert_eq!(c["status"], "warning");
    assert!(
        text(&c["fix"]).contains("ssh-keyscan -H HOST >> ~/.ssh/known_hosts"),
        "{c}"
    );
    home.write(
        ".ssh/known_hosts",
        "# comment\n127.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA\n",
    );
    let (r, _) = report(&mut cmd);
    let c = find(&r, "ssh", "SSH known_hosts");
    assert_eq!(c["status"], "ok");
    assert!(text(&c["detail"]).contains("(1 host key)"), "{c}");
}

#[test]
fn a_broken_configuration_file_is_a_problem() {
    let home = Home::new();
    home.write("config/config.json", "{ \"lrs\": ");
    let (r, code) = report(&mut home.cmd(&["doctor", "--json", "env"]));
    let c = find(&r, "env", "configuration file");
    assert_eq!(c["status"], "problem");
    assert!(text(&c["detail"]).contains("is not valid JSON"), "{c}");
    assert!(text(&c["fix"]).contains("config.json"), "{c}");
    assert_eq!(code, Some(1));
}

#[test]
fn the_jit_turned_off_is_a_problem() {
    let home = Home::new();
    let (r, code) = report(&mut home.cmd(&["-joff", "doctor", "--json", "env"]));
    let c = find(&r, "env", "JIT compiler");
    assert_eq!(c["status"], "problem");
    assert!(text(&c["fix"]).contains("-joff"), "{c}");
    assert_eq!(code, Some(1));
}

#[test]
fn little_free_space_is_a_warning_at_the_configured_threshold() {
    let home = Home::new();
    home.write(
        "config/config.json",
        r#"{"doctor": {"free_space_warning": "100000000G"}}"#,
    );
    let (r, _) = report(&mut home.cmd(&["doctor", "--json", "env"]));
    let c = find(&r, "env", "data folder");
    assert_eq!(c["status"], "warning", "{c}");
    assert!(text(&c["detail"]).contains("little space left"), "{c}");
}

#[test]
fn headers_absent_from_this_build_are_reported_clearly() {
    let home = Home::new();
    let (r, _) = report(&mut home.cmd(&["doctor", "--json", "doctor"]));
    let c = find(&r, "doctor", "LuaJIT headers");
    if c["status"] == "ok" {
        // A build with the curator carries them: the folder holds lua.h.
        let dir = text(&c["detail"]).split(' ').next().unwrap();
        assert!(std::path::Path::new(dir).join("lua.h").exists(), "{c}");
    } else {
        assert!(
            text(&c["detail"]).contains("carries no LuaJIT headers"),
            "{c}"
        );
        assert!(!text(&c["fix"]).is_empty());
    }
}

#[test]
fn unknown_arguments_are_refused() {
    let home = Home::new();
    let o = home.run(&["doctor", "nosuchlib"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no library named nosuchlib"));
    let o = home.run(&["doctor", "--frobnicate"], None);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn the_example_reports_and_gates_on_problems() {
    let home = Home::new();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/doctor_report.lua");
    let o = home.run(&[example, "env", "log"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("10 checks: 0 problem(s), 0 warning(s)"),
        "{}",
        stdout(&o)
    );
    home.write("config/config.json", "not json");
    let o = home.run(&[example, "env"], None);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("[problem] configuration file:") && out.contains("fix: fix the JSON in"),
        "{out}"
    );
}

#[test]
fn a_dead_session_host_leaves_a_stale_socket_that_doctor_names() {
    let home = Home::new();
    let o = home.run(&["session", "new", "lab"], None);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let (r, _) = report(&mut home.cmd(&["doctor", "--json", "session"]));
    let c = find(&r, "session", "session host");
    assert_eq!(c["status"], "ok", "{c}");
    let detail = text(&c["detail"]).to_string();
    assert!(detail.contains("1 persistent session(s)"), "{detail}");
    let pid: i32 = detail
        .split("(pid ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {detail}"));
    // The host dies without cleaning up, as after SIGKILL or a crash.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the session host did not die"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (r, code) = report(&mut home.cmd(&["doctor", "--json", "session"]));
    let checks: Vec<&Value> = r["checks"].as_array().unwrap().iter().collect();
    let stale = checks
        .iter()
        .find(|c| c["status"] == "problem")
        .unwrap_or_else(|| panic!("no problem reported: {r:#}"));
    let socket = home.path().join("run/sessions.sock");
    assert!(
        text(&stale["detail"]).contains("is a stale socket"),
        "{stale}"
    );
    assert!(
        text(&stale["detail"]).contains(&format!("pid {pid}")),
        "{stale}"
    );
    assert_eq!(
        stale["fix"],
        format!(
            "rm \"{}\" (the next bioxen session command starts a new host)",
            socket.display()
        )
    );
    let lost = checks
        .iter()
        .find(|c| c["status"] == "warning")
        .expect("lost sessions");
    assert!(
        text(&lost["detail"]).contains("sessions lost: lab"),
        "{lost}"
    );
    assert_eq!(code, Some(1));
    // Following the fix clears the problem.
    std::fs::remove_file(&socket).unwrap();
    let (r, code) = report(&mut home.cmd(&["doctor", "--json", "session"]));
    assert_eq!(r["problems"], 0, "{r:#}");
    assert_eq!(code, Some(0));
}

#[test]
fn the_repl_help_shows_a_library_and_its_checks() {
    let home = Home::new();
    home.write("config/config.json", "{ broken");
    let mut p = common::pty::Pty::spawn(home.cmd(&[]));
    p.expect("> ");
    p.line(".help env");
    p.expect("bioxen.env: system facts, folders, interpreters, configuration");
    p.expect("PROBLEM  configuration file");
    p.expect("fix: fix the JSON in");
    p.expect("\n> ");
    p.line(".help nope");
    p.expect("NotFound: no library bioxen.nope");
    p.line(".exit");
    assert!(p.wait_exit(std::time::Duration::from_secs(10)).is_some());
}
