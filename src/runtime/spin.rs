//! Waiting without sleeping, briefly. On virtual machines a CPU that goes idle
//! while a thread blocks takes 50-100 us to wake through the hypervisor, far
//! longer than the other side of a VM exec or session round trip usually takes
//! to answer. Waiters spin this long before they block.
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::task::Poll;
use std::time::{Duration, Instant};

pub const SPIN: Duration = Duration::from_micros(60);

/// Polls `ready` until it holds (true) or `SPIN` has passed (false).
pub fn briefly(mut ready: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + SPIN;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::hint::spin_loop();
    }
}

/// Spinning for one kind of async wait, kept only while it pays: after
/// `GIVE_UP` waits in a row outlast the spin, only every `PROBE`th wait spins,
/// so a slow peer (a real pool answers in milliseconds) costs no CPU.
#[derive(Default)]
pub struct Adaptive {
    misses: AtomicU32,
    waits: AtomicU32,
}

const GIVE_UP: u32 = 3;
const PROBE: u32 = 32;

impl Adaptive {
    /// Awaits `fut`, first polling it through the runtime's non-blocking I/O
    /// poll for up to `SPIN` when recent waits were that short.
    pub async fn wait<F: Future>(&self, fut: F) -> F::Output {
        let mut fut = pin!(fut);
        let n = self.waits.fetch_add(1, Relaxed);
        if self.misses.load(Relaxed) >= GIVE_UP && !n.is_multiple_of(PROBE) {
            return fut.await;
        }
        let until = Instant::now() + SPIN;
        loop {
            if let Poll::Ready(v) = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
                self.misses.store(0, Relaxed);
                return v;
            }
            if Instant::now() >= until {
                self.misses.fetch_add(1, Relaxed);
                return fut.await;
            }
            // Deferred until tokio has polled for I/O without blocking.
            tokio::task::yield_now().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// Polls `fut`, counting the polls into `polls`.
    async fn counted<F: Future>(fut: F, polls: &Cell<u32>) -> F::Output {
        let mut fut = pin!(fut);
        poll_fn(|cx| {
            polls.set(polls.get() + 1);
            fut.as_mut().poll(cx)
        })
        .await
    }

    /// Ready once `d` has passed; finer than tokio's millisecond timer.
    async fn after(d: Duration) {
        let until = Instant::now() + d;
        poll_fn(|cx| {
            if Instant::now() >= until {
                return Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await
    }

    async fn polls_of<F: Future>(spin: &Adaptive, fut: F) -> u32 {
        let polls = Cell::new(0);
        spin.wait(counted(fut, &polls)).await;
        polls.get()
    }

    fn slow() -> tokio::time::Sleep {
        tokio::time::sleep(Duration::from_millis(2))
    }

    #[tokio::test]
    async fn spins_while_it_pays_then_only_probes() {
        let spin = Adaptive::default();
        polls_of(&spin, after(Duration::from_micros(20))).await;
        assert_eq!(spin.misses.load(Relaxed), 0, "ready within the spin");
        for _ in 0..GIVE_UP {
            assert!(polls_of(&spin, slow()).await > 2, "spun before waiting");
        }
        assert_eq!(spin.misses.load(Relaxed), GIVE_UP);
        assert_eq!(polls_of(&spin, slow()).await, 2, "given up: no spin");
        while !spin.waits.load(Relaxed).is_multiple_of(PROBE) {
            polls_of(&spin, slow()).await;
        }
        polls_of(&spin, after(Duration::from_micros(20))).await;
        assert_eq!(
            spin.misses.load(Relaxed),
            0,
            "a probe that pays resumes spinning"
        );
    }
}
