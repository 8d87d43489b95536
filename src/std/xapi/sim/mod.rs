//! `bioxen xapi-sim`: an XAPI pool simulator with XAPI's wire behaviour (see
//! docs/xcpng.md). Objects are field maps keyed by `OpaqueRef:` references;
//! int64 fields are strings as XAPI sends them; every change is an event for
//! `event.from`; started guests get a loopback address and a real sshd.
pub mod guest;
pub mod server;

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;
use xmlrpc::Value;

const MIB: i64 = 1024 * 1024;
const NULL: &str = "OpaqueRef:NULL";

// ---------------------------------------------------------------- pool file

#[derive(Deserialize, Clone, Debug)]
#[serde(default, deny_unknown_fields)]
pub struct PoolSpec {
    pub name: String,
    pub hosts: Vec<HostSpec>,
    pub templates: Vec<TemplateSpec>,
    pub networks: Vec<String>,
    pub srs: Vec<SrSpec>,
    /// Seconds a session may stay idle before XAPI forgets it.
    pub session_timeout: f64,
    /// Seconds an `Async.*` task takes before it runs.
    pub task_delay: f64,
    /// Public key (path to a .pub file, or the key text) authorised in every guest.
    pub authorized_key: Option<String>,
    /// Port of the guests' sshd.
    pub ssh_port: u16,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(default, deny_unknown_fields)]
pub struct HostSpec {
    pub name: String,
    pub memory_mib: i64,
    pub cpus: i64,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(default, deny_unknown_fields)]
pub struct TemplateSpec {
    pub name: String,
    pub memory_mib: i64,
    pub memory_min_mib: i64,
    pub vcpus: i64,
    pub disk_gib: i64,
    /// The template already carries a VIF on the first network.
    pub vif: bool,
    /// The guest agent reports the address (false: it never does).
    pub guest_agent: bool,
    /// Seconds from start until the guest agent reports.
    pub boot_seconds: f64,
    /// The guest supports clean shutdown.
    pub clean_shutdown: bool,
    /// The guest runs sshd.
    pub sshd: bool,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(default, deny_unknown_fields)]
pub struct SrSpec {
    pub name: String,
    pub size_gib: i64,
}

impl Default for PoolSpec {
    fn default() -> Self {
        PoolSpec {
            name: "bioxen-sim".into(),
            hosts: vec![
                HostSpec {
                    name: "xcp-host-1".into(),
                    ..HostSpec::default()
                },
                HostSpec {
                    name: "xcp-host-2".into(),
                    ..HostSpec::default()
                },
            ],
            templates: vec![TemplateSpec::default()],
            networks: vec!["Pool-wide network associated with eth0".into()],
            srs: vec![SrSpec::default()],
            session_timeout: 86400.0,
            task_delay: 0.01,
            authorized_key: None,
            ssh_port: 22,
        }
    }
}

impl Default for HostSpec {
    fn default() -> Self {
        HostSpec {
            name: "xcp-host".into(),
            memory_mib: 32 * 1024,
            cpus: 16,
        }
    }
}

impl Default for TemplateSpec {
    fn default() -> Self {
        TemplateSpec {
            name: "Debian Bookworm 12".into(),
            memory_mib: 1024,
            memory_min_mib: 256,
            vcpus: 1,
            disk_gib: 10,
            vif: false,
            guest_agent: true,
            boot_seconds: 0.2,
            clean_shutdown: true,
            sshd: true,
        }
    }
}

impl Default for SrSpec {
    fn default() -> Self {
        SrSpec {
            name: "Local storage".into(),
            size_gib: 2048,
        }
    }
}

// ---------------------------------------------------------------- values

fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

/// An int64 as XAPI sends it: an untyped string.
fn int(v: i64) -> Value {
    Value::String(v.to_string())
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
    Value::Struct(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn empty_map() -> Value {
    Value::Struct(BTreeMap::new())
}

fn success(v: Value) -> Value {
    map(vec![("Status", s("Success")), ("Value", v)])
}

pub fn failure(code: &str, params: &[&str]) -> Value {
    let mut d = vec![s(code)];
    d.extend(params.iter().map(|p| s(*p)));
    map(vec![
        ("Status", s("Failure")),
        ("ErrorDescription", Value::Array(d)),
    ])
}

/// An XAPI failure: code and parameters.
#[derive(Debug)]
pub struct Fail(String, Vec<String>);

type R<T> = Result<T, Fail>;

fn fail<T>(code: &str, params: &[&str]) -> R<T> {
    Err(Fail(
        code.to_string(),
        params.iter().map(|p| p.to_string()).collect(),
    ))
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn timestamp() -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (t / 86400, t % 86400);
    // civil-from-days (Howard Hinnant)
    let z = days as i64 + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}{m:02}{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Random identifiers without a dependency: splitmix64 seeded per process.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        Rng(h.finish())
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }

    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }
}

// ---------------------------------------------------------------- state

struct Obj {
    class: &'static str,
    fields: BTreeMap<String, Value>,
}

struct Session {
    last_active: Instant,
}

struct Event {
    id: u64,
    class: &'static str,
    operation: &'static str,
    reference: String,
    snapshot: Value,
}

pub struct State {
    objects: HashMap<String, Obj>,
    sessions: HashMap<String, Session>,
    events: VecDeque<Event>,
    next_event: u64,
    rng: Rng,
    pub guests: HashMap<String, guest::Guest>,
    boot_generation: u64,
}

pub struct Pool {
    spec: PoolSpec,
    user: String,
    password: String,
    state: Mutex<State>,
    changed: Notify,
    pub dir: tempfile_dir::Dir,
    ssh_key: Option<String>,
    authorized_key: Option<String>,
}

/// Classes the simulator knows, with whether their records carry `name_label`.
const CLASSES: &[(&str, bool)] = &[
    ("pool", true),
    ("host", true),
    ("host_metrics", false),
    ("VM", true),
    ("VM_metrics", false),
    ("VM_guest_metrics", false),
    ("VIF", false),
    ("VBD", false),
    ("VDI", true),
    ("SR", true),
    ("network", true),
    ("task", true),
    ("session", false),
];

fn class_name(name: &str) -> Option<&'static str> {
    CLASSES.iter().find(|(c, _)| *c == name).map(|(c, _)| *c)
}

fn has_name(class: &str) -> bool {
    CLASSES.iter().any(|(c, n)| *c == class && *n)
}

impl State {
    fn new_ref(&mut self) -> String {
        format!("OpaqueRef:{}", self.rng.uuid())
    }

    fn add(&mut self, class: &'static str, mut fields: BTreeMap<String, Value>) -> String {
        let r = self.new_ref();
        let uuid = self.rng.uuid();
        fields.insert("uuid".into(), s(uuid));
        self.objects.insert(r.clone(), Obj { class, fields });
        self.event(class, "add", &r);
        r
    }

    fn remove(&mut self, r: &str) {
        if let Some(obj) = self.objects.remove(r) {
            self.push_event(obj.class, "del", r, Value::Nil);
        }
    }

    fn event(&mut self, class: &'static str, operation: &'static str, r: &str) {
        let snapshot = self.record(r).unwrap_or(Value::Nil);
        self.push_event(class, operation, r, snapshot);
    }

    fn push_event(
        &mut self,
        class: &'static str,
        operation: &'static str,
        r: &str,
        snapshot: Value,
    ) {
        self.next_event += 1;
        self.events.push_back(Event {
            id: self.next_event,
            class,
            operation,
            reference: r.to_string(),
            snapshot,
        });
        if self.events.len() > 10_000 {
            self.events.pop_front();
        }
    }

    fn get(&self, r: &str, class: &str) -> R<&Obj> {
        match self.objects.get(r) {
            Some(o) if o.class == class => Ok(o),
            _ => fail("HANDLE_INVALID", &[class, r]),
        }
    }

    fn field(&self, r: &str, name: &str) -> String {
        match self.objects.get(r).and_then(|o| o.fields.get(name)) {
            Some(Value::String(v)) => v.clone(),
            _ => String::new(),
        }
    }

    fn int_field(&self, r: &str, name: &str) -> i64 {
        self.field(r, name).parse().unwrap_or(0)
    }

    fn set(&mut self, r: &str, name: &str, v: Value) {
        let class = match self.objects.get_mut(r) {
            Some(o) => {
                o.fields.insert(name.to_string(), v);
                o.class
            }
            None => return,
        };
        self.event(class, "mod", r);
    }

    fn refs_where(&self, class: &str, field: &str, value: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .objects
            .iter()
            .filter(|(_, o)| {
                o.class == class
                    && matches!(o.fields.get(field), Some(Value::String(x)) if x == value)
            })
            .map(|(r, _)| r.clone())
            .collect();
        v.sort();
        v
    }

