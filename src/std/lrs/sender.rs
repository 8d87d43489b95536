//! The background sender: one thread with its own tokio runtime and reqwest
//! client, delivering the spool in batches (a JSON array per POST).
//!
//! Status handling: 200 and 204 acknowledge the batch; 429, 408, 5xx and
//! network errors back off (doubling, capped, honouring Retry-After) and retry;
//! 400, 409, 413 and 422 split the batch to isolate the statements at fault,
//! which are kept in `rejected.jsonl` and reported (never dropped silently);
//! 401, 403 and any other status stop delivery until reconfigured (the
//! statements stay in the spool).
use super::spool::{Entry, Spool};
use serde_json::{Value as Json, json};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub endpoint: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    pub actor: Option<Json>,
    pub verify_tls: bool,
    pub record: bool,
    pub batch_size: usize,
    pub max_backoff: f64,
    pub exit_timeout: f64,
    /// Seconds a POST may take before it is abandoned and retried.
    pub request_timeout: f64,
}

impl Settings {
    pub fn statements_url(&self) -> Option<String> {
        self.endpoint
            .as_ref()
            .map(|e| format!("{}/statements", e.trim_end_matches('/')))
    }

    pub fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let req = req.header("X-Experience-API-Version", "1.0.3");
        match (&self.token, &self.user) {
            (Some(t), _) => req.bearer_auth(t),
            (None, Some(u)) => req.basic_auth(u, self.password.as_ref()),
            _ => req,
        }
    }

    pub fn client(&self) -> reqwest::Result<reqwest::Client> {
        crate::runtime::tls::client_builder()
            .danger_accept_invalid_certs(!self.verify_tls)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs_f64(self.request_timeout.max(0.01)))
            .build()
    }
}

#[derive(Default)]
pub struct State {
    pub settings: Arc<Settings>,
    pub generation: u64,
    pub wake: bool,
    /// Why delivery stopped (401, 403, unexpected status); cleared by configure.
    pub stopped: Option<Json>,
    /// Set while waiting to retry after a failure.
    pub backing_off: bool,
    pub last_error: Option<Json>,
    pub sent: u64,
    pub rejected: u64,
    /// Rejections already reported by a flush.
    pub rejected_reported: u64,
    pub running: bool,
    /// The largest body to send (bytes): starts at [`MAX_BODY`], lowered when
    /// the LRS answers 413 so later batches fit at the first try.
    pub max_body: usize,
    /// The most statements per POST (0: `batch_size`): halved when a POST
    /// times out, so an LRS too slow for large batches gets smaller ones.
    pub max_batch: usize,
}

/// Bytes of JSON per POST at most, until the LRS says less (413).
pub const MAX_BODY: usize = 16 << 20;

#[derive(Default)]
pub struct Shared {
    pub state: Mutex<State>,
    pub cond: Condvar,
}

impl Shared {
    pub fn wake(&self) {
        self.state.lock().unwrap().wake = true;
        self.cond.notify_all();
    }
}

enum Fail {
    Retry(Json, Option<Duration>),
    Stop(Json),
}

enum Outcome {
    Ack,
    Split(u16, String),
    Fail(Fail),
}

/// Starts the sender thread once.
pub fn start(spool: Arc<Spool>, shared: Arc<Shared>) {
    {
        let mut st = shared.state.lock().unwrap();
        if st.running {
            return;
        }
        st.running = true;
    }
    std::thread::Builder::new()
        .name("bioxen-lrs-sender".into())
        .spawn(move || run(&spool, &shared))
        .expect("start the LRS sender thread");
}

