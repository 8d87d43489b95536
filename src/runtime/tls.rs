//! The one TLS crypto provider: ring. It detects CPU features on first use,
//! where aws-lc (reqwest's default) runs cpuid at every process start, which
//! traps to the hypervisor on virtual machines.
use rustls::crypto::CryptoProvider;
use std::sync::Arc;

/// Makes ring the process default, which reqwest's clients pick up. Done on
/// first use, so runs that never make a TLS connection do not pay for it.
fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = CryptoProvider::install_default(rustls::crypto::ring::default_provider());
    });
}

/// reqwest's client builder, with the provider installed first: every HTTP
/// client bioxen makes starts here.
pub fn client_builder() -> reqwest::ClientBuilder {
    install();
    reqwest::Client::builder()
}

/// The provider for configurations bioxen builds itself (pinned certificates,
/// the simulator's server).
pub fn provider() -> Arc<CryptoProvider> {
    install();
    CryptoProvider::get_default()
        .cloned()
        .expect("ring was just installed as the default provider")
}