    fn all(&self, class: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .objects
            .iter()
            .filter(|(_, o)| o.class == class)
            .map(|(r, _)| r.clone())
            .collect();
        v.sort();
        v
    }

    /// A record as XAPI returns it: stored fields plus back-references.
    fn record(&self, r: &str) -> Option<Value> {
        let obj = self.objects.get(r)?;
        let mut f = obj.fields.clone();
        let refs = |class: &str, field: &str| {
            Value::Array(
                self.refs_where(class, field, r)
                    .into_iter()
                    .map(s)
                    .collect(),
            )
        };
        match obj.class {
            "VM" => {
                f.insert("VIFs".into(), refs("VIF", "VM"));
                f.insert("VBDs".into(), refs("VBD", "VM"));
                f.insert("snapshots".into(), refs("VM", "snapshot_of"));
                f.insert("children".into(), refs("VM", "parent"));
                let flag = |k: &str| matches!(obj.fields.get(k), Some(Value::Bool(true)));
                f.insert(
                    "allowed_operations".into(),
                    vm_allowed_operations(
                        flag("is_a_template"),
                        flag("is_a_snapshot"),
                        &self.field(r, "power_state"),
                    ),
                );
            }
            "host" => {
                f.insert("resident_VMs".into(), refs("VM", "resident_on"));
            }
            "SR" => {
                f.insert("VDIs".into(), refs("VDI", "SR"));
                let used: i64 = self
                    .refs_where("VDI", "SR", r)
                    .iter()
                    .map(|v| self.int_field(v, "virtual_size"))
                    .sum();
                f.insert("physical_utilisation".into(), int(used));
                f.insert("virtual_allocation".into(), int(used));
            }
            "network" => {
                f.insert("VIFs".into(), refs("VIF", "network"));
            }
            "VDI" => {
                f.insert("VBDs".into(), refs("VBD", "VDI"));
                f.insert("snapshots".into(), refs("VDI", "snapshot_of"));
            }
            "host_metrics" => {
                let host = self.refs_where("host", "metrics", r);
                if let Some(h) = host.first() {
                    f.insert("memory_free".into(), int(self.host_free(h)));
                }
            }
            _ => {}
        }
        Some(Value::Struct(f))
    }

    /// The address of the host the pool object names as master.
    fn master_address(&self) -> String {
        let pool = self.all("pool").into_iter().next().unwrap_or_default();
        let master = self.field(&pool, "master");
        self.field(&master, "address")
    }

    fn host_total(&self, host: &str) -> i64 {
        let m = self.field(host, "metrics");
        self.int_field(&m, "memory_total")
    }

    /// Free memory: total less dom0 and the running guests' dynamic maximum.
    fn host_free(&self, host: &str) -> i64 {
        let used: i64 = self
            .refs_where("VM", "resident_on", host)
            .iter()
            .map(|vm| {
                self.int_field(vm, "memory_dynamic_max") + self.int_field(vm, "memory_overhead")
            })
            .sum();
        self.host_total(host) - 512 * MIB - used
    }
}

// ---------------------------------------------------------------- arguments

fn arg_str(v: &Value, name: &str) -> R<String> {
    match v {
        Value::String(x) => Ok(x.clone()),
        _ => fail("FIELD_TYPE_ERROR", &[name]),
    }
}

fn arg_int(v: &Value, name: &str) -> R<i64> {
    match v {
        Value::String(x) => x
            .trim()
            .parse()
            .or_else(|_| fail("FIELD_TYPE_ERROR", &[name])),
        Value::Int(i) => Ok(*i as i64),
        Value::Int64(i) => Ok(*i),
        _ => fail("FIELD_TYPE_ERROR", &[name]),
    }
}

fn arg_bool(v: &Value, name: &str) -> R<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        _ => fail("FIELD_TYPE_ERROR", &[name]),
    }
}

fn arg_float(v: &Value, name: &str) -> R<f64> {
    match v {
        Value::Double(d) => Ok(*d),
        Value::Int(i) => Ok(*i as f64),
        Value::String(x) => x
            .trim()
            .parse()
            .or_else(|_| fail("FIELD_TYPE_ERROR", &[name])),
        _ => fail("FIELD_TYPE_ERROR", &[name]),
    }
}

// ---------------------------------------------------------------- the pool

mod tempfile_dir {
    use std::path::{Path, PathBuf};

    const PREFIX: &str = "bioxen-xapi-sim-";

    /// The simulator's scratch folder (keys, sshd configs), removed on drop.
    /// Its name records the owning process (`PREFIX-PID-STARTTIME-ID`) so that
    /// the folders of a simulator that was killed (drop never ran) can be
    /// told apart from live ones and removed by the next simulator.
    pub struct Dir(pub PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A process's start time (clock ticks since boot, /proc/PID/stat field 22):
    /// with the pid, it names one process even after the pid is reused.
    pub fn start_time(pid: u32) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(19)?
            .parse()
            .ok()
    }

    /// A new scratch folder under `tmp`, named after this process.
    pub fn create(tmp: &Path, id: &str) -> Result<Dir, String> {
        let pid = std::process::id();
        let started = start_time(pid).unwrap_or(0);
        let dir = tmp.join(format!("{PREFIX}{pid}-{started}-{id}"));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(Dir(dir))
    }

    /// Removes the scratch folders under `tmp` whose owning process is gone
    /// (no such pid, or the pid now belongs to a process started later).
    /// Folders of live simulators, and names it does not know, are kept.
    /// Returns the removed folders.
    pub fn sweep_stale(tmp: &Path) -> Vec<PathBuf> {
        let mut removed = Vec::new();
        let Ok(entries) = std::fs::read_dir(tmp) else {
            return removed;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
                continue;
            };
            let mut parts = rest.splitn(3, '-');
            let (Some(pid), Some(started), Some(_)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (Ok(pid), Ok(started)) = (pid.parse::<u32>(), started.parse::<u64>()) else {
                continue;
            };
            let alive = start_time(pid).is_some_and(|t| t == started || started == 0);
            if !alive && std::fs::remove_dir_all(e.path()).is_ok() {
                removed.push(e.path());
            }
        }
        removed
    }
}

impl Pool {
    pub fn new(
        spec: PoolSpec,
        user: String,
        password: String,
        addresses: Vec<String>,
    ) -> Result<Pool, String> {
        if spec.hosts.is_empty() {
            return Err("the pool file lists no hosts: a pool needs at least one".into());
        }
        let mut rng = Rng::new();
        let tmp = std::env::temp_dir();
        for stale in tempfile_dir::sweep_stale(&tmp) {
            tracing::info!(
                "xapi-sim: removed {} (left by a simulator that was killed)",
                stale.display()
            );
        }
        let dir = tempfile_dir::create(&tmp, &rng.uuid())?;
        let (ssh_key, authorized_key) = guest::client_key(&dir.0, spec.authorized_key.as_deref())?;
        let mut st = State {
            objects: HashMap::new(),
            sessions: HashMap::new(),
            events: VecDeque::new(),
            next_event: 0,
            rng,
            guests: HashMap::new(),
            boot_generation: 0,
        };
        let mut hosts = Vec::new();
        for (i, h) in spec.hosts.iter().enumerate() {
            let metrics = st.add(
                "host_metrics",
                fields(vec![
                    ("memory_total", int(h.memory_mib * MIB)),
                    ("live", Value::Bool(true)),
                ]),
            );
            let cpus = int(h.cpus);
            hosts.push(st.add(
                "host",
                fields(vec![
                    ("name_label", s(&h.name)),
                    ("name_description", s("")),
                    ("hostname", s(&h.name)),
                    ("address", s(&addresses[i])),
                    ("enabled", Value::Bool(true)),
                    ("metrics", s(&metrics)),
                    ("cpu_info", map(vec![("cpu_count", cpus)])),
                    ("API_version_major", int(2)),
                    ("API_version_minor", int(21)),
                    (
                        "software_version",
                        map(vec![
                            ("product_brand", s("XCP-ng")),
                            ("product_version", s("8.3.0")),
                        ]),
                    ),
                    ("other_config", empty_map()),
                ]),
            ));
        }
        let mut srs = Vec::new();
        for sr in &spec.srs {
            srs.push(st.add(
                "SR",
                fields(vec![
                    ("name_label", s(&sr.name)),
                    ("name_description", s("")),
                    ("physical_size", int(sr.size_gib * 1024 * MIB)),
                    ("type", s("ext")),
                    ("content_type", s("user")),
                    ("shared", Value::Bool(false)),
                    ("other_config", empty_map()),
                ]),
            ));
        }
        let mut networks = Vec::new();
        for (i, n) in spec.networks.iter().enumerate() {
            networks.push(st.add(
                "network",
                fields(vec![
                    ("name_label", s(n)),
                    ("name_description", s("")),
                    ("bridge", s(format!("xenbr{i}"))),
                    ("MTU", int(1500)),
                    ("other_config", empty_map()),
                ]),
            ));
        }
        let mut pool_other = BTreeMap::new();
        if let Some(k) = &ssh_key {
            pool_other.insert("bioxen_sim_ssh_key".to_string(), s(k));
        }
        st.add(
            "pool",
            fields(vec![
                ("name_label", s(&spec.name)),
                ("name_description", s("bioxen XAPI simulator")),
                ("master", s(&hosts[0])),
                (
                    "default_SR",
                    s(srs.first().cloned().unwrap_or_else(|| NULL.into())),
                ),
                ("other_config", Value::Struct(pool_other)),
            ]),
        );
        for t in &spec.templates {
            let mut other = BTreeMap::new();
            if t.disk_gib > 0 {
                other.insert(
                    "disks".to_string(),
                    s(format!(
                        "<provision><disk device=\"0\" size=\"{}\" sr=\"\" bootable=\"true\" type=\"system\"/></provision>",
                        t.disk_gib * 1024 * MIB
                    )),
                );
            }
            other.insert(
                "bioxen_sim_guest_agent".into(),
                s(t.guest_agent.to_string()),
            );
            other.insert(
                "bioxen_sim_boot_seconds".into(),
                s(t.boot_seconds.to_string()),
            );
            other.insert(
                "bioxen_sim_clean_shutdown".into(),
                s(t.clean_shutdown.to_string()),
            );
            other.insert("bioxen_sim_sshd".into(), s(t.sshd.to_string()));
            let vm = new_vm(
                &mut st,
                &t.name,
                true,
                t.memory_min_mib * MIB,
                t.memory_mib * MIB,
                t.vcpus,
                other,
            );
            if t.vif
                && let Some(n) = networks.first()
            {
                let vif = vif_fields(&mut st, &vm, n, "0");
                st.add("VIF", vif);
            }
        }
        Ok(Pool {
            spec,
            user,
            password,
            state: Mutex::new(st),
            changed: Notify::new(),
            dir,
            ssh_key,
            authorized_key,
        })
    }

