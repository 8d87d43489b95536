//! Parallel downloads into the cache with sha256 and md5 of every file.
//! `http(s)://` through reqwest (the project's HTTP client), `file://` and plain
//! paths by copying. Each file is written to `dest.part`, then renamed.
use crate::runtime::error::error;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use md5::Md5;
use mlua::{Lua, Result as LuaResult, Table};
use sha2::{Digest, Sha256};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

struct Job {
    url: String,
    dest: PathBuf,
}

#[derive(Default)]
struct Done {
    size: u64,
    sha256: String,
    md5: String,
}

/// `fetch({{url=, dest=}, ...}, {jobs=8, progress=true})` -> list of
/// `{url, path, size, sha256, md5}` or `{url, error}` in the same order.
pub async fn fetch(lua: Lua, (list, opts): (Table, Option<Table>)) -> LuaResult<Table> {
    let mut jobs = Vec::new();
    for item in list.sequence_values::<Table>() {
        let item = item?;
        jobs.push(Job {
            url: item.get("url")?,
            dest: PathBuf::from(item.get::<String>("dest")?),
        });
    }
    let parallel = opts
        .as_ref()
        .and_then(|o| o.get::<Option<usize>>("jobs").ok().flatten())
        .unwrap_or(8)
        .max(1);
    let show = opts
        .as_ref()
        .and_then(|o| o.get::<Option<bool>>("progress").ok().flatten())
        .unwrap_or(true);
    let client = client()?;
    let terminal = show && std::io::stderr().is_terminal();
    let multi = terminal.then(MultiProgress::new);
    let limit = Arc::new(Semaphore::new(parallel));
    let mut set = tokio::task::JoinSet::new();
    for (i, job) in jobs.into_iter().enumerate() {
        let (client, limit) = (client.clone(), limit.clone());
        let bar = multi.as_ref().map(|m| m.add(new_bar(&job.url)));
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let r = one(&client, &job, bar.as_ref()).await;
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            if show
                && !terminal
                && let Ok(d) = &r
            {
                eprintln!("downloaded {} ({} bytes)", job.url, d.size);
            }
            (i, job, r)
        });
    }
    let mut results: Vec<Option<(Job, Result<Done, String>)>> = Vec::new();
    while let Some(joined) = set.join_next().await {
        let (i, job, r) = joined.map_err(|e| error("Download", e.to_string()))?;
        if results.len() <= i {
            results.resize_with(i + 1, || None);
        }
        results[i] = Some((job, r));
    }
    let out = lua.create_table()?;
    for (job, r) in results.into_iter().flatten() {
        let t = lua.create_table()?;
        t.set("url", job.url.as_str())?;
        match r {
            Ok(d) => {
                t.set("path", job.dest.display().to_string())?;
                t.set("size", d.size)?;
                t.set("sha256", d.sha256)?;
                t.set("md5", d.md5)?;
            }
            Err(e) => t.set("error", e)?,
        }
        out.push(t)?;
    }
    Ok(out)
}

/// One HTTP client per process: its connection pool and TLS set-up are reused.
fn client() -> LuaResult<reqwest::Client> {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c.clone());
    }
    let c = crate::runtime::tls::client_builder()
        .user_agent(concat!("bioxen/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| error("Download", format!("cannot start the HTTP client: {e}")))?;
    Ok(CLIENT.get_or_init(|| c).clone())
}

fn new_bar(url: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:30!} {bar:25} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
    bar
}

async fn one(
    client: &reqwest::Client,
    job: &Job,
    bar: Option<&ProgressBar>,
) -> Result<Done, String> {
    if let Some(parent) = job.dest.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let part = job.dest.with_extension("part");
    let mut file = tokio::fs::File::create(&part)
        .await
        .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
    let (mut sha, mut md5, mut size) = (Sha256::new(), Md5::new(), 0u64);
    let mut write = async |chunk: &[u8]| -> Result<(), String> {
        sha.update(chunk);
        md5.update(chunk);
        size += chunk.len() as u64;
        if let Some(b) = bar {
            b.inc(chunk.len() as u64);
        }
        file.write_all(chunk)
            .await
            .map_err(|e| format!("cannot write {}: {e}", part.display()))
    };
    if job.url.starts_with("http://") || job.url.starts_with("https://") {
        let mut resp = client
            .get(&job.url)
            .send()
            .await
            .map_err(|e| format!("cannot download {}: {e}", job.url))?;
        if !resp.status().is_success() {
            return Err(format!(
                "cannot download {}: HTTP {}",
                job.url,
                resp.status()
            ));
        }
        if let (Some(b), Some(len)) = (bar, resp.content_length()) {
            b.set_length(len);
        }
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("download of {} broke off: {e}", job.url))?
        {
            write(&chunk).await?;
        }
    } else {
        let path = job.url.strip_prefix("file://").unwrap_or(&job.url);
        let data = tokio::fs::read(path)
            .await
            .map_err(|e| format!("cannot read {path}: {e}"))?;
        write(&data).await?;
    }
    file.flush().await.map_err(|e| e.to_string())?;
    drop(file);
    tokio::fs::rename(&part, &job.dest)
        .await
        .map_err(|e| format!("cannot move {} into place: {e}", job.dest.display()))?;
    Ok(Done {
        size,
        sha256: hex(&sha.finalize()),
        md5: hex(&md5.finalize()),
    })
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
