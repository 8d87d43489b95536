//! bioxen.vm through the real binary: what the Lua specs (lua/spec/vm_spec.lua)
//! cannot see from inside one host: processes outliving their host, clean-up at
//! exit, descriptors, flat memory over many cycles, the hidden child mode.
mod common;

use std::time::{Duration, Instant};

/// The pids whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = rest.split(' ').nth(1).unwrap().parse().unwrap();
        if ppid == pid {
            out.push(p);
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
        .unwrap_or(false)
}

fn wait_gone(pids: &[u32], within: Duration) -> Vec<u32> {
    let end = Instant::now() + within;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        if left.is_empty() || Instant::now() > end {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn process_vms_die_with_a_killed_host() {
    let home = common::Home::new();
    let mut c = home.cmd(&[
        "-e",
        r#"local v = bioxen.vm.create{ backend = "process" }
           assert(v:exec("return 1").ok)
           print(v:pid()) io.stdout:flush()
           bioxen.task.sleep(30)"#,
    ]);
    c.stdout(std::process::Stdio::piped());
    let mut host = c.spawn().unwrap();
    let line = common::first_line(&mut host);
    let vm_pid: u32 = line.trim().parse().expect("the host printed the VM's pid");
    let kids = children_of(host.id());
    assert!(
        kids.contains(&vm_pid),
        "the VM is a child of the host: {kids:?}"
    );
    assert!(
        kids.len() >= 2,
        "a warm pool child is running too: {kids:?}"
    );
    host.kill().unwrap();
    host.wait().unwrap();
    let left = wait_gone(&kids, Duration::from_secs(5));
    assert!(
        left.is_empty(),
        "VM processes outlived their host: {left:?}"
    );
}

#[test]
fn exit_closes_process_vms_and_removes_their_folders() {
    let home = common::Home::new();
    let mut c = home.cmd(&[
        "-e",
        r#"for i = 1, 3 do bioxen.vm.create{ backend = "process", sandbox = "trusted" }:exec("io.open('f', 'w'):write('x')") end
           print(require("bioxen.vm").list()[1].pid) io.stdout:flush()"#,
    ]);
    c.stdout(std::process::Stdio::piped());
    let host = c.spawn().unwrap();
    let host_pid = host.id();
    let out = host.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let vm_pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(wait_gone(&[vm_pid], Duration::from_secs(5)).is_empty());
    let dir = std::env::temp_dir().join(format!("bioxen-vm-{host_pid}"));
    assert!(!dir.exists(), "{} was left behind", dir.display());
}

#[test]
fn child_descriptors_are_not_inherited() {
    let home = common::Home::new();
    let out = common::lua_ok(
        &home,
        r#"local vm = bioxen.vm
           vm.pool(0)
           local held = {}
           for i = 1, 8 do held[i] = assert(io.open("/dev/null")) end
           local v = vm.create{ backend = "process", sandbox = "trusted" }
           local r = v:exec([[local open = {}
             for fd = 0, 63 do
               local f = io.open("/proc/self/fd/" .. fd)
               if f then open[#open + 1] = fd f:close() end
             end
             return table.concat(open, ",")]])
           assert(r.ok, r.error)
           print(r.values[1])"#,
    );
    // 0-2 are /dev/null; the two protocol pipes (3, 4) belong to the host's
    // user and cannot be reopened; the 8 files the host holds must not be there.
    let fds: Vec<u32> = out.trim().split(',').map(|s| s.parse().unwrap()).collect();
    assert_eq!(fds, vec![0, 1, 2], "unexpected descriptors in the child");
}

#[test]
fn a_killed_vm_is_crashed_then_restarted_or_dead() {
    let home = common::Home::new();
    common::lua_ok(
        &home,
        r#"local vm = bioxen.vm
           local v = vm.create{ backend = "process", globals = { g = 1 } }
           v:exec("g = 2")
           local job = v:exec_async("while true do end")
           bioxen.task.sleep(0.1)
           os.execute("kill -9 " .. v:pid())
           local r = job:wait(5)
           assert(r.kind == "Crashed", tostring(r.kind))
           assert(r.error:find("signal 9"), r.error)
           assert(v:status() == "dead")
           r = v:exec("return g")
           assert(r.ok and r.values[1] == 1, "restarted with fresh globals")
           local d = vm.create{ backend = "process", restart = false }
           os.execute("kill -9 " .. d:pid())
           r = d:exec("return 1")
           assert(r.kind == "Crashed", tostring(r.kind))
           r = d:exec("return 1")
           assert(r.kind == "Dead", tostring(r.kind))"#,
    );
}

#[test]
fn the_child_mode_is_hidden_and_harmless_when_run_by_hand() {
    let home = common::Home::new();
    let help = common::stdout(&home.run(&["--help"], None));
    assert!(!help.contains("vm-child"));
    let o = home.run(&["--vm-child", "1"], Some(""));
    assert!(o.status.success(), "exits when its input closes");
}

/// 10,000 create/exec/close cycles with faults mixed in leave the host's
/// memory flat (thread backend: the VMs live in the host).
#[test]
fn many_cycles_with_faults_leave_host_memory_flat() {
    let home = common::Home::new();
    let out = common::lua_ok(
        &home,
        r#"local vm = bioxen.vm
           -- malloc_trim hands glibc's free arena memory back, so RSS shows
           -- live memory rather than how worker threads fragmented the heap.
           local ffi = require("ffi")
           ffi.cdef("int malloc_trim(size_t pad);")
           local function rss()
             ffi.C.malloc_trim(0)
             for line in io.lines("/proc/self/status") do
               local kb = line:match("^VmRSS:%s+(%d+)") if kb then return tonumber(kb) end
             end
           end
           local faults = { "return 2 + 2", "return +", "error('x')", "return io",
             "local t = {} for i = 1, 1e6 do t[i] = i end", "print(('x'):rep(100))", "return print",
             "return ('y'):rep(1000)" }
           local function cycle(i)
             local v = vm.create{ backend = "thread", memory_limit = 2^20, output_limit = 64,
               timeout = (i % 1000 == 0) and 0.001 or 5 }
             local code = (i % 1000 == 0) and "while true do end" or faults[i % #faults + 1]
             local r = v:exec(code)
             assert(r.ok == (code == "return 2 + 2" or code == "return ('y'):rep(1000)"), code)
             if i % 3 == 0 then v:close() end
           end
           for i = 1, 2000 do cycle(i) end
           collectgarbage() collectgarbage()
           local before = rss()
           for i = 2001, 10000 do cycle(i) end
           -- Closed states are freed by a helper thread; under load it may lag,
           -- so give it up to 5 s to drain (a leak would not drain).
           local after = math.huge
           for _ = 1, 50 do
             collectgarbage() collectgarbage()
             after = math.min(after, rss())
             if after - before < 8 * 1024 then break end
             bioxen.task.sleep(0.1)
           end
           print(before, after)"#,
    );
    let v: Vec<f64> = out.split_whitespace().map(|s| s.parse().unwrap()).collect();
    let growth_mib = (v[1] - v[0]) / 1024.0;
    assert!(
        growth_mib < 16.0,
        "host RSS grew by {growth_mib:.1} MiB over 8,000 cycles ({} -> {} KiB)",
        v[0],
        v[1]
    );
}

fn run_example(name: &str) -> String {
    let home = common::Home::new();
    let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    let o = home.run(&[path.as_str()], None);
    assert!(o.status.success(), "{name} failed:\n{}", common::stderr(&o));
    common::stdout(&o)
}

#[test]
fn basic_usage_example_runs() {
    let out = run_example("basic_usage.lua");
    for line in [
        "2 + 2 =\t4\tok:\ttrue",
        "captured: Hello, BioXen!",
        "GC content: 0.50 (rich: false)",
        "failure:\tfalse\tRuntime",
        "job result:\t500000500000",
        "one-shot:\tACGT",
        "live:\tworker1\tprocess\tidle",
        "after close:\tdead",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
}

#[test]
fn sandbox_limits_example_stops_every_attempt_on_both_backends() {
    let out = run_example("sandbox_limits.lua");
    for kind in [
        "Sandbox",
        "Timeout",
        "MemoryLimit",
        "OutputLimit",
        "Value",
        "Syntax",
    ] {
        assert_eq!(
            out.matches(&format!("-> {kind}")).count(),
            2 * match kind {
                "Sandbox" => 4,
                "Timeout" => 2,
                _ => 1,
            },
            "{kind} in:\n{out}"
        );
    }
    assert_eq!(out.matches("still works:\t42").count(), 2, "{out}");
    assert!(out.contains("standard ffi:\tSandbox"), "{out}");
    assert!(out.contains("trusted fork:\tblocked"), "{out}");
}