    pub fn ssh_key(&self) -> Option<String> {
        self.ssh_key.clone()
    }

    /// Stops every guest's sshd.
    pub fn shutdown(&self) {
        let mut st = self.state.lock().unwrap();
        for (_, g) in st.guests.drain() {
            g.stop();
        }
    }

    /// Answers one call that came to the host listening at `own` (a pool
    /// member that is not the master answers HOST_IS_SLAVE, naming the master).
    pub async fn dispatch(
        self: &Arc<Self>,
        call: crate::library::xapi::wire::MethodCall,
        own: &str,
    ) -> Value {
        let master = self.state.lock().unwrap().master_address();
        if own != master {
            return failure("HOST_IS_SLAVE", &[&master]);
        }
        let result = if call.name == "event.from" {
            self.event_from(&call.params).await
        } else {
            self.call(&call.name, &call.params)
        };
        match result {
            Ok(v) => success(v),
            Err(Fail(code, params)) => {
                let p: Vec<&str> = params.iter().map(String::as_str).collect();
                failure(&code, &p)
            }
        }
    }

    fn check_count(method: &str, params: &[Value], expected: usize) -> R<()> {
        if params.len() != expected {
            return fail(
                "MESSAGE_PARAMETER_COUNT_MISMATCH",
                &[method, &expected.to_string(), &params.len().to_string()],
            );
        }
        Ok(())
    }

    fn check_session(&self, st: &mut State, v: &Value) -> R<()> {
        let r = arg_str(v, "session_id")?;
        let timeout = Duration::from_secs_f64(self.spec.session_timeout.max(0.0));
        match st.sessions.get_mut(&r) {
            Some(sess) if sess.last_active.elapsed() <= timeout => {
                sess.last_active = Instant::now();
                Ok(())
            }
            Some(_) => {
                st.sessions.remove(&r);
                fail("SESSION_INVALID", &[&r])
            }
            None => fail("SESSION_INVALID", &[&r]),
        }
    }

    fn call(self: &Arc<Self>, method: &str, params: &[Value]) -> R<Value> {
        let mut st = self.state.lock().unwrap();
        if method == "session.login_with_password" {
            if !(2..=4).contains(&params.len()) {
                return fail(
                    "MESSAGE_PARAMETER_COUNT_MISMATCH",
                    &[method, "4", &params.len().to_string()],
                );
            }
            let user = arg_str(&params[0], "uname")?;
            let pw = arg_str(&params[1], "pwd")?;
            if user != self.user || pw != self.password {
                return fail(
                    "SESSION_AUTHENTICATION_FAILED",
                    &[&user, "Authentication failure"],
                );
            }
            let r = st.new_ref();
            st.sessions.insert(
                r.clone(),
                Session {
                    last_active: Instant::now(),
                },
            );
            return Ok(s(r));
        }
        let (is_async, name) = match method.strip_prefix("Async.") {
            Some(rest) => (true, rest),
            None => (false, method),
        };
        let Some((class, op)) = name.split_once('.') else {
            return fail("MESSAGE_METHOD_UNKNOWN", &[method]);
        };
        let Some(class) = class_name(class) else {
            return fail("MESSAGE_METHOD_UNKNOWN", &[method]);
        };
        let Some(arity) = arity(class, op) else {
            return fail("MESSAGE_METHOD_UNKNOWN", &[method]);
        };
        Self::check_count(method, params, arity)?;
        self.check_session(&mut st, &params[0])?;
        if class == "session" && op == "logout" {
            let r = arg_str(&params[0], "session_id")?;
            st.sessions.remove(&r);
            return Ok(s(""));
        }
        if !is_async {
            let out = self.run(&mut st, class, op, &params[1..]);
            drop(st);
            self.changed.notify_waiters();
            return out;
        }
        // Async.*: a task now, the work after task_delay.
        let task = st.add(
            "task",
            fields(vec![
                ("name_label", s(format!("Async.{class}.{op}"))),
                ("name_description", s("")),
                ("status", s("pending")),
                ("progress", Value::Double(0.0)),
                ("result", s("")),
                ("error_info", Value::Array(vec![])),
                ("created", s(timestamp())),
                ("finished", s("19700101T00:00:00Z")),
                ("other_config", empty_map()),
            ]),
        );
        drop(st);
        self.changed.notify_waiters();
        let (pool, params, task2, op) = (
            self.clone(),
            params[1..].to_vec(),
            task.clone(),
            op.to_string(),
        );
        let delay = Duration::from_secs_f64(self.spec.task_delay.max(0.0));
        tokio::task::spawn_local(async move {
            tokio::time::sleep(delay).await;
            let mut st = pool.state.lock().unwrap();
            if st.field(&task2, "status") != "pending" {
                return;
            }
            let out = pool.run(&mut st, class, &op, &params);
            if let Some(t) = st.objects.get_mut(&task2) {
                t.fields.insert("progress".into(), Value::Double(1.0));
                t.fields.insert("finished".into(), s(timestamp()));
                match out {
                    Ok(v) => {
                        t.fields.insert("status".into(), s("success"));
                        let result = match v {
                            Value::String(r) if !r.is_empty() => format!("<value>{r}</value>"),
                            _ => String::new(),
                        };
                        t.fields.insert("result".into(), s(result));
                    }
                    Err(Fail(code, ps)) => {
                        t.fields.insert("status".into(), s("failure"));
                        let mut info = vec![s(code)];
                        info.extend(ps.into_iter().map(s));
                        t.fields.insert("error_info".into(), Value::Array(info));
                    }
                }
            }
            st.event("task", "mod", &task2);
            drop(st);
            pool.changed.notify_waiters();
        });
        Ok(s(task))
    }

