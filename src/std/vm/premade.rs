//! States built ahead of time for the thread backend: `create` takes a ready
//! strict state from a small stash that a helper thread keeps full, so building
//! a state is off the caller's path. Other levels are built on the spot. The
//! same thread also closes the states of closed VMs (`retire`): memory freed
//! on the thread that allocates it is reused at once by the next state (glibc
//! malloc), which a separate closing thread made measurably slower.
use super::sandbox::{Child, Level, Options};
use super::value::Val;
use mlua::Result as LuaResult;
use std::sync::{Condvar, Mutex, OnceLock};

/// How many ready strict states the stash holds.
pub const STASH: usize = 16;

#[derive(Default)]
struct Shelves {
    ready: Vec<Child>,
    retired: Vec<Child>,
}

struct Stash {
    shelves: Mutex<Shelves>,
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
            shelves: Mutex::new(Shelves::default()),
            wanted: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("bioxen-vm-builder".into())
            .spawn(move || {
                loop {
                    let retired = {
                        let mut sh = s.shelves.lock().unwrap();
                        while sh.ready.len() >= STASH && sh.retired.is_empty() {
                            sh = s.wanted.wait(sh).unwrap();
                        }
                        std::mem::take(&mut sh.retired)
                    };
                    // Close first: the next state reuses the memory.
                    drop(retired);
                    if s.shelves.lock().unwrap().ready.len() >= STASH {
                        continue;
                    }
                    match Child::new(template(), None) {
                        Ok(c) => s.shelves.lock().unwrap().ready.push(c),
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
        let ready = s.shelves.lock().unwrap().ready.pop();
        s.wanted.notify_one();
        if let Some(c) = ready {
            return c.configure(opts);
        }
    }
    Child::new(opts.clone(), None)?.configure(opts)
}

/// Closes a state on the builder thread, off the caller's path.
pub fn retire(child: Child) {
    let s = stash();
    s.shelves.lock().unwrap().retired.push(child);
    s.wanted.notify_one();
}
