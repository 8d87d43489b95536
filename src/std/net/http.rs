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
    let mut b =
        reqwest::Client::builder().user_agent(concat!("bioxen/", env!("CARGO_PKG_VERSION")));
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
    b.build().map_err(|e| {
        BioxenError::new("Networking", format!("cannot start the HTTP client: {e}")).into_lua_err()
    })
}

fn http_err(url: &str, e: reqwest::Error) -> mlua::Error {
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