fn run(spool: &Spool, shared: &Shared) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("LRS sender runtime");
    let mut client: Option<(u64, reqwest::Client)> = None;
    let mut backoff = 0.1f64;
    loop {
        let (settings, generation) = {
            let mut st = shared.state.lock().unwrap();
            st.wake = false;
            if st.stopped.is_some() || st.settings.endpoint.is_none() {
                let g = st.generation;
                let _ = shared
                    .cond
                    .wait_timeout_while(st, Duration::from_secs(1), |s| s.generation == g);
                continue;
            }
            (st.settings.clone(), st.generation)
        };
        if client.as_ref().is_none_or(|(g, _)| *g != generation) {
            match settings.client() {
                Ok(c) => client = Some((generation, c)),
                Err(e) => {
                    stop(
                        spool,
                        shared,
                        json!({"kind": "LrsConfig", "message": e.to_string()}),
                    );
                    continue;
                }
            }
        }
        let http = &client.as_ref().unwrap().1;
        let lock = match spool.lock() {
            Ok(l) => l,
            Err(e) => {
                stop(
                    spool,
                    shared,
                    json!({"kind": "Io", "message": format!("cannot lock the spool: {e}")}),
                );
                continue;
            }
        };
        let max_body = match shared.state.lock().unwrap().max_body {
            0 => MAX_BODY,
            n => n,
        };
        let max_batch = match shared.state.lock().unwrap().max_batch {
            0 => settings.batch_size,
            n => n.min(settings.batch_size),
        };
        let entries = spool.pending(max_batch.max(1), max_body);
        if shared.state.lock().unwrap().generation != generation {
            continue; // reconfigured meanwhile: send with the new settings
        }
        if entries.is_empty() {
            spool.collect_garbage();
            drop(lock);
            let mut st = shared.state.lock().unwrap();
            shared.cond.notify_all();
            if !st.wake {
                st = shared
                    .cond
                    .wait_timeout_while(st, Duration::from_secs(1), |s| !s.wake)
                    .unwrap()
                    .0;
            }
            drop(st);
            continue;
        }
        let result = rt.block_on(deliver(http, &settings, spool, shared, &entries));
        drop(lock);
        match result {
            Ok(()) => {
                backoff = 0.1;
                let mut st = shared.state.lock().unwrap();
                if st.backing_off {
                    // The outage is over; a rejection stays the last error.
                    st.backing_off = false;
                    if st.last_error.as_ref().is_some_and(|e| {
                        e["kind"] == "LrsUnreachable" || e["kind"] == "LrsUnavailable"
                    }) {
                        st.last_error = None;
                        spool.set_last_error(None);
                    }
                }
                shared.cond.notify_all();
            }
            Err(Fail::Stop(e)) => stop(spool, shared, e),
            Err(Fail::Retry(e, after)) => {
                if e["timeout"] == true && entries.len() > 1 {
                    // Timed out: the statements may be stored (a retry is idempotent);
                    // later POSTs carry half as many.
                    let half = entries.len() / 2;
                    shared.state.lock().unwrap().max_batch = half;
                    tracing::warn!(target: "bioxen::lrs", "a POST of {} statements timed out; sending at most {half} per POST", entries.len());
                }
                if backoff <= 0.1 {
                    tracing::warn!(target: "bioxen::lrs", "delivery failed, retrying with backoff: {}", e["message"]);
                } else {
                    tracing::debug!(target: "bioxen::lrs", "delivery failed again: {}", e["message"]);
                }
                spool.set_last_error(Some(&e));
                let wait = after
                    .unwrap_or(Duration::from_secs_f64(backoff * (0.75 + jitter() * 0.5)))
                    .min(Duration::from_secs_f64(
                        settings.max_backoff.max(0.05) * 4.0,
                    ));
                backoff = (backoff * 2.0).min(settings.max_backoff.max(0.05));
                let mut st = shared.state.lock().unwrap();
                st.backing_off = true;
                st.last_error = Some(e);
                shared.cond.notify_all();
                let _ = shared
                    .cond
                    .wait_timeout_while(st, wait, |s| s.generation == generation);
            }
        }
    }
}

fn jitter() -> f64 {
    (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 1000.0
}

fn stop(spool: &Spool, shared: &Shared, e: Json) {
    tracing::error!(target: "bioxen::lrs", "delivery stopped: {e}");
    spool.set_last_error(Some(&e));
    let mut st = shared.state.lock().unwrap();
    st.stopped = Some(e.clone());
    st.last_error = Some(e);
    shared.cond.notify_all();
}

/// Sends `entries` in order, splitting on statement-level refusals.
async fn deliver(
    http: &reqwest::Client,
    settings: &Settings,
    spool: &Spool,
    shared: &Shared,
    entries: &[Entry],
) -> Result<(), Fail> {
    let mut stack = vec![(0, entries.len())];
    while let Some((a, b)) = stack.pop() {
        let part = &entries[a..b];
        match post(http, settings, part).await {
            Outcome::Ack => {
                ack(spool, part);
                shared.state.lock().unwrap().sent += part.len() as u64;
            }
            Outcome::Split(status, _) if part.len() > 1 => {
                if status == 413 {
                    let bytes: usize = part.iter().map(|e| e.json.len() + 1).sum();
                    let mut st = shared.state.lock().unwrap();
                    if st.max_body == 0 || bytes / 2 < st.max_body {
                        st.max_body = (bytes / 2).max(1);
                    }
                }
                let m = a + part.len() / 2;
                stack.push((m, b));
                stack.push((a, m));
            }
            Outcome::Split(status, reason) => {
                let e = json!({
                    "kind": if status == 409 { "LrsConflict" } else { "LrsRejected" },
                    "status": status,
                    "message": format!("the LRS refused statement {} ({status}): {reason}", statement_id(&part[0].json)),
                    "statement": statement_id(&part[0].json),
                });
                tracing::error!(target: "bioxen::lrs", "{}", e["message"]);
                if let Err(io) = spool.reject(&part[0], status, &reason) {
                    return Err(Fail::Stop(
                        json!({"kind": "Io", "message": format!("cannot keep a rejected statement: {io}")}),
                    ));
                }
                spool.set_last_error(Some(&e));
                {
                    // Counted before the ack, so a flush that sees the ack sees the refusal.
                    let mut st = shared.state.lock().unwrap();
                    st.rejected += 1;
                    st.last_error = Some(e);
                }
                ack(spool, part);
            }
            Outcome::Fail(f) => return Err(f),
        }
    }
    Ok(())
}

fn statement_id(json: &str) -> String {
    serde_json::from_str::<Json>(json)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_string))
        .unwrap_or_else(|| "(without id)".into())
}

