//! Hot reload: modules edited on disk while a program runs.
mod common;
use common::Home;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Output lines: when each came, whether from stderr, the text.
type Line = (Instant, bool, String);
type Lines = Arc<(Mutex<Vec<Line>>, Condvar)>;

/// A running bioxen whose stdout and stderr lines are collected as they come.
struct Running {
    child: Child,
    lines: Lines,
}

impl Running {
    fn spawn(mut cmd: std::process::Command) -> Running {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn bioxen");
        let lines: Lines = Arc::default();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for (is_err, pipe) in [
            (false, Box::new(out) as Box<dyn std::io::Read + Send>),
            (true, Box::new(err)),
        ] {
            let sink = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    sink.0.lock().unwrap().push((Instant::now(), is_err, line));
                    sink.1.notify_all();
                }
            });
        }
        Running { child, lines }
    }

    /// Waits for a line matching `pred`; returns when it came and its text.
    fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(bool, &str) -> bool,
    ) -> (Instant, String) {
        let deadline = Instant::now() + timeout;
        let (lock, cond) = &*self.lines;
        let mut lines = lock.lock().unwrap();
        loop {
            if let Some((t, _, l)) = lines.iter().find(|(_, e, l)| pred(*e, l)) {
                return (*t, l.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}; output:\n{}",
                dump(&lines)
            );
            lines = cond.wait_timeout(lines, left).unwrap().0;
        }
    }

    fn all(&self) -> Vec<Line> {
        self.lines.0.lock().unwrap().clone()
    }
}

fn dump(lines: &[Line]) -> String {
    lines
        .iter()
        .map(|(_, e, l)| format!("{}{l}\n", if *e { "err| " } else { "out| " }))
        .collect()
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const COUNTER_V1: &str = "local M = { n = 0 }
function M.tick() M.n = M.n + 1 return 'v1 ' .. M.n end
return M
";

const COUNTER_V2: &str = "local M = { n = 0 }
function M.tick() M.n = M.n + 1 return 'v2 ' .. M.n end
function M.__reload(old) M.n = old.n end
return M
";

const LONG_RUNNING: &str = "local counter = bioxen.watch('counter')
local deadline = os.time() + 30
while os.time() < deadline do
  local out = counter.tick()
  print(out)
  io.stdout:flush()
  if out == 'stop' then break end
  bioxen.task.sleep(0.02)
end
";

#[test]
fn a_watched_module_changes_within_a_second_and_broken_edits_keep_the_old_version() {
    let home = Home::new();
    let module = home.write("app/counter.lua", COUNTER_V1);
    let main = home.write("app/main.lua", LONG_RUNNING);
    let run = Running::spawn(home.cmd(&[main.to_str().unwrap()]));
    run.wait_for("v1 output", Duration::from_secs(10), |e, l| {
        !e && l == "v1 3"
    });

    std::fs::write(&module, COUNTER_V2).unwrap();
    let edited = Instant::now();
    let (seen, line) = run.wait_for("v2 output", Duration::from_secs(5), |e, l| {
        !e && l.starts_with("v2 ")
    });
    assert!(
        seen - edited < Duration::from_secs(1),
        "new version after {:?}",
        seen - edited
    );
    // __reload carried the count over, and the functions use the live table
    let n: u32 = line[3..].parse().unwrap();
    assert!(n > 3, "{line}");
    run.wait_for("reload notice", Duration::from_secs(1), |e, l| {
        e && l == "bioxen: reloaded counter"
    });

    // a syntax error: reported with file and line, old version kept
    std::fs::write(&module, "local M = {\nfunction M.tick(\n").unwrap();
    let (_, err) = run.wait_for("syntax error report", Duration::from_secs(5), |e, l| {
        e && l.contains("cannot reload")
    });
    assert!(err.contains("counter.lua:2:"), "{err}");
    // an error while running the new version: same
    std::fs::write(&module, "local M = {}\nerror('not today')\nreturn M\n").unwrap();
    let (failed_at, err) = run.wait_for("runtime error report", Duration::from_secs(5), |e, l| {
        e && l.contains("not today")
    });
    assert!(err.contains("counter.lua:2: not today"), "{err}");
    run.wait_for(
        "v2 output after the failures",
        Duration::from_secs(5),
        |e, l| !e && l.starts_with("v2 ") && l[3..].parse::<u32>().unwrap() > n + 5,
    );
    let after: Vec<_> = run
        .all()
        .into_iter()
        .filter(|(t, e, _)| *t > failed_at && !e)
        .collect();
    assert!(
        after.iter().all(|(_, _, l)| l.starts_with("v2 ")),
        "{}",
        dump(&after)
    );

    std::fs::write(&module, "return { tick = function() return 'stop' end }\n").unwrap();
    run.wait_for("stop", Duration::from_secs(5), |e, l| !e && l == "stop");
    let mut run = run;
    let status = run.child.wait().unwrap();
    assert!(status.success(), "{}", dump(&run.all()));
}

#[test]
fn reload_patches_the_table_callers_hold() {
    let home = Home::new();
    let module = home.write(
        "shapes.lua",
        "local M = { sides = 3, removed = true }
function M.name() return 'triangle' end
function M.describe() return M.name() .. ' with ' .. M.sides end
return M
",
    );
    home.write(
        "main.lua",
        &format!(
            r#"local shapes = require('shapes')
local describe = shapes.describe
shapes.sides = 4
local f = io.open({path:?}, 'w')
f:write([[local M = {{ sides = 0 }}
function M.name() return 'square' end
function M.describe() return M.name() .. ' with ' .. M.sides .. ' sides' end
function M.__reload(old) M.sides = old.sides end
return M
]])
f:close()
assert(bioxen.reload('shapes') == true)
print(rawequal(require('shapes'), shapes), shapes.describe(), describe(), shapes.removed)
shapes.sides = 5
print(shapes.describe())
f = io.open({path:?}, 'w') f:write('return {{') f:close()
local ok, err = bioxen.reload('shapes')
print(ok, err.kind, err.line, err.file:match('shapes.lua$'), shapes.describe())
print(pcall(bioxen.reload, 'never.required'))
local _ = bioxen.json
print(select(2, pcall(bioxen.reload, 'bioxen.json')).kind)
"#,
            path = module.to_str().unwrap()
        ),
    );
    let mut cmd = home.cmd(&["main.lua"]);
    cmd.current_dir(home.path());
    let o = common::run_with_stdin(cmd, None);
    let out = common::stdout(&o);
    assert!(o.status.success(), "{out}{}", common::stderr(&o));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "true\tsquare with 4 sides\tsquare with 4\tnil");
    assert_eq!(lines[1], "square with 5 sides");
    assert_eq!(
        lines[2],
        "false\tReload\t1\tshapes.lua\tsquare with 5 sides"
    );
    assert!(
        lines[3].starts_with("false\tArgument: module 'never.required' is not loaded"),
        "{}",
        lines[3]
    );
    assert_eq!(lines[4], "NotFound");
}

