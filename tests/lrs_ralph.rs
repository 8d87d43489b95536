//! bioxen.lrs against Ralph, the real LRS (tests/lrs/ralph_server.py): delivery,
//! idempotent resends, refusals, queries, and the fault proof (an LRS restart
//! during 10,000 statements, then SIGKILL of bioxen in the middle of a flush).
mod common;
#[path = "lrs/peers.rs"]
mod peers;

use common::{Home, stderr, stdout};
use peers::{Peer, bioxen, lua_ok};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

#[test]
fn ralph_stores_batches_answers_queries_and_refusals_are_kept() {
    let ralph = Peer::ralph();
    let home = Home::new();
    let out = lua_ok(
        &home,
        &ralph,
        r#"local lrs = bioxen.lrs
        local list = {}
        for i = 1, 200 do
          list[i] = { verb = "completed", object = "https://example.org/sample/" .. i,
            result = { success = true, duration = "PT1.25S", score = { raw = i, min = 0, max = 200 } } }
        end
        local ids = lrs.send(list)
        assert(lrs.flush(30))
        local got = lrs.query{ registration = lrs.registration(), page_size = 64 }
        local seen = {}
        for _, s in ipairs(got) do assert(not seen[s.id], "duplicate " .. s.id) seen[s.id] = true end
        for _, id in ipairs(ids) do assert(seen[id], "missing " .. id) end
        -- the same statement again: Ralph answers 204, which is success
        local s = lrs.statement{ verb = "attempted", object = "https://example.org/again" }
        lrs.send(s) lrs.flush(30) lrs.send(s) assert(lrs.flush(30))
        -- same id, different content: 409, reported, kept
        s.result = { success = false }
        lrs.send(s)
        local ok, e = pcall(lrs.flush, 30)
        assert(not ok and e.kind == "LrsConflict", tostring(e))
        -- valid xAPI that Ralph refuses (reserved e-mail domain): 422, kept
        lrs.send{ actor = { mbox = "mailto:someone@bioxen.test" }, verb = "completed", object = "https://example.org/x" }
        local ok2, e2 = pcall(lrs.flush, 30)
        assert(not ok2 and e2.kind == "LrsRejected", tostring(e2))
        local statuses = {}
        for _, r in ipairs(lrs.rejected()) do statuses[#statuses + 1] = r.status end
        print(#got, table.concat(statuses, ","))"#,
    );
    assert_eq!(out.trim(), "200\t409,422");
    let ids = ralph.ralph_file_ids();
    assert_eq!(ids.len(), 201, "Ralph holds each statement once");

    // examples/provenance.lua delivers its workflow and reads it back by registration.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/provenance.lua");
    let o = common::run_with_stdin(bioxen(&Home::new(), &ralph, &[example]), None);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    let trail: Vec<&str> = out
        .split("the run as the LRS has it:\n")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .collect();
    assert_eq!(trail.len(), 5, "{out}");
    assert!(trail[0].contains("initialized"), "{out}");
    assert!(trail[2].contains("samples/s2 score 0.12"), "{out}");
    assert!(
        trail[4].contains("completed   https://example.org/workflows/gc-content"),
        "{out}"
    );
}

/// Runs a script, calling `on_line` for each line it prints; returns its status.
fn run_watching(
    cmd: &mut std::process::Command,
    mut on_line: impl FnMut(&str, &mut std::process::Child),
) -> (std::process::ExitStatus, String) {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let mut child = cmd.spawn().expect("start bioxen");
    let out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    for line in BufReader::new(out).lines() {
        let Ok(line) = line else { break };
        on_line(&line, &mut child);
    }
    let status = child.wait().unwrap();
    (status, err_reader.join().unwrap())
}

const PRODUCER: &str = r#"
local total, chunk, pause, ids_file = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3]), arg[4]
local out = assert(io.open(ids_file, "w"))
for c = 1, total / chunk do
  local list = {}
  for i = 1, chunk do
    list[i] = { verb = "completed", object = "https://example.org/fault/" .. ((c - 1) * chunk + i),
      result = { success = true } }
  end
  local ids = bioxen.lrs.send(list)
  out:write(table.concat(ids, "\n"), "\n")
  out:flush()
  print("sent " .. c * chunk) io.stdout:flush()
  if pause > 0 then bioxen.task.sleep(pause) end
end
out:close()
print("flushing") io.stdout:flush()
bioxen.lrs.flush(180)
print("done") io.stdout:flush()
"#;

fn read_ids(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn every_statement_arrives_exactly_once_through_an_lrs_restart_and_a_sigkill() {
    let mut ralph = Peer::ralph();
    let home = Home::new();
    let script = home.write("producer.lua", PRODUCER);
    let script = script.to_str().unwrap();

    // 1. 10,000 statements; Ralph is killed at 2,000 and restarted once all are spooled.
    let ids1 = home.path().join("ids1.txt");
    let mut killed = false;
    let mut restarted = false;
    let (status, err) = run_watching(
        &mut bioxen(
            &home,
            &ralph,
            &[script, "10000", "100", "0.005", ids1.to_str().unwrap()],
        ),
        |line, _| {
            if line == "sent 2000" {
                ralph.kill();
                killed = true;
            }
            if line == "flushing" {
                std::thread::sleep(Duration::from_millis(500));
                ralph.restart();
                restarted = true;
            }
        },
    );
    assert!(status.success(), "first run failed: {err}");
    assert!(killed && restarted);
    let ids1 = read_ids(&ids1);
    assert_eq!(ids1.len(), 10_000);

    // 2. 5,000 more; bioxen is SIGKILLed 150 ms into its flush, then `bioxen lrs flush`.
    let ids2 = home.path().join("ids2.txt");
    let (_, _) = run_watching(
        &mut bioxen(
            &home,
            &ralph,
            &[script, "5000", "500", "0", ids2.to_str().unwrap()],
        ),
        |line, child| {
            if line == "flushing" {
                std::thread::sleep(Duration::from_millis(150));
                child.kill().unwrap(); // SIGKILL
            }
        },
    );
    let ids2 = read_ids(&ids2);
    assert_eq!(ids2.len(), 5_000);
    let stored_at_kill = ralph.ralph_file_ids().len();
    assert!(
        stored_at_kill < 15_000,
        "the kill came after everything was delivered; it proves nothing"
    );
    let o = common::run_with_stdin(
        bioxen(&home, &ralph, &["lrs", "flush", "--timeout", "120"]),
        None,
    );
    assert!(
        o.status.success(),
        "bioxen lrs flush: {}{}",
        stdout(&o),
        stderr(&o)
    );

    // 3. Querying Ralph finds every statement exactly once.
    let out = lua_ok(
        &home,
        &ralph,
        r#"for _, s in ipairs(bioxen.lrs.query{ page_size = 1000 }) do print(s.id) end"#,
    );
    let mut count: HashMap<&str, usize> = HashMap::new();
    for id in out.lines() {
        *count.entry(id).or_default() += 1;
    }
    for id in ids1.iter().chain(ids2.iter()) {
        assert_eq!(
            count.get(id.as_str()),
            Some(&1),
            "statement {id} not stored exactly once"
        );
    }
    assert_eq!(count.len(), 15_000);
    assert!(count.values().all(|&n| n == 1));
    // And Ralph's own file agrees.
    let file = ralph.ralph_file_ids();
    assert_eq!(
        file.len(),
        15_000,
        "Ralph's store holds duplicates or misses some"
    );
    let o = home.run(&["lrs", "status"], None);
    assert!(stdout(&o).contains("pending       0"), "{}", stdout(&o));
}
