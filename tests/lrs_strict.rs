//! bioxen.lrs against the strict test LRS (tests/lrs/strict_lrs.py): the edge
//! cases of xAPI 1.0.3 that Ralph does not enforce, and injected faults.
mod common;
#[path = "lrs/peers.rs"]
mod peers;

use common::{Home, stderr, stdout};
use peers::{Peer, bioxen, lua_ok};

const SEND: &str = r#"
local lrs = bioxen.lrs
local function send(n, prefix)
  local list = {}
  for i = 1, n do
    list[i] = { verb = "completed", object = "https://example.org/" .. (prefix or "step") .. "/" .. i,
      result = { success = true, duration = "PT0.5S" } }
  end
  return lrs.send(list)
end
"#;

#[test]
fn statements_carry_the_version_header_and_auth_and_arrive_once() {
    let lrs = Peer::strict();
    let home = Home::new();
    let out = lua_ok(
        &home,
        &lrs,
        &format!("{SEND} local ids = send(25) assert(lrs.flush(10)) print(#ids)"),
    );
    assert_eq!(out.trim(), "25");
    let stats = lrs.stats();
    assert_eq!(stats["statements"], 25, "{stats}");
    // Same statements again (e.g. after a lost acknowledgement): accepted, stored once.
    let out = lua_ok(
        &home,
        &lrs,
        r#"local lrs = bioxen.lrs
        local s = lrs.statement{ verb = "attempted", object = "https://example.org/x" }
        lrs.send(s) lrs.flush(10) lrs.send(s) print(lrs.flush(10))"#,
    );
    assert_eq!(out.trim(), "true");
    assert_eq!(lrs.stats()["statements"], 26);
}

