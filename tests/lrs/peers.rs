//! LRS peers for the lrs tests: Ralph (the real LRS, through
//! tests/lrs/ralph_server.py) and the strict test LRS (tests/lrs/strict_lrs.py),
//! each on a free 127.0.0.1 port, stopped when dropped.
#![allow(dead_code)]
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "bioxen";
pub const PASSWORD: &str = "s3cret-pass";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn script(name: &str) -> String {
    format!("{}/tests/lrs/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub enum Kind {
    Ralph,
    Strict { max_body: usize },
}

pub struct Peer {
    pub port: u16,
    pub dir: tempfile::TempDir,
    kind: Kind,
    child: Option<Child>,
}

impl Peer {
    pub fn ralph() -> Peer {
        Peer::start(Kind::Ralph)
    }

    pub fn strict() -> Peer {
        Peer::start(Kind::Strict { max_body: 10 << 20 })
    }

    pub fn strict_with_max_body(max_body: usize) -> Peer {
        Peer::start(Kind::Strict { max_body })
    }

    fn start(kind: Kind) -> Peer {
        let mut p = Peer {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            kind,
            child: None,
        };
        p.restart();
        p
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/xAPI", self.port)
    }

    /// Starts (again) on the same port and folder, and waits until it answers.
    pub fn restart(&mut self) {
        let python = super::common::python();
        let mut cmd = Command::new(python);
        match self.kind {
            Kind::Ralph => cmd.arg(script("ralph_server.py")).arg(self.dir.path()),
            Kind::Strict { .. } => cmd.arg(script("strict_lrs.py")),
        };
        cmd.arg(self.port.to_string()).arg(USER).arg(PASSWORD);
        if let Kind::Strict { max_body } = self.kind {
            cmd.arg(max_body.to_string());
        }
        let log = std::fs::File::create(self.dir.path().join("server.log")).unwrap();
        cmd.stdout(Stdio::null()).stderr(log);
        self.child = Some(cmd.spawn().expect("start the LRS peer"));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("the LRS peer exited ({status}): {}", self.log());
            }
            if self.get("/xAPI/statements?limit=1").0 != 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the LRS peer did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the server at once (SIGKILL), as an outage.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A raw HTTP/1.0 exchange with auth and the version header: (status, body).
    pub fn request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return (0, String::new());
        };
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let auth = base64(&format!("{USER}:{PASSWORD}"));
        let req = format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n\
             X-Experience-API-Version: 1.0.3\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        if s.write_all(req.as_bytes()).is_err() {
            return (0, String::new());
        }
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        self.request("GET", path, "")
    }

    /// Strict LRS only: sets fault injection (see strict_lrs.py).
    pub fn control(&self, json: &str) {
        assert_eq!(self.request("POST", "/_control", json).0, 200);
    }

    /// Strict LRS only: counters and stored ids.
    pub fn stats(&self) -> serde_json::Value {
        serde_json::from_str(&self.get("/_stats").1).unwrap()
    }

    /// Ralph only: every statement id in its filesystem backend, in order.
    pub fn ralph_file_ids(&self) -> Vec<String> {
        let path: PathBuf = self.dir.path().join("data").join("fs_lrs.jsonl");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["id"].as_str().map(str::to_string))
            .collect()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn base64(s: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `bioxen` in `home`, pointed at `peer` through the BIOXEN_LRS_* variables.
pub fn bioxen(home: &super::common::Home, peer: &Peer, args: &[&str]) -> Command {
    let mut c = home.cmd(args);
    c.env("BIOXEN_LRS_ENDPOINT", peer.endpoint())
        .env("BIOXEN_LRS_USER", USER)
        .env("BIOXEN_LRS_PASSWORD", PASSWORD);
    c
}

/// Runs Lua code against `peer`; asserts success and returns stdout.
pub fn lua_ok(home: &super::common::Home, peer: &Peer, code: &str) -> String {
    let o = super::common::run_with_stdin(bioxen(home, peer, &["-e", code]), None);
    assert!(
        o.status.success(),
        "bioxen failed\ncode: {code}\nstdout: {}\nstderr: {}",
        super::common::stdout(&o),
        super::common::stderr(&o)
    );
    super::common::stdout(&o)
}
