//! `bioxen doctor` and `bioxen init` against real peers, each broken the way a
//! user meets it: Ralph (the real LRS) with a wrong password or stopped, the
//! XAPI pool simulator with wrong credentials or gone, a TLS server whose
//! certificate does not match the pinned fingerprint (openssl s_server), and
//! package servers out of reach next to the real test mirror of rocks.
mod common;
#[path = "lrs/peers.rs"]
mod peers;
use common::{Home, stderr, stdout};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn doctor(home: &Home, library: &str) -> (Value, Option<i32>) {
    let o = home.run(&["doctor", "--json", library], None);
    let out = stdout(&o);
    let v: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("no JSON ({e}):\n{out}\n{}", stderr(&o)));
    (v, o.status.code())
}

fn find<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {r:#}"))
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn set_config(home: &Home, config: Value) {
    home.write("config/config.json", &config.to_string());
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    free_port()
}

#[test]
fn lrs_with_a_wrong_password_is_a_problem_and_the_right_one_is_ok() {
    let ralph = peers::Peer::ralph();
    let home = Home::new();
    set_config(
        &home,
        json!({"lrs": {"endpoint": ralph.endpoint(), "auth": {"user": peers::USER, "password": "not-the-password"}}}),
    );
    let (r, code) = doctor(&home, "lrs");
    let c = find(&r, "LRS");
    assert_eq!(c["status"], "problem", "{c}");
    assert!(
        text(&c["detail"]).contains("refused the credentials (HTTP 401)"),
        "{c}"
    );
    assert!(text(&c["fix"]).contains("--lrs-password"), "{c}");
    assert_eq!(code, Some(1));
    set_config(
        &home,
        json!({"lrs": {"endpoint": ralph.endpoint(), "auth": {"user": peers::USER, "password": peers::PASSWORD}}}),
    );
    let (r, code) = doctor(&home, "lrs");
    assert_eq!(find(&r, "LRS")["status"], "ok", "{r:#}");
    assert_eq!(find(&r, "LRS spool")["status"], "ok", "{r:#}");
    assert_eq!(code, Some(0));
}

#[test]
fn an_unreachable_lrs_is_a_problem_and_queued_statements_are_counted() {
    let home = Home::new();
    let endpoint = format!("http://127.0.0.1:{}/xAPI", closed_port());
    set_config(
        &home,
        json!({"lrs": {"endpoint": endpoint, "auth": {"user": "u", "password": "p"}, "exit_timeout": 0}}),
    );
    // One statement spooled while the LRS is away.
    common::lua_ok(
        &home,
        "bioxen.lrs.send(bioxen.lrs.statement{ verb = 'completed', \
         object = { id = 'https://example.org/act/1' } })",
    );
    let (r, code) = doctor(&home, "lrs");
    let c = find(&r, "LRS");
    assert_eq!(c["status"], "problem", "{c}");
    assert!(text(&c["detail"]).contains("is not reachable"), "{c}");
    assert!(text(&c["fix"]).contains("start the LRS"), "{c}");
    let spool = find(&r, "LRS spool");
    assert_eq!(spool["status"], "problem", "{spool}");
    assert!(
        text(&spool["detail"]).starts_with("1 statement(s) waiting"),
        "{spool}"
    );
    assert_eq!(
        spool["fix"],
        "bioxen lrs flush (after fixing the LRS check above)"
    );
    assert_eq!(code, Some(1));
}

#[test]
fn init_tests_the_lrs_before_saving_it() {
    let ralph = peers::Peer::ralph();
    let home = Home::new();
    let endpoint = ralph.endpoint();
    let base = [
        "init",
        "--yes",
        "--no-env",
        "--lrs",
        &endpoint,
        "--lrs-user",
        peers::USER,
    ];
    let mut wrong = base.to_vec();
    wrong.extend(["--lrs-password", "wrong"]);
    let o = home.run(&wrong, None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("it refused the credentials (HTTP 401)"),
        "{}",
        stdout(&o)
    );
    let mut right = base.to_vec();
    right.extend(["--lrs-password", peers::PASSWORD]);
    let o = home.run(&right, None);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("accepted the credentials: saved as lrs.endpoint"));
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(home.path().join("config/config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["lrs"]["endpoint"], endpoint);
    assert_eq!(config["lrs"]["auth"]["user"], peers::USER);
    // The saved settings are the ones bioxen.lrs uses: doctor finds them good.
    let (r, _) = doctor(&home, "lrs");
    assert_eq!(find(&r, "LRS")["status"], "ok", "{r:#}");
}

/// The XAPI pool simulator (`bioxen xapi-sim`), stopped on drop.
struct Sim {
    child: Child,
    url: String,
}

impl Sim {
    fn start(home: &Home) -> Sim {
        let mut child = home
            .cmd(&[
                "xapi-sim",
                "--listen",
                "127.0.0.1:0",
                "--user",
                "root",
                "--password",
                "pool-pw",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut url = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut url)
            .unwrap();
        Sim {
            child,
            url: url.trim().to_string(),
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn pools_with_wrong_credentials_or_out_of_reach_are_problems() {
    let home = Home::new();
    let sim = Sim::start(&home);
    assert!(sim.url.starts_with("http://127.0.0.1:"), "{}", sim.url);
    let gone = format!("http://127.0.0.1:{}/", closed_port());
    set_config(
        &home,
        json!({"xapi": {"pools": {
            "good": {"url": sim.url, "user": "root", "password": "pool-pw"},
            "badpw": {"url": sim.url, "user": "root", "password": "nope"},
            "gone": {"url": gone, "user": "root", "password": "pool-pw"},
            "half": {"url": sim.url},
        }}}),
    );
    let (r, code) = doctor(&home, "xapi");
    assert_eq!(find(&r, "pool good")["status"], "ok", "{r:#}");
    let c = find(&r, "pool badpw");
    assert_eq!(c["status"], "problem");
    assert!(
        text(&c["detail"]).contains("refused the credentials of root"),
        "{c}"
    );
    assert!(text(&c["fix"]).contains("--pool-password"), "{c}");
    let c = find(&r, "pool gone");
    assert_eq!(c["status"], "problem");
    assert!(text(&c["detail"]).contains("cannot be reached"), "{c}");
    let c = find(&r, "pool half");
    assert!(
        text(&c["detail"]).contains("needs url, user and password"),
        "{c}"
    );
    assert_eq!(code, Some(1));
    // init tests a pool before saving it.
    let o = home.run(
        &[
            "init",
            "--yes",
            "--no-env",
            "--pool",
            "lab",
            "--pool-url",
            &sim.url,
            "--pool-user",
            "root",
            "--pool-password",
            "nope",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("pool lab not saved"), "{}", stdout(&o));
    let o = home.run(
        &[
            "init",
            "--yes",
            "--no-env",
            "--pool",
            "lab",
            "--pool-url",
            &sim.url,
            "--pool-user",
            "root",
            "--pool-password",
            "pool-pw",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stdout(&o));
    let (r, _) = doctor(&home, "xapi");
    assert_eq!(find(&r, "pool lab")["status"], "ok", "{r:#}");
}

/// `openssl s_server` with a fresh self-signed certificate.
struct TlsServer {
    child: Child,
    port: u16,
    fingerprint: String,
    _dir: tempfile::TempDir,
}

impl TlsServer {
    fn start() -> TlsServer {
        let dir = tempfile::tempdir().unwrap();
        let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
        let st = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null())
            .status()
            .expect("openssl (a test peer: tests/deps/apt.sh installs it)");
        assert!(st.success());
        let fp = Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(&cert)
            .output()
            .unwrap();
        let fingerprint = String::from_utf8_lossy(&fp.stdout)
            .split('=')
            .nth(1)
            .unwrap()
            .trim()
            .to_string();
        let port = free_port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept", &port.to_string()])
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "openssl s_server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsServer {
            child,
            port,
            fingerprint,
            _dir: dir,
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_pool_certificate_that_does_not_match_the_pinned_fingerprint_is_a_problem() {
    let tls = TlsServer::start();
    let home = Home::new();
    let url = format!("https://127.0.0.1:{}/", tls.port);
    let wrong = "AB:".repeat(31) + "AB";
    assert_ne!(wrong, tls.fingerprint);
    set_config(
        &home,
        json!({"xapi": {"pools": {"pinned": {"url": url, "user": "root", "password": "pw", "fingerprint": wrong}}}}),
    );
    let (r, code) = doctor(&home, "xapi");
    let c = find(&r, "pool pinned");
    assert_eq!(c["status"], "problem", "{c}");
    assert!(
        text(&c["detail"]).contains("TLS certificate fingerprint mismatch"),
        "{c}"
    );
    let seen = tls.fingerprint.replace(':', "").to_lowercase();
    assert!(
        text(&c["detail"])
            .to_lowercase()
            .replace(':', "")
            .contains(&seen),
        "the report names the certificate's real fingerprint {seen}: {c}"
    );
    assert!(
        text(&c["fix"]).contains("openssl x509 -noout -fingerprint -sha256"),
        "{c}"
    );
    assert!(
        text(&c["fix"]).contains("xapi.pools.pinned.fingerprint"),
        "{c}"
    );
    assert_eq!(code, Some(1));
}

#[test]
fn init_creates_the_environment_from_the_mirror_and_doctor_finds_it_healthy() {
    let home = Home::new();
    let repo = common::rocks_repo();
    set_config(&home, json!({"pkg": {"servers": [repo.to_str().unwrap()]}}));
    let o = home.run(&["init", "--profile", "minimal", "--env", "lab"], None);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(
        out.contains("created package environment lab with the minimal profile"),
        "{out}"
    );
    assert!(out.contains("made lab the active environment"), "{out}");
    let (r, code) = doctor(&home, "pkg");
    let c = find(&r, "package environment");
    assert_eq!(c["status"], "ok", "{c}");
    assert!(
        text(&c["detail"]).contains("lab (generation 1, 2 packages)"),
        "{c}"
    );
    assert_eq!(find(&r, "package health")["status"], "ok", "{r:#}");
    assert_eq!(find(&r, "package server")["status"], "ok", "{r:#}");
    assert_eq!(code, Some(0), "{r:#}");
    // A module file changed behind the curator's back: health names it.
    let tree = home.path().join("data/envs/lab/current/tree/share/lua/5.1");
    std::fs::write(tree.join("inspect.lua"), "return {}").unwrap();
    let (r, code) = doctor(&home, "pkg");
    let bad: Vec<&Value> = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "package health" && c["status"] == "problem")
        .collect();
    assert!(!bad.is_empty(), "{r:#}");
    assert!(text(&bad[0]["detail"]).contains("inspect"), "{r:#}");
    assert!(!text(&bad[0]["fix"]).is_empty());
    assert_eq!(code, Some(1));
}

#[test]
fn an_unreachable_package_server_is_a_problem_and_init_says_what_failed() {
    let home = Home::new();
    let server = format!("http://127.0.0.1:{}", closed_port());
    set_config(&home, json!({"pkg": {"servers": [server]}}));
    let (r, code) = doctor(&home, "pkg");
    let c = find(&r, "package server");
    assert_eq!(c["status"], "problem", "{c}");
    assert!(
        text(&c["detail"]).contains("is not reachable") && text(&c["detail"]).contains("refused"),
        "{c}"
    );
    assert!(text(&c["fix"]).contains("pkg.servers"), "{c}");
    let env = find(&r, "package environment");
    assert_eq!(env["status"], "warning");
    assert!(
        text(&env["fix"]).contains("bioxen env create default"),
        "{env}"
    );
    assert_eq!(code, Some(1));
    let o = home.run(&["init", "--profile", "minimal"], None);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("environment default not created"), "{out}");
    assert!(
        out.contains("bioxen env create default --profile minimal"),
        "{out}"
    );
}
