//! A simulated guest's network side: a loopback address of its own and a real
//! Debian `sshd` listening there, with a host key generated for the guest.
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Guest {
    pub address: String,
    pub sshd: Option<Child>,
}

impl Guest {
    pub fn new(address: String) -> Guest {
        Guest {
            address,
            sshd: None,
        }
    }

    /// Stops sshd and every session it started (the guest is gone).
    pub fn stop(self) {
        if let Some(mut child) = self.sshd {
            kill_tree(child.id());
            let _ = child.wait();
        }
    }
}

/// Kills a process and all its descendants (sshd's per-connection children
/// and the commands they run), found through /proc.
pub fn kill_tree(pid: u32) {
    let mut victims = vec![pid];
    let mut i = 0;
    let all: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let p: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let after = stat.rsplit_once(')')?.1;
            let ppid: u32 = after.split_whitespace().nth(1)?.parse().ok()?;
            Some((p, ppid))
        })
        .collect();
    while i < victims.len() {
        let parent = victims[i];
        victims.extend(all.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    for p in victims {
        unsafe {
            libc::kill(p as i32, libc::SIGKILL);
        }
    }
}

/// A loopback address (127.a.b.c) nobody listens on at `port`.
pub fn free_address(next: &mut dyn FnMut() -> u64, taken: &[String], port: u16) -> String {
    for _ in 0..200 {
        let r = next().to_be_bytes();
        let (a, b, c) = (r[0].max(1), r[1], r[2].clamp(2, 254));
        let addr = format!("127.{a}.{b}.{c}");
        if taken.contains(&addr) {
            continue;
        }
        if std::net::TcpListener::bind((addr.as_str(), port)).is_ok() {
            return addr;
        }
    }
    "127.0.0.2".into()
}

fn keygen(path: &Path) -> Result<(), String> {
    let out = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "bioxen-xapi-sim",
            "-f",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ssh-keygen (install openssh-client): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// The key guests authorise: the pool file's (a .pub path or the key text),
/// or one generated for this simulator. Returns (private key path when
/// generated, public key text).
pub fn client_key(
    dir: &Path,
    configured: Option<&str>,
) -> Result<(Option<String>, Option<String>), String> {
    match configured {
        Some(k) if k.starts_with("ssh-") || k.starts_with("ecdsa-") => {
            Ok((None, Some(k.trim().to_string())))
        }
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("authorized_key: cannot read {path}: {e}"))?;
            Ok((None, Some(text.trim().to_string())))
        }
        None => {
            let key = dir.join("client_key");
            keygen(&key)?;
            let public = std::fs::read_to_string(dir.join("client_key.pub"))
                .map_err(|e| format!("cannot read the generated key: {e}"))?;
            Ok((
                Some(key.to_string_lossy().into_owned()),
                Some(public.trim().to_string()),
            ))
        }
    }
}

/// Starts sshd for a guest on `address:port` and waits until it accepts.
pub async fn start_sshd(
    dir: &Path,
    address: &str,
    port: u16,
    authorized: &str,
) -> Result<Child, String> {
    let dir = dir.to_path_buf();
    let host_key = dir.join("ssh_host_ed25519_key");
    {
        let (dir, host_key, authorized) = (dir.clone(), host_key.clone(), authorized.to_string());
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            std::fs::write(dir.join("authorized_keys"), format!("{authorized}\n"))
                .map_err(|e| e.to_string())?;
            keygen(&host_key)
        })
        .await
        .map_err(|e| e.to_string())??;
    }
    let config = format!(
        "ListenAddress {address}:{port}\nHostKey {}\nAuthorizedKeysFile {}\nPidFile none\n\
         StrictModes no\nUsePAM no\nPermitRootLogin yes\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nSubsystem sftp internal-sftp\nLogLevel ERROR\n\
         MaxSessions 200\nMaxStartups 200\nAcceptEnv *\n",
        host_key.display(),
        dir.join("authorized_keys").display()
    );
    let config_path = dir.join("sshd_config");
    std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
    let _ = std::fs::create_dir_all("/run/sshd");
    let mut cmd = Command::new("/usr/sbin/sshd");
    cmd.arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(dir.join("sshd.log"))
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        );
    // The guest dies with the simulator: sshd gets SIGTERM when this
    // (long-lived simulator) thread ends.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start /usr/sbin/sshd (install openssh-server): {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if tokio::net::TcpStream::connect((address, port))
            .await
            .is_ok()
        {
            return Ok(child);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("sshd exited at start ({status})"));
        }
        if Instant::now() > deadline {
            kill_tree(child.id());
            return Err(format!(
                "sshd did not listen on {address}:{port} within 5 s"
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
