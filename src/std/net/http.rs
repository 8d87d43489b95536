//! The HTTP client on reqwest (async): method, url, headers, body, timeout in;
//! status, headers, body out. JSON shaping is in the Lua half (stdlib/bioxen/net.lua).
use super::address::{Policy, check, validate_host};
use crate::runtime::error::BioxenError;
use mlua::{Lua, Result as LuaResult, Table};
use std::time::Duration;

/// Name resolution for process VMs, which may not start the thread reqwest's
/// default resolver uses: a blocking lookup on the VM's own thread.
struct InlineResolver;

impl reqwest::dns::Resolve for InlineResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        use std::net::ToSocketAddrs;
        let r = (name.as_str(), 0)
            .to_socket_addrs()
            .map(|a| Box::new(a.collect::<Vec<_>>().into_iter()) as reqwest::dns::Addrs)
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>);
        Box::pin(std::future::ready(r))
    }
}

pub fn client(policy: &Policy) -> LuaResult<reqwest::Client> {
    build(builder(policy))
}

fn build(b: reqwest::ClientBuilder) -> LuaResult<reqwest::Client> {
    b.build().map_err(|e| {
        BioxenError::new("Networking", format!("cannot start the HTTP client: {e}")).into_lua_err()
    })
}

fn builder(policy: &Policy) -> reqwest::ClientBuilder {
    let mut b = crate::runtime::tls::client_builder()
        .user_agent(concat!("bioxen/", env!("CARGO_PKG_VERSION")));
    if super::child::single_threaded() {
        b = b.dns_resolver(std::sync::Arc::new(InlineResolver));
    }
    if let Some(grants) = policy.clone() {
        // A sandboxed VM may only follow redirects to granted places.
        b = b.redirect(reqwest::redirect::Policy::custom(move |attempt| {
            let url = attempt.url();
            let ok = url.host_str().is_some_and(|h| {
                validate_host(h).is_ok_and(|h| {
                    grants
                        .check(&h, url.port_or_known_default().unwrap_or(0), "redirect to")
                        .is_ok()
                })
            });
            if ok && attempt.previous().len() < 10 {
                attempt.follow()
            } else {
                attempt.stop()
            }
        }));
    }
    b
}

/// The TLS problem behind a failed request, if that is what it was: rustls's
/// error somewhere in the cause chain (io errors hide theirs in `get_ref`).
fn tls_cause(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return Some(t.to_string());
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|i| tls_cause(i))
        {
            return Some(inner);
        }
        next = err.source();
    }
    None
}

fn http_err(url: &str, e: reqwest::Error) -> mlua::Error {
    if let Some(tls) = tls_cause(&e) {
        let hint = if tls.contains("not valid for name") {
            "Use the host name the certificate was issued for"
        } else {
            "To trust a private or self-signed certificate, pass ca = \"path/to/cert.pem\" \
             (or verify_tls = false, for testing only)"
        };
        return BioxenError::new(
            "Networking",
            format!(
                "HTTPS request to {url} failed: the server's TLS certificate was not accepted ({tls}). {hint}"
            ),
        )
        .with("url", url)
        .with("tls", tls)
        .into_lua_err();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    BioxenError::new(
        "Networking",
        format!("HTTP request to {url} failed: {text}"),
    )
    .with("url", url)
    .into_lua_err()
}

/// The request's own client when it asks for other TLS trust than the
/// default: `ca` (a PEM file, or PEM text; a sandboxed VM may only give text)
/// added to the trusted roots, or `verify_tls = false` (logged as a warning).
fn tls_client(policy: &Policy, req: &Table, url: &str) -> LuaResult<Option<reqwest::Client>> {
    let ca: Option<String> = req.get("ca")?;
    let verify = match req.get::<mlua::Value>("verify_tls")? {
        mlua::Value::Nil => true,
        mlua::Value::Boolean(b) => b,
        other => {
            return Err(BioxenError::new(
                "Argument",
                format!(
                    "verify_tls must be true or false, got a {}",
                    other.type_name()
                ),
            )
            .into_lua_err());
        }
    };
    if ca.is_none() && verify {
        return Ok(None);
    }
    let mut b = builder(policy);
    if let Some(ca) = ca {
        let pem = if ca.trim_start().starts_with("-----BEGIN") {
            ca.into_bytes()
        } else if policy.is_some() {
            return Err(BioxenError::new(
                "Sandbox",
                format!(
                    "ca = {ca:?}: a sandboxed VM cannot read files; pass the certificate's PEM text instead"
                ),
            )
            .into_lua_err());
        } else {
            std::fs::read(&ca).map_err(|e| {
                BioxenError::new("Argument", format!("cannot read the ca file {ca:?}: {e}"))
                    .with("path", ca.clone())
                    .into_lua_err()
            })?
        };
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                BioxenError::new(
                    "Argument",
                    "ca holds no PEM certificate (expected -----BEGIN CERTIFICATE----- blocks)",
                )
                .into_lua_err()
            })?;
        b = b.tls_certs_merge(certs);
    }
    if !verify {
        tracing::warn!(
            "TLS certificate verification is OFF for {url} (verify_tls = false): \
             anyone on the path can read and change this request"
        );
        b = b.danger_accept_invalid_certs(true);
    }
    build(b).map(Some)
}

