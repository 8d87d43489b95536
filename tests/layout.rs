//! Every registered library can be found by its name: docs page and type definitions.
mod common;

#[test]
fn every_library_has_an_api_page_and_type_definitions() {
    let home = common::Home::new();
    let help = common::stdout(&home.run(&["--help"], None));
    let libs: Vec<&str> = help
        .split("Libraries (bioxen.NAME):")
        .nth(1)
        .expect("help lists libraries")
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(libs.len() >= 4, "{help}");
    let root = env!("CARGO_MANIFEST_DIR");
    for lib in libs {
        for path in [
            format!("{root}/docs/api/{lib}.md"),
            format!("{root}/lua/types/{lib}.lua"),
        ] {
            assert!(
                std::path::Path::new(&path).exists(),
                "library {lib} lacks {path}"
            );
        }
    }
}