    /// The body of a call, with the session already checked and removed.
    fn run(
        self: &Arc<Self>,
        st: &mut State,
        class: &'static str,
        op: &str,
        p: &[Value],
    ) -> R<Value> {
        match (class, op) {
            (_, "get_all") => Ok(Value::Array(st.all(class).into_iter().map(s).collect())),
            (_, "get_all_records") => {
                let mut m = BTreeMap::new();
                for r in st.all(class) {
                    let rec = st.record(&r).unwrap_or(Value::Nil);
                    m.insert(r, rec);
                }
                Ok(Value::Struct(m))
            }
            (_, "get_record") => {
                let r = arg_str(&p[0], "self")?;
                st.get(&r, class)?;
                Ok(st.record(&r).unwrap_or(Value::Nil))
            }
            (_, "get_by_uuid") => {
                let u = arg_str(&p[0], "uuid")?;
                match st.refs_where(class, "uuid", &u).into_iter().next() {
                    Some(r) => Ok(s(r)),
                    None => fail("UUID_INVALID", &[class, &u]),
                }
            }
            (_, "get_by_name_label") => {
                let n = arg_str(&p[0], "label")?;
                Ok(Value::Array(
                    st.refs_where(class, "name_label", &n)
                        .into_iter()
                        .map(s)
                        .collect(),
                ))
            }
            ("session", "get_this_host") => Ok(s(st
                .all("host")
                .into_iter()
                .find(|h| st.field(h, "address") == st.master_address())
                .unwrap_or_default())),
            ("pool", "designate_new_master") => {
                let h = arg_str(&p[0], "host")?;
                st.get(&h, "host")?;
                let pool = st.all("pool").into_iter().next().unwrap_or_default();
                st.set(&pool, "master", s(&h));
                Ok(s(""))
            }
            ("pool", "get_master") => {
                let r = arg_str(&p[0], "self")?;
                st.get(&r, "pool")?;
                Ok(s(st.field(&r, "master")))
            }
            ("host", "compute_free_memory") => {
                let r = arg_str(&p[0], "host")?;
                st.get(&r, "host")?;
                Ok(int(st.host_free(&r)))
            }
            ("VM", op) if VM_OPS.contains(&op) => self.vm(st, op, p),
            ("VIF", "create") => {
                let rec = record_arg(&p[0])?;
                let vm = rec_str(&rec, "VM")?;
                let net = rec_str(&rec, "network")?;
                let device = rec_str(&rec, "device")?;
                st.get(&vm, "VM")?;
                st.get(&net, "network")?;
                if device.parse::<u32>().is_err() {
                    return fail("INVALID_DEVICE", &[&device]);
                }
                if st
                    .refs_where("VIF", "VM", &vm)
                    .iter()
                    .any(|v| st.field(v, "device") == device)
                {
                    return fail("DEVICE_ALREADY_EXISTS", &[&device]);
                }
                let mut f = vif_fields(st, &vm, &net, &device);
                if let Ok(mac) = rec_str(&rec, "MAC")
                    && !mac.is_empty()
                {
                    f.insert("MAC".into(), s(mac));
                }
                let r = st.add("VIF", f);
                st.event("VM", "mod", &vm);
                Ok(s(r))
            }
            ("VBD", op) if VBD_OPS.contains(&op) => self.vbd(st, op, p),
            ("VIF", "destroy") => {
                let r = arg_str(&p[0], "self")?;
                st.get(&r, class)?;
                let vm = st.field(&r, "VM");
                if st.field(&vm, "power_state") == "Running" {
                    return fail(
                        "OPERATION_NOT_ALLOWED",
                        &["The device is attached to a running VM; unplug it first"],
                    );
                }
                st.remove(&r);
                st.event("VM", "mod", &vm);
                Ok(s(""))
            }
            ("VDI", "create") => {
                let rec = record_arg(&p[0])?;
                let sr = rec_str(&rec, "SR")?;
                st.get(&sr, "SR")?;
                let size = rec
                    .get("virtual_size")
                    .map(|v| arg_int(v, "virtual_size"))
                    .transpose()?
                    .unwrap_or(0);
                let name = rec_str(&rec, "name_label").unwrap_or_default();
                let r = new_vdi(st, &sr, &name, size)?;
                for k in ["read_only", "sharable"] {
                    if let Some(v @ Value::Bool(_)) = rec.get(k) {
                        st.set(&r, k, v.clone());
                    }
                }
                for k in ["name_description", "type"] {
                    if let Ok(v) = rec_str(&rec, k) {
                        st.set(&r, k, s(v));
                    }
                }
                if let Some(v @ Value::Struct(_)) = rec.get("other_config") {
                    st.set(&r, "other_config", v.clone());
                }
                Ok(s(r))
            }
            ("VDI", "destroy") => {
                let r = arg_str(&p[0], "self")?;
                st.get(&r, "VDI")?;
                for vbd in st.refs_where("VBD", "VDI", &r) {
                    let vm = st.field(&vbd, "VM");
                    if st.field(&vm, "power_state") != "Halted" {
                        return fail("VDI_IN_USE", &[&r, "destroy"]);
                    }
                }
                // XAPI destroys the (detached) VBDs with the VDI.
                for vbd in st.refs_where("VBD", "VDI", &r) {
                    let vm = st.field(&vbd, "VM");
                    st.remove(&vbd);
                    st.event("VM", "mod", &vm);
                }
                st.remove(&r);
                Ok(s(""))
            }
            ("task", "cancel") => {
                let r = arg_str(&p[0], "task")?;
                st.get(&r, "task")?;
                if st.field(&r, "status") == "pending" {
                    st.set(&r, "status", s("cancelled"));
                    st.set(
                        &r,
                        "error_info",
                        Value::Array(vec![s("TASK_CANCELLED"), s(&r)]),
                    );
                }
                Ok(s(""))
            }
            ("task", "destroy") => {
                let r = arg_str(&p[0], "self")?;
                st.get(&r, "task")?;
                st.remove(&r);
                Ok(s(""))
            }
            (_, "add_to_other_config") | (_, "remove_from_other_config") => {
                let r = arg_str(&p[0], "self")?;
                st.get(&r, class)?;
                let key = arg_str(&p[1], "key")?;
                let mut other = match st.objects[&r].fields.get("other_config") {
                    Some(Value::Struct(m)) => m.clone(),
                    _ => BTreeMap::new(),
                };
                if op == "add_to_other_config" {
                    if other.contains_key(&key) {
                        return fail("MAP_DUPLICATE_KEY", &[class, "other_config", &r, &key]);
                    }
                    other.insert(key, s(arg_str(&p[2], "value")?));
                } else {
                    other.remove(&key);
                }
                st.set(&r, "other_config", Value::Struct(other));
                Ok(s(""))
            }
            (_, op) if op.starts_with("set_") => {
                let r = arg_str(&p[0], "self")?;
                st.get(&r, class)?;
                let field = &op[4..];
                let v = match field {
                    "name_label" | "name_description" | "PV_args" => s(arg_str(&p[1], field)?),
                    _ => match &p[1] {
                        Value::Struct(_) => p[1].clone(),
                        _ => return fail("FIELD_TYPE_ERROR", &[field]),
                    },
                };
                st.set(&r, field, v);
                Ok(s(""))
            }
            (_, op) if op.starts_with("get_") => {
                let r = arg_str(&p[0], "self")?;
                // Stored fields directly; the whole record only for computed ones.
                if let Some(v) = st.get(&r, class)?.fields.get(&op[4..]) {
                    return Ok(v.clone());
                }
                let rec = st.record(&r).unwrap_or(Value::Nil);
                match rec.get(&op[4..]) {
                    Some(v) => Ok(v.clone()),
                    None => fail("MESSAGE_METHOD_UNKNOWN", &[&format!("{class}.{op}")]),
                }
            }
            _ => fail("MESSAGE_METHOD_UNKNOWN", &[&format!("{class}.{op}")]),
        }
    }

