//! Shared helpers for integration tests: run the real `bioxen` executable in a
//! hermetic home (a fresh `BIOXEN_HOME` per test).
#![allow(dead_code)]
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_bioxen")
}

/// A fresh BIOXEN_HOME, removed when dropped.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Home {
        Home {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `bioxen ARGS` with this home and a clean logging environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(exe());
        c.args(args)
            .env("BIOXEN_HOME", self.path())
            .env_remove("BIOXEN_LOG")
            .env_remove("BIOXEN_STDLIB");
        c
    }

    /// Runs and captures, feeding `stdin` (empty when None).
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_with_stdin(self.cmd(args), stdin)
    }

    /// Writes a file under the home and returns its path.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }
}

pub fn run_with_stdin(mut c: Command, stdin: Option<&str>) -> Output {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn bioxen");
    let input = stdin.unwrap_or("").to_string();
    let mut pipe = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        let _ = pipe.write_all(input.as_bytes());
    });
    child.wait_with_output().expect("wait bioxen")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs Lua code with `bioxen -e` and asserts success; returns stdout.
pub fn lua_ok(home: &Home, code: &str) -> String {
    let o = home.run(&["-e", code], None);
    assert!(
        o.status.success(),
        "bioxen -e failed\ncode: {code}\nstderr: {}",
        stderr(&o)
    );
    stdout(&o)
}

/// The test venv's Python (made by tests/deps/python.sh). A missing peer fails
/// the test rather than skipping it: tests/run.sh always installs it.
pub fn python() -> PathBuf {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/pyenv/bin/python"
    ));
    assert!(
        p.exists(),
        "no test venv at {}: run bash tests/deps/python.sh",
        p.display()
    );
    p
}

/// A real sshd on 127.0.0.1 at a free unprivileged port, with a generated host
/// key and one authorised client key (`client_key`); stopped when dropped.
pub struct Sshd {
    pub port: u16,
    pub client_key: PathBuf,
    pub host_pub: PathBuf,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Sshd {
    pub fn start() -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for name in ["host_key", "client_key"] {
            let st = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(d.join(name))
                .status()
                .expect("ssh-keygen (install openssh-client)");
            assert!(st.success());
        }
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        // A home of its own, so the machine's shell start-up files stay out of the tests.
        std::fs::create_dir_all(d.join("home")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "ListenAddress 127.0.0.1:{port}\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
             PidFile none\nStrictModes no\nUsePAM no\nPermitRootLogin yes\nPasswordAuthentication no\n\
             Subsystem sftp internal-sftp\nLogLevel ERROR\nMaxSessions 100\nMaxStartups 100\n\
             SetEnv HOME={d}/home\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let _ = std::fs::create_dir_all("/run/sshd");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stderr(Stdio::null())
            .spawn()
            .expect("start /usr/sbin/sshd (install openssh-server)");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Sshd {
            port,
            client_key: d.join("client_key"),
            host_pub: d.join("host_key.pub"),
            child,
            _dir: dir,
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
