//! Waiting without sleeping, briefly. On virtual machines a CPU that goes idle
//! while a thread blocks takes 50-100 us to wake through the hypervisor, far
//! longer than the other side of a VM exec or session round trip usually takes
//! to answer. Waiters spin this long before they block.
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
