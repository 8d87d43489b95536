//! The registry of `bioxen.*` libraries. The global `bioxen` table,
//! `require("bioxen.NAME")`, REPL completion and the docs check all read this list.
//! A library is its Rust half (`src/std/NAME/`, entry point `module`), its Lua half
//! (`stdlib/bioxen/NAME.lua`, which receives the native table as `...`), or both.
use mlua::{Lua, Result as LuaResult, Table};

pub mod channel;
pub mod doctor;
pub mod env;
pub mod hotreload;
pub mod json;
pub mod log;
pub mod lrs;
pub mod net;
pub mod pkg;
pub mod session;
pub mod ssh;
pub mod task;
pub mod vm;
pub mod xapi;

pub type NativeModule = fn(&Lua) -> LuaResult<Table>;

pub struct Library {
    pub name: &'static str,
    pub native: Option<NativeModule>,
    pub summary: &'static str,
}

pub const LIBRARIES: &[Library] = &[
    Library {
        name: "channel",
        native: Some(channel::module),
        summary: "bounded channels that copy values between tasks and VMs",
    },
    Library {
        name: "cluster",
        native: None,
        summary: "a pool of child VMs mapping a function over inputs",
    },
    Library {
        name: "doctor",
        native: Some(doctor::module),
        summary: "health checks of every library, for bioxen doctor",
    },
    Library {
        name: "env",
        native: Some(env::module),
        summary: "system facts, folders, interpreters, configuration",
    },
    Library {
        name: "hotreload",
        native: Some(hotreload::module),
        summary: "reload required modules in place, watch their files",
    },
    Library {
        name: "json",
        native: Some(json::module),
        summary: "JSON encode and decode",
    },
    Library {
        name: "log",
        native: Some(log::module),
        summary: "structured logging on tracing",
    },
    Library {
        name: "lrs",
        native: Some(lrs::module),
        summary: "xAPI learning records: statements, durable spool, LRS client",
    },
    Library {
        name: "net",
        native: Some(net::module),
        summary: "host/port validation, TCP, UDP and an HTTP client",
    },
    Library {
        name: "pkg",
        native: Some(pkg::module),
        summary: "LuaRocks-compatible package environments, lockfile, rollback",
    },
    Library {
        name: "pretty",
        native: None,
        summary: "readable text for any value (the REPL's printer)",
    },
    Library {
        name: "repl",
        native: None,
        summary: "the REPL's evaluator: sessions, local rewriting, completion",
    },
    Library {
        name: "session",
        native: Some(session::module),
        summary: "interactive sessions, the VM manager, persistent sessions",
    },
    Library {
        name: "ssh",
        native: Some(ssh::module),
        summary: "SSH connections: exec, streaming, SFTP, known_hosts (ssh2, off the Lua thread)",
    },
    Library {
        name: "task",
        native: Some(task::module),
        summary: "coroutine scheduler on tokio",
    },
    Library {
        name: "vm",
        native: Some(vm::module),
        summary: "sandboxed child VMs (thread and process backends)",
    },
    Library {
        name: "xapi",
        native: Some(xapi::module),
        summary: "XCP-ng/XenServer XAPI sessions, calls, tasks, events; pool simulator",
    },
    Library {
        name: "xcpng",
        native: None,
        summary: "guests on an XCP-ng pool: deploy, shutdown, destroy (on xapi + ssh)",
    },
];

pub fn find(name: &str) -> Option<&'static Library> {
    LIBRARIES.iter().find(|l| l.name == name)
}
