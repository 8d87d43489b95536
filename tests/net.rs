//! bioxen.net, bioxen.channel and bioxen.cluster through the real binary: the
//! examples, and interoperation with a real LuaSocket peer (`lua5.1` with
//! Debian's lua-socket, installed by tests/deps/apt.sh) on 127.0.0.1.
mod common;

use common::{Home, stderr, stdout};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn p2p_messaging_example_runs_on_thread_vms() {
    let home = Home::new();
    let o = home.run(&[&example("p2p_messaging.lua"), "thread"], None);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("B: ACGTACGGTC -> GACCGTACGT 0.600"), "{out}");
    assert!(out.contains("p2p over thread VMs: ok"), "{out}");
}

#[test]
fn p2p_messaging_example_runs_on_process_vms() {
    let home = Home::new();
    let o = home.run(&[&example("p2p_messaging.lua"), "process"], None);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("p2p over process VMs: ok"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn distributed_compute_example_matches_a_single_vm() {
    let home = Home::new();
    let o = home.run(&[&example("distributed_compute.lua"), "2", "0.3"], None);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("results identical"), "{out}");
    assert!(out.contains("256 distinct 4-mers"), "{out}");
}

/// A LuaSocket echo server in `lua5.1`: prints its port, answers `n` lines in upper case.
fn luasocket_server(n: usize) -> (std::process::Child, u16) {
    let script = format!(
        r#"local socket = require("socket")
        local server = assert(socket.bind("127.0.0.1", 0))
        server:settimeout(10)
        local _, port = server:getsockname()
        io.write(port, "\n") io.flush()
        local c = assert(server:accept())
        c:settimeout(10)
        for i = 1, {n} do
          local line = assert(c:receive("*l"))
          assert(c:send(line:upper() .. "\n"))
        end
        c:close()"#
    );
    let mut child = Command::new("lua5.1")
        .args(["-e", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("lua5.1 with LuaSocket is a test dependency: run bash tests/deps/apt.sh");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("LuaSocket server did not start: {line:?}"));
    (child, port)
}

#[test]
fn talks_to_a_luasocket_server() {
    let (mut server, port) = luasocket_server(3);
    let home = Home::new();
    let code = format!(
        r#"local c = bioxen.net.connect{{ host = "127.0.0.1", port = {port}, timeout = 5 }}
        for _, w in ipairs({{ "acgt", "gattaca", "tata" }}) do
          c:write_line(w)
          io.write(c:read_line(5), " ")
        end
        print(c:read_line(5))"#
    );
    let out = common::lua_ok(&home, &code);
    assert_eq!(out, "ACGT GATTACA TATA nil\n");
    assert!(server.wait().unwrap().success());
}

#[test]
fn serves_a_luasocket_client() {
    let home = Home::new();
    let script = home.write(
        "serve.lua",
        r#"local l = bioxen.net.listen{ host = "127.0.0.1", port = 0 }
        io.write(l:port(), "\n") io.flush()
        local c = l:accept(10)
        local line = c:read_line(10)
        c:write_frame("got " .. line)
        c:close()"#,
    );
    let mut bx = home
        .cmd(&[script.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(bx.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().expect("bioxen printed its port");
    let client = format!(
        r#"local socket = require("socket")
        local c = assert(socket.connect("127.0.0.1", {port}))
        c:settimeout(10)
        c:send("hello from luasocket\n")
        local head = assert(c:receive(4))
        local n = head:byte(1) * 2^24 + head:byte(2) * 2^16 + head:byte(3) * 2^8 + head:byte(4)
        io.write(assert(c:receive(n)))"#
    );
    let o = Command::new("lua5.1")
        .args(["-e", &client])
        .output()
        .expect("lua5.1 with LuaSocket is a test dependency");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "got hello from luasocket"
    );
    assert!(bx.wait().unwrap().success());
}

#[test]
fn the_libraries_are_registered() {
    let home = Home::new();
    let o = home.run(&["--help"], None);
    let out = stdout(&o);
    for lib in ["net", "channel", "cluster"] {
        assert!(
            out.contains(&format!("  {lib:<10}")),
            "{lib} missing from:\n{out}"
        );
    }
}
