//! The curator against a real LuaRocks repository (tests/deps/rocks.sh: upstream
//! rock sources from Debian plus crafted rocks) served over HTTP on 127.0.0.1.
mod common;
use common::{Home, RocksMirror as Mirror, rocks_mirror, rocks_repo as repo, stderr, stdout};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn pkg(home: &Home, m: &Mirror, args: &[&str]) -> std::process::Output {
    let mut all = vec!["pkg"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--server", &m.url, "--quiet"]);
    home.run(&all, None)
}

fn ok(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "failed\nstdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

fn failed(o: &std::process::Output) -> String {
    assert!(
        !o.status.success(),
        "should have failed\nstdout: {}",
        stdout(o)
    );
    stderr(o)
}

fn history(home: &Home) -> String {
    ok(&home.run(&["pkg", "history"], None))
}

fn current(home: &Home) -> String {
    let link = home.path().join("data/envs/default/current");
    std::fs::read_link(link)
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

#[test]
fn installs_real_rocks_pure_lua_and_c_and_requires_them() {
    let (home, m) = (Home::new(), rocks_mirror());
    let out = ok(&pkg(
        &home,
        &m,
        &[
            "install",
            "luassert",
            "penlight >= 1.13",
            "lua-cjson",
            "luasocket",
            "make-demo",
        ],
    ));
    for p in [
        "luassert 1.9.0-1",
        "say 1.4.1-1",
        "penlight 1.13.1-1",
        "luafilesystem 1.8.0-1",
    ] {
        assert!(out.contains(p), "{p} missing from {out}");
    }
    let got = common::lua_ok(
        &home,
        r#"print(require("cjson").encode({1}), require("lfs").attributes(".").mode,
            require("pl.stringx").strip("  a "), require("socket").gettime() > 0,
            require("makedemo").answer(), type(require("luassert")))"#,
    );
    assert_eq!(got.trim(), "[1]\tdirectory\ta\ttrue\t42\ttable");
    let list = ok(&home.run(&["pkg", "list"], None));
    assert!(
        list.contains("say") && list.contains("(dependency)"),
        "{list}"
    );
}

#[test]
fn lua_cjson_2_1_0_builds_against_luajit_headers_with_a_note() {
    let (home, m) = (Home::new(), rocks_mirror());
    let o = home.run(&["pkg", "install", "lua-cjson", "--server", &m.url], None);
    ok(&o);
    assert!(
        stderr(&o).contains("lua-cjson: module cjson defines its own luaL_setfuncs"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        common::lua_ok(&home, "print(require('cjson').decode('[2]')[1])").trim(),
        "2"
    );
}

#[test]
fn a_conflict_names_constraints_and_packages() {
    let (home, m) = (Home::new(), rocks_mirror());
    let err = failed(&pkg(
        &home,
        &m,
        &["install", "needs-new-say", "needs-old-say"],
    ));
    assert!(
        err.contains("Conflict: no version of say satisfies every constraint"),
        "{err}"
    );
    assert!(
        err.contains(r#"say 1.4.1-1 is excluded by "say ~> 1.3" from needs-old-say 1.0-1"#),
        "{err}"
    );
    assert!(
        err.contains(r#"say 1.3-1 is excluded by "say >= 1.4" from needs-new-say 1.0-1"#),
        "{err}"
    );
    let err = failed(&pkg(&home, &m, &["install", "needs-lua54"]));
    assert!(
        err.contains(
            r#"lua 5.1-1 (provided by LuaJIT) is excluded by "lua >= 5.4" from needs-lua54 1.0-1"#
        ),
        "{err}"
    );
    assert_eq!(
        current(&home),
        "",
        "a failed resolution must not create a generation"
    );
}

#[test]
fn bad_hash_and_build_failure_leave_the_environment_unchanged() {
    let (home, m) = (Home::new(), rocks_mirror());
    ok(&pkg(&home, &m, &["install", "inspect"]));
    let before = history(&home);
    let lock = std::fs::read(home.path().join("data/envs/default/current/bioxen.lock")).unwrap();
    let err = failed(&pkg(&home, &m, &["install", "bad-hash"]));
    assert!(
        err.contains("Hash: bad-hash 1.0-1") && err.contains("but the rockspec says 0000"),
        "{err}"
    );
    let err = failed(&pkg(&home, &m, &["install", "broken-c"]));
    assert!(
        err.contains("Build: broken-c 1.0-1: the C module broken does not compile"),
        "{err}"
    );
    assert!(
        err.contains("broken.c:2"),
        "compiler output expected: {err}"
    );
    assert_eq!(history(&home), before);
    assert_eq!(current(&home), "gens/1");
    let lock_after =
        std::fs::read(home.path().join("data/envs/default/current/bioxen.lock")).unwrap();
    assert_eq!(lock, lock_after);
    let store = home.path().join("data/pkg/store/broken-c");
    assert!(
        std::fs::read_dir(&store).map(|d| d.count()).unwrap_or(0) == 0,
        "nothing half-built stays in the store"
    );
}

#[test]
fn a_dependency_cycle_installs_both() {
    let (home, m) = (Home::new(), rocks_mirror());
    let out = ok(&pkg(&home, &m, &["install", "cycle-a"]));
    assert!(
        out.contains("cycle-a 1.0-1") && out.contains("cycle-b 1.0-1"),
        "{out}"
    );
    let got = common::lua_ok(
        &home,
        "print(require('cycle_a').name, require('cycle_b').name)",
    );
    assert_eq!(got.trim(), "cycle_a\tcycle_b");
    // Rockspec 3.0 without build.modules: modules found under src/.
    ok(&pkg(&home, &m, &["install", "auto-modules"]));
    let got = common::lua_ok(
        &home,
        "print(require('auto').name, require('auto.util').name, require('auto_top').name)",
    );
    assert_eq!(got.trim(), "auto\tauto.util\tauto_top");
    // A .src.rock of a git source carries the checkout folder, not an archive.
    ok(&pkg(&home, &m, &["install", "scm-style"]));
    let got = common::lua_ok(&home, "print(require('scm_style').name)");
    assert_eq!(got.trim(), "scm_style");
}

/// Waits until this child (not a killed predecessor) is building slow-build.
fn wait_for_build(home: &Home, child: &mut Child) {
    let dir = home.path().join("cache/pkg/build");
    let name = format!("slow-build-1.0-1.tmp-{}", child.id());
    let start = Instant::now();
    loop {
        let building = std::fs::read_dir(&dir)
            .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy() == name))
            .unwrap_or(false);
        if building {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("install ended before the build started: {st}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the slow build never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn kill_or_ctrl_c_mid_install_leaves_the_environment_unchanged() {
    let (home, m) = (Home::new(), rocks_mirror());
    ok(&pkg(&home, &m, &["install", "inspect"]));
    let before = history(&home);
    for signal in [libc::SIGKILL, libc::SIGINT] {
        // With SIGINT, two more packages build beside the slow one (parallel workers).
        let mut args = vec![
            "pkg",
            "install",
            "slow-build",
            "--server",
            &m.url,
            "--quiet",
        ];
        if signal == libc::SIGINT {
            args.push("cycle-a");
        }
        let mut child = home
            .cmd(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_build(&home, &mut child);
        let t = Instant::now();
        unsafe { libc::kill(child.id() as i32, signal) };
        let st = child.wait().unwrap();
        assert!(!st.success());
        if signal == libc::SIGINT {
            assert_eq!(st.code(), Some(130), "Ctrl-C keeps its exit status");
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the build (sleep 30) was not stopped"
        );
        assert_eq!(history(&home), before, "after signal {signal}");
        assert_eq!(current(&home), "gens/1");
        let list = ok(&home.run(&["pkg", "list"], None));
        assert!(!list.contains("slow-build"), "{list}");
    }
    // The next install sweeps what the killed one left and works.
    ok(&pkg(&home, &m, &["install", "dkjson"]));
    assert_eq!(current(&home), "gens/2");
}

fn tree_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn a_lockfile_reproduces_the_tree_byte_for_byte() {
    let (a, m) = (Home::new(), rocks_mirror());
    ok(&pkg(
        &a,
        &m,
        &["install", "penlight", "lpeg", "dkjson", "inspect"],
    ));
    let lock = ok(&a.run(&["env", "export"], None));
    assert!(
        lock.contains("\"sha256\"") && lock.contains("lpeg.so"),
        "{lock}"
    );
    let b = Home::new();
    let file = b.write("lab.lock", &lock);
    let out = ok(&b.run(
        &[
            "env",
            "import",
            file.to_str().unwrap(),
            "--name",
            "lab",
            "--quiet",
        ],
        None,
    ));
    assert!(out.contains("environment lab"), "{out}");
    let ta = tree_files(&a.path().join("data/envs/default/current/tree"));
    let tb = tree_files(&b.path().join("data/envs/lab/current/tree"));
    assert!(!ta.is_empty());
    assert_eq!(ta, tb, "the imported tree differs");
    assert_eq!(ok(&b.run(&["env", "export", "lab"], None)), lock);
    // --locked again from the store reuses the builds
    ok(&b.run(
        &["pkg", "install", "--locked", "--env", "lab", "--quiet"],
        None,
    ));
    // A lockfile whose hash does not match what the server has fails, naming it.
    let bad = lock.replacen("\"sha256\": \"", "\"sha256\": \"0", 1);
    let c = Home::new();
    let file = c.write("bad.lock", &bad);
    let err = failed(&c.run(&["env", "import", file.to_str().unwrap(), "--quiet"], None));
    assert!(
        err.contains("Locked:") && err.contains("bioxen.lock records 0"),
        "{err}"
    );
    assert!(
        !c.path().join("data/envs/bad").exists(),
        "a failed import leaves no environment"
    );
}

#[test]
fn rollback_returns_to_an_earlier_generation() {
    let (home, m) = (Home::new(), rocks_mirror());
    ok(&pkg(&home, &m, &["install", "inspect"]));
    ok(&pkg(&home, &m, &["install", "dkjson"]));
    assert_eq!(current(&home), "gens/2");
    common::lua_ok(&home, "assert(require('dkjson'))");
    // As Nix: the rollback is itself a new generation, shown in history.
    let out = ok(&home.run(&["pkg", "rollback"], None));
    assert!(
        out.contains("generation 3 restores generation 1 (was 2)"),
        "{out}"
    );
    assert_eq!(current(&home), "gens/3");
    let o = home.run(&["-e", "require('dkjson')"], None);
    assert!(!o.status.success(), "dkjson should be gone after rollback");
    common::lua_ok(&home, "assert(require('inspect'))");
    let h = history(&home);
    assert!(
        h.contains("   1")
            && h.contains("   2")
            && h.contains("*  3")
            && h.contains("rollback to 1"),
        "{h}"
    );
    // Rolling back the rollback returns to what it replaced (generation 2).
    let out = ok(&home.run(&["pkg", "rollback"], None));
    assert!(
        out.contains("generation 4 restores generation 2 (was 3)"),
        "{out}"
    );
    common::lua_ok(&home, "assert(require('dkjson'))");
    // The restored generation's lockfile and health are those of generation 2.
    let lock4 =
        std::fs::read_to_string(home.path().join("data/envs/default/gens/4/bioxen.lock")).unwrap();
    let lock2 =
        std::fs::read_to_string(home.path().join("data/envs/default/gens/2/bioxen.lock")).unwrap();
    assert_eq!(lock4, lock2);
    ok(&home.run(&["pkg", "health"], None));
    ok(&home.run(&["pkg", "rollback", "1"], None));
    assert_eq!(current(&home), "gens/5");
    let err = failed(&home.run(&["pkg", "rollback", "5"], None));
    assert!(err.contains("at generation 5 already"), "{err}");
    let err = failed(&home.run(&["pkg", "rollback", "9"], None));
    assert!(err.contains("no generation 9"), "{err}");
}

#[test]
fn remove_refuses_to_break_a_dependent_unless_forced() {
    let (home, m) = (Home::new(), rocks_mirror());
    ok(&pkg(&home, &m, &["install", "luassert"]));
    let err = failed(&pkg(&home, &m, &["remove", "say"]));
    assert!(
        err.contains("cannot remove say: luassert 1.9.0-1 depends on it"),
        "{err}"
    );
    ok(&pkg(&home, &m, &["remove", "say", "--force"]));
    assert!(!ok(&home.run(&["pkg", "list"], None)).contains("say"));
    // Removing what was asked for also removes dependencies nothing else needs.
    ok(&pkg(&home, &m, &["install", "penlight", "inspect"]));
    let out = ok(&pkg(&home, &m, &["remove", "penlight"]));
    assert!(
        out.contains("- luafilesystem") && out.contains("- penlight"),
        "{out}"
    );
    let list = ok(&home.run(&["pkg", "list"], None));
    assert!(
        list.contains("inspect") && !list.contains("luafilesystem"),
        "{list}"
    );
}

#[test]
fn health_finds_modified_files_and_broken_modules() {
    let (home, m) = (Home::new(), rocks_mirror());
    ok(&pkg(&home, &m, &["install", "inspect", "luafilesystem"]));
    let out = ok(&home.run(&["pkg", "health"], None));
    assert!(out.contains("is healthy (2 modules load)"), "{out}");
    // Edited in place: generations hard-link the store, so this breaks the
    // store's copy too, and the fix must rebuild rather than re-link it.
    let file = home
        .path()
        .join("data/envs/default/current/tree/share/lua/5.1/inspect.lua");
    std::fs::write(&file, "error('broken on purpose')").unwrap();
    let o = home.run(&["pkg", "health"], None);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("share/lua/5.1/inspect.lua was modified"),
        "{out}"
    );
    assert!(
        out.contains("require(\"inspect\") fails: ") && out.contains("broken on purpose"),
        "{out}"
    );
    assert!(
        out.contains("fix: bioxen pkg install --locked --env default"),
        "{out}"
    );
    ok(&pkg(&home, &m, &["install", "--locked"]));
    let out = ok(&home.run(&["pkg", "health"], None));
    assert!(out.contains("is healthy"), "{out}");
}

#[test]
fn recommend_suggests_from_the_catalog_with_reasons() {
    let (home, m) = (Home::new(), rocks_mirror());
    ok(&pkg(&home, &m, &["install", "luasocket"]));
    let out = ok(&home.run(&["pkg", "recommend"], None));
    assert!(out.contains("luasec") && out.contains("TLS"), "{out}");
    assert!(out.contains("completes the networking collection"), "{out}");
}

#[test]
fn environments_profiles_and_paths() {
    let (home, m) = (Home::new(), rocks_mirror());
    let out = ok(&home.run(
        &[
            "env",
            "create",
            "lab",
            "--profile",
            "minimal",
            "--server",
            &m.url,
            "--quiet",
        ],
        None,
    ));
    assert!(out.contains("created environment lab"), "{out}");
    ok(&home.run(&["env", "create", "empty"], None));
    ok(&home.run(&["env", "use", "lab"], None));
    let list = ok(&home.run(&["env", "list"], None));
    assert!(list.contains("* lab") && list.contains("  empty"), "{list}");
    common::lua_ok(&home, "assert(require('inspect') and require('dkjson'))");
    // A standard child VM finds the active environment's pure-Lua modules.
    let got = common::lua_ok(
        &home,
        r#"local c = bioxen.vm.create{ sandbox = "standard" }
        local r = c:exec("return require('inspect')({ 7 })")
        c:close()
        print(r.ok, r.values and r.values[1], r.error)"#,
    );
    assert_eq!(got.trim(), "true\t{ 7 }\tnil");
    let path = ok(&home.run(&["env", "path"], None));
    assert!(
        path.contains("LUA_PATH='") && path.contains("envs/lab/current/tree/share/lua/5.1/?.lua"),
        "{path}"
    );
    // Another interpreter finds the modules through those lines.
    let shell = format!(
        "{}\nluajit -e 'print(require(\"inspect\")({{1}}))'",
        path.replace("export PATH", "true")
    );
    let o = Command::new("bash").args(["-c", &shell]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "{ 1 }",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    ok(&home.run(
        &["pkg", "profile", "create", "mine", "inspect", ">=", "3"],
        None,
    ));
    let show = ok(&home.run(&["pkg", "profile", "show", "mine"], None));
    assert!(show.contains("inspect >= 3"), "{show}");
    assert!(ok(&home.run(&["pkg", "profile", "list"], None)).contains("mine"));
    ok(&home.run(&["env", "remove", "lab"], None));
    assert!(!ok(&home.run(&["env", "list"], None)).contains("lab"));
}

#[test]
fn version_order_and_constraints_match_luarocks() {
    let versions = [
        "1.0-1",
        "1.0-2",
        "1.0",
        "1.0.0-1",
        "1.0rc1-1",
        "1.0rc2-1",
        "1.0beta-1",
        "1.0alpha2-1",
        "1.0pre-1",
        "scm-1",
        "dev-1",
        "cvs-1",
        "2.1.0.10-1",
        "2.1.0-1",
        "2.1.0+dfsg-1",
        "0.9.9-3",
        "10.0-1",
        "1.13.1-1",
        "1.13-1",
        "1.2.3a-1",
        "1.2.3b-1",
        "5.1",
        "5.1.5-1",
        "1_0_2-1",
    ];
    let constraints = [
        "~> 1.13", "~> 1.0", ">= 1.0", "< 2", "== 1.0", "~= 1.0-1", "> 1.0rc1", "<= 1.0-1", "1.0",
        "~> 2.1.0",
    ];
    let list = versions.map(|v| format!("{v:?}")).join(",");
    let cons = constraints.map(|v| format!("{v:?}")).join(",");
    // LuaRocks' own implementation (Debian's luarocks, Lua 5.1 code).
    let reference = format!(
        r#"package.path = "/usr/share/lua/5.1/?.lua;" .. package.path
        local vers = require("luarocks.core.vers")
        local ops = {{ [""] = "==" }}
        local function parse(c)
          local op, v = c:match("^([<>=~!]*)%s*(.+)$")
          return {{ op = ops[op] or op, version = vers.parse_version(v) }}
        end
        local list, cons = {{{list}}}, {{{cons}}}
        table.sort(list, function(a, b) return vers.compare_versions(a, b) end)
        print(table.concat(list, " "))
        for _, c in ipairs(cons) do
          local t = {{}}
          for _, v in ipairs(list) do
            if vers.match_constraints(vers.parse_version(v), {{parse(c)}}) then t[#t + 1] = v end
          end
          table.sort(t)
          print(c, table.concat(t, " "))
        end"#
    );
    let o = Command::new("lua5.1")
        .args(["-e", &reference])
        .output()
        .expect("lua5.1 (test peer)");
    assert!(
        o.status.success(),
        "luarocks reference failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let expected = String::from_utf8_lossy(&o.stdout).into_owned();
    let ours = format!(
        r#"local V = require("bioxen.pkg.version")
        local list, cons = {{{list}}}, {{{cons}}}
        V.sort(list)
        print(table.concat(list, " "))
        for _, c in ipairs(cons) do
          local t, dep = {{}}, assert(V.parse_dependency("x " .. c))
          for _, v in ipairs(list) do if V.matches(v, dep) then t[#t + 1] = v end end
          table.sort(t)
          print(c, table.concat(t, " "))
        end"#
    );
    let home = Home::new();
    let got = common::lua_ok(&home, &ours);
    // LuaRocks' table.sort comparator gives newest first, as V.sort does;
    // versions LuaRocks considers equal (1.0 and 1.0.0) may come in either order.
    let norm = |s: &str| {
        s.lines()
            .map(|l| l.replace("1.0.0-1 1.0-1", "1.0-1 1.0.0-1"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(norm(&got), norm(&expected));
}

#[test]
fn the_integration_demo_runs_against_a_local_folder_server() {
    let home = Home::new();
    let repo = repo();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/integration_demo.lua");
    let o = home.run(&[example, repo.to_str().unwrap()], None);
    let out = ok(&o);
    assert!(
        out.contains("environment integration-demo, generation 1"),
        "{out}"
    );
    assert!(out.contains("dkjson = \"dkjson 2.6\""), "{out}");
    assert!(out.contains("health: ok (2 modules)"), "{out}");
}

#[test]
fn update_moves_to_newer_versions_unless_pinned() {
    let (home, m) = (Home::new(), rocks_mirror());
    ok(&pkg(&home, &m, &["install", "say == 1.3"]));
    ok(&pkg(&home, &m, &["install", "say"]));
    // The request widened, but the installed version is kept until an update.
    assert!(ok(&home.run(&["pkg", "list"], None)).contains("1.3-1"));
    ok(&pkg(&home, &m, &["pin", "say"]));
    let out = ok(&pkg(&home, &m, &["update"]));
    assert!(out.contains("up to date"), "{out}");
    let err = failed(&pkg(&home, &m, &["install", "needs-new-say"]));
    assert!(err.contains("from the pin on say"), "{err}");
    ok(&pkg(&home, &m, &["unpin", "say"]));
    ok(&pkg(&home, &m, &["update", "say"]));
    let list = ok(&home.run(&["pkg", "list"], None));
    assert!(list.contains("1.4.1-1"), "{list}");
    let info = ok(&pkg(&home, &m, &["info", "say"]));
    assert!(
        info.contains("versions: 1.4.1-1 1.3-1") && info.contains("installed: 1.4.1-1"),
        "{info}"
    );
    let found = ok(&pkg(&home, &m, &["search", "cycle"]));
    assert!(
        found.contains("cycle-a") && found.contains("cycle-b"),
        "{found}"
    );
}

#[test]
fn health_reports_a_missing_system_library_and_platform_dependencies_apply() {
    let (home, m) = (Home::new(), rocks_mirror());
    let out = ok(&pkg(
        &home,
        &m,
        &["install", "needs-syslib", "uses-platforms"],
    ));
    assert!(
        out.contains("inspect 3.1.1-1"),
        "the unix dependency override was not applied: {out}"
    );
    let o = home.run(&["pkg", "health"], None);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("usesys needs the system library libbxgone.so, which is not installed"),
        "{out}"
    );
    assert!(
        out.contains("fix: install the package that provides libbxgone.so"),
        "{out}"
    );
    // external_dependencies: found (zlib) and missing, named with what to install
    ok(&pkg(&home, &m, &["install", "uses-zlib"]));
    let got = common::lua_ok(&home, "print(require('usezlib')():match('^%d+%.'))");
    assert!(!got.trim().is_empty(), "zlib version expected: {got}");
    let err = failed(&pkg(&home, &m, &["install", "needs-missing-lib"]));
    assert!(
        err.contains("needs the system library BXNOPE (bxnope/bxnope.h), which is not installed"),
        "{err}"
    );
    let err = failed(&home.run(&["pkg", "list", "--env", "nope"], None));
    assert!(err.contains("no environment \"nope\""), "{err}");
}

#[test]
fn servers_and_collections_come_from_the_users_files() {
    let (home, m) = (Home::new(), rocks_mirror());
    // No --server: the pkg.servers list of the configuration file.
    home.write(
        "config/config.json",
        &format!(r#"{{"pkg": {{"servers": ["{}"]}}}}"#, m.url),
    );
    ok(&home.run(&["pkg", "install", "inspect", "--quiet"], None));
    // A user collection adds to the shipped catalog and feeds recommend.
    home.write(
        "config/pkg/collections/lab.json",
        r#"{"summary": "our lab's picks", "packages": ["inspect", "coxpcall"]}"#,
    );
    let out = ok(&home.run(&["pkg", "recommend"], None));
    assert!(
        out.contains("coxpcall") && out.contains("completes the lab collection (our lab's picks)"),
        "{out}"
    );
    // A broken user file is named.
    home.write("config/pkg/profiles/bad.json", "{ nope");
    let err = failed(&home.run(&["pkg", "profile", "list"], None));
    assert!(
        err.contains("profiles/bad.json is not a valid JSON profiles file"),
        "{err}"
    );
}

#[test]
fn installs_rock_and_rockspec_files_from_disk_and_skips_a_dead_server() {
    let home = Home::new();
    let repo = repo();
    let rock = repo.join("inspect-3.1.1-1.src.rock");
    let spec = repo.join("dkjson-2.6-1.rockspec");
    let o = home.run(
        &[
            "pkg",
            "install",
            rock.to_str().unwrap(),
            spec.to_str().unwrap(),
            "--server",
            "/nonexistent/repo",
        ],
        None,
    );
    let out = ok(&o);
    assert!(
        out.contains("+ inspect 3.1.1-1") && out.contains("+ dkjson 2.6-1"),
        "{out}"
    );
    assert!(
        stderr(&o).contains("warning: Server: no LuaRocks manifest at /nonexistent/repo"),
        "{}",
        stderr(&o)
    );
    common::lua_ok(&home, "assert(require('inspect') and require('dkjson'))");
    let err = failed(&home.run(&["pkg", "install", "nope.src.rock"], None));
    assert!(err.contains("no file nope.src.rock"), "{err}");
}

#[test]
fn concurrent_changes_to_one_environment_take_turns() {
    let (home, m) = (Home::new(), rocks_mirror());
    ok(&pkg(&home, &m, &["install", "inspect"]));
    let spawn = |name: &str| {
        home.cmd(&["pkg", "install", name, "--server", &m.url])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("dkjson"), spawn("lpeg"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    ok(&a);
    ok(&b);
    let list = ok(&home.run(&["pkg", "list"], None));
    for p in ["inspect", "dkjson", "lpeg"] {
        assert!(list.contains(p), "{p} lost by a concurrent change: {list}");
    }
    assert_eq!(current(&home), "gens/3");
}

/// Debian's `luarocks` on an environment's tree.
fn luarocks(tree: &Path, args: &[&str]) -> String {
    let o = Command::new("luarocks")
        .args(["--lua-version=5.1", "--tree"])
        .arg(tree)
        .args(args)
        .output()
        .expect("luarocks (tests/deps/apt.sh installs it)");
    ok(&o)
}

#[test]
fn luarocks_reads_the_environment_tree_and_commands_are_wrapped() {
    let (home, m) = (Home::new(), rocks_mirror());
    ok(&pkg(
        &home,
        &m,
        &["install", "penlight", "lpeg", "bin-demo"],
    ));
    let tree = home.path().join("data/envs/default/current/tree");
    // What `luarocks install` leaves in a tree: per-rock folders and the tree manifest.
    let rock = tree.join("lib/luarocks/rocks-5.1/penlight/1.13.1-1");
    assert!(rock.join("penlight-1.13.1-1.rockspec").is_file());
    let rm = std::fs::read_to_string(rock.join("rock_manifest")).unwrap();
    assert!(
        rm.starts_with("rock_manifest = {") && rm.contains("[\"List.lua\"] = \""),
        "{rm}"
    );
    let list = luarocks(&tree, &["list"]);
    for want in [
        "penlight\n   1.13.1-1 (installed)",
        "luafilesystem\n   1.8.0-1 (installed)",
        "lpeg\n   1.0.2-1 (installed)",
        "bin-demo\n   1.0-1 (installed)",
    ] {
        assert!(
            list.contains(want),
            "luarocks list misses {want:?}:\n{list}"
        );
    }
    let show = luarocks(&tree, &["show", "lpeg"]);
    assert!(
        show.contains("Parsing Expression Grammars")
            && show.contains("lpeg (")
            && show.contains("lib/lua/5.1/lpeg.so"),
        "{show}"
    );
    let show = luarocks(&tree, &["show", "bin-demo"]);
    assert!(
        show.contains("Commands:") && show.contains("bin/bindemo"),
        "{show}"
    );
    // The dependency recorded in the manifest, as luarocks writes it.
    let manifest = std::fs::read_to_string(tree.join("lib/luarocks/rocks-5.1/manifest")).unwrap();
    assert!(
        manifest.contains("luafilesystem = \"1.8.0-1\"")
            && manifest.contains("arch = \"installed\""),
        "{manifest}"
    );
    // The command: a wrapper in bin/ running the rock's script with bioxen and the tree's modules.
    let dir = Path::new(common::exe()).parent().unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = Command::new(tree.join("bin/bindemo"))
        .args(["hello", "world"])
        .env("PATH", &path)
        .env("BIOXEN_HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(ok(&o).trim(), "bindemo says hello world");
    // The tree manifest belongs to no package but is not a health problem.
    let out = ok(&home.run(&["pkg", "health"], None));
    assert!(out.contains("is healthy"), "{out}");
    // After a removal, luarocks sees the new generation's tree without it.
    ok(&pkg(&home, &m, &["remove", "lpeg"]));
    let list = luarocks(&tree, &["list"]);
    assert!(
        !list.contains("lpeg") && list.contains("penlight"),
        "{list}"
    );
}

#[test]
fn c_modules_and_commands_are_autodetected_in_rockspec_3_0() {
    let (home, m) = (Home::new(), rocks_mirror());
    // src/autoc.c (luaopen_autoc), src/autoc/extra.c (luaopen_autoc_extra),
    // src/autoc_util.lua; src/spec/ is skipped; bin/autoc-tool is a command.
    ok(&pkg(&home, &m, &["install", "auto-c"]));
    let got = common::lua_ok(
        &home,
        "print(require('autoc').answer(), require('autoc_extra'), require('autoc_util').name)",
    );
    assert_eq!(got.trim(), "42\textra\tautoc_util");
    let tree = home.path().join("data/envs/default/current/tree");
    assert!(!tree.join("share/lua/5.1/spec/ignored.lua").exists());
    let o = Command::new(tree.join("bin/autoc-tool"))
        .env("BIOXEN", common::exe())
        .env("BIOXEN_HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(ok(&o).trim(), "autoc-tool 42");
}

#[test]
fn binary_rocks_install_without_building() {
    let (home, m) = (Home::new(), rocks_mirror());
    // The mirror has only their rockspecs and the rocks Debian's `luarocks pack`
    // made (prebuilt-c-1.0-1.linux-x86_64.rock, prebuilt-lua-1.0-1.all.rock): no source.
    ok(&pkg(&home, &m, &["install", "prebuilt-c", "prebuilt-lua"]));
    let got = common::lua_ok(
        &home,
        "print(require('prebuiltc')(), require('prebuiltlua').name)",
    );
    assert_eq!(got.trim(), "7\tprebuiltlua");
    let tree = home.path().join("data/envs/default/current/tree");
    // The installed library is the one in the rock, byte for byte (luarocks compiled it).
    let packed = Command::new("unzip")
        .args(["-p"])
        .arg(repo().join("prebuilt-c-1.0-1.linux-x86_64.rock"))
        .arg("lib/prebuiltc.so")
        .output()
        .unwrap()
        .stdout;
    assert!(!packed.is_empty());
    assert_eq!(
        std::fs::read(tree.join("lib/lua/5.1/prebuiltc.so")).unwrap(),
        packed
    );
    // Its command is wrapped like a built rock's.
    let o = Command::new(tree.join("bin/prebuilt-tool"))
        .env("BIOXEN", common::exe())
        .env("BIOXEN_HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(ok(&o).trim(), "prebuilt-tool prebuiltlua");
    let lock = ok(&home.run(&["env", "export"], None));
    assert!(
        lock.contains("prebuilt-c-1.0-1.linux-x86_64.rock")
            && lock.contains("prebuilt-lua-1.0-1.all.rock"),
        "{lock}"
    );
    assert!(luarocks(&tree, &["list"]).contains("prebuilt-c\n   1.0-1 (installed)"));
    // The lockfile reproduces it (from the store: a new environment, same tree).
    let file = home.write("bin.lock", &lock);
    ok(&home.run(
        &[
            "env",
            "import",
            file.to_str().unwrap(),
            "--name",
            "again",
            "--server",
            &m.url,
            "--quiet",
        ],
        None,
    ));
    common::lua_ok(&home, "assert(require('prebuiltc')() == 7)");
    ok(&home.run(&["pkg", "health"], None));
}

#[test]
fn search_matches_summaries_descriptions_and_catalog_collections() {
    let (home, m) = (Home::new(), rocks_mirror());
    // Nothing fetched yet: "expression grammars" (lpeg's summary) is not a name.
    let found = ok(&pkg(&home, &m, &["search", "expression grammars"]));
    assert!(!found.contains("lpeg"), "{found}");
    // `pkg info` fetched lpeg's rockspec: now its summary is searched.
    ok(&pkg(&home, &m, &["info", "lpeg"]));
    let found = ok(&pkg(&home, &m, &["search", "Expression Grammars"]));
    assert!(
        found.contains("lpeg") && found.contains("Parsing Expression Grammars For Lua"),
        "{found}"
    );
    // --fetch gets every package's newest rockspec first.
    let found = ok(&pkg(&home, &m, &["search", "table visualizer", "--fetch"]));
    assert!(found.starts_with("inspect "), "{found}");
    // The catalog: the `cli` collection's summary mentions terminal colours.
    let found = ok(&pkg(&home, &m, &["search", "terminal colours"]));
    assert!(
        found.contains("ansicolors") && found.contains("[collection cli]"),
        "{found}"
    );
    let r = common::lua_ok(
        &home,
        &format!(
            "local r = bioxen.pkg.search('visualizer', {{servers = {{'{}'}}}}) print(r[1].name, r[1].matched)",
            m.url
        ),
    );
    assert_eq!(r.trim(), "inspect\tsummary");
}

#[test]
fn a_cmake_rock_builds_with_luarocks_variables() {
    let (home, m) = (Home::new(), rocks_mirror());
    // CMakeLists.txt takes LUA_INCDIR, LUA_LIBDIR ($(LIBDIR)) and ANSWER from build.variables.
    ok(&pkg(&home, &m, &["install", "cmake-demo"]));
    let got = common::lua_ok(&home, "print(require('cmakedemo')())");
    assert_eq!(got.trim(), "42");
    let tree = home.path().join("data/envs/default/current/tree");
    assert!(tree.join("lib/lua/5.1/cmakedemo.so").is_file());
    assert!(luarocks(&tree, &["list"]).contains("cmake-demo\n   1.0-1 (installed)"));
    let out = ok(&home.run(&["pkg", "health"], None));
    assert!(out.contains("is healthy (1 modules load)"), "{out}");
}

#[test]
fn a_luarocks_build_backend_rock_builds_a_custom_build_type() {
    let (home, m) = (Home::new(), rocks_mirror());
    // build.type = 'demo': the back-end rock luarocks-build-demo (module
    // luarocks.build.demo, using luarocks.fs/dir/path/util/core.cfg) is an implicit
    // build dependency, built first; it writes a Lua module and compiles a C one.
    let out = ok(&home.run(
        &["pkg", "install", "uses-demo-backend", "--server", &m.url],
        None,
    ));
    assert!(
        out.contains("+ luarocks-build-demo 1.0-1") && out.contains("+ uses-demo-backend 1.0-1"),
        "{out}"
    );
    let got = common::lua_ok(
        &home,
        "local g = require('demo_greeting') print(g.greeting, g.built_in, require('democ')())",
    );
    // $(LUA) substituted by the back-end through util.variable_substitutions; the
    // back-end ran in the unpacked source folder.
    assert_eq!(got.trim(), "hello from bioxen\tuses-demo-backend-1.0\t99");
    let got = common::lua_ok(
        &home,
        "local s = bioxen.pkg.rockspec('package = \"x\" version = \"1.0-1\" build = { type = \"foo\" }') \
         print(s.dependencies[#s.dependencies])",
    );
    assert_eq!(got.trim(), "luarocks-build-foo");
}

#[test]
fn the_tree_metadata_is_what_luarocks_writes() {
    let (home, m) = (Home::new(), rocks_mirror());
    let rocks = ["inspect", "argparse", "bin-demo"];
    let mut args = vec!["install"];
    args.extend_from_slice(&rocks);
    ok(&pkg(&home, &m, &args));
    let ours = home.path().join("data/envs/default/current/tree");
    // Debian's luarocks installs the same rocks from the same mirror into its own tree.
    let theirs = home.path().join("luarocks-tree");
    for rock in rocks {
        let o = Command::new("luarocks")
            .args(["--lua-version=5.1", "--tree"])
            .arg(&theirs)
            .arg(format!("--only-server={}", m.url))
            .args(["install", rock])
            .output()
            .unwrap();
        ok(&o);
    }
    let read = |tree: &Path, rel: &str| {
        std::fs::read_to_string(tree.join("lib/luarocks/rocks-5.1").join(rel))
            .unwrap_or_else(|e| panic!("{rel} in {}: {e}", tree.display()))
    };
    assert_eq!(read(&ours, "manifest"), read(&theirs, "manifest"));
    for rel in [
        "inspect/3.1.1-1/rock_manifest",
        "argparse/0.7.1-1/rock_manifest",
        "bin-demo/1.0-1/rock_manifest",
        "argparse/0.7.1-1/argparse-0.7.1-1.rockspec",
        "inspect/3.1.1-1/doc/README.md",
    ] {
        assert_eq!(read(&ours, rel), read(&theirs, rel), "{rel}");
    }
}

#[test]
fn a_binary_rock_whose_files_differ_from_its_rock_manifest_is_refused() {
    let home = Home::new();
    // A one-rock folder server holding a tampered copy of prebuilt-lua's .all.rock.
    let server = home.path().join("tampered");
    std::fs::create_dir_all(&server).unwrap();
    std::fs::copy(
        repo().join("prebuilt-lua-1.0-1.rockspec"),
        server.join("prebuilt-lua-1.0-1.rockspec"),
    )
    .unwrap();
    let script = "import sys, zipfile\n\
        src, dst = sys.argv[1], sys.argv[2]\n\
        with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, 'w') as b:\n\
        \x20   for i in a.infolist():\n\
        \x20       data = a.read(i.filename)\n\
        \x20       if i.filename == 'lua/prebuiltlua.lua': data = b'error(\"tampered\")\\n'\n\
        \x20       b.writestr(i, data)\n";
    let st = Command::new("python3")
        .args(["-c", script])
        .arg(repo().join("prebuilt-lua-1.0-1.all.rock"))
        .arg(server.join("prebuilt-lua-1.0-1.all.rock"))
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::write(
        server.join("manifest"),
        "repository = { ['prebuilt-lua'] = { ['1.0-1'] = { { arch = 'rockspec' }, { arch = 'all' } } } }\n",
    )
    .unwrap();
    let o = home.run(
        &[
            "pkg",
            "install",
            "prebuilt-lua",
            "--server",
            server.to_str().unwrap(),
            "--quiet",
        ],
        None,
    );
    let err = failed(&o);
    assert!(
        err.contains("Hash")
            && err.contains("lua/prebuiltlua.lua")
            && err.contains("rock_manifest"),
        "{err}"
    );
    assert_eq!(current(&home), "", "the environment must stay unchanged");
}