    fn vm(self: &Arc<Self>, st: &mut State, op: &str, p: &[Value]) -> R<Value> {
        let vm = arg_str(&p[0], "vm")?;
        st.get(&vm, "VM")?;
        let power = st.field(&vm, "power_state");
        let template = matches!(
            st.objects[&vm].fields.get("is_a_template"),
            Some(Value::Bool(true))
        );
        let bad_power = |expected: &str| -> R<Value> {
            fail(
                "VM_BAD_POWER_STATE",
                &[&vm, expected, &power.to_lowercase()],
            )
        };
        let need_halted = |_what: &str| -> R<()> {
            if power != "Halted" {
                return fail(
                    "VM_BAD_POWER_STATE",
                    &[&vm, "halted", &power.to_lowercase()],
                );
            }
            Ok(())
        };
        let snapshot = matches!(
            st.objects[&vm].fields.get("is_a_snapshot"),
            Some(Value::Bool(true))
        );
        // A snapshot allows only these (xapi_vm_lifecycle's check_snapshot).
        if snapshot && !["clone", "copy", "destroy", "hard_shutdown", "revert"].contains(&op) {
            return fail("VM_IS_SNAPSHOT", &[&vm, &op.to_lowercase()]);
        }
        match op {
            "snapshot" => {
                let name = arg_str(&p[1], "new_name")?;
                if template {
                    return fail("VM_IS_TEMPLATE", &[&vm, "snapshot"]);
                }
                if power != "Halted" && power != "Running" {
                    return fail(
                        "VM_BAD_POWER_STATE",
                        &[&vm, "halted, running", &power.to_lowercase()],
                    );
                }
                let when = timestamp();
                let mut f = st.objects[&vm].fields.clone();
                for (k, v) in [
                    ("name_label", s(&name)),
                    ("power_state", s("Halted")),
                    ("is_a_template", Value::Bool(true)),
                    ("is_a_snapshot", Value::Bool(true)),
                    ("snapshot_of", s(&vm)),
                    ("snapshot_time", s(&when)),
                    ("resident_on", s(NULL)),
                    ("guest_metrics", s(NULL)),
                    ("domid", int(-1)),
                    ("parent", s(NULL)),
                ] {
                    f.insert(k.into(), v);
                }
                let metrics = st.add(
                    "VM_metrics",
                    fields(vec![("memory_actual", int(0)), ("VCPUs_number", int(0))]),
                );
                f.insert("metrics".into(), s(metrics));
                let snap = st.add("VM", f);
                for vbd in st.refs_where("VBD", "VM", &vm) {
                    let mut vf = st.objects[&vbd].fields.clone();
                    let vdi = st.field(&vbd, "VDI");
                    if st.objects.contains_key(&vdi) {
                        let sr = st.field(&vdi, "SR");
                        let size = st.int_field(&vdi, "virtual_size");
                        let label = st.field(&vdi, "name_label");
                        let copy = new_vdi(st, &sr, &label, size)?;
                        st.set(&copy, "is_a_snapshot", Value::Bool(true));
                        st.set(&copy, "snapshot_of", s(&vdi));
                        st.set(&copy, "snapshot_time", s(&when));
                        vf.insert("VDI".into(), s(copy));
                    }
                    vf.insert("VM".into(), s(&snap));
                    vf.insert("currently_attached".into(), Value::Bool(false));
                    st.add("VBD", vf);
                }
                for vif in st.refs_where("VIF", "VM", &vm) {
                    let mut vf = st.objects[&vif].fields.clone();
                    vf.insert("VM".into(), s(&snap));
                    vf.insert("currently_attached".into(), Value::Bool(false));
                    st.add("VIF", vf);
                }
                st.event("VM", "mod", &vm);
                Ok(s(snap))
            }
            "clone" | "copy" => {
                let name = arg_str(&p[1], "new_name")?;
                if power != "Halted" {
                    return bad_power("halted");
                }
                let sr = if op == "copy" {
                    let sr = arg_str(&p[2], "sr")?;
                    st.get(&sr, "SR")?;
                    Some(sr)
                } else {
                    None
                };
                let mut f = st.objects[&vm].fields.clone();
                f.insert("name_label".into(), s(&name));
                f.insert("power_state".into(), s("Halted"));
                f.insert("resident_on".into(), s(NULL));
                f.insert("guest_metrics".into(), s(NULL));
                f.insert("is_a_snapshot".into(), Value::Bool(false));
                f.insert("snapshot_of".into(), s(NULL));
                f.insert("parent".into(), s(&vm));
                let metrics = st.add(
                    "VM_metrics",
                    fields(vec![("memory_actual", int(0)), ("VCPUs_number", int(0))]),
                );
                f.insert("metrics".into(), s(metrics));
                let new = st.add("VM", f);
                for vbd in st.refs_where("VBD", "VM", &vm) {
                    let mut vf = st.objects[&vbd].fields.clone();
                    let vdi = st.field(&vbd, "VDI");
                    if st.objects.contains_key(&vdi) {
                        let target_sr = sr.clone().unwrap_or_else(|| st.field(&vdi, "SR"));
                        let size = st.int_field(&vdi, "virtual_size");
                        let label = st.field(&vdi, "name_label");
                        let copy = new_vdi(st, &target_sr, &label, size)?;
                        vf.insert("VDI".into(), s(copy));
                    }
                    vf.insert("VM".into(), s(&new));
                    st.add("VBD", vf);
                }
                for vif in st.refs_where("VIF", "VM", &vm) {
                    let mut vf = st.objects[&vif].fields.clone();
                    vf.insert("VM".into(), s(&new));
                    let mac = random_mac(&mut st.rng);
                    vf.insert("MAC".into(), s(mac));
                    st.add("VIF", vf);
                }
                Ok(s(new))
            }
            "provision" => {
                need_halted("provision")?;
                let other = match st.objects[&vm].fields.get("other_config") {
                    Some(Value::Struct(m)) => m.clone(),
                    _ => BTreeMap::new(),
                };
                if let Some(Value::String(disks)) = other.get("disks") {
                    let size: i64 = disks
                        .split("size=\"")
                        .nth(1)
                        .and_then(|rest| rest.split('"').next())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    let sr = {
                        let pool = st.all("pool").remove(0);
                        st.field(&pool, "default_SR")
                    };
                    if size > 0 {
                        let label = format!("{} 0", st.field(&vm, "name_label"));
                        let vdi = new_vdi(st, &sr, &label, size)?;
                        st.add("VBD", vbd_fields(&vm, &vdi, "0", "Disk", "RW", true));
                    }
                    let mut other = other.clone();
                    other.remove("disks");
                    st.set(&vm, "other_config", Value::Struct(other));
                }
                Ok(s(""))
            }
            "set_is_a_template" => {
                let v = arg_bool(&p[1], "value")?;
                need_halted("set_is_a_template")?;
                st.set(&vm, "is_a_template", Value::Bool(v));
                Ok(s(""))
            }
            "set_memory_limits"
            | "set_memory_static_range"
            | "set_memory_dynamic_range"
            | "set_memory" => {
                let mut m: Vec<i64> = [
                    "memory_static_min",
                    "memory_static_max",
                    "memory_dynamic_min",
                    "memory_dynamic_max",
                ]
                .iter()
                .map(|f| st.int_field(&vm, f))
                .collect();
                match op {
                    "set_memory_limits" => {
                        for (i, name) in ["static_min", "static_max", "dynamic_min", "dynamic_max"]
                            .iter()
                            .enumerate()
                        {
                            m[i] = arg_int(&p[1 + i], name)?;
                        }
                    }
                    "set_memory_static_range" => {
                        m[0] = arg_int(&p[1], "min")?;
                        m[1] = arg_int(&p[2], "max")?;
                    }
                    "set_memory_dynamic_range" => {
                        m[2] = arg_int(&p[1], "min")?;
                        m[3] = arg_int(&p[2], "max")?;
                    }
                    _ => {
                        let v = arg_int(&p[1], "value")?;
                        m[1] = v;
                        m[2] = v;
                        m[3] = v;
                    }
                }
                if m.iter().any(|v| *v < 0) {
                    return fail(
                        "INVALID_VALUE",
                        &[
                            "memory",
                            &m.iter()
                                .map(|v| v.to_string())
                                .collect::<Vec<_>>()
                                .join(","),
                        ],
                    );
                }
                if !(m[0] <= m[2] && m[2] <= m[3] && m[3] <= m[1]) {
                    return fail(
                        "MEMORY_CONSTRAINT_VIOLATION",
                        &[
                            "Memory limits must satisfy: static_min <= dynamic_min <= dynamic_max <= static_max",
                        ],
                    );
                }
                if op != "set_memory_dynamic_range" {
                    need_halted(op)?;
                }
                for (i, f) in [
                    "memory_static_min",
                    "memory_static_max",
                    "memory_dynamic_min",
                    "memory_dynamic_max",
                ]
                .iter()
                .enumerate()
                {
                    st.set(&vm, f, int(m[i]));
                }
                Ok(s(""))
            }
            "set_VCPUs_max" | "set_VCPUs_at_startup" => {
                let v = arg_int(&p[1], "value")?;
                need_halted(op)?;
                let (max, at) = if op == "set_VCPUs_max" {
                    (v, st.int_field(&vm, "VCPUs_at_startup"))
                } else {
                    (st.int_field(&vm, "VCPUs_max"), v)
                };
                if v < 1 || at > max || max > 64 {
                    return fail(
                        "INVALID_VALUE",
                        &[
                            if op == "set_VCPUs_max" {
                                "VCPU values must satisfy: 0 < VCPUs_at_startup <= VCPUs_max <= 64"
                            } else {
                                "VCPU values must satisfy: 0 < VCPUs_at_startup <= VCPUs_max"
                            },
                            &v.to_string(),
                        ],
                    );
                }
                let field = &op[4..];
                st.set(&vm, field, int(v));
                Ok(s(""))
            }
            "start" | "start_on" => {
                let host = if op == "start_on" {
                    let h = arg_str(&p[1], "host")?;
                    st.get(&h, "host")?;
                    Some(h)
                } else {
                    None
                };
                if template {
                    return fail("VM_IS_TEMPLATE", &[&vm, "start"]);
                }
                if power != "Halted" {
                    return bad_power("halted");
                }
                let need =
                    st.int_field(&vm, "memory_dynamic_max") + st.int_field(&vm, "memory_overhead");
                let candidates = match host {
                    Some(h) => vec![h],
                    None => st
                        .all("host")
                        .into_iter()
                        .filter(|h| st.field(h, "address") == st.master_address())
                        .chain(
                            st.all("host")
                                .into_iter()
                                .filter(|h| st.field(h, "address") != st.master_address()),
                        )
                        .collect(),
                };
                let Some(host) = candidates.iter().find(|h| st.host_free(h) >= need).cloned()
                else {
                    let best = candidates
                        .iter()
                        .map(|h| st.host_free(h))
                        .max()
                        .unwrap_or(0);
                    return fail(
                        "HOST_NOT_ENOUGH_FREE_MEMORY",
                        &[&need.to_string(), &best.max(0).to_string()],
                    );
                };
                st.set(&vm, "power_state", s("Running"));
                st.set(&vm, "resident_on", s(&host));
                st.boot_generation += 1;
                let domid = st.boot_generation as i64;
                st.set(&vm, "domid", int(domid));
                let metrics = st.field(&vm, "metrics");
                st.set(
                    &metrics,
                    "memory_actual",
                    int(st.int_field(&vm, "memory_dynamic_max")),
                );
                st.set(
                    &metrics,
                    "VCPUs_number",
                    int(st.int_field(&vm, "VCPUs_at_startup")),
                );
                for vbd in st.refs_where("VBD", "VM", &vm) {
                    st.set(&vbd, "currently_attached", Value::Bool(true));
                }
                for vif in st.refs_where("VIF", "VM", &vm) {
                    st.set(&vif, "currently_attached", Value::Bool(true));
                }
                self.boot(st, &vm, domid);
                Ok(s(""))
            }
            "clean_shutdown" | "hard_shutdown" | "shutdown" => {
                if power == "Halted" {
                    return bad_power("running");
                }
                let clean_ok = st.field(&vm, "guest_metrics") != NULL
                    && other_flag(st, &vm, "bioxen_sim_clean_shutdown", true);
                if op == "clean_shutdown" && (power != "Running" || !clean_ok) {
                    if power != "Running" {
                        return bad_power("running");
                    }
                    return fail("VM_LACKS_FEATURE_SHUTDOWN", &[&vm]);
                }
                self.halt(st, &vm);
                Ok(s(""))
            }
            "clean_reboot" | "hard_reboot" => {
                if power != "Running" {
                    return bad_power("running");
                }
                self.halt(st, &vm);
                self.vm(
                    st,
                    "start",
                    &[s(&vm), Value::Bool(false), Value::Bool(false)],
                )
            }
            "pause" | "unpause" => {
                let (from, to) = if op == "pause" {
                    ("Running", "Paused")
                } else {
                    ("Paused", "Running")
                };
                if power != from {
                    return bad_power(&from.to_lowercase());
                }
                st.set(&vm, "power_state", s(to));
                Ok(s(""))
            }
            "destroy" => {
                if power != "Halted" {
                    return bad_power("halted");
                }
                for vbd in st.refs_where("VBD", "VM", &vm) {
                    st.remove(&vbd);
                }
                for vif in st.refs_where("VIF", "VM", &vm) {
                    st.remove(&vif);
                }
                let metrics = st.field(&vm, "metrics");
                st.remove(&metrics);
                st.remove(&vm);
                Ok(s(""))
            }
            _ => fail("MESSAGE_METHOD_UNKNOWN", &[&format!("VM.{op}")]),
        }
    }

