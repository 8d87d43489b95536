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
        print(ok, e.kind, lrs.rejected()[1].status, lrs.rejected()[1].statement.id == big)"#
        ),
    );
    assert_eq!(out.trim(), "false\tLrsRejected\t413\ttrue");
    let stats = lrs.stats();
    assert_eq!(stats["statements"], 30, "{stats}");
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
        print(e.kind, e.field)"#
        ),
    );
    assert_eq!(out.trim(), "27\t1\t2\t1\t7\ttrue\nArgument\tsince");
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
