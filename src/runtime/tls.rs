//! The one TLS crypto provider: ring. It detects CPU features on first use,
//! where aws-lc (reqwest's default) runs cpuid at every process start, which
//! traps to the hypervisor on virtual machines.
use rustls::crypto::CryptoProvider;
use std::sync::Arc;

/// Makes ring the process default, which reqwest's clients pick up. Call once
/// before building any client.
pub fn install() {
    let _ = CryptoProvider::install_default(rustls::crypto::ring::default_provider());
}

/// The provider for configurations bioxen builds itself (pinned certificates,
/// the simulator's server).
pub fn provider() -> Arc<CryptoProvider> {
    install();
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}
