//! A plain line loop until the rustyline REPL lands: each line is tried as an
//! expression first (its values printed), then as a statement.
use crate::runtime::{report, scheduler::Scheduler};
use mlua::{Lua, Result as LuaResult};
use std::io::{BufRead, Write};

pub fn run(lua: &Lua, scheduler: &Scheduler) -> LuaResult<()> {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        print!("> ");
        let _ = std::io::stdout().flush();
        let Some(Ok(line)) = lines.next() else { break };
        let f = lua
            .load(format!("return {line}"))
            .set_name("=stdin")
            .into_function()
            .or_else(|_| lua.load(line.as_str()).set_name("=stdin").into_function());
        let result = f.and_then(|f| scheduler.call(&f, ()));
        match result {
            Ok(values) if !values.is_empty() => {
                let shown: Vec<String> = values
                    .iter()
                    .map(|v| v.to_string().unwrap_or_else(|_| format!("{v:?}")))
                    .collect();
                println!("{}", shown.join("\t"));
            }
            Ok(_) => {}
            Err(e) => eprintln!("{}", report::format_error(&e)),
        }
    }
    println!();
    Ok(())
}
