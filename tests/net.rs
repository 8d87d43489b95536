//! bioxen.net, bioxen.channel and bioxen.cluster through the real binary: the
//! examples, and interoperation with a real LuaSocket peer (`lua5.1` with
//! Debian's lua-socket, installed by tests/deps/apt.sh) on 127.0.0.1.
mod common;

use common::{Home, stderr, stdout};
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
    let line = common::first_line(&mut child);
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
    let line = common::first_line(&mut bx);
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

/// An HTTPS server on 127.0.0.1 (Python's http.server in an ssl context) with
/// a self-signed certificate made by `openssl req`; prints its port, answers
/// every GET with `{"secure": true}`. Returns (server, port, cert path).
fn https_server(home: &Home) -> (KillOnDrop, u16, std::path::PathBuf) {
    let (key, cert) = (home.path().join("key.pem"), home.path().join("cert.pem"));
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl is a test dependency");
    assert!(st.success(), "openssl req failed");
    let script = r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = b'{"secure": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
s.socket = ctx.wrap_socket(s.socket, server_side=True)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;
    let mut child = Command::new(common::python())
        .args(["-c", script])
        .arg(&cert)
        .arg(&key)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the HTTPS server");
    let line = common::first_line(&mut child);
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("HTTPS server did not start: {line:?}"));
    (KillOnDrop(child), port, cert)
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn https_with_a_self_signed_certificate_is_refused_unless_trusted() {
    let home = Home::new();
    let (_server, port, cert) = https_server(&home);
    let code = format!(
        r#"local http, url, cert = bioxen.net.http, "https://127.0.0.1:{port}/x", {cert:?}
        -- verified by default: refused, naming the TLS problem and the way out
        local ok, e = pcall(http.request, {{ url = url, timeout = 10 }})
        assert(not ok and e.kind == "Networking", tostring(e))
        assert(e.message:find("TLS certificate was not accepted", 1, true), e.message)
        assert(e.message:find("ca =", 1, true), e.message)
        assert(e.tls:find("UnknownIssuer", 1, true), e.tls)
        -- trusted through ca (a file, or its PEM text): verified, and it succeeds
        local r = http.request{{ url = url, ca = cert, timeout = 10 }}
        print(r.status, r.json.secure)
        local f = io.open(cert) local pem = f:read("*a") f:close()
        print(http.get(url, {{ ca = pem }}).status)
        -- the certificate names 127.0.0.1, not localhost: still refused with ca
        ok, e = pcall(http.request, {{ url = "https://localhost:{port}/x", ca = cert, timeout = 10 }})
        assert(not ok and e.kind == "Networking" and e.tls:find("not valid for name", 1, true), tostring(e))
        assert(e.message:find("issued for", 1, true), e.message)
        -- no verification at all: works, with a warning on the log
        print(http.request{{ url = url, verify_tls = false }}.status)
        -- bad trust options
        ok, e = pcall(http.request, {{ url = url, ca = {home:?} .. "/nope.pem" }})
        assert(e.kind == "Argument" and e.message:find("cannot read the ca file"), tostring(e))
        ok, e = pcall(http.request, {{ url = url, ca = "/etc/hostname" }})
        assert(e.kind == "Argument" and e.message:find("no PEM certificate"), tostring(e))
        ok, e = pcall(http.request, {{ url = url, verify_tls = "no" }})
        assert(e.kind == "Argument", tostring(e))
        -- a sandboxed copy may not read files: PEM text only
        local jail = bioxen.net.restrict{{ "127.0.0.1:{port}" }}
        ok, e = pcall(jail.http.request, {{ url = url, ca = cert }})
        assert(e.kind == "Sandbox", tostring(e))
        print(jail.http.request{{ url = url, ca = pem }}.status)"#,
        cert = cert.display().to_string(),
        home = home.path().display().to_string(),
    );
    let o = home.run(&["-e", &code], None);
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(o.status.success(), "{out}\n{err}");
    assert_eq!(out, "200\ttrue\n200\n200\n200\n");
    assert!(
        err.contains("TLS certificate verification is OFF"),
        "verify_tls = false is logged: {err}"
    );
}
