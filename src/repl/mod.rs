//! The REPL. Two halves with one boundary between them:
//!
//! - the front end (`frontend.rs`): rustyline, prompts, multi-line input,
//!   history, completion key, Ctrl-C/Ctrl-D, dot commands. It knows nothing
//!   about Lua; it talks to an [`Evaluator`].
//! - the evaluator: [`local::LocalEvaluator`] runs input in this process's Lua
//!   state through the scheduler, using the Lua session object of
//!   `stdlib/bioxen/repl.lua` (local rewriting, printing, completion).
//!
//! An evaluator for another process (`bioxen session attach`) implements the
//! same trait over a connection; see docs/repl.md.
pub mod frontend;
pub mod local;
pub mod watch;

use crate::runtime::scheduler::Scheduler;
use mlua::{Lua, Result as LuaResult};

/// What an evaluator says about one input.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The chunk is not finished (Lua's `<eof>` syntax error): read more lines.
    Incomplete,
    /// Done; the text of the results (empty for a statement), for stdout.
    Output(String),
    /// Failed; message and short traceback, for stderr.
    Error(String),
}

/// The evaluating half of a REPL. Input is whole chunks: the front end
/// accumulates lines until `eval` stops answering `Incomplete`.
pub trait Evaluator {
    /// Evaluates Lua source (`=expr` allowed). Ctrl-C during the evaluation
    /// must stop it and leave the session usable.
    fn eval(&mut self, source: &str) -> Reply;
    /// Runs a file in the session (`.load FILE`).
    fn load_file(&mut self, path: &str) -> Reply;
    /// Reloads a required module in place (`.reload MOD`).
    fn reload(&mut self, module: &str) -> Reply;
    /// Forgets the session's locals (`.clear`).
    fn reset(&mut self) -> Reply;
    /// Completions for the text before the cursor: the byte offset where the
    /// completed word starts and the candidate words.
    fn complete(&mut self, line: &str) -> (usize, Vec<String>);
}

/// `bioxen` on a terminal, or `bioxen -i`: the REPL on this process's state.
pub fn run(lua: &Lua, scheduler: &Scheduler) -> LuaResult<()> {
    crate::runtime::interrupt::set_repeat_exit_grace(std::time::Duration::from_secs(2));
    let evaluator = local::LocalEvaluator::new(lua, scheduler)?;
    let banner = format!(
        "bioxen {} ({}): .help for help, Ctrl-D to exit",
        env!("CARGO_PKG_VERSION"),
        lua.load("return jit and jit.version or _VERSION")
            .eval::<String>()?
    );
    frontend::run(evaluator, &banner)
        .map_err(|e| crate::runtime::error::error("Io", format!("the line editor failed: {e}")))
}