    /// VBD.create/destroy/insert/eject/plug/unplug with XAPI's checks
    /// (xapi_vbd.ml, xapi_vbd_helpers.ml).
    fn vbd(&self, st: &mut State, op: &str, p: &[Value]) -> R<Value> {
        if op == "create" {
            let rec = record_arg(&p[0])?;
            let vm = rec_str(&rec, "VM")?;
            st.get(&vm, "VM")?;
            let vdi = rec_str(&rec, "VDI").unwrap_or_else(|_| NULL.into());
            let kind = rec_str(&rec, "type")?;
            let mode = rec_str(&rec, "mode")?;
            let userdevice = rec_str(&rec, "userdevice")?;
            let flag = |k: &str| matches!(rec.get(k), Some(Value::Bool(true)));
            let empty = flag("empty");
            if !["Disk", "CD", "Floppy"].contains(&kind.as_str()) {
                return fail("FIELD_TYPE_ERROR", &["type"]);
            }
            if !["RW", "RO"].contains(&mode.as_str()) {
                return fail("FIELD_TYPE_ERROR", &["mode"]);
            }
            if !empty {
                st.get(&vdi, "VDI")?;
            }
            if kind == "CD" && mode != "RO" {
                return fail("VBD_CDS_MUST_BE_READONLY", &[]);
            }
            if kind != "CD" && empty {
                return fail("VBD_NOT_REMOVABLE_MEDIA", &["in constructor"]);
            }
            if !empty
                && mode == "RW"
                && matches!(
                    st.objects[&vdi].fields.get("read_only"),
                    Some(Value::Bool(true))
                )
            {
                return fail("VDI_READONLY", &[&vdi]);
            }
            let used: Vec<String> = st
                .refs_where("VBD", "VM", &vm)
                .iter()
                .map(|b| st.field(b, "userdevice"))
                .collect();
            let userdevice = if userdevice == "autodetect" {
                match (0..16).map(|n| n.to_string()).find(|d| !used.contains(d)) {
                    Some(d) => d,
                    None => return fail("INVALID_DEVICE", &[&userdevice]),
                }
            } else {
                match userdevice.parse::<u32>() {
                    Ok(n) if n < 16 => userdevice,
                    _ => return fail("INVALID_DEVICE", &[&userdevice]),
                }
            };
            if used.contains(&userdevice) {
                return fail("DEVICE_ALREADY_EXISTS", &[&userdevice]);
            }
            let vdi = if empty { NULL.to_string() } else { vdi };
            let mut f = vbd_fields(&vm, &vdi, &userdevice, &kind, &mode, flag("bootable"));
            for k in ["other_config", "qos_algorithm_params"] {
                if let Some(v @ Value::Struct(_)) = rec.get(k) {
                    f.insert(k.into(), v.clone());
                }
            }
            if let Ok(q) = rec_str(&rec, "qos_algorithm_type") {
                f.insert("qos_algorithm_type".into(), s(q));
            }
            if let Some(Value::Bool(u)) = rec.get("unpluggable") {
                f.insert("unpluggable".into(), Value::Bool(*u));
            }
            let r = st.add("VBD", f);
            st.event("VM", "mod", &vm);
            return Ok(s(r));
        }
        let r = arg_str(&p[0], "self")?;
        st.get(&r, "VBD")?;
        let vm = st.field(&r, "VM");
        let power = st.field(&vm, "power_state");
        let attached = matches!(
            st.objects[&r].fields.get("currently_attached"),
            Some(Value::Bool(true))
        );
        let empty = matches!(st.objects[&r].fields.get("empty"), Some(Value::Bool(true)));
        let cd = st.field(&r, "type") == "CD";
        match op {
            "destroy" => {
                if attached {
                    let (u, vu) = (st.field(&r, "uuid"), st.field(&vm, "uuid"));
                    return fail(
                        "OPERATION_NOT_ALLOWED",
                        &[&format!("VBD '{u}' still attached to '{vu}'")],
                    );
                }
                st.remove(&r);
            }
            "insert" | "eject" => {
                if power == "Suspended" {
                    return fail("VM_BAD_POWER_STATE", &[&vm, "halted, running", "suspended"]);
                }
                if !cd {
                    return fail("VBD_NOT_REMOVABLE_MEDIA", &[&r]);
                }
                if op == "insert" {
                    let vdi = arg_str(&p[1], "vdi")?;
                    st.get(&vdi, "VDI")?;
                    if !empty {
                        return fail("VBD_NOT_EMPTY", &[&r]);
                    }
                    st.set(&r, "VDI", s(&vdi));
                    st.set(&r, "empty", Value::Bool(false));
                } else {
                    if empty {
                        return fail("VBD_IS_EMPTY", &[&r]);
                    }
                    st.set(&r, "VDI", s(NULL));
                    st.set(&r, "empty", Value::Bool(true));
                }
            }
            _ => {
                if power != "Running" {
                    return fail(
                        "VM_BAD_POWER_STATE",
                        &[&vm, "running", &power.to_lowercase()],
                    );
                }
                match (op, attached) {
                    ("plug", true) => return fail("DEVICE_ALREADY_ATTACHED", &[&r]),
                    ("unplug", false) => return fail("DEVICE_ALREADY_DETACHED", &[&r]),
                    _ => st.set(&r, "currently_attached", Value::Bool(op == "plug")),
                }
            }
        }
        st.event("VM", "mod", &vm);
        Ok(s(""))
    }

