//! The REPL's input loop on rustyline: prompts, multi-line chunks, history,
//! completion, Ctrl-C and Ctrl-D, dot commands. Lua-agnostic: everything
//! about evaluation goes through the [`Evaluator`] trait.
use super::{Evaluator, Reply};
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, Editor, Helper};
use std::cell::RefCell;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::rc::Rc;

pub const PROMPT: &str = "> ";
pub const CONTINUATION: &str = ">> ";
/// Entries kept in the history file.
pub const HISTORY_SIZE: usize = 1000;

pub const HELP: &str =
    "Type Lua: an expression prints its values (`=expr` too), a statement prints nothing.
Top-level `local`s stay in the session. Tab completes names and fields.
  .help          this help
  .help NAME     what library bioxen.NAME is, and its health checks (bioxen doctor)
  .exit          leave (or Ctrl-D on an empty line)
  .load FILE     run FILE in the session
  .reload MOD    reload a required module in place (bioxen.reload)
  .clear         forget the session's locals and any unfinished input
Ctrl-C clears the input line, or stops a running evaluation.";

/// rustyline's helper: completion asks the evaluator.
struct LineHelper<E> {
    evaluator: Rc<RefCell<E>>,
}

impl<E: Evaluator> Completer for LineHelper<E> {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let Ok(mut evaluator) = self.evaluator.try_borrow_mut() else {
            return Ok((pos, Vec::new()));
        };
        Ok(evaluator.complete(&line[..pos]))
    }
}

impl<E> Hinter for LineHelper<E> {
    type Hint = String;
}
impl<E> Highlighter for LineHelper<E> {}
impl<E> Validator for LineHelper<E> {}
impl<E: Evaluator> Helper for LineHelper<E> {}

/// The history file, in bioxen's data folder.
pub fn history_path() -> PathBuf {
    crate::runtime::paths::data_dir().join("repl_history")
}

/// What a line starting with `.` asks for, if it is a REPL command.
#[derive(Debug, PartialEq)]
enum Command<'a> {
    Help,
    /// `.help NAME`: a library's summary and its doctor checks.
    HelpOn(&'a str),
    Exit,
    Load(&'a str),
    Reload(&'a str),
    Clear,
    Unknown(&'a str),
}

fn command(line: &str) -> Option<Command<'_>> {
    let line = line.trim();
    let rest = line.strip_prefix('.')?;
    let (name, arg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    // `.5 + 1` is Lua, not a command.
    if !name.chars().next()?.is_ascii_alphabetic() {
        return None;
    }
    let arg = arg.trim();
    Some(match name {
        "help" if arg.is_empty() => Command::Help,
        "help" => Command::HelpOn(arg),
        "exit" | "detach" => Command::Exit,
        "load" => Command::Load(arg),
        "reload" => Command::Reload(arg),
        "clear" => Command::Clear,
        _ => Command::Unknown(name),
    })
}

fn show(reply: Reply) {
    match reply {
        Reply::Output(text) if !text.is_empty() => println!("{text}"),
        Reply::Error(text) => eprintln!("{text}"),
        _ => {}
    }
}

/// Reads and evaluates until `.exit` or Ctrl-D on an empty line.
pub fn run<E: Evaluator>(evaluator: E, banner: &str) -> rustyline::Result<()> {
    let config = Config::builder()
        .max_history_size(HISTORY_SIZE)?
        .history_ignore_dups(true)?
        .auto_add_history(false)
        .completion_type(CompletionType::List)
        .build();
    let evaluator = Rc::new(RefCell::new(evaluator));
    let mut editor: Editor<LineHelper<E>, DefaultHistory> = Editor::with_config(config)?;
    editor.set_helper(Some(LineHelper {
        evaluator: evaluator.clone(),
    }));
    let history = history_path();
    let _ = editor.load_history(&history);
    if std::io::stdin().is_terminal() {
        println!("{banner}");
    }
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            PROMPT
        } else {
            CONTINUATION
        };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e),
        };
        if buffer.is_empty() {
            if let Some(cmd) = command(&line) {
                remember(&mut editor, &history, &line);
                let mut ev = evaluator.borrow_mut();
                match cmd {
                    Command::Help => println!("{HELP}"),
                    Command::HelpOn(name) => {
                        show(ev.eval(&format!("print(bioxen.doctor.help({name:?}))")))
                    }
                    Command::Exit => break,
                    Command::Load("") => eprintln!(".load needs a file: .load FILE"),
                    Command::Load(path) => show(ev.load_file(path)),
                    Command::Reload("") => eprintln!(".reload needs a module name: .reload MOD"),
                    Command::Reload(module) => show(ev.reload(module)),
                    Command::Clear => show(ev.reset()),
                    Command::Unknown(name) => {
                        eprintln!("unknown command .{name} (.help lists the commands)")
                    }
                }
                continue;
            }
            if line.trim().is_empty() {
                continue;
            }
        } else if line.trim() == ".clear" {
            buffer.clear();
            show(evaluator.borrow_mut().reset());
            continue;
        } else {
            buffer.push('\n');
        }
        buffer.push_str(&line);
        let reply = evaluator.borrow_mut().eval(&buffer);
        if reply == Reply::Incomplete {
            continue;
        }
        show(reply);
        remember(&mut editor, &history, &buffer);
        buffer.clear();
    }
    Ok(())
}

/// Adds an entry to the history and appends it to the file at once (so a
/// killed session keeps it, and sessions running side by side all keep
/// theirs); consecutive duplicates are dropped by the editor.
fn remember<H: Helper>(editor: &mut Editor<H, DefaultHistory>, path: &PathBuf, entry: &str) {
    if editor.add_history_entry(entry).unwrap_or(false) {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = editor.append_history(path) {
            tracing::warn!("cannot save the REPL history to {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_commands_are_recognised_but_numbers_are_lua() {
        assert_eq!(command(".help"), Some(Command::Help));
        assert_eq!(command(".help vm"), Some(Command::HelpOn("vm")));
        assert_eq!(command(" .load  a b.lua "), Some(Command::Load("a b.lua")));
        assert_eq!(command(".reload mod"), Some(Command::Reload("mod")));
        assert_eq!(command(".5 + 1"), None);
        assert_eq!(command("x = 1"), None);
        assert_eq!(command(".nope"), Some(Command::Unknown("nope")));
    }
}
