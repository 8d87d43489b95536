//! The host side of every interactive session: the output not yet read and
//! two counters, inputs sent and inputs evaluated. `read` waits (on a tokio
//! `Notify` in Lua tasks, on a condvar in the session host's threads) until
//! every input sent before it was evaluated or its timeout passes, then takes
//! the whole buffer: output is never duplicated or dropped, and nothing sleeps
//! or polls.
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[derive(Default)]
pub struct FrontState {
    pub out: Vec<u8>,
    pub sent: u64,
    pub done: u64,
    pub incomplete: bool,
    /// Why the session stopped for good (its process died, it was closed).
    pub dead: Option<String>,
    /// Bumped when another client takes the session over: blocked reads of
    /// the previous holder return without taking any output.
    pub epoch: u64,
}

#[derive(Default)]
pub struct Front {
    pub st: Mutex<FrontState>,
    cv: Condvar,
    notify: Notify,
}

/// What a read returns: the text, whether input is still being evaluated,
/// whether an unfinished chunk waits for more lines.
pub struct Read {
    pub text: Vec<u8>,
    pub busy: bool,
    pub incomplete: bool,
}

impl Front {
    pub fn append(&self, b: &[u8]) {
        self.st.lock().unwrap().out.extend_from_slice(b);
    }

    /// Counts an input as sent; returns false if the session is dead.
    pub fn sent(&self) -> Result<(), String> {
        let mut st = self.st.lock().unwrap();
        if let Some(why) = &st.dead {
            return Err(why.clone());
        }
        st.sent += 1;
        Ok(())
    }

    /// One input evaluated.
    pub fn finished(&self, incomplete: bool) {
        let mut st = self.st.lock().unwrap();
        st.done += 1;
        st.incomplete = incomplete;
        drop(st);
        self.wake();
    }

    /// The session is gone: wakes every reader, who get what is there.
    pub fn kill(&self, why: String) {
        let mut st = self.st.lock().unwrap();
        if st.dead.is_none() {
            st.dead = Some(why);
        }
        st.done = st.sent;
        drop(st);
        self.wake();
    }

    fn wake(&self) {
        self.cv.notify_all();
        self.notify.notify_waiters();
    }

    fn take(st: &mut FrontState) -> Read {
        Read {
            text: std::mem::take(&mut st.out),
            busy: st.done < st.sent,
            incomplete: st.incomplete,
        }
    }

    /// Spins briefly (runtime::spin) until what was sent is evaluated.
    pub fn spin_until_evaluated(&self) {
        let target = self.st.lock().unwrap().sent;
        crate::runtime::spin::briefly(|| self.st.lock().unwrap().done >= target);
    }

    /// Waits in a Lua task (other tasks run meanwhile).
    pub async fn read(&self, timeout: Option<Duration>) -> Read {
        let target = self.st.lock().unwrap().sent;
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.st.lock().unwrap();
                if st.done >= target {
                    return Self::take(&mut st);
                }
            }
            match deadline {
                None => notified.await,
                Some(d) => {
                    if tokio::time::timeout_at(d, notified).await.is_err() {
                        return Self::take(&mut self.st.lock().unwrap());
                    }
                }
            }
        }
    }

    /// Ends the blocked reads of a previous holder (see `epoch`).
    pub fn new_holder(&self) {
        self.st.lock().unwrap().epoch += 1;
        self.wake();
    }

    pub fn epoch(&self) -> u64 {
        self.st.lock().unwrap().epoch
    }

    /// Waits on an OS thread (the session host's connection threads). `epoch`
    /// is the holder's, taken when its request was let through.
    pub fn read_blocking(&self, timeout: Option<Duration>, epoch: u64) -> Read {
        let mut st = self.st.lock().unwrap();
        let target = st.sent;
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if st.epoch != epoch {
                // Taken over while waiting: the output is the new holder's.
                return Read {
                    text: Vec::new(),
                    busy: st.done < st.sent,
                    incomplete: st.incomplete,
                };
            }
            if st.done >= target {
                break;
            }
            match deadline {
                None => st = self.cv.wait(st).unwrap(),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    st = self.cv.wait_timeout(st, left).unwrap().0;
                }
            }
        }
        Self::take(&mut st)
    }

    pub fn busy(&self) -> bool {
        let st = self.st.lock().unwrap();
        st.done < st.sent
    }
}