    /// Powers a VM off: stops its guest, drops its metrics and residency.
    fn halt(&self, st: &mut State, vm: &str) {
        if let Some(g) = st.guests.remove(vm) {
            g.stop();
        }
        let gm = st.field(vm, "guest_metrics");
        if gm != NULL {
            st.remove(&gm);
        }
        st.set(vm, "guest_metrics", s(NULL));
        st.set(vm, "power_state", s("Halted"));
        st.set(vm, "resident_on", s(NULL));
        st.set(vm, "domid", int(-1));
        for vbd in st.refs_where("VBD", "VM", vm) {
            st.set(&vbd, "currently_attached", Value::Bool(false));
        }
        for vif in st.refs_where("VIF", "VM", vm) {
            st.set(&vif, "currently_attached", Value::Bool(false));
        }
    }

    /// Starts the guest: after its boot time, sshd on its loopback address and
    /// (if it has the guest agent) the address in its guest metrics.
    fn boot(self: &Arc<Self>, st: &mut State, vm: &str, domid: i64) {
        let agent = other_flag(st, vm, "bioxen_sim_guest_agent", true);
        let sshd = other_flag(st, vm, "bioxen_sim_sshd", true);
        let seconds: f64 = match st.objects[vm].fields.get("other_config") {
            Some(Value::Struct(m)) => match m.get("bioxen_sim_boot_seconds") {
                Some(Value::String(v)) => v.parse().unwrap_or(0.2),
                _ => 0.2,
            },
            _ => 0.2,
        };
        let taken: Vec<String> = st.guests.values().map(|g| g.address.clone()).collect();
        let address = guest::free_address(&mut || st.rng.next(), &taken, self.spec.ssh_port);
        st.guests
            .insert(vm.to_string(), guest::Guest::new(address.clone()));
        let (pool, vm) = (self.clone(), vm.to_string());
        tokio::task::spawn_local(async move {
            tokio::time::sleep(Duration::from_secs_f64(seconds.max(0.0))).await;
            let still = |pool: &Pool| pool.state.lock().unwrap().int_field(&vm, "domid") == domid;
            if !still(&pool) {
                return;
            }
            if sshd && let Some(key) = pool.authorized_key.clone() {
                let dir = pool.dir.0.join(format!("guest-{domid}"));
                match guest::start_sshd(&dir, &address, pool.spec.ssh_port, &key).await {
                    Ok(child) => {
                        let mut st = pool.state.lock().unwrap();
                        let current = st_domid(&st, &vm) == domid;
                        match st.guests.get_mut(&vm) {
                            Some(g) if current => g.sshd = Some(child),
                            _ => guest::kill_tree(child.id()),
                        }
                    }
                    Err(e) => tracing::warn!("guest {vm}: sshd did not start: {e}"),
                }
            }
            if !agent {
                return;
            }
            let mut st = pool.state.lock().unwrap();
            if st_domid(&st, &vm) != domid {
                return;
            }
            let mut networks = BTreeMap::new();
            networks.insert("0/ip".to_string(), s(&address));
            networks.insert("0/ipv4/0".to_string(), s(&address));
            let gm = st.add(
                "VM_guest_metrics",
                fields(vec![
                    (
                        "os_version",
                        map(vec![
                            ("name", s("Debian GNU/Linux 12 (bookworm)")),
                            ("distro", s("debian")),
                        ]),
                    ),
                    ("PV_drivers_detected", Value::Bool(true)),
                    ("networks", Value::Struct(networks)),
                    (
                        "other",
                        map(vec![
                            ("feature-shutdown", s("1")),
                            ("has-vendor-device", s("0")),
                        ]),
                    ),
                    ("live", Value::Bool(true)),
                    ("last_updated", s(timestamp())),
                ]),
            );
            st.set(&vm, "guest_metrics", s(gm));
            drop(st);
            pool.changed.notify_waiters();
        });
    }

    async fn event_from(self: &Arc<Self>, p: &[Value]) -> R<Value> {
        Self::check_count("event.from", p, 4)?;
        {
            let mut st = self.state.lock().unwrap();
            self.check_session(&mut st, &p[0])?;
        }
        let classes: Vec<String> = match &p[1] {
            Value::Array(a) => a
                .iter()
                .map(|c| arg_str(c, "classes").map(|c| c.to_lowercase()))
                .collect::<R<_>>()?,
            _ => return fail("FIELD_TYPE_ERROR", &["classes"]),
        };
        let token = arg_str(&p[2], "token")?;
        let timeout = arg_float(&p[3], "timeout")?;
        let wants = |class: &str| {
            classes
                .iter()
                .any(|c| c == "*" || c == &class.to_lowercase())
        };
        let since: u64 = if token.is_empty() {
            let st = self.state.lock().unwrap();
            let mut events = Vec::new();
            let mut refs: Vec<&String> = st.objects.keys().collect();
            refs.sort();
            for r in refs {
                let o = &st.objects[r];
                if wants(o.class) && o.class != "session" {
                    events.push(event_value(
                        st.next_event,
                        o.class,
                        "add",
                        r,
                        st.record(r).unwrap_or(Value::Nil),
                    ));
                }
            }
            return Ok(event_batch(events, st.next_event));
        } else {
            token
                .trim()
                .parse()
                .or_else(|_| fail("EVENT_FROM_TOKEN_PARSE_FAILURE", &[&token]))?
        };
        {
            let st = self.state.lock().unwrap();
            if let Some(oldest) = st.events.front()
                && since + 1 < oldest.id
            {
                return fail("EVENTS_LOST", &[]);
            }
        }
        let deadline = Instant::now() + Duration::from_secs_f64(timeout.clamp(0.0, 3600.0));
        loop {
            let notified = self.changed.notified();
            {
                let st = self.state.lock().unwrap();
                let events: Vec<Value> = st
                    .events
                    .iter()
                    .filter(|e| e.id > since && wants(e.class))
                    .map(|e| {
                        event_value(e.id, e.class, e.operation, &e.reference, e.snapshot.clone())
                    })
                    .collect();
                if !events.is_empty() || Instant::now() >= deadline {
                    return Ok(event_batch(events, st.next_event));
                }
            }
            let _ = tokio::time::timeout_at(deadline.into(), notified).await;
        }
    }
}

fn st_domid(st: &State, vm: &str) -> i64 {
    st.int_field(vm, "domid")
}

fn event_value(id: u64, class: &str, op: &str, r: &str, snapshot: Value) -> Value {
    let mut pairs = vec![
        ("id", s(id.to_string())),
        ("timestamp", s(format!("{:.6}", now_secs()))),
        ("class", s(class.to_lowercase())),
        ("operation", s(op)),
        ("ref", s(r)),
    ];
    if !matches!(snapshot, Value::Nil) {
        pairs.push(("snapshot", snapshot));
    }
    map(pairs)
}

fn event_batch(events: Vec<Value>, token: u64) -> Value {
    map(vec![
        ("events", Value::Array(events)),
        ("valid_ref_counts", empty_map()),
        ("token", s(format!("{token:020}"))),
    ])
}

fn other_flag(st: &State, vm: &str, key: &str, default: bool) -> bool {
    match st
        .objects
        .get(vm)
        .and_then(|o| o.fields.get("other_config"))
    {
        Some(Value::Struct(m)) => match m.get(key) {
            Some(Value::String(v)) => v == "true",
            _ => default,
        },
        _ => default,
    }
}

fn fields(pairs: Vec<(&str, Value)>) -> BTreeMap<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn record_arg(v: &Value) -> R<BTreeMap<String, Value>> {
    match v {
        Value::Struct(m) => Ok(m.clone()),
        _ => fail("FIELD_TYPE_ERROR", &["args"]),
    }
}

fn rec_str(rec: &BTreeMap<String, Value>, name: &str) -> R<String> {
    match rec.get(name) {
        Some(v) => arg_str(v, name),
        None => fail("FIELD_TYPE_ERROR", &[name]),
    }
}

fn random_mac(rng: &mut Rng) -> String {
    let b = rng.next().to_be_bytes();
    format!(
        "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3], b[4]
    )
}

fn vif_fields(st: &mut State, vm: &str, network: &str, device: &str) -> BTreeMap<String, Value> {
    let mac = random_mac(&mut st.rng);
    fields(vec![
        ("VM", s(vm)),
        ("network", s(network)),
        ("device", s(device)),
        ("MAC", s(mac)),
        ("MTU", int(1500)),
        ("currently_attached", Value::Bool(false)),
        ("other_config", empty_map()),
        ("qos_algorithm_type", s("")),
        ("qos_algorithm_params", empty_map()),
    ])
}