#[test]
fn watch_reruns_once_per_burst_of_saves() {
    let home = Home::new();
    let helper = home.write("proj/helper.lua", "return { value = 1 }\n");
    let main = home.write(
        "proj/main.lua",
        "print('run ' .. require('helper').value)\nio.stdout:flush()\nbioxen.task.sleep(60)\n",
    );
    let mut cmd = home.cmd(&["--log", "bioxen::repl::watch=debug", "--watch", "main.lua"]);
    cmd.current_dir(home.path().join("proj"));
    let run = Running::spawn(cmd);
    run.wait_for("first run", Duration::from_secs(10), |e, l| {
        !e && l == "run 1"
    });
    // the first run reported helper.lua, and the watcher says when it watches it
    run.wait_for("helper.lua watched", Duration::from_secs(5), |e, l| {
        e && l.contains("watching") && l.ends_with("helper.lua")
    });
    for v in 2..=4 {
        std::fs::write(&helper, format!("return {{ value = {v} }}\n")).unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    run.wait_for("rerun", Duration::from_secs(5), |e, l| !e && l == "run 4");
    // nothing more comes from that burst
    std::thread::sleep(Duration::from_millis(700));
    let lines = run.all();
    let separators = lines
        .iter()
        .filter(|(_, e, l)| *e && l.contains("bioxen --watch: helper.lua changed"))
        .count();
    let runs = lines
        .iter()
        .filter(|(_, e, l)| !e && l.starts_with("run "))
        .count();
    assert_eq!((separators, runs), (1, 2), "{}", dump(&lines));

    std::fs::write(&main, "print('main edited')\n").unwrap();
    run.wait_for(
        "rerun after editing the script",
        Duration::from_secs(5),
        |e, l| !e && l == "main edited",
    );
    let lines = run.all();
    assert_eq!(
        lines
            .iter()
            .filter(|(_, e, l)| *e && l.contains("bioxen --watch:"))
            .count(),
        2,
        "{}",
        dump(&lines)
    );
}

#[test]
fn watch_needs_a_script() {
    let home = Home::new();
    let o = home.run(&["--watch"], None);
    assert!(!o.status.success());
    assert!(
        common::stderr(&o).contains("--watch needs a script"),
        "{}",
        common::stderr(&o)
    );
}

#[test]
fn watch_keeps_going_after_a_failing_run() {
    let home = Home::new();
    let script = home.write("w/s.lua", "error('first fails')\n");
    let mut cmd = home.cmd(&["--watch", "s.lua"]);
    cmd.current_dir(home.path().join("w"));
    let run = Running::spawn(cmd);
    run.wait_for("the error", Duration::from_secs(10), |e, l| {
        e && l.contains("s.lua:1: first fails")
    });
    std::fs::write(&script, "print('fixed')\n").unwrap();
    run.wait_for("the fixed run", Duration::from_secs(5), |e, l| {
        !e && l == "fixed"
    });
}
