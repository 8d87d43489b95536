//! The simulator's HTTP/1.1 front: a small keep-alive server on tokio that
//! takes XML-RPC POSTs (what XAPI serves on `/`) and answers through `Pool`.
//! It runs on its own thread with its own runtime so it never waits on Lua.
use super::{Pool, PoolSpec};
use crate::library::xapi::wire;
use crate::runtime::spin::Adaptive;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A running simulator: its URL and how to stop it.
pub struct Running {
    pub url: String,
    pub ssh_key: Option<String>,
    pub stop: Option<oneshot::Sender<()>>,
    pub done: Option<oneshot::Receiver<()>>,
    /// Signalled once the guests are stopped and the thread is ending.
    pub finished: Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>,
}

/// Starts the simulator on a thread of its own and returns once it listens.
/// A TLS certificate and key (PEM files) to serve HTTPS as a real pool does.
pub fn tls_acceptor(cert: &str, key: &str) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read the certificate {cert}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad certificate {cert}: {e}"))?;
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("cannot read the key {key}: {e}"))?;
    let provider = crate::runtime::tls::provider();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not fit: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

pub fn start(
    listen: &str,
    user: String,
    password: String,
    spec: PoolSpec,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Result<Running, String> {
    let master: SocketAddr = listen
        .parse()
        .map_err(|_| format!("--listen wants ADDRESS:PORT like 127.0.0.1:8443, got {listen:?}"))?;
    let (ready_tx, ready_rx) =
        std::sync::mpsc::channel::<Result<(String, Option<String>), String>>();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let (finished_tx, finished_rx) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("xapi-sim".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("cannot start a runtime: {e}")));
                    return;
                }
            };
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                let listener = match TcpListener::bind(master).await {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("cannot listen on {master}: {e}")));
                        return;
                    }
                };
                let addr = listener.local_addr().expect("bound address");
                let mut slaves = Vec::new();
                for _ in 1..spec.hosts.len() {
                    match TcpListener::bind(SocketAddr::new(addr.ip(), 0)).await {
                        Ok(l) => slaves.push(l),
                        Err(e) => {
                            let _ =
                                ready_tx.send(Err(format!("cannot listen for a pool member: {e}")));
                            return;
                        }
                    }
                }
                let mut addresses = vec![addr.to_string()];
                addresses.extend(slaves.iter().map(|l| l.local_addr().unwrap().to_string()));
                let pool = match Pool::new(spec, user, password, addresses) {
                    Ok(p) => Arc::new(p),
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let scheme = if tls.is_some() { "https" } else { "http" };
                let _ = ready_tx.send(Ok((format!("{scheme}://{addr}/"), pool.ssh_key())));
                for l in std::iter::once(listener).chain(slaves) {
                    let own = l.local_addr().expect("bound address").to_string();
                    tokio::task::spawn_local(serve(l, pool.clone(), own, tls.clone()));
                }
                let _ = stop_rx.await;
                pool.shutdown();
            });
            let _ = done_tx.send(());
            let _ = finished_tx.send(());
        })
        .map_err(|e| format!("cannot start the simulator thread: {e}"))?;
    let (url, ssh_key) = ready_rx
        .recv()
        .map_err(|_| "the simulator thread ended while starting".to_string())??;
    Ok(Running {
        url,
        ssh_key,
        stop: Some(stop_tx),
        done: Some(done_rx),
        finished: Arc::new(std::sync::Mutex::new(finished_rx)),
    })
}

async fn serve(
    listener: TcpListener,
    pool: Arc<Pool>,
    own: String,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (pool, own) = (pool.clone(), own.clone());
        match tls.clone() {
            None => {
                tokio::task::spawn_local(connection(stream, pool, own));
            }
            Some(acceptor) => {
                tokio::task::spawn_local(async move {
                    if let Ok(s) = acceptor.accept(stream).await {
                        connection(s, pool, own).await;
                    }
                });
            }
        }
    }
}

/// One keep-alive connection: request after request until the peer closes.
async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    pool: Arc<Pool>,
    own: String,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    // A client on this machine sends its next call within the spin.
    let spin = Adaptive::default();
    loop {
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 64 * 1024 || !spin.wait(read_more(&mut stream, &mut buf)).await {
                return;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or("");
        let mut length = 0usize;
        let mut close = request_line.ends_with("HTTP/1.0");
        for line in lines {
            if let Some((k, v)) = line.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                if k == "content-length" {
                    length = v.parse().unwrap_or(0);
                } else if k == "connection" {
                    close = v.eq_ignore_ascii_case("close");
                }
            }
        }
        while buf.len() < head_end + length {
            if !read_more(&mut stream, &mut buf).await {
                return;
            }
        }
        let body: Vec<u8> = buf[head_end..head_end + length].to_vec();
        buf.drain(..head_end + length);
        let (status, reply) = if !request_line.starts_with("POST ") {
            ("405 Method Not Allowed", b"XML-RPC wants POST\n".to_vec())
        } else {
            let value = match wire::parse_call(&body) {
                Ok(call) => pool.dispatch(call, &own).await,
                Err(e) => super::failure("XMLRPC_UNMARSHAL_FAILURE", &[&e]),
            };
            ("200 OK", wire::write_response(&value))
        };
        let mut out = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n{}\r\n",
            reply.len(),
            if close { "Connection: close\r\n" } else { "" }
        )
        .into_bytes();
        out.extend_from_slice(&reply);
        if stream.write_all(&out).await.is_err() || close {
            return;
        }
    }
}

async fn read_more<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16384];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
