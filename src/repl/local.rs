//! The evaluator for this process's own Lua state: a `bioxen.repl` session
//! run through the scheduler (so `bioxen.task` works at the prompt), stopped
//! by Ctrl-C through the state's interrupter.
use super::{Evaluator, Reply};
use crate::runtime::{interrupt::Interrupter, report, scheduler::Scheduler, stdlib};
use mlua::{Function, Lua, MultiValue, ObjectLike, Result as LuaResult, Table, Value};
use std::io::IsTerminal;
use std::sync::Arc;

pub struct LocalEvaluator<'a> {
    lua: Lua,
    scheduler: &'a Scheduler,
    session: Table,
    interrupter: Option<Arc<Interrupter>>,
}

impl<'a> LocalEvaluator<'a> {
    pub fn new(lua: &Lua, scheduler: &'a Scheduler) -> LuaResult<LocalEvaluator<'a>> {
        let mut libraries: Vec<String> = crate::library::LIBRARIES
            .iter()
            .map(|l| l.name.to_string())
            .collect();
        libraries.extend(stdlib::library_files().into_iter().map(String::from));
        // Completion of `bioxen.` offers every field, loaded or not.
        libraries.extend(crate::runtime::modules::HOTRELOAD_FIELDS.map(String::from));
        libraries.sort();
        libraries.dedup();
        let opts = lua.create_table()?;
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        opts.set("color", std::io::stdout().is_terminal() && !no_color)?;
        opts.set("libraries", libraries)?;
        let session: Table = lua
            .load("return require('bioxen.repl').session(...)")
            .set_name("=[bioxen repl]")
            .call(opts)?;
        let interrupter = lua.app_data_ref::<Arc<Interrupter>>().map(|i| i.clone());
        Ok(LocalEvaluator {
            lua: lua.clone(),
            scheduler,
            session,
            interrupter,
        })
    }

    /// Calls a session method through the scheduler; any interrupt is
    /// cleared afterwards so the next input starts clean.
    fn call(&self, method: &str, arg: &str) -> Reply {
        if let Some(i) = &self.interrupter {
            i.clear();
        }
        let _ = self.session.raw_set("last_error", Value::Nil);
        let result = self
            .session
            .get::<Function>(method)
            .and_then(|f| self.scheduler.call(&f, (self.session.clone(), arg)));
        if let Some(i) = &self.interrupter {
            i.clear();
        }
        // Lua's stdio buffers (print) before our own output.
        unsafe { libc::fflush(std::ptr::null_mut()) };
        match result {
            Ok(values) => reply_of(values),
            // The error the session's handler saw (with the input's traceback), else mlua's.
            Err(e) => match self.session.raw_get::<Option<String>>("last_error") {
                Ok(Some(text)) => Reply::Error(text),
                _ => Reply::Error(report::format_error(&e)),
            },
        }
    }
}

fn reply_of(values: MultiValue) -> Reply {
    let mut it = values.into_iter();
    let status = match it.next() {
        Some(Value::String(s)) => Some(s.to_string_lossy()),
        _ => None,
    };
    let text = match it.next() {
        Some(Value::String(s)) => s.to_string_lossy(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    };
    match status.as_deref() {
        Some("incomplete") => Reply::Incomplete,
        Some("ok") => Reply::Output(text),
        _ => Reply::Error(text),
    }
}

impl Evaluator for LocalEvaluator<'_> {
    fn eval(&mut self, source: &str) -> Reply {
        self.call("eval", source)
    }

    fn load_file(&mut self, path: &str) -> Reply {
        self.call("load", path)
    }

    fn reload(&mut self, module: &str) -> Reply {
        let f = self.lua.load(
            r#"local name = ...
            local ok, err = bioxen.reload(name)
            if ok then return "ok", "reloaded " .. name end
            return "error", tostring(err.message or err)"#,
        );
        let result = f
            .set_name("=[bioxen repl]")
            .into_function()
            .and_then(|f| self.scheduler.call(&f, module));
        match result {
            Ok(values) => reply_of(values),
            Err(e) => Reply::Error(report::format_error(&e)),
        }
    }

    fn reset(&mut self) -> Reply {
        match self.session.call_method::<()>("reset", ()) {
            Ok(()) => Reply::Output("the session's locals are cleared".into()),
            Err(e) => Reply::Error(report::format_error(&e)),
        }
    }

    fn complete(&mut self, line: &str) -> (usize, Vec<String>) {
        match self
            .session
            .call_method::<(usize, Vec<String>)>("complete", line)
        {
            Ok(r) => r,
            Err(_) => (line.len(), Vec::new()),
        }
    }
}
