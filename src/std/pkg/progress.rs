//! Progress for builds: a bar with rate and time left on a terminal, plain lines otherwise.
use indicatif::{ProgressBar, ProgressStyle};
use mlua::{Lua, Result as LuaResult, UserData, UserDataMethods};
use std::io::IsTerminal;

pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
}

/// `progress(total, label)` -> object with `step(message)` and `finish(message)`.
pub fn new(_: &Lua, (total, label): (u64, String)) -> LuaResult<Progress> {
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template("{prefix} {bar:25} {pos}/{len} {per_sec} {eta} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.set_prefix(label.clone());
        b
    });
    Ok(Progress { bar, label })
}

impl UserData for Progress {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("step", |_, p, msg: String| {
            match &p.bar {
                Some(b) => {
                    b.set_message(msg);
                    b.inc(1);
                }
                None => eprintln!("{}: {msg}", p.label),
            }
            Ok(())
        });
        m.add_method("finish", |_, p, msg: Option<String>| {
            match (&p.bar, msg) {
                (Some(b), _) => b.finish_and_clear(),
                (None, Some(msg)) => eprintln!("{}: {msg}", p.label),
                (None, None) => {}
            }
            Ok(())
        });
    }
}