fn new_vdi(st: &mut State, sr: &str, label: &str, size: i64) -> R<String> {
    let physical = st.int_field(sr, "physical_size");
    let used: i64 = st
        .refs_where("VDI", "SR", sr)
        .iter()
        .map(|v| st.int_field(v, "virtual_size"))
        .sum();
    if used + size > physical {
        return fail(
            "SR_FULL",
            &[&size.to_string(), &(physical - used).to_string()],
        );
    }
    let location = st.rng.uuid();
    Ok(st.add(
        "VDI",
        fields(vec![
            ("name_label", s(label)),
            ("name_description", s("")),
            ("SR", s(sr)),
            ("virtual_size", int(size)),
            ("physical_utilisation", int(size / 8)),
            ("type", s("system")),
            ("sharable", Value::Bool(false)),
            ("read_only", Value::Bool(false)),
            ("other_config", empty_map()),
            ("is_a_snapshot", Value::Bool(false)),
            ("snapshot_of", s(NULL)),
            ("snapshot_time", s("19700101T00:00:00Z")),
            ("managed", Value::Bool(true)),
            ("missing", Value::Bool(false)),
            ("storage_lock", Value::Bool(false)),
            ("location", s(location)),
            ("parent", s(NULL)),
            ("sm_config", empty_map()),
            ("xenstore_data", empty_map()),
            ("current_operations", empty_map()),
            (
                "allowed_operations",
                Value::Array(vec![s("clone"), s("copy"), s("destroy"), s("snapshot")]),
            ),
            ("on_boot", s("persist")),
            ("allow_caching", Value::Bool(false)),
            ("tags", Value::Array(vec![])),
        ]),
    ))
}

fn new_vm(
    st: &mut State,
    name: &str,
    template: bool,
    memory_min: i64,
    memory: i64,
    vcpus: i64,
    other: BTreeMap<String, Value>,
) -> String {
    let metrics = st.add(
        "VM_metrics",
        fields(vec![("memory_actual", int(0)), ("VCPUs_number", int(0))]),
    );
    st.add(
        "VM",
        fields(vec![
            ("name_label", s(name)),
            ("name_description", s("")),
            ("power_state", s("Halted")),
            ("is_a_template", Value::Bool(template)),
            ("is_a_snapshot", Value::Bool(false)),
            ("is_control_domain", Value::Bool(false)),
            ("memory_static_min", int(memory_min)),
            ("memory_static_max", int(memory)),
            ("memory_dynamic_min", int(memory)),
            ("memory_dynamic_max", int(memory)),
            ("memory_overhead", int(8 * MIB)),
            ("VCPUs_max", int(vcpus)),
            ("VCPUs_at_startup", int(vcpus)),
            ("resident_on", s(NULL)),
            ("affinity", s(NULL)),
            ("metrics", s(metrics)),
            ("guest_metrics", s(NULL)),
            ("domid", int(-1)),
            ("PV_args", s("")),
            ("HVM_boot_policy", s("BIOS order")),
            ("platform", empty_map()),
            ("tags", Value::Array(vec![])),
            ("blocked_operations", empty_map()),
            ("other_config", Value::Struct(other)),
            // Further fields SDK users read (XAPI's names and defaults).
            ("snapshot_of", s(NULL)),
            ("snapshot_time", s("19700101T00:00:00Z")),
            ("parent", s(NULL)),
            ("current_operations", empty_map()),
            ("user_version", int(1)),
            ("actions_after_shutdown", s("destroy")),
            ("actions_after_reboot", s("restart")),
            ("actions_after_crash", s("restart")),
            ("VCPUs_params", empty_map()),
            ("HVM_boot_params", empty_map()),
            ("PV_bootloader", s("")),
            ("PV_kernel", s("")),
            ("PV_ramdisk", s("")),
            ("PV_bootloader_args", s("")),
            ("PV_legacy_args", s("")),
            ("xenstore_data", empty_map()),
            ("ha_restart_priority", s("")),
            ("suspend_VDI", s(NULL)),
            ("appliance", s(NULL)),
            ("consoles", Value::Array(vec![])),
            ("crash_dumps", Value::Array(vec![])),
            ("bios_strings", empty_map()),
            ("has_vendor_device", Value::Bool(false)),
            ("hardware_platform_version", int(0)),
            ("version", int(0)),
            ("generation_id", s("")),
            ("is_default_template", Value::Bool(false)),
            ("recommendations", s("")),
        ]),
    )
}

/// A VBD record with XAPI's fields.
fn vbd_fields(
    vm: &str,
    vdi: &str,
    userdevice: &str,
    kind: &str,
    mode: &str,
    bootable: bool,
) -> BTreeMap<String, Value> {
    fields(vec![
        ("VM", s(vm)),
        ("VDI", s(vdi)),
        ("device", s("")),
        ("userdevice", s(userdevice)),
        ("bootable", Value::Bool(bootable)),
        ("mode", s(mode)),
        ("type", s(kind)),
        ("unpluggable", Value::Bool(true)),
        ("empty", Value::Bool(vdi == NULL)),
        ("currently_attached", Value::Bool(false)),
        ("storage_lock", Value::Bool(false)),
        ("status_code", int(0)),
        ("status_detail", s("")),
        ("runtime_properties", empty_map()),
        ("other_config", empty_map()),
        ("qos_algorithm_type", s("")),
        ("qos_algorithm_params", empty_map()),
        ("qos_supported_algorithms", Value::Array(vec![])),
        ("current_operations", empty_map()),
        ("metrics", s(NULL)),
    ])
}

/// The operations XAPI would allow on a VM now (a subset of its vm_operations).
fn vm_allowed_operations(template: bool, snapshot: bool, power: &str) -> Value {
    let ops: &[&str] = if snapshot {
        &["revert", "clone", "copy", "export", "destroy"]
    } else if template {
        &[
            "clone",
            "copy",
            "export",
            "provision",
            "destroy",
            "changing_memory_limits",
            "changing_VCPUs",
        ]
    } else {
        match power {
            "Halted" => &[
                "start",
                "start_on",
                "clone",
                "copy",
                "snapshot",
                "export",
                "provision",
                "destroy",
                "changing_memory_limits",
                "changing_VCPUs",
                "make_into_template",
            ],
            "Running" => &[
                "clean_shutdown",
                "hard_shutdown",
                "clean_reboot",
                "hard_reboot",
                "pause",
                "snapshot",
                "changing_dynamic_range",
            ],
            "Paused" => &["unpause", "hard_shutdown", "hard_reboot"],
            _ => &["hard_shutdown"],
        }
    };
    Value::Array(ops.iter().map(|o| s(*o)).collect())
}

const VBD_OPS: &[&str] = &["create", "destroy", "insert", "eject", "plug", "unplug"];

const VM_OPS: &[&str] = &[
    "snapshot",
    "clone",
    "copy",
    "provision",
    "set_is_a_template",
    "set_memory_limits",
    "set_memory_static_range",
    "set_memory_dynamic_range",
    "set_memory",
    "set_VCPUs_max",
    "set_VCPUs_at_startup",
    "start",
    "start_on",
    "clean_shutdown",
    "hard_shutdown",
    "shutdown",
    "clean_reboot",
    "hard_reboot",
    "pause",
    "unpause",
    "destroy",
];

/// How many parameters (session included) each known method takes.
fn arity(class: &str, op: &str) -> Option<usize> {
    let n = match (class, op) {
        ("session", "logout") => 1,
        ("session", "get_this_host") => 2,
        ("session", _) => return None,
        (_, "get_all") | (_, "get_all_records") => 1,
        (_, "get_record") | (_, "get_by_uuid") => 2,
        (c, "get_by_name_label") if has_name(c) => 2,
        (_, "add_to_other_config") => 4,
        (_, "remove_from_other_config") => 3,
        ("pool", "get_master" | "designate_new_master") => 2,
        ("host", "compute_free_memory") => 2,
        ("VM", "clone" | "snapshot") => 3,
        ("VBD", "create" | "eject" | "plug" | "unplug") => 2,
        ("VBD", "insert") => 3,
        ("VM", "copy") => 4,
        ("VM", "start") => 4,
        ("VM", "start_on") => 5,
        (
            "VM",
            "provision" | "clean_shutdown" | "hard_shutdown" | "shutdown" | "clean_reboot"
            | "hard_reboot" | "pause" | "unpause" | "destroy",
        ) => 2,
        ("VM", "set_memory_limits") => 6,
        ("VM", "set_memory_static_range" | "set_memory_dynamic_range") => 4,
        ("VM", "set_memory" | "set_VCPUs_max" | "set_VCPUs_at_startup" | "set_is_a_template") => 3,
        ("VIF" | "VDI", "create") => 2,
        ("VIF" | "VBD" | "VDI", "destroy") => 2,
        ("task", "cancel" | "destroy") => 2,
        (_, "set_name_label" | "set_name_description" | "set_other_config") => 3,
        ("VM", "set_PV_args" | "set_platform") => 3,
        (_, op) if op.starts_with("get_") => 2,
        _ => return None,
    };
    Some(n)
}
