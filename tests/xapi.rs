//! bioxen.xapi, bioxen.xcpng and `bioxen xapi-sim`: the simulator as a user runs
//! it, driven by the official XenAPI Python SDK (fidelity), and the Lua specs.
mod common;
use std::process::{Child, Command, Stdio};

struct Sim {
    child: Child,
    url: String,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sim(home: &common::Home, pool: Option<&str>) -> Sim {
    start_sim_in(home, pool, None)
}

/// The simulator with TMPDIR set (where it keeps its keys), when given.
fn start_sim_in(home: &common::Home, pool: Option<&str>, tmp: Option<&std::path::Path>) -> Sim {
    let mut args = vec![
        "xapi-sim",
        "--listen",
        "127.0.0.1:0",
        "--user",
        "root",
        "--password",
        "pw",
    ];
    if let Some(p) = pool {
        args.extend(["--pool", p]);
    }
    let mut cmd = home.cmd(&args);
    if let Some(t) = tmp {
        cmd.env("TMPDIR", t);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bioxen xapi-sim");
    let line = common::first_line(&mut child);
    assert!(
        line.starts_with("http://127.0.0.1:"),
        "first line is the URL: {line:?}"
    );
    Sim {
        child,
        url: line.trim().to_string(),
    }
}

#[test]
fn xenapi_python_sdk_drives_the_simulator() {
    let home = common::Home::new();
    let key = home.path().join("id_guest");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", ""])
        .arg("-f")
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
    let pool = home.write(
        "pool.lua",
        &format!(
            "return {{ authorized_key = {:?}, templates = {{ {{ name = 'Debian Bookworm 12', boot_seconds = 0.05 }} }} }}",
            format!("{}.pub", key.display())
        ),
    );
    let sim = start_sim(&home, Some(pool.to_str().unwrap()));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/xapi/sdk_sequence.py");
    let out = Command::new(common::python())
        .arg(script)
        .arg(&sim.url)
        .arg(&key)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "SDK sequence failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn xapi_sim_rejects_bad_arguments() {
    let home = common::Home::new();
    let o = home.run(&["xapi-sim", "--listen", "127.0.0.1:0"], None);
    assert!(!o.status.success());
    assert!(common::stderr(&o).contains("--user and --password are required"));
    let o = home.run(
        &[
            "xapi-sim",
            "--user",
            "u",
            "--password",
            "p",
            "--listen",
            "nowhere",
        ],
        None,
    );
    assert!(!o.status.success());
    assert!(
        common::stderr(&o).contains("ADDRESS:PORT"),
        "{}",
        common::stderr(&o)
    );
}

fn spec(name: &str) {
    let home = common::Home::new();
    let file = format!("{}/lua/spec/{name}_spec.lua", env!("CARGO_MANIFEST_DIR"));
    let o = home.run(&["test", &file], None);
    let out = common::stdout(&o);
    assert!(
        o.status.success(),
        "{name} specs failed:\n{out}\n{}",
        common::stderr(&o)
    );
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn xapi_specs() {
    spec("xapi");
}

#[test]
fn xcpng_specs() {
    spec("xcpng");
}

#[test]
fn example_runs_against_the_simulator() {
    let home = common::Home::new();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/xcpng_deploy.lua");
    let o = home.run(&[example], None);
    assert!(
        o.status.success(),
        "{}\n{}",
        common::stdout(&o),
        common::stderr(&o)
    );
    assert!(
        common::stdout(&o).contains("hello from"),
        "{}",
        common::stdout(&o)
    );
}

/// `bioxen.vm.create{backend = "xcpng", env = NAME}`: the guest's own curator
/// reproduces the local environment from its lockfile, fetching from the test
/// LuaRocks mirror on 127.0.0.1; with the mirror gone the deploy fails, names
/// the guest and what failed, and leaves no VM behind.
#[test]
fn package_environment_is_reproduced_in_the_guest() {
    let home = common::Home::new();
    // a copy of the test mirror, so this test may break a rock in it
    let repo = home.path().join("mirror");
    std::fs::create_dir_all(&repo).unwrap();
    let st = Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", common::rocks_repo().display()))
        .arg(&repo)
        .status()
        .unwrap();
    assert!(st.success());
    let mirror = common::rocks_mirror_of(&repo);
    for args in [
        vec!["env", "create", "sci"],
        vec![
            "pkg",
            "install",
            "inspect",
            "make-demo",
            "--env",
            "sci",
            "--server",
            &mirror.url,
            "--quiet",
        ],
    ] {
        let o = home.run(&args, None);
        assert!(o.status.success(), "{args:?}: {}", common::stderr(&o));
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/xapi/guest_env.lua");
    let o = home.run(&[script, "ok"], None);
    let out = common::stdout(&o);
    assert!(
        o.status.success() && out.ends_with("OK\n"),
        "{out}\n{}",
        common::stderr(&o)
    );
    assert!(out.contains("a = \"b\""), "{out}");
    // the mirror now serves a different make-demo source than the lockfile
    // records: the guest's curator refuses it
    let rock = repo.join("make-demo-1.0-1.src.rock");
    let mut bytes = std::fs::read(&rock).unwrap();
    bytes.extend_from_slice(b"tampered");
    std::fs::write(&rock, bytes).unwrap();
    let o = home.run(&[script, "broken"], None);
    let out = common::stdout(&o);
    assert!(
        o.status.success() && out.ends_with("OK\n"),
        "{out}\n{}",
        common::stderr(&o)
    );
    assert!(out.contains("make-demo"), "{out}");
    drop(mirror);
    let o = home.run(&[script, "unreachable"], None);
    let out = common::stdout(&o);
    assert!(
        o.status.success() && out.ends_with("OK\n"),
        "{out}\n{}",
        common::stderr(&o)
    );
    assert!(out.contains("cannot download http://127.0.0.1:"), "{out}");
}

fn sim_folders(tmp: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("bioxen-xapi-sim-"))
        .collect();
    v.sort();
    v
}

/// A SIGKILLed simulator cannot remove its key folder; the next one removes
/// it (its pid is dead), and keeps folders of live processes and unknown names.
#[test]
fn the_next_simulator_removes_the_folder_of_a_killed_one() {
    let home = common::Home::new();
    let tmp = home.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut first = start_sim_in(&home, None, Some(&tmp));
    let left = sim_folders(&tmp);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(tmp.join(&left[0]).join("client_key").exists());
    first.child.kill().unwrap(); // SIGKILL: no clean-up runs
    first.child.wait().unwrap();
    assert!(
        tmp.join(&left[0]).exists(),
        "the killed simulator's folder is left"
    );
    // a live owner (this test process, with its start time) and a name the
    // simulator did not make: both kept
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let started = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_string();
    let live = format!("bioxen-xapi-sim-{}-{started}-x", std::process::id());
    std::fs::create_dir_all(tmp.join(&live)).unwrap();
    std::fs::create_dir_all(tmp.join("bioxen-xapi-sim-notes")).unwrap();
    // the same pid with another start time: the pid was reused, the owner is dead
    let reused = format!("bioxen-xapi-sim-{}-1-y", std::process::id());
    std::fs::create_dir_all(tmp.join(&reused)).unwrap();
    let _second = start_sim_in(&home, None, Some(&tmp));
    let now = sim_folders(&tmp);
    assert!(!now.contains(&left[0]), "stale folder kept: {now:?}");
    assert!(
        !now.contains(&reused),
        "folder of a reused pid kept: {now:?}"
    );
    assert!(
        now.contains(&live) && now.contains(&"bioxen-xapi-sim-notes".to_string()),
        "{now:?}"
    );
    assert_eq!(now.len(), 3, "the new simulator's own folder too: {now:?}");
}
