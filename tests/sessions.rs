//! Persistent sessions and process lifetimes, through the real binary: the
//! `bioxen session` verbs, attaching from a pseudo-terminal, a second attach
//! refused, SIGKILL of a host (no orphans) and of the session host (a clear
//! error, then recovery). The per-call behaviour of sessions on both local
//! backends is in lua/spec/sessions_spec.lua.
mod common;

use common::{Home, stderr, stdout};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Stops the home's session host when the test ends, whatever happened.
struct HostGuard<'a>(&'a Home);

impl Drop for HostGuard<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["session", "stop"], None);
        if let Some(pid) = host_pid(self.0) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

fn host_pid(home: &Home) -> Option<i32> {
    let text = std::fs::read_to_string(home.path().join("run/session-host.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["pid"].as_i64().map(|p| p as i32)
}

fn ok(home: &Home, args: &[&str]) -> String {
    let o = home.run(args, None);
    assert!(
        o.status.success(),
        "bioxen {args:?} failed\nstdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// Waits for a process to exit, through a pidfd (no polling loop).
fn exits_within(pid: i32, limit: Duration) -> bool {
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    if fd < 0 {
        return std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    }
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let n = unsafe { libc::poll(&mut p, 1, limit.as_millis() as i32) };
    n == 1
}

#[test]
fn session_verbs_create_send_list_and_kill() {
    let home = Home::new();
    let _guard = HostGuard(&home);
    assert!(ok(&home, &["session", "list"]).contains("no sessions"));
    ok(&home, &["session", "new", "calc"]);
    ok(&home, &["session", "send", "calc", "x = 20"]);
    assert_eq!(ok(&home, &["session", "send", "calc", "x + 22"]), "42\n");
    assert_eq!(
        ok(&home, &["session", "send", "calc", "for i = 1, 2 do"]),
        ""
    );
    assert_eq!(
        ok(&home, &["session", "send", "calc", "print(i) end"]),
        "1\n2\n"
    );
    let list = ok(&home, &["session", "list"]);
    assert!(list.contains("calc") && list.contains("idle"), "{list}");
    let dup = home.run(&["session", "new", "calc"], None);
    assert!(!dup.status.success());
    assert!(
        stderr(&dup).contains("SessionAlreadyExists"),
        "{}",
        stderr(&dup)
    );
    // Owner-only runtime folder and socket.
    let run = home.path().join("run");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&run), 0o700);
    assert_eq!(mode(&run.join("sessions.sock")), 0o600);
    // --env: require from a package environment (the curator's layout).
    home.write(
        "data/envs/bio/current/tree/share/lua/5.1/gc.lua",
        "return { of = function(s) local n = 0 for _ in s:gmatch('[GC]') do n = n + 1 end return n end }\n",
    );
    ok(&home, &["session", "new", "seq", "--env", "bio"]);
    assert_eq!(
        ok(
            &home,
            &["session", "send", "seq", "require('gc').of('GATTACA')"]
        ),
        "2\n"
    );
    let missing = home.run(&["session", "new", "x", "--env", "nope"], None);
    assert!(
        stderr(&missing).contains("NotFound"),
        "{}",
        stderr(&missing)
    );
    ok(&home, &["session", "kill", "calc"]);
    let gone = home.run(&["session", "send", "calc", "x"], None);
    assert!(!gone.status.success());
    assert!(
        stderr(&gone).contains("SessionNotFound"),
        "{}",
        stderr(&gone)
    );
}

/// A process on a pseudo-terminal, read until expected text appears.
struct Pty {
    master: std::fs::File,
    child: Child,
    seen: String,
    /// Where the next `expect` starts looking (just after the previous match).
    pos: usize,
}

impl Pty {
    fn spawn(home: &Home, args: &[&str]) -> Pty {
        let (mut master, mut slave) = (0, 0);
        let r = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(r, 0, "openpty failed");
        let slave = unsafe { OwnedFd::from_raw_fd(slave) };
        let mut cmd = home.cmd(args);
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn on a pty");
        Pty {
            master: unsafe { std::fs::File::from_raw_fd(master) },
            child,
            seen: String::new(),
            pos: 0,
        }
    }

    /// Reads until `text` appears after the previous match (30 s at most).
    fn expect(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(i) = self.seen[self.pos..].find(text) {
                self.pos += i + text.len();
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {text:?}; saw:\n{}",
                self.seen
            );
            let mut p = libc::pollfd {
                fd: self.master.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            if unsafe { libc::poll(&mut p, 1, left.as_millis() as i32) } <= 0 {
                continue;
            }
            let mut buf = [0u8; 4096];
            match self.master.read(&mut buf) {
                Ok(0) | Err(_) => panic!("terminal closed before {text:?}; saw:\n{}", self.seen),
                Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
    }

    fn line(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).unwrap();
        self.master.write_all(b"\r").unwrap();
    }
}

#[test]
fn attach_from_a_terminal_refuses_a_second_attach_and_detaches() {
    let home = Home::new();
    let _guard = HostGuard(&home);
    ok(&home, &["session", "new", "work"]);
    let mut t = Pty::spawn(&home, &["session", "attach", "work"]);
    t.expect("attached to session 'work'");
    t.expect("> ");
    t.line("y = 7");
    t.expect("> ");
    t.line("y * 6");
    t.expect("42");
    t.expect("> ");
    t.line("for i = 1, 2 do");
    t.expect(">> ");
    t.line("print('row', i) end");
    t.expect("row\t2");
    t.expect("> ");
    // Ctrl-C at the continuation prompt drops the unfinished chunk, in the
    // session too: the next line starts afresh.
    t.line("if true then");
    t.expect(">> ");
    t.master.write_all(b"\x03").unwrap();
    t.expect("> ");
    t.line("print('after')");
    t.expect("after\r\n");
    t.expect("> ");
    // Ctrl-C stops running input in the session, which stays usable.
    t.line("while true do end");
    // Ctrl-C must come once the line editor has handed the terminal back
    // (bracketed paste off) and the input is running in the session.
    t.expect("\x1b[?2004l");
    let mut busy = false;
    for _ in 0..200 {
        if ok(&home, &["session", "list"]).contains("busy") {
            busy = true;
            break;
        }
    }
    assert!(busy, "the loop runs in the session");
    t.master.write_all(b"\x03").unwrap();
    t.expect("Interrupted");
    t.expect("> ");

    // A second attach, from a script and from the command line, is refused.
    let o = home.run(
        &[
            "-e",
            r#"local m = bioxen.vm.manager()
            local ok, e = pcall(m.attach, m, "work")
            print(e.kind, e.holder)"#,
        ],
        None,
    );
    let out = stdout(&o);
    assert!(out.starts_with("Attach\tpid "), "{out}{}", stderr(&o));
    assert!(
        out.contains(&format!("pid {}", t.child.id())),
        "the holder is the attached terminal's process: {out}"
    );
    let second = home.run(&["session", "attach", "work"], None);
    assert!(!second.status.success());
    assert!(stderr(&second).contains("Attach"), "{}", stderr(&second));
    assert!(stderr(&second).contains("--force"), "{}", stderr(&second));
    let send = home.run(&["session", "send", "work", "y"], None);
    assert!(stderr(&send).contains("Attach"), "{}", stderr(&send));
    assert_eq!(
        ok(&home, &["session", "send", "--force", "work", "y + 100"]),
        "107\n"
    );
    let list = ok(&home, &["session", "list"]);
    assert!(
        list.contains(&format!("pid {} on /dev/pts/", t.child.id())),
        "{list}"
    );
    // Tab completes the session's globals.
    t.line("longname_variable = 5");
    t.expect("> ");
    t.master.write_all(b"longname_v\t").unwrap();
    t.expect("longname_variable");
    t.line("");
    t.expect("5\r\n");
    t.expect("> ");

    t.line(".detach");
    t.expect("detached from session 'work'");
    let status = t.child.wait().unwrap();
    assert!(status.success());
    // The session kept running, with its state.
    assert_eq!(ok(&home, &["session", "send", "work", "y"]), "7\n");

    // Ctrl-D detaches too, and a forced attach takes over.
    let mut t2 = Pty::spawn(&home, &["session", "attach", "work"]);
    t2.expect("> ");
    let forced = home.run(
        &[
            "-e",
            r#"local m = bioxen.vm.manager()
            local s = m:attach("work", { force = true })
            s:send("y + 1") io.write(s:read({ timeout = 5 }))"#,
        ],
        None,
    );
    assert_eq!(stdout(&forced), "8\n", "{}", stderr(&forced));
    t2.master.write_all(b"\x04").unwrap();
    t2.expect("detached from session 'work'");
    assert!(t2.child.wait().unwrap().success());
}

#[test]
fn sigkill_of_the_host_leaves_no_child_processes() {
    let home = Home::new();
    let script = home.write(
        "host.lua",
        r#"local m = bioxen.vm.manager()
        local pids = {}
        for i = 1, 3 do
          local s = m:session("s" .. i, { backend = "process" })
          s:send("x = " .. i)
          s:read({ timeout = 10 })
          pids[#pids + 1] = s:pid()
        end
        for i = 1, 2 do
          m:create("v" .. i, { backend = "process" })
          pids[#pids + 1] = m:list()["v" .. i].pid
        end
        m:send("s1", "while true do end")
        print(table.concat(pids, " "))
        io.stdout:flush()
        io.read("*l")"#,
    );
    let mut child = home
        .cmd(&[script.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let line = common::first_line(&mut child);
    let pids: Vec<i32> = line
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 5, "{line}");
    for &pid in &pids {
        assert!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "child {pid} runs before the kill"
        );
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    for pid in pids {
        assert!(
            exits_within(pid, Duration::from_secs(10)),
            "child {pid} outlived its SIGKILLed host"
        );
    }
}

#[test]
fn sigkill_of_the_session_host_is_reported_and_recovered_from() {
    let home = Home::new();
    let _guard = HostGuard(&home);
    ok(&home, &["session", "new", "a"]);
    ok(&home, &["session", "new", "b"]);
    // A script holds session "c" while the host dies.
    let script = home.write(
        "holder.lua",
        r#"local m = bioxen.vm.manager()
        local s = m:session("c", { persistent = true })
        s:send("v = 1") s:read({ timeout = 5 })
        print("ready") io.stdout:flush()
        io.read("*l")
        local ok, e = pcall(function() s:send("v") return s:read({ timeout = 5 }) end)
        print(ok, e.kind, e.host_died, e.message)
        local s2 = bioxen.vm.manager():session("c2", { persistent = true })
        s2:send("1 + 1") print("recovered", s2:read({ timeout = 5 }))"#,
    );
    let mut holder = home
        .cmd(&[script.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(holder.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let pid = host_pid(&home).expect("the host recorded its pid");
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(exits_within(pid, Duration::from_secs(10)));

    holder.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    holder.wait().unwrap();
    assert!(
        rest.starts_with("false\tInteractiveSession\ttrue\tthe session host"),
        "{rest}"
    );
    assert!(rest.contains("recovered\t2\n"), "{rest}");

    // The next command says what was lost; the host that replaced the dead one
    // (started by the script above) has only the new session.
    let o = home.run(&["session", "send", "a", "1"], None);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("lost when the session host (pid"),
        "{}",
        stderr(&o)
    );
    let list = ok(&home, &["session", "list"]);
    assert!(list.contains("c2") && !list.contains("a "), "{list}");
}

#[test]
fn the_next_command_after_a_host_death_names_the_lost_sessions() {
    let home = Home::new();
    let _guard = HostGuard(&home);
    ok(&home, &["session", "new", "one"]);
    ok(&home, &["session", "new", "two", "--backend", "process"]);
    let child: i32 = ok(
        &home,
        &[
            "-e",
            r#"for _, s in ipairs(bioxen.session.host_request({ op = "list" }).sessions) do
              if s.name == "two" then print(s.pid) end
            end"#,
        ],
    )
    .trim()
    .parse()
    .unwrap();
    let pid = host_pid(&home).unwrap();
    assert_ne!(child, pid, "session two runs in its own process");
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(exits_within(pid, Duration::from_secs(10)));
    assert!(
        exits_within(child, Duration::from_secs(10)),
        "a process session's child died with its session host"
    );
    let o = home.run(&["session", "list"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("the session host (pid {pid}) had died"))
            && err.contains("sessions lost: one, two"),
        "{err}"
    );
    assert!(stdout(&o).contains("no sessions"));
    // And it recovered: new sessions work.
    ok(&home, &["session", "new", "three"]);
    assert_eq!(ok(&home, &["session", "send", "three", "3 * 3"]), "9\n");
}

#[test]
fn an_attached_client_killed_mid_read_does_not_keep_the_session() {
    let home = Home::new();
    let _guard = HostGuard(&home);
    let script = home.write(
        "holder.lua",
        r#"local s = bioxen.vm.manager():session("long", { persistent = true })
        s:send("while true do end")
        print("ready") io.stdout:flush()
        s:read()"#,
    );
    let mut holder = home
        .cmd(&[script.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let line = common::first_line(&mut holder);
    assert_eq!(line, "ready\n");
    unsafe { libc::kill(holder.id() as i32, libc::SIGKILL) };
    holder.wait().unwrap();
    let o = home.run(
        &[
            "-e",
            r#"local s = bioxen.vm.manager():attach("long")
            s:interrupt()
            local text, busy = s:read({ timeout = 10 })
            print(text:match("Interrupted") ~= nil, busy)"#,
        ],
        None,
    );
    assert!(
        stdout(&o).starts_with("true"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
}

#[test]
fn another_user_cannot_connect_to_the_session_host() {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test switches to another user (nobody), which needs root"
    );
    let home = Home::new();
    let _guard = HostGuard(&home);
    ok(&home, &["session", "new", "private"]);
    let sock = home.path().join("run/sessions.sock");
    // Even with a path it can reach, the socket and its folder are owner-only.
    let open = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(home.path(), open).unwrap();
    let mut cmd = std::process::Command::new("/usr/bin/python3");
    cmd.args([
        "-c",
        "import socket, sys\ns = socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\nprint('connected')",
        sock.to_str().unwrap(),
    ]);
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::setgroups(0, std::ptr::null());
            if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = cmd.output().expect("run python3 as nobody");
    assert!(
        !o.status.success(),
        "another user connected: {}",
        stdout(&o)
    );
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
}

/// Runs Python as nobody: connect to `sock`, send a hello request, print the reply.
fn hello_as_nobody(sock: &std::path::Path) -> std::process::Output {
    let mut cmd = std::process::Command::new("/usr/bin/python3");
    cmd.args([
        "-c",
        concat!(
            "import socket, struct, sys\n",
            "s = socket.socket(socket.AF_UNIX)\n",
            "s.connect(sys.argv[1])\n",
            "body = b'{\"op\": \"hello\"}'\n",
            "try:\n",
            "    s.sendall(struct.pack('<I', len(body)) + body)\n",
            "    print('reply', repr(s.recv(100)))\n",
            "except OSError:\n",
            "    print('dropped')\n",
        ),
        sock.to_str().unwrap(),
    ]);
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::setgroups(0, std::ptr::null());
            if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("run python3 as nobody")
}

#[test]
fn each_layer_keeps_other_users_out() {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test switches to another user (nobody), which needs root"
    );
    let home = Home::new();
    let _guard = HostGuard(&home);
    ok(&home, &["session", "new", "private"]);
    let run = home.path().join("run");
    let sock = run.join("sessions.sock");
    let mode = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    mode(home.path(), 0o755);
    // The socket alone (0600) keeps nobody out even in an open folder.
    mode(&run, 0o755);
    let o = hello_as_nobody(&sock);
    assert!(
        stderr(&o).contains("Permission denied"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    // And with the socket opened up too, the host drops a peer of another uid.
    mode(&sock, 0o666);
    let o = hello_as_nobody(&sock);
    let out = stdout(&o);
    assert!(
        out == "reply b''\n" || out == "dropped\n",
        "{out}{}",
        stderr(&o)
    );
    mode(&sock, 0o600);
    mode(&run, 0o700);
    assert_eq!(ok(&home, &["session", "send", "private", "1 + 1"]), "2\n");
}
