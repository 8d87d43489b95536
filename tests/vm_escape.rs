//! The escape corpus (tests/vm/escape_corpus.lua) against both backends: every
//! attempt blocked or contained with the right kind, the host and a sibling VM
//! unaffected, the attacked VM usable again.
mod common;

fn corpus(backend: &str, at_least: usize) {
    let home = common::Home::new();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vm/escape_corpus.lua");
    let o = home.run(&[script, backend], None);
    let out = common::stdout(&o);
    let failures: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        o.status.success() && failures.is_empty(),
        "escape attempts not contained ({backend}):\n{}\n{}",
        failures.join("\n"),
        common::stderr(&o)
    );
    let summary = out
        .lines()
        .find(|l| l.starts_with("escape corpus"))
        .unwrap_or_else(|| panic!("no summary line in:\n{out}"));
    let passes = out.lines().filter(|l| l.starts_with("PASS")).count();
    assert!(passes >= at_least, "only {passes} attempts ran: {summary}");
    assert!(
        summary.contains(&format!("{passes} contained, 0 failed")),
        "{summary}"
    );
}

#[test]
fn escape_corpus_is_contained_by_the_thread_backend() {
    corpus("thread", 70);
}

#[test]
fn escape_corpus_is_contained_by_the_process_backend() {
    corpus("process", 85);
}
