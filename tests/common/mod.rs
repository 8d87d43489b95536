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

/// `bioxen` on a real pseudo-terminal (for the REPL): keystrokes in, screen
/// text out. Written on libc's openpty (already a dependency) rather than a
/// pty crate: the REPL tests need only spawn, write, read-until and wait.
pub mod pty {
    use std::io::{Read, Write};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command, ExitStatus, Stdio};
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::{Duration, Instant};

    pub const TIMEOUT: Duration = Duration::from_secs(10);

    pub struct Pty {
        pub child: Child,
        master: std::fs::File,
        output: Arc<(Mutex<Vec<u8>>, Condvar)>,
        /// Bytes of `output` already matched by `expect`.
        seen: usize,
    }

    impl Pty {
        pub fn spawn(mut cmd: Command) -> Pty {
            let (mut master, mut slave) = (0, 0);
            let size = libc::winsize {
                ws_row: 40,
                ws_col: 200,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            let rc = unsafe {
                libc::openpty(
                    &mut master,
                    &mut slave,
                    std::ptr::null_mut(),
                    std::ptr::null(),
                    &size,
                )
            };
            assert_eq!(rc, 0, "openpty failed");
            let slave = unsafe { OwnedFd::from_raw_fd(slave) };
            cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
                .stdout(Stdio::from(slave.try_clone().unwrap()))
                .stderr(Stdio::from(slave.try_clone().unwrap()))
                .env("TERM", "xterm");
            unsafe {
                cmd.pre_exec(|| {
                    libc::setsid();
                    libc::ioctl(0, libc::TIOCSCTTY, 0);
                    Ok(())
                });
            }
            let child = cmd.spawn().expect("spawn bioxen on a pty");
            drop(slave);
            let master = unsafe { std::fs::File::from_raw_fd(master) };
            let output: Arc<(Mutex<Vec<u8>>, Condvar)> = Arc::default();
            let (mut reader, sink) = (master.try_clone().unwrap(), output.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            sink.0.lock().unwrap().extend_from_slice(&buf[..n]);
                            sink.1.notify_all();
                        }
                    }
                }
            });
            Pty {
                child,
                master,
                output,
                seen: 0,
            }
        }

        pub fn send(&mut self, keys: &str) {
            self.master.write_all(keys.as_bytes()).unwrap();
            self.master.flush().unwrap();
        }

        /// Types a line and presses Enter.
        pub fn line(&mut self, text: &str) {
            self.send(text);
            self.send("\r");
        }

        pub fn ctrl_c(&mut self) {
            self.send("\x03");
        }

        pub fn ctrl_d(&mut self) {
            self.send("\x04");
        }

        /// Everything the terminal showed so far, escape sequences and `\r` removed.
        pub fn screen(&self) -> String {
            strip(&self.output.0.lock().unwrap())
        }

        /// The raw bytes shown so far (with colours).
        pub fn raw(&self) -> String {
            String::from_utf8_lossy(&self.output.0.lock().unwrap()).into_owned()
        }

        /// Whether `needle` appeared after what earlier calls matched (no waiting).
        pub fn shows(&self, needle: &str) -> bool {
            let text = self.screen();
            text[self.seen.min(text.len())..].contains(needle)
        }

        /// Waits until `needle` appears after what earlier calls matched;
        /// returns the text from there up to and including it.
        pub fn expect(&mut self, needle: &str) -> String {
            self.expect_within(needle, TIMEOUT)
        }

        pub fn expect_within(&mut self, needle: &str, timeout: Duration) -> String {
            let deadline = Instant::now() + timeout;
            let (lock, cond) = &*self.output;
            let mut out = lock.lock().unwrap();
            loop {
                let text = strip(&out);
                if let Some(i) = text[self.seen.min(text.len())..].find(needle) {
                    let start = self.seen.min(text.len());
                    let end = start + i + needle.len();
                    self.seen = end;
                    return text[start..end].to_string();
                }
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(
                    !left.is_zero(),
                    "timed out waiting for {needle:?}; the terminal shows:\n{}",
                    &text[self.seen.min(text.len())..]
                );
                out = cond.wait_timeout(out, left).unwrap().0;
            }
        }

        /// Types `input`, presses Enter and returns what was printed before
        /// the next prompt (the echoed input removed), trimmed.
        pub fn eval(&mut self, input: &str) -> String {
            self.expect_prompt_ready();
            self.line(input);
            let text = self.expect("\n> ");
            let text = text.trim_end_matches("\n> ");
            let body = match text.find(input) {
                Some(i) => &text[i + input.len()..],
                None => text,
            };
            body.trim_matches('\n').to_string()
        }

        /// Waits until the terminal ends with an empty prompt `> `.
        pub fn expect_empty_prompt(&mut self) {
            let deadline = Instant::now() + TIMEOUT;
            let (lock, cond) = &*self.output;
            let mut out = lock.lock().unwrap();
            loop {
                let text = strip(&out);
                if text.ends_with("\n> ") {
                    self.seen = text.len();
                    return;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(
                    !left.is_zero(),
                    "timed out waiting for an empty prompt:\n{text}"
                );
                out = cond.wait_timeout(out, left).unwrap().0;
            }
        }

        /// Nothing to wait for but keeps `seen` at the end of the output.
        fn expect_prompt_ready(&mut self) {
            self.seen = self.screen().len();
        }

        pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
            let deadline = Instant::now() + timeout;
            while Instant::now() < deadline {
                if let Some(status) = self.child.try_wait().unwrap() {
                    return Some(status);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            None
        }

        pub fn fd(&self) -> i32 {
            self.master.as_raw_fd()
        }
    }

    impl Drop for Pty {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// Terminal output as plain text: CSI/OSC sequences and carriage returns dropped.
    pub fn strip(bytes: &[u8]) -> String {
        let s = String::from_utf8_lossy(bytes);
        let mut out = String::with_capacity(s.len());
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\x1b' => match chars.next() {
                    Some('[') => {
                        for c in chars.by_ref() {
                            if ('@'..='~').contains(&c) {
                                break;
                            }
                        }
                    }
                    Some(']') => {
                        while let Some(c) = chars.next() {
                            if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                                break;
                            }
                        }
                    }
                    _ => {}
                },
                '\r' => {}
                c => out.push(c),
            }
        }
        out
    }
}

