//! States built ahead of time for the thread backend: `create` takes a ready
//! strict state from a small stash that a helper thread keeps full, so building
//! a state (about 140 us of CPU, a third of it LuaJIT's JIT start-up) is off
//! the caller's path. Other levels are built on the spot.
use super::sandbox::{Child, Level, Options};
use super::value::Val;
use mlua::Result as LuaResult;
use std::sync::{Condvar, Mutex, OnceLock};

/// How many ready strict states the stash holds.
pub const STASH: usize = 16;

struct Stash {
    ready: Mutex<Vec<Child>>,
    wanted: Condvar,
}

/// Options of a state built ahead of time; `Child::configure` sets the real ones.
pub fn template() -> Options {
    Options {
        id: "vm".into(),
        sandbox: Level::Strict,
        memory_limit: 0,
        timeout: 0.0,
        output_limit: 0,
        result_limit: 0,
        package_path: Vec::new(),
        globals: Val::Nil,
        lua_executable: None,
    }
}

fn stash() -> &'static Stash {
    static S: OnceLock<&'static Stash> = OnceLock::new();
    S.get_or_init(|| {
        let s: &'static Stash = Box::leak(Box::new(Stash {
            ready: Mutex::new(Vec::new()),
            wanted: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("bioxen-vm-builder".into())
            .spawn(move || {
                loop {
                    {
                        let mut ready = s.ready.lock().unwrap();
                        while ready.len() >= STASH {
                            ready = s.wanted.wait(ready).unwrap();
                        }
                    }
                    match Child::new(template(), None) {
                        Ok(c) => s.ready.lock().unwrap().push(c),
                        Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
                    }
                }
            })
            .expect("start the VM builder thread");
        s
    })
}

pub fn take(opts: Options) -> LuaResult<Child> {
    if opts.sandbox == Level::Strict {
        let s = stash();
        let ready = s.ready.lock().unwrap().pop();
        s.wanted.notify_one();
        if let Some(c) = ready {
            return c.configure(opts);
        }
    }
    Child::new(opts.clone(), None)?.configure(opts)
}