pub async fn request(
    lua: Lua,
    client: reqwest::Client,
    policy: Policy,
    req: Table,
) -> LuaResult<Table> {
    let url: String = req
        .get::<Option<String>>("url")?
        .ok_or_else(|| BioxenError::new("Argument", "http.request needs a url").into_lua_err())?;
    let parsed = reqwest::Url::parse(&url).map_err(|e| {
        BioxenError::new("Networking", format!("bad URL {url:?}: {e}"))
            .with("url", url.clone())
            .into_lua_err()
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(BioxenError::new(
            "Networking",
            format!("URL {url:?}: only http and https are supported"),
        )
        .into_lua_err());
    }
    let host = validate_host(parsed.host_str().unwrap_or(""))?;
    check(
        &policy,
        &host,
        parsed.port_or_known_default().unwrap_or(0),
        "HTTP request to",
    )?;
    let method: String = req
        .get::<Option<String>>("method")?
        .unwrap_or_else(|| "GET".into());
    let method =
        reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).map_err(|_| {
            BioxenError::new("Argument", format!("bad HTTP method {method:?}")).into_lua_err()
        })?;
    let client = tls_client(&policy, &req, &url)?.unwrap_or(client);
    let mut rb = client.request(method, parsed);
    if let Some(headers) = req.get::<Option<Table>>("headers")? {
        for pair in headers.pairs::<String, String>() {
            let (k, v) = pair?;
            rb = rb.header(k, v);
        }
    }
    if let Some(body) = req.get::<Option<mlua::LuaString>>("body")? {
        rb = rb.body(body.as_bytes().to_vec());
    }
    let timeout = req.get::<Option<f64>>("timeout")?.unwrap_or(30.0);
    if !(timeout.is_finite() && timeout > 0.0) {
        return Err(BioxenError::new(
            "Argument",
            format!("timeout must be > 0 seconds, got {timeout}"),
        )
        .into_lua_err());
    }
    rb = rb.timeout(Duration::from_secs_f64(timeout));
    let resp = rb.send().await.map_err(|e| {
        if e.is_timeout() {
            BioxenError::new(
                "Timeout",
                format!("HTTP request to {url} timed out after {timeout}s"),
            )
            .with("url", url.clone())
            .into_lua_err()
        } else {
            http_err(&url, e)
        }
    })?;
    let status = resp.status().as_u16();
    let final_url = resp.url().to_string();
    let headers = lua.create_table()?;
    for (k, v) in resp.headers() {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        let key = k.as_str();
        match headers.get::<Option<String>>(key)? {
            Some(prev) => headers.set(key, format!("{prev}, {v}"))?,
            None => headers.set(key, v)?,
        }
    }
    let body = resp.bytes().await.map_err(|e| {
        if e.is_timeout() {
            BioxenError::new("Timeout", format!("reading the body from {url} timed out"))
                .into_lua_err()
        } else {
            http_err(&url, e)
        }
    })?;
    let out = lua.create_table()?;
    out.set("status", status)?;
    out.set("headers", headers)?;
    out.set("body", lua.create_string(&body)?)?;
    out.set("url", final_url)?;
    Ok(out)
}