/// A real sshd on 127.0.0.1 at a free unprivileged port, with a generated host
/// key and one authorised client key (`client_key`); stopped when dropped.
pub struct Sshd {
    pub port: u16,
    pub client_key: PathBuf,
    pub host_pub: PathBuf,
    /// sshd's own log (its stderr)
    pub log: PathBuf,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Sshd {
    pub fn start() -> Sshd {
        Sshd::start_with("")
    }

    /// With `extra` sshd_config lines first (sshd keeps the first value it reads,
    /// so they override the defaults below).
    pub fn start_with(extra: &str) -> Sshd {
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
            "{extra}ListenAddress 127.0.0.1:{port}\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
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
            .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
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
            log: d.join("sshd.log"),
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

/// The first line a spawned child prints on its piped stdout (a port, a URL,
/// "ready"); the pipe stays open.
pub fn first_line(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().expect("stdout is piped"))
        .read_line(&mut line)
        .expect("read the child's first line");
    line
}

/// The test LuaRocks mirror (tests/deps/rocks.sh builds target/rocks/repo), served by
/// `python3 -m http.server` on a free port of 127.0.0.1; stopped on drop.
pub struct RocksMirror {
    child: std::process::Child,
    pub url: String,
}

pub fn rocks_mirror() -> RocksMirror {
    rocks_mirror_of(&rocks_repo())
}

/// target/rocks/repo, built by tests/deps/rocks.sh when needed. Shared by parallel
/// tests: copy it (it is about 1 MiB) before changing anything in it.
pub fn rocks_repo() -> PathBuf {
    static BUILD: std::sync::Once = std::sync::Once::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    BUILD.call_once(|| {
        let st = Command::new("bash")
            .arg(root.join("tests/deps/rocks.sh"))
            .status()
            .expect("run tests/deps/rocks.sh");
        assert!(
            st.success(),
            "tests/deps/rocks.sh failed: the test mirror is missing"
        );
    });
    root.join("target/rocks/repo")
}

/// Serves `dir` (a LuaRocks repository) like `rocks_mirror`.
pub fn rocks_mirror_of(dir: &Path) -> RocksMirror {
    let mut child = Command::new("python3")
        .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m http.server (python3 is a test peer)");
    let line = first_line(&mut child);
    let port = line
        .split(" port ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no port in {line:?}"))
        .to_string();
    RocksMirror {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

impl Drop for RocksMirror {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