fn ack(spool: &Spool, part: &[Entry]) {
    let mut last: Option<&Entry> = None;
    for e in part {
        if let Some(l) = last
            && l.segment != e.segment
        {
            let _ = spool.ack(&l.segment, l.end);
        }
        last = Some(e);
    }
    if let Some(l) = last {
        let _ = spool.ack(&l.segment, l.end);
    }
}

async fn post(http: &reqwest::Client, settings: &Settings, part: &[Entry]) -> Outcome {
    let mut body = String::with_capacity(part.iter().map(|e| e.json.len() + 1).sum::<usize>() + 2);
    body.push('[');
    for (i, e) in part.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&e.json);
    }
    body.push(']');
    let url = settings.statements_url().unwrap_or_default();
    let req = settings
        .authorize(http.post(&url))
        .header("Content-Type", "application/json")
        .body(body);
    let started = Instant::now();
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            let mut err = json!({"kind": "LrsUnreachable", "message": format!("cannot reach {url}: {}", error_chain(&e))});
            if e.is_timeout() {
                err["timeout"] = json!(true);
            }
            return Outcome::Fail(Fail::Retry(err, None));
        }
    };
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|s| Duration::from_secs_f64(s.clamp(0.0, 30.0)));
    let text = resp.text().await.unwrap_or_default();
    tracing::debug!(target: "bioxen::lrs", "POST {} statements: {status} in {:.3} s", part.len(), started.elapsed().as_secs_f64());
    let reason = text.chars().take(500).collect::<String>();
    match status {
        200..=299 => Outcome::Ack,
        400 | 409 | 413 | 422 => Outcome::Split(status, reason),
        408 | 429 | 500..=599 => Outcome::Fail(Fail::Retry(
            json!({"kind": "LrsUnavailable", "status": status, "message": format!("the LRS answered {status}: {reason}")}),
            retry_after,
        )),
        401 | 403 => Outcome::Fail(Fail::Stop(json!({
            "kind": "LrsAuth", "status": status,
            "message": format!("the LRS refused the credentials ({status}): {reason}; fix lrs.auth (bioxen.lrs.configure or BIOXEN_LRS_USER/PASSWORD)"),
        }))),
        _ => Outcome::Fail(Fail::Stop(json!({
            "kind": "LrsProtocol", "status": status,
            "message": format!("unexpected answer {status} from {url}: {reason}; check lrs.endpoint"),
        }))),
    }
}

/// Waits until everything up to `ends` is acknowledged.
pub fn wait_covered(
    spool: &Spool,
    shared: &Shared,
    ends: &[(String, u64)],
    deadline: Option<Instant>,
    give_up_when_failing: bool,
) -> Result<(), Json> {
    shared.wake();
    loop {
        if spool.covered(ends) {
            return Ok(());
        }
        let st = shared.state.lock().unwrap();
        if let Some(e) = &st.stopped {
            return Err(e.clone());
        }
        if st.settings.endpoint.is_none() {
            return Err(
                json!({"kind": "NotConfigured", "message": "statements are waiting but no LRS is configured: set lrs.endpoint (bioxen.lrs.configure, the config file or BIOXEN_LRS_ENDPOINT)"}),
            );
        }
        if give_up_when_failing && st.backing_off {
            return Err(st.last_error.clone().unwrap_or(Json::Null));
        }
        let wait = match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    let mut e = json!({"kind": "Timeout", "message": "the LRS did not acknowledge every statement in time; they stay in the spool"});
                    if let Some(last) = &st.last_error {
                        e["last_error"] = last.clone();
                    }
                    return Err(e);
                }
                (d - now).min(Duration::from_millis(50))
            }
            None => Duration::from_millis(50),
        };
        drop(shared.cond.wait_timeout(st, wait).unwrap());
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}
