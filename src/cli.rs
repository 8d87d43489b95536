//! The command line, parsed the way `lua` and `luajit` parse theirs: options
//! run in order and stop at the script, whose arguments follow it untouched.
//! (clap's model of flags and subcommands cannot express that grammar.)
use crate::runtime::stdlib;
use std::path::Path;

#[derive(Debug, PartialEq)]
pub enum Action {
    Exec(String),
    Require(String),
    Jit(String),
    Optimize(String),
}

#[derive(Debug, PartialEq)]
pub enum Target {
    None,
    Stdin,
    Script(String),
    Subcommand(String),
}

#[derive(Debug)]
pub struct Command {
    pub actions: Vec<Action>,
    pub target: Target,
    pub args: Vec<String>,
    pub interactive: bool,
    pub watch: bool,
    pub version: bool,
    pub help: bool,
    pub log: Option<String>,
    /// Everything before the script, for `arg`'s negative indices.
    pub interpreter_args: Vec<String>,
}

pub const USAGE: &str = "usage: bioxen [options] [script [args]]
       bioxen COMMAND [args]
Options:
  -e CODE       run CODE (may repeat)
  -l MOD        require MOD and set the global MOD
  -i            enter the REPL after running the script
  --watch       run the script again whenever it or a local module changes
  -j CMD        LuaJIT control: -jon, -joff, -jflush
  -O[OPT]       LuaJIT optimiser level or flags, as luajit -O
  -v, --version print the bioxen and LuaJIT versions
  --log FILTER  console log filter (e.g. debug, bioxen=trace)
  --debug       same as --log debug
  -h, --help    this help
  --            stop handling options
  -             run standard input
A script is any argument that names an existing file, contains '/', or ends in .lua;
anything else that names a command runs that command.";

/// Whether a positional argument must be treated as a script, never a command.
pub fn looks_like_script(arg: &str) -> bool {
    arg.contains('/') || arg.ends_with(".lua") || Path::new(arg).exists()
}

pub fn parse(argv: &[String]) -> Result<Command, String> {
    let mut cmd = Command {
        actions: Vec::new(),
        target: Target::None,
        args: Vec::new(),
        interactive: false,
        watch: false,
        version: false,
        help: false,
        log: None,
        interpreter_args: Vec::new(),
    };
    let mut i = 0;
    while i < argv.len() {
        let a = argv[i].as_str();
        i += 1;
        match a {
            "--" => break,
            "-" => {
                cmd.target = Target::Stdin;
                cmd.interpreter_args = argv[..i - 1].to_vec();
                cmd.args = argv[i..].to_vec();
                return Ok(cmd);
            }
            "-i" => cmd.interactive = true,
            "--watch" => cmd.watch = true,
            "-v" | "--version" => cmd.version = true,
            "-h" | "--help" => cmd.help = true,
            "--debug" => cmd.log = Some("debug".into()),
            "--log" => cmd.log = Some(value(argv, &mut i, a)?),
            _ if a.starts_with("-e") => cmd
                .actions
                .push(Action::Exec(attached(argv, &mut i, a, "-e")?)),
            _ if a.starts_with("-l") => cmd
                .actions
                .push(Action::Require(attached(argv, &mut i, a, "-l")?)),
            _ if a.starts_with("-j") => cmd
                .actions
                .push(Action::Jit(attached(argv, &mut i, a, "-j")?)),
            _ if a.starts_with("-O") => cmd.actions.push(Action::Optimize(a[2..].to_string())),
            _ if a.starts_with('-') => {
                return Err(format!("unrecognized option '{a}' (see bioxen --help)"));
            }
            _ => {
                i -= 1;
                break;
            }
        }
    }
    cmd.interpreter_args = argv[..i].to_vec();
    if let Some(first) = argv.get(i) {
        cmd.target = if !looks_like_script(first) && stdlib::has_subcommand(first) {
            Target::Subcommand(first.clone())
        } else {
            Target::Script(first.clone())
        };
        cmd.args = argv[i + 1..].to_vec();
    }
    Ok(cmd)
}

fn value(argv: &[String], i: &mut usize, opt: &str) -> Result<String, String> {
    let v = argv
        .get(*i)
        .cloned()
        .ok_or_else(|| format!("'{opt}' needs an argument"))?;
    *i += 1;
    Ok(v)
}

/// `-eCODE` or `-e CODE`.
fn attached(argv: &[String], i: &mut usize, a: &str, opt: &str) -> Result<String, String> {
    if a.len() > opt.len() {
        Ok(a[opt.len()..].to_string())
    } else {
        value(argv, i, opt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_run_in_order_and_stop_at_the_script() {
        let c = parse(&args(&["-e", "a=1", "-lfoo", "-joff", "x.lua", "-e", "b"])).unwrap();
        let expected = vec![
            Action::Exec("a=1".into()),
            Action::Require("foo".into()),
            Action::Jit("off".into()),
        ];
        assert_eq!(c.actions, expected);
        assert_eq!(c.target, Target::Script("x.lua".into()));
        assert_eq!(c.args, args(&["-e", "b"]));
        assert_eq!(c.interpreter_args.len(), 4);
    }

    #[test]
    fn double_dash_ends_options() {
        let c = parse(&args(&["--", "-e"])).unwrap();
        assert_eq!(c.target, Target::Script("-e".into()));
    }

    #[test]
    fn unknown_option_is_an_error() {
        assert!(parse(&args(&["-q"])).unwrap_err().contains("-q"));
    }

    #[test]
    fn paths_are_always_scripts() {
        assert!(looks_like_script("./pkg"));
        assert!(looks_like_script("pkg.lua"));
        assert!(!looks_like_script("no-such-name"));
    }
}
