//! Runs the Lua spec files under lua/spec/ with the binary itself.
mod common;

#[test]
fn lua_specs_pass() {
    let home = common::Home::new();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/lua/spec");
    let o = home.run(&["test", dir], None);
    let out = common::stdout(&o);
    assert!(
        o.status.success(),
        "lua specs failed:\n{out}\n{}",
        common::stderr(&o)
    );
    assert!(out.contains(" passed, 0 failed"), "{out}");
}
