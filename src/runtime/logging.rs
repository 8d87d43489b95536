//! One tracing configuration for every component. Console logs go to stderr,
//! never stdout. `--log`/`--debug` win over `BIOXEN_LOG`; the default is `warn`.
use tracing_subscriber::{EnvFilter, filter::LevelFilter};

pub fn init(spec: Option<&str>) {
    let from_env = std::env::var("BIOXEN_LOG").ok().filter(|s| !s.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(true);
    let result = match spec.map(str::to_string).or(from_env) {
        Some(spec) => match EnvFilter::try_new(&spec) {
            Ok(filter) => builder.with_env_filter(filter).try_init(),
            Err(e) => {
                eprintln!("bioxen: ignoring log filter {spec:?}: {e}");
                builder.with_max_level(LevelFilter::WARN).try_init()
            }
        },
        None => builder.with_max_level(LevelFilter::WARN).try_init(),
    };
    let _ = result;
}