#[test]
fn voiding_hides_the_statement_and_a_voiding_statement_cannot_be_voided() {
    let lrs = Peer::strict();
    let home = Home::new();
    let out = lua_ok(
        &home,
        &lrs,
        r#"local lrs = bioxen.lrs
        local id = lrs.send{ verb = "completed", object = "https://example.org/run/1" }
        lrs.flush(10)
        assert(lrs.get(id).id == id)
        local vid = lrs.void(id)
        lrs.flush(10)
        assert(lrs.get(id) == nil, "voided statement still returned")
        assert(lrs.get(id, { voided = true }).id == id)
        assert(lrs.get(vid).object.id == id)
        for _, s in ipairs(lrs.query{ registration = lrs.registration() }) do assert(s.id ~= id) end
        -- voiding the voiding statement: refused by the LRS (400), kept and reported
        lrs.void(vid)
        local ok, e = pcall(lrs.flush, 10)
        assert(not ok and e.kind == "LrsRejected", tostring(e))
        print(#lrs.rejected(), lrs.rejected()[1].status)"#,
    );
    assert_eq!(out.trim(), "1\t400");
}

#[test]
fn a_refused_statement_is_isolated_and_kept_while_the_rest_is_delivered() {
    let lrs = Peer::strict();
    let home = Home::new();
    let bad = uuid::Uuid::new_v4().to_string();
    lrs.control(&format!(r#"{{"reject_ids": ["{bad}"]}}"#));
    let out = lua_ok(
        &home,
        &lrs,
        &format!(
            r#"local lrs = bioxen.lrs
        local list = {{}}
        for i = 1, 10 do list[i] = {{ verb = "completed", object = "https://example.org/s/" .. i }} end
        list[7].id = "{bad}"
        lrs.send(list)
        local ok, e = pcall(lrs.flush, 10)
        print(ok, e.kind)"#
        ),
    );
    assert_eq!(out.trim(), "false\tLrsRejected");
    let ids: Vec<String> = lrs.stats()["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 9);
    assert!(!ids.contains(&bad));
    let rejected =
        std::fs::read_to_string(home.path().join("data/lrs/spool/rejected.jsonl")).unwrap();
    assert!(
        rejected.contains(&bad) && rejected.contains("\"status\":400"),
        "{rejected}"
    );
    let o = common::run_with_stdin(bioxen(&home, &lrs, &["lrs", "tail", "--rejected"]), None);
    assert!(stdout(&o).contains(&bad), "{}", stdout(&o));
    let o = common::run_with_stdin(bioxen(&home, &lrs, &["lrs", "status"]), None);
    let s = stdout(&o);
    assert!(
        s.contains("pending       0") && s.contains("rejected      1"),
        "{s}"
    );
}

#[test]
fn a_conflicting_id_is_reported_as_409_never_dropped() {
    let lrs = Peer::strict();
    let home = Home::new();
    let out = lua_ok(
        &home,
        &lrs,
        r#"local lrs = bioxen.lrs
        local s = lrs.statement{ verb = "completed", object = "https://example.org/a" }
        lrs.send(s) lrs.flush(10)
        s.result = { success = false }
        lrs.send(s)
        local ok, e = pcall(lrs.flush, 10)
        print(ok, e.kind, e.last_error.status, lrs.rejected()[1].statement.id == s.id)"#,
    );
    assert_eq!(out.trim(), "false\tLrsConflict\t409\ttrue");
}

#[test]
fn batches_too_large_are_split_and_a_single_oversized_statement_is_refused() {
    let lrs = Peer::strict_with_max_body(4000);
    let home = Home::new();
    let out = lua_ok(
        &home,
        &lrs,
        &format!(
            r#"{SEND}
        send(30)
        local big = lrs.send{{ verb = "completed", object = "https://example.org/big",
          result = {{ extensions = {{ ["https://example.org/ext/blob"] = string.rep("x", 8000) }} }} }}
        local ok, e = pcall(lrs.flush, 20)
        print(ok, e.kind, lrs.rejected()[1].status, lrs.rejected()[1].statement.id == big)
        -- The sender has learnt the limit: later batches fit (at most one more 413).
        local before = bioxen.json.decode(select(2, lrs._request("GET", "/_stats"))).too_large
        send(30, "again")
        lrs.flush(20)
        print(bioxen.json.decode(select(2, lrs._request("GET", "/_stats"))).too_large - before)"#
        ),
    );
    let (first, again) = out.trim().split_once('\n').unwrap();
    assert_eq!(first, "false\tLrsRejected\t413\ttrue");
    // Without the learnt limit the second 30 take two 413s (30, then 15 statements).
    assert!(
        again.parse::<u32>().unwrap() <= 1,
        "413s after learning: {again}"
    );
    let stats = lrs.stats();
    assert_eq!(stats["statements"], 60, "{stats}");
    assert!(stats["largest_batch"].as_u64().unwrap() < 30, "{stats}");
}

#[test]
fn overload_and_server_errors_are_retried_with_backoff() {
    let lrs = Peer::strict();
    lrs.control(r#"{"fail": [503, 429, 500, 502], "retry_after": 0.05}"#);
    let home = Home::new();
    let out = lua_ok(
        &home,
        &lrs,
        &format!("{SEND} send(40) print(lrs.flush(20))"),
    );
    assert_eq!(out.trim(), "true");
    let stats = lrs.stats();
    assert_eq!(stats["statements"], 40, "{stats}");
    assert!(stats["posts"].as_u64().unwrap() >= 5, "{stats}");
}

#[test]
fn bad_credentials_stop_delivery_and_keep_the_statements() {
    let lrs = Peer::strict();
    let home = Home::new();
    let out = lua_ok(
        &home,
        &lrs,
        &format!(
            r#"{SEND}
        lrs.configure{{ auth = {{ user = "bioxen", password = "wrong" }} }}
        send(5)
        local ok, e = pcall(lrs.flush, 20)
        print(ok, e.kind, e.status, lrs.status().pending)
        lrs.configure{{ auth = {{ user = "bioxen", password = "s3cret-pass" }} }}
        print(lrs.flush(20), lrs.status().pending)"#
        ),
    );
    assert_eq!(out.trim(), "false\tLrsAuth\t401\t5\ntrue\t0");
    assert_eq!(lrs.stats()["statements"], 5);
}

#[test]
fn queries_filter_by_verb_activity_registration_and_follow_more_links() {
    let lrs = Peer::strict();
    let home = Home::new();
    let out = lua_ok(
        &home,
        &lrs,
        &format!(
            r#"{SEND}
        send(25)
        lrs.send{{ verb = "failed", object = "https://example.org/step/3" }}
        lrs.send{{ verb = "initialized", object = "https://example.org/other",
          context = {{ contextActivities = {{ parent = {{ {{ id = "https://example.org/workflow" }} }} }} }} }}
        lrs.flush(10)
        local all = lrs.query{{ registration = lrs.registration(), page_size = 10 }}
        local seen = {{}}
        for _, s in ipairs(all) do assert(not seen[s.id]) seen[s.id] = true end
        local failed = lrs.query{{ verb = "failed" }}
        local step3 = lrs.query{{ activity = "https://example.org/step/3" }}
        local related = lrs.query{{ activity = "https://example.org/workflow", related_activities = true }}
        local first = lrs.query{{ limit = 7, page_size = 5 }}
        print(#all, #failed, #step3, #related, #first, first.more ~= nil)
        local ok, e = pcall(lrs.query, {{ since = "yesterday" }})
        print(e.kind, e.field)
        for i, t in ipairs({{ "2020-01-01T00:00:00.000Z", "2020-01-02T00:00:00.000Z", "2020-01-03T00:00:00.000Z" }}) do
          lrs.send{{ verb = "experienced", object = "https://example.org/day/" .. i, timestamp = t }}
        end
        lrs.flush(10)
        local window = lrs.query{{ since = "2020-01-01T00:00:00.000Z", ["until"] = "2020-01-02T00:00:00.000Z" }}
        print(#window, window[1].object.id)"#
        ),
    );
    assert_eq!(
        out.trim(),
        "27\t1\t2\t1\t7\ttrue\nArgument\tsince\n1\thttps://example.org/day/2"
    );
}

#[test]
fn statements_wait_in_the_spool_until_an_lrs_is_configured() {
    let lrs = Peer::strict();
    let home = Home::new();
    // No LRS configured: send still succeeds, the statements are spooled.
    let out = common::lua_ok(
        &home,
        r#"local ids = bioxen.lrs.send{ { verb = "completed", object = "https://example.org/1" },
                                         { verb = "completed", object = "https://example.org/2" } }
           print(#ids, bioxen.lrs.status().pending)"#,
    );
    assert_eq!(out.trim(), "2\t2");
    let o = home.run(&["lrs", "flush", "--timeout", "2"], None);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("NotConfigured"), "{}", stderr(&o));
    let o = home.run(&["lrs", "tail"], None);
    assert_eq!(stdout(&o).lines().count(), 2, "{}", stdout(&o));
    let o = common::run_with_stdin(
        bioxen(&home, &lrs, &["lrs", "flush", "--timeout", "10"]),
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("flushed 2 statement(s); 0 left"),
        "{}",
        stdout(&o)
    );
    assert_eq!(lrs.stats()["statements"], 2);
}

#[test]
fn flush_fails_with_a_timeout_while_the_lrs_is_down_and_keeps_everything() {
    let mut lrs = Peer::strict();
    lrs.kill();
    let home = Home::new();
    let o = common::run_with_stdin(
        bioxen(
            &home,
            &lrs,
            &[
                "-e",
                &format!("{SEND} send(3) local ok, e = pcall(lrs.flush, 0.5) print(ok, e.kind)"),
            ],
        ),
        None,
    );
    assert_eq!(stdout(&o).trim(), "false\tTimeout", "{}", stderr(&o));
    let o = common::run_with_stdin(
        bioxen(&home, &lrs, &["lrs", "flush", "--timeout", "0.5"]),
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("3 statement(s) left"), "{}", stderr(&o));
    let o = common::run_with_stdin(bioxen(&home, &lrs, &["lrs", "status"]), None);
    assert!(stdout(&o).contains("LrsUnreachable"), "{}", stdout(&o));
    lrs.restart();
    let o = common::run_with_stdin(
        bioxen(&home, &lrs, &["lrs", "flush", "--timeout", "10"]),
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(lrs.stats()["statements"], 3);
}

#[test]
fn vm_operations_are_recorded_automatically_under_one_registration() {
    use sha2::Digest;
    let lrs = Peer::strict();
    let home = Home::new();
    let out = lua_ok(
        &home,
        &lrs,
        r#"local v = bioxen.vm.create{ id = "align-1" }
        v:exec("print('hello') return 42")
        v:exec("error('bad input')")
        assert(v:exec_async("return 7"):wait().values[1] == 7)
        v:close()
        bioxen.lrs.flush(10)
        print(bioxen.lrs.registration())"#,
    );
    let registration = out.trim().to_string();
    let stats = lrs.stats();
    let ids = stats["ids"].as_array().unwrap();
    assert_eq!(ids.len(), 5, "{stats}");
    let get = |id: &serde_json::Value| -> serde_json::Value {
        let (status, body) = lrs.get(&format!(
            "/xAPI/statements?statementId={}",
            id.as_str().unwrap()
        ));
        assert_eq!(status, 200);
        serde_json::from_str(&body).unwrap()
    };
    let all: Vec<serde_json::Value> = ids.iter().map(get).collect();
    let verbs: Vec<&str> = all
        .iter()
        .map(|s| s["verb"]["id"].as_str().unwrap())
        .collect();
    let adl = "http://adlnet.gov/expapi/verbs/";
    assert_eq!(
        verbs,
        [
            format!("{adl}launched"),
            format!("{adl}completed"),
            format!("{adl}failed"),
            format!("{adl}completed"),
            format!("{adl}terminated")
        ]
    );
    let ext = |s: &serde_json::Value, name: &str| {
        s["result"]["extensions"][format!("https://bioxen.dev/xapi/extensions/{name}")].clone()
    };
    let code_hash: String = sha2::Sha256::digest(b"print('hello') return 42")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(ext(&all[1], "code-sha256"), code_hash.as_str());
    assert_eq!(ext(&all[1], "output-bytes"), 6); // "hello\n"
    assert_eq!(all[1]["result"]["success"], true);
    assert!(
        all[1]["result"]["duration"]
            .as_str()
            .unwrap()
            .starts_with("PT")
    );
    assert_eq!(all[2]["result"]["success"], false);
    assert_eq!(ext(&all[2], "failure-kind"), "Runtime");
    assert_eq!(
        all[1]["context"]["contextActivities"]["parent"][0]["id"],
        "https://bioxen.dev/xapi/activities/vm/align-1"
    );
    for s in &all {
        assert_eq!(s["context"]["registration"], registration.as_str(), "{s}");
    }

    // Switched off: in the script, and by the config file.
    let out = lua_ok(
        &home,
        &lrs,
        r#"bioxen.lrs.record(false)
        local v = bioxen.vm.create() v:exec("return 1") v:close()
        bioxen.lrs.flush(10) print(bioxen.lrs.status().recording)"#,
    );
    assert_eq!(out.trim(), "false");
    home.write("config/config.json", r#"{"lrs": {"record": false}}"#);
    lua_ok(
        &home,
        &lrs,
        r#"local v = bioxen.vm.create() v:exec("return 1") v:close() bioxen.lrs.flush(10)"#,
    );
    assert_eq!(lrs.stats()["statements"], 5);
}

#[test]
fn settings_come_from_the_config_file_and_pending_statements_are_sent_at_exit() {
    let lrs = Peer::strict();
    let home = Home::new();
    home.write(
        "config/config.json",
        &format!(
            r#"{{"lrs": {{"endpoint": "{}", "auth": {{"user": "{}", "password": "{}"}},
                "actor": {{"mbox": "mailto:ada@example.org", "name": "Ada"}}}}}}"#,
            lrs.endpoint(),
            peers::USER,
            peers::PASSWORD
        ),
    );
    // No flush: bioxen delivers what is pending when the script ends.
    let out = common::lua_ok(
        &home,
        r#"local lrs = bioxen.lrs
        lrs.send{ verb = "completed", object = "https://example.org/at-exit" }
        local h = lrs.hook
        h.package_installed("samtools", "1.19", "host", "sha256:abc")
        h.session_attached("s1", "vm1")
        h.guest_deployed("pool-a", "guest-7", "debian-12")
        print(lrs.settings().endpoint ~= nil)"#,
    );
    assert_eq!(out.trim(), "true");
    let stats = lrs.stats();
    assert_eq!(stats["statements"], 4, "{stats}");
    let (_, body) = lrs.get("/xAPI/statements?limit=10");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let list = v["statements"].as_array().unwrap();
    assert!(
        list.iter()
            .all(|s| s["actor"]["mbox"] == "mailto:ada@example.org"),
        "{body}"
    );
    let verbs: Vec<&str> = list
        .iter()
        .map(|s| s["verb"]["display"]["en-US"].as_str().unwrap())
        .collect();
    for v in ["completed", "installed", "attached", "deployed"] {
        assert!(verbs.contains(&v), "{verbs:?}");
    }
    let pkg = list
        .iter()
        .find(|s| s["verb"]["display"]["en-US"] == "installed")
        .unwrap();
    assert_eq!(
        pkg["context"]["extensions"]["https://bioxen.dev/xapi/extensions/package-hash"],
        "sha256:abc"
    );
}

#[test]
fn sessions_and_package_changes_are_recorded_automatically() {
    let lrs = Peer::strict();
    let home = Home::new();
    let repo = concat!(env!("CARGO_MANIFEST_DIR"), "/target/rocks/repo");
    assert!(
        std::path::Path::new(repo).exists(),
        "no test rock mirror: run bash tests/deps/rocks.sh"
    );
    let code = format!(
        r#"local m = bioxen.vm.manager()
        m:session("s1", {{ backend = "thread" }})
        m:detach("s1")
        m:attach("s1")
        m:close()
        local pkg = bioxen.pkg
        pkg.envs.create("lab")
        pkg.install({{ "inspect" }}, {{ env = "lab", servers = {{ "{repo}" }}, quiet = true }})
        pkg.remove({{ "inspect" }}, {{ env = "lab", quiet = true }})
        bioxen.lrs.flush(10)"#
    );
    lua_ok(&home, &lrs, &code);
    let (_, body) = lrs.get("/xAPI/statements?limit=50");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let verbs: Vec<String> = v["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["verb"]["display"]["en-US"].as_str().unwrap().to_string())
        .collect();
    for want in ["detached", "attached", "installed", "removed"] {
        assert!(verbs.iter().any(|v| v == want), "{want} missing: {verbs:?}");
    }
    let installed = v["statements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["verb"]["display"]["en-US"] == "installed")
        .unwrap();
    assert!(installed.to_string().contains("inspect"), "{installed}");
}

#[test]
fn vm_calls_and_vms_collected_or_left_open_are_recorded() {
    let lrs = Peer::strict();
    let home = Home::new();
    // No close for "dropped" (collected) nor for "open" (still open at exit), no flush.
    lua_ok(
        &home,
        &lrs,
        r#"local vm = bioxen.vm
        local v = vm.create{ id = "calls", backend = "thread" }
        v:exec("function double(x) print(x) return 2 * x end function boom() error('no') end")
        assert(v:call("double", 21) == 42)
        assert(not pcall(v.call, v, "boom"))
        assert(v:call_async("double", 2):wait().values[1] == 4)
        v:close()
        local d = vm.create{ id = "dropped", backend = "thread" }
        d = nil
        collectgarbage() collectgarbage()
        OPEN = vm.create{ id = "open", backend = "thread" }"#,
    );
    let (_, body) = lrs.get("/xAPI/statements?limit=100&ascending=true");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let list = v["statements"].as_array().unwrap();
    let x = |name: &str| format!("https://bioxen.dev/xapi/extensions/{name}");
    let calls: Vec<&serde_json::Value> = list
        .iter()
        .filter(|s| {
            s["object"]["id"]
                .as_str()
                .unwrap()
                .contains("/activities/function/")
        })
        .collect();
    assert_eq!(calls.len(), 3, "{body}");
    assert_eq!(calls[0]["verb"]["display"]["en-US"], "completed");
    assert_eq!(calls[0]["result"]["extensions"][x("function")], "double");
    assert_eq!(calls[0]["result"]["extensions"][x("output-bytes")], 3); // "21\n"
    assert!(
        calls[0]["result"]["duration"]
            .as_str()
            .unwrap()
            .starts_with("PT")
    );
    assert_eq!(
        calls[0]["context"]["contextActivities"]["parent"][0]["id"],
        "https://bioxen.dev/xapi/activities/vm/calls"
    );
    assert_eq!(calls[1]["verb"]["display"]["en-US"], "failed");
    assert_eq!(calls[1]["result"]["success"], false);
    assert_eq!(
        calls[1]["result"]["extensions"][x("failure-kind")],
        "Runtime"
    );
    assert_eq!(calls[2]["result"]["extensions"][x("function")], "double");
    // Every VM is recorded as terminated exactly once, saying how.
    for (vm, by) in [
        ("calls", "close"),
        ("dropped", "collected"),
        ("open", "exit"),
    ] {
        let ended: Vec<&serde_json::Value> = list
            .iter()
            .filter(|s| {
                s["verb"]["display"]["en-US"] == "terminated"
                    && s["object"]["id"] == format!("https://bioxen.dev/xapi/activities/vm/{vm}")
            })
            .collect();
        assert_eq!(ended.len(), 1, "{vm}: {body}");
        assert_eq!(
            ended[0]["context"]["extensions"][x("closed-by")],
            by,
            "{vm}"
        );
    }
    assert!(
        !std::fs::read_dir(home.path().join("data/lrs/spool"))
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".journal")),
        "a clean exit removes its journal"
    );
}

#[test]
fn an_automatic_record_survives_sigkill_right_after_the_operation_returns() {
    use std::io::BufRead;
    let lrs = Peer::strict();
    let home = Home::new();
    // The recorder holds its groups back for a minute: when the script says
    // "done", its records exist only in the journal.
    let mut cmd = bioxen(
        &home,
        &lrs,
        &[
            "-e",
            r#"local v = bioxen.vm.create{ id = "victim", backend = "thread" }
            v:exec("return 1")
            print(bioxen.lrs.registration()) io.stdout:flush()
            while true do end"#,
        ],
    );
    cmd.env("BIOXEN_LRS_TEST_RECORDER_HOLD_MS", "60000")
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut registration = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut registration)
        .unwrap();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let spool = home.path().join("data/lrs/spool");
    assert_eq!(
        lrs.stats()["statements"],
        0,
        "nothing was delivered before the kill"
    );
    let journals = || {
        std::fs::read_dir(&spool)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".journal"))
            .count()
    };
    assert_eq!(journals(), 1);
    // The next bioxen recovers them from the journal; twice changes nothing.
    for _ in 0..2 {
        let o = common::run_with_stdin(
            bioxen(&home, &lrs, &["lrs", "flush", "--timeout", "20"]),
            None,
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(journals(), 0);
    let (_, body) = lrs.get("/xAPI/statements?limit=10&ascending=true");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let list = v["statements"].as_array().unwrap();
    let verbs: Vec<&str> = list
        .iter()
        .map(|s| s["verb"]["display"]["en-US"].as_str().unwrap())
        .collect();
    assert_eq!(verbs, ["launched", "completed"], "{body}");
    for s in list {
        assert_eq!(s["context"]["registration"], registration.trim(), "{s}");
    }
    assert_eq!(lrs.stats()["statements"], 2);
}

#[test]
fn a_post_that_times_out_is_retried_in_smaller_batches_and_stored_once() {
    let lrs = Peer::strict();
    // Batches of more than 10 are stored, then answered only after 3 s.
    lrs.control(r#"{"slow": [10, 3]}"#);
    let home = Home::new();
    let out = lua_ok(
        &home,
        &lrs,
        &format!(
            r#"{SEND}
        lrs.configure{{ request_timeout = 0.5, max_backoff = 0.05 }}
        local ids = send(40)
        lrs.flush(20)
        print(#ids, lrs.status().pending)"#
        ),
    );
    // Retrying 40 at a time would time out forever: the flush would fail.
    assert_eq!(out.trim(), "40\t0");
    let stats = lrs.stats();
    assert_eq!(stats["statements"], 40, "{stats}");
    assert!(stats["posts"].as_u64().unwrap() >= 3, "{stats}");
}
