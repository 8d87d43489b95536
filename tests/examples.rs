//! Every example in examples/ that needs no server runs and does what it says.
mod common;

fn run_example(name: &str, args: &[&str]) -> String {
    let home = common::Home::new();
    let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut all = vec![path.as_str()];
    all.extend_from_slice(args);
    let o = home.run(&all, None);
    assert!(o.status.success(), "{name} failed:\n{}", common::stderr(&o));
    common::stdout(&o)
}

#[test]
fn hello_greets_and_shows_an_error_kind() {
    let out = run_example("hello.lua", &["lab"]);
    assert!(out.starts_with("Hello, lab!\nLuaJIT 2.1"), "{out}");
    assert!(
        out.contains("false\tJson\tinvalid JSON at line 1 column 2"),
        "{out}"
    );
}

#[test]
fn tasks_run_concurrently_and_report_failures() {
    let start = std::time::Instant::now();
    let out = run_example("tasks.lua", &[]);
    assert!(out.contains("sample 5 done after 0.50s"), "{out}");
    assert!(out.contains("false\tAnalysis\tbad input file"), "{out}");
    assert!(out.contains("slow task:\tcancelled"), "{out}");
    // Five sleeps of 0.1..0.5 s overlap: about 0.5 s in all, not 1.5 s (the
    // bound leaves room for start-up on a loaded CI machine).
    assert!(
        start.elapsed() < std::time::Duration::from_millis(1400),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn provenance_spools_its_workflow_statements_without_an_lrs() {
    let out = run_example("provenance.lua", &[]);
    assert!(out.contains("s2  GC 0.12  recorded as "), "{out}");
    assert!(
        out.contains("no LRS configured: 5 statements wait in the spool"),
        "{out}"
    );
}
