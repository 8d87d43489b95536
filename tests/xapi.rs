//! bioxen.xapi, bioxen.xcpng and `bioxen xapi-sim`: the simulator as a user runs
//! it, driven by the official XenAPI Python SDK (fidelity), and the Lua specs.
mod common;
use std::io::{BufRead, BufReader};
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
    let mut child = home
        .cmd(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bioxen xapi-sim");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
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
    let mirror = common::rocks_mirror();
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
