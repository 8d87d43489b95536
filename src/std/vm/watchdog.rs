//! One watchdog thread for every running exec of the thread backend: it fires
//! `Interrupter::interrupt(Timeout)` at an exec's deadline, and finds running
//! execs by id so a job can be cancelled. The hook `interrupt` sets is global to
//! the state and re-raises at every instruction until cleared, so `pcall` loops,
//! coroutines and JIT-compiled loops cannot swallow it.
use crate::runtime::interrupt::{Interrupter, Reason};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

struct Entry {
    deadline: Option<Instant>,
    interrupter: Arc<Interrupter>,
}

#[derive(Default)]
struct State {
    running: HashMap<u64, Entry>,
    /// When the watchdog thread will next look; None while it sleeps for good.
    next_wake: Option<Instant>,
}

struct Dog {
    state: Mutex<State>,
    wake: Condvar,
}

fn dog() -> &'static Dog {
    static DOG: OnceLock<&'static Dog> = OnceLock::new();
    DOG.get_or_init(|| {
        let d: &'static Dog = Box::leak(Box::new(Dog {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("bioxen-vm-watchdog".into())
            .spawn(move || watch(d))
            .expect("start the VM watchdog thread");
        d
    })
}

fn watch(d: &'static Dog) {
    let mut st = d.state.lock().unwrap();
    loop {
        let now = Instant::now();
        let mut earliest: Option<Instant> = None;
        for e in st.running.values_mut() {
            match e.deadline {
                Some(t) if t <= now => {
                    e.interrupter.interrupt(Reason::Timeout);
                    e.deadline = None;
                }
                Some(t) => earliest = Some(earliest.map_or(t, |x| x.min(t))),
                None => {}
            }
        }
        st.next_wake = earliest;
        st = match earliest {
            Some(t) => {
                d.wake
                    .wait_timeout(st, t.saturating_duration_since(Instant::now()))
                    .unwrap()
                    .0
            }
            None => d.wake.wait(st).unwrap(),
        };
    }
}

/// Disarms on drop; after the drop no interrupt for this exec can arrive.
pub struct Guard {
    id: u64,
}

impl Drop for Guard {
    fn drop(&mut self) {
        dog().state.lock().unwrap().running.remove(&self.id);
    }
}

/// Registers a running exec; `timeout` None means no deadline (still cancellable).
pub fn arm(id: u64, interrupter: &Arc<Interrupter>, timeout: Option<Duration>) -> Guard {
    let d = dog();
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut st = d.state.lock().unwrap();
    st.running.insert(
        id,
        Entry {
            deadline,
            interrupter: interrupter.clone(),
        },
    );
    if let Some(t) = deadline
        && st.next_wake.is_none_or(|w| t < w)
    {
        st.next_wake = Some(t);
        d.wake.notify_one();
    }
    Guard { id }
}

/// Interrupts exec `id` if it is running now; false when it is not.
pub fn interrupt(id: u64, reason: Reason) -> bool {
    let st = dog().state.lock().unwrap();
    match st.running.get(&id) {
        Some(e) => {
            e.interrupter.interrupt(reason);
            true
        }
        None => false,
    }
}

/// Fresh ids for execs and jobs.
pub fn next_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

pub fn secs(d: f64) -> Option<Duration> {
    (d.is_finite() && d > 0.0).then(|| Duration::from_secs_f64(d))
}
