//! OpenSSL (linked for libssh2) probes the CPU from a constructor at every
//! start: about seven `cpuid` instructions, each a 6-10 us trap to the
//! hypervisor on a virtual machine, a few percent of `bioxen -e ''`. build.rs
//! links with `--wrap=OPENSSL_cpuid_setup`, so that constructor (and OpenSSL's
//! own later call) reach the no-op below, and the probe runs once, here, before
//! the first SSH session: only scripts that use `bioxen.ssh` pay for it.
use std::sync::Once;

unsafe extern "C" {
    fn __real_OPENSSL_cpuid_setup();
}

#[unsafe(no_mangle)]
extern "C" fn __wrap_OPENSSL_cpuid_setup() {}

/// Runs OpenSSL's CPU probe, once, so it picks its AES-NI, SHA and AVX paths.
pub fn probe() {
    static PROBE: Once = Once::new();
    // SAFETY: OpenSSL's probe only reads the CPU and fills its capability words.
    PROBE.call_once(|| unsafe { __real_OPENSSL_cpuid_setup() });
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    unsafe extern "C" {
        static OPENSSL_ia32cap_P: [u32; 4];
    }

    fn caps() -> [u32; 4] {
        // SAFETY: written only by the probe, which runs on this thread.
        unsafe { std::ptr::addr_of!(OPENSSL_ia32cap_P).read() }
    }

    /// The only test in this binary that touches OpenSSL.
    #[test]
    fn start_up_skips_the_probe_and_probe_runs_it() {
        assert_eq!(caps()[0], 0, "OpenSSL probed the CPU at start-up");
        super::probe();
        assert_ne!(caps()[0], 0, "OpenSSL sees no CPU features");
    }
}
