//! bioxen.ssh against a real sshd the test starts on 127.0.0.1 (unprivileged port).
mod common;

fn run(home: &common::Home, sshd: &common::Sshd, body: &str) -> String {
    let known = home.path().join("known_hosts");
    let code = format!(
        "local ssh, task = bioxen.ssh, bioxen.task\nlocal PORT, KEY, KNOWN = {}, {:?}, {:?}\n\
         local function connect(extra) local o = {{host='127.0.0.1', port=PORT, key=KEY, known_hosts=KNOWN, accept_new=true}} \
         for k, v in pairs(extra or {{}}) do o[k] = v end return ssh.connect(o) end\n{body}",
        sshd.port,
        sshd.client_key.display().to_string(),
        known.display().to_string()
    );
    common::lua_ok(home, &code)
}

#[test]
fn exec_many_times_over_one_connection() {
    let (home, sshd) = (common::Home::new(), common::Sshd::start());
    let out = run(
        &home,
        &sshd,
        r#"local c = connect()
        for i = 1, 20 do assert(c:exec("echo " .. i).stdout == i .. "\n") end
        local r = c:exec("echo $A-$B; cat; echo oops >&2; exit 7", {stdin = "in\n", env = {A = "x y", B = "it's"}})
        assert(r.ok == false and r.status == 7, r.status)
        assert(r.stdout == "x y-it's\nin\n", r.stdout)
        assert(r.stderr == "oops\n", r.stderr)
        local big = c:exec("head -c 3000000 /dev/zero | tr '\\0' a; head -c 3000000 /dev/zero | tr '\\0' b >&2")
        assert(#big.stdout == 3000000 and #big.stderr == 3000000)
        local e = select(2, pcall(c.exec, c, "sleep 5", {timeout = 0.3}))
        assert(e.kind == "Timeout", tostring(e))
        c:close()
        print("ok")"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn streams_and_transfers_files() {
    let (home, sshd) = (common::Home::new(), common::Sshd::start());
    let src = home.write("up.txt", "payload\n");
    let dst = home.path().join("down.txt");
    let remote = home.path().join("remote.txt");
    let out = run(
        &home,
        &sshd,
        &format!(
            r#"local c = connect()
            local s = c:stream("for i in 1 2 3; do echo $i; sleep 0.05; done; echo e >&2")
            local got = {{}}
            while true do local w, d = s:read() if not w then break end got[#got+1] = w .. ":" .. d end
            assert(s:wait().ok)
            assert(table.concat(got):find("stdout:1"), table.concat(got))
            assert(c:upload({src:?}, {remote:?}) == 8)
            assert(c:download({remote:?}, {dst:?}) == 8)
            print("ok")"#,
            src = src.display().to_string(),
            remote = remote.display().to_string(),
            dst = dst.display().to_string()
        ),
    );
    assert_eq!(out.trim(), "ok");
    assert_eq!(std::fs::read_to_string(dst).unwrap(), "payload\n");
}

#[test]
fn connections_progress_in_parallel() {
    let (home, sshd) = (common::Home::new(), common::Sshd::start());
    let out = run(
        &home,
        &sshd,
        r#"connect():close() -- records the host key once
        local jobs = {}
        for i = 1, 8 do jobs[i] = function() local c = connect() local r = c:exec("sleep 1; echo " .. i) c:close() return r.stdout end end
        local wall0 = io.popen("date +%s.%N"):read("*l")
        local res = task.all(jobs)
        local wall1 = io.popen("date +%s.%N"):read("*l")
        assert(#res == 8 and res[8] == "8\n")
        local wall = tonumber(wall1) - tonumber(wall0)
        assert(wall < 4, "8 one-second commands took " .. wall .. "s: not parallel")
        print("ok")"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn host_keys_are_checked() {
    let (home, sshd) = (common::Home::new(), common::Sshd::start());
    let other = common::Sshd::start();
    let out = run(
        &home,
        &sshd,
        &format!(
            r#"local e = select(2, pcall(connect, {{accept_new = false}}))
            assert(e.kind == "Ssh" and e.message:find("unknown host"), tostring(e))
            connect():close()
            local f = io.open(KNOWN) local text = f:read("*a") f:close()
            assert(text:find("%[127.0.0.1%]:" .. PORT), text)
            -- the same name now offers another key: always refused
            local hp = io.open({other_pub:?}):read("*l")
            f = io.open(KNOWN, "w") f:write("[127.0.0.1]:" .. PORT .. " " .. hp .. "\n") f:close()
            e = select(2, pcall(connect))
            assert(e.kind == "Ssh" and e.message:find("MISMATCH"), tostring(e))
            assert(e.known_fingerprint ~= e.offered_fingerprint)
            assert(e.message:find(e.known_fingerprint, 1, true) and e.message:find(e.offered_fingerprint, 1, true))
            e = select(2, pcall(connect, {{known_hosts = KNOWN .. ".fresh", key = {wrong:?}}}))
            assert(e.kind == "Ssh" and e.message:find("authentication failed"), tostring(e))
            e = select(2, pcall(connect, {{port = 1}}))
            assert(e.kind == "Ssh" and e.stage == "connect", tostring(e))
            print("ok")"#,
            other_pub = other.host_pub.display().to_string(),
            wrong = other.client_key.display().to_string()
        ),
    );
    assert_eq!(out.trim(), "ok");
}

/// Keepalive: an idle connection with keepalive = 1 sends libssh2 keepalive
/// requests (sshd logs them at DEBUG3) and still works afterwards.
#[test]
fn idle_connections_send_keepalives() {
    let (home, sshd) = (
        common::Home::new(),
        common::Sshd::start_with("LogLevel DEBUG3\n"),
    );
    let out = run(
        &home,
        &sshd,
        r#"local c = connect({keepalive = 1})
        task.sleep(3.2)
        assert(c:exec("echo alive").stdout == "alive\n")
        c:close()
        print("ok")"#,
    );
    assert_eq!(out.trim(), "ok");
    let log = std::fs::read_to_string(&sshd.log).unwrap();
    let n = log.matches("keepalive@libssh2.org").count();
    assert!(
        n >= 1,
        "expected keepalive requests in sshd's log, saw {n}:\n{}",
        &log[log.len().saturating_sub(3000)..]
    );
}

/// Password authentication reaches sshd (which logs the failed password) and a
/// wrong one is refused with kind Ssh. (A successful password login needs an
/// account with a known password, which the test machine does not have.)
#[test]
fn a_wrong_password_is_refused() {
    let (home, sshd) = (
        common::Home::new(),
        common::Sshd::start_with("PasswordAuthentication yes\nLogLevel VERBOSE\n"),
    );
    let out = run(
        &home,
        &sshd,
        r#"local ok, e = pcall(ssh.connect, {host = '127.0.0.1', port = PORT, user = 'root',
          password = 'not-the-password', known_hosts = KNOWN, accept_new = true, timeout = 10})
        assert(not ok and e.kind == "Ssh", tostring(e))
        print(e.message)"#,
    );
    assert!(out.contains("authentication failed"), "{out}");
    let log = std::fs::read_to_string(&sshd.log).unwrap();
    assert!(log.contains("Failed password for root"), "{log}");
}
