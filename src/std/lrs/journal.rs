//! The journal: what makes an automatic record survive a crash of bioxen the
//! moment the recorded operation returns, at the cost of a memory copy.
//!
//! Each recording process maps a file `<spool>/<millis>-<pid>.journal` (shared,
//! 4 MiB, sparse) and the calling thread copies a small binary record of the
//! event into it (no statement building, no hashing, no system call). Memory of
//! a shared file mapping belongs to the kernel's page cache, so the record
//! outlives the process whatever kills it (SIGKILL, abort, a segfault); it is
//! not yet safe from a power cut, which the spool's `fsync` gives it a few
//! milliseconds later. The recorder thread turns records into statements,
//! appends them to the spool (synced), then advances the journal's tail.
//!
//! A journal whose process died (its `flock` is free) is recovered by the next
//! bioxen process that opens the spool: the records between tail and head
//! become statements. Statement ids are derived from the journal's random seed
//! and the record's sequence number, so a record the dead recorder had already
//! spooled (killed between the spool's sync and the tail's update) is found in
//! the spool by its id and not queued twice.
//!
//! Layout: a 4 KiB header (magic, head, tail, pid, seed, registration, actor),
//! then a ring of records `[u32 len][u8 kind][u8 nstr][u8 nnum][u8 0][u64 seq]
//! [u64 unix ns][nnum x u64][nstr x (u32 len, bytes)]`, each padded to 8 bytes.
//! Head and tail are positions that only grow (byte `p` of the stream is at
//! `HEADER + p % DATA`); a record never wraps: when it does not fit before the
//! end, a padding record (kind 0) fills the rest and it starts at the beginning.
use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"BXLRSJ01";
const HEADER: usize = 4096;
const SIZE: usize = 4 << 20;
const DATA: usize = SIZE - HEADER;
/// Kind of the record that pads the ring's end.
const PADDING: u8 = 0;
const H_HEAD: usize = 8;
const H_TAIL: usize = 16;
const H_PID: usize = 24;
const H_SEED: usize = 32; // 16 bytes
const H_REG: usize = 48; // 36 bytes
const H_ACTOR_LEN: usize = 88;
const H_ACTOR: usize = 92;

/// One decoded record.
#[derive(Debug, Clone)]
pub struct Record {
    pub kind: u8,
    pub seq: u64,
    pub at_nanos: u64,
    pub nums: Vec<u64>,
    pub strs: Vec<String>,
}

/// A journal mapped by this process. All access is under the recorder's mutex.
pub struct Journal {
    map: *mut u8,
    path: PathBuf,
    _file: File,
    head: u64,
    tail: u64,
    pub seed: u128,
    actor: String,
}

// The mapping is only touched with the recorder's mutex held.
unsafe impl Send for Journal {}

fn rd64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn rd32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Size of a record (padded to 8).
pub fn record_len(strs: &[&[u8]], nums: &[u64]) -> usize {
    let n = 24 + nums.len() * 8 + strs.iter().map(|s| 4 + s.len()).sum::<usize>();
    (n + 7) & !7
}

/// Writes a record into `out` (exactly `record_len` bytes).
pub fn encode(out: &mut [u8], kind: u8, seq: u64, at_nanos: u64, strs: &[&[u8]], nums: &[u64]) {
    let len = out.len();
    out[0..4].copy_from_slice(&(len as u32).to_le_bytes());
    out[4] = kind;
    out[5] = strs.len() as u8;
    out[6] = nums.len() as u8;
    out[7] = 0;
    out[8..16].copy_from_slice(&seq.to_le_bytes());
    out[16..24].copy_from_slice(&at_nanos.to_le_bytes());
    let mut p = 24;
    for n in nums {
        out[p..p + 8].copy_from_slice(&n.to_le_bytes());
        p += 8;
    }
    for s in strs {
        out[p..p + 4].copy_from_slice(&(s.len() as u32).to_le_bytes());
        p += 4;
        out[p..p + s.len()].copy_from_slice(s);
        p += s.len();
    }
    out[p..].fill(0);
}

/// Decodes the records in `bytes` into `out` (stops at the first malformed one).
pub fn decode_into(bytes: &[u8], out: &mut Vec<Record>) {
    let mut p = 0;
    while p + 8 <= bytes.len() {
        let len = rd32(bytes, p) as usize;
        if bytes[p + 4] == PADDING && len >= 8 && p + len <= bytes.len() {
            p += len;
            continue;
        }
        if len < 24 || p + len > bytes.len() {
            break;
        }
        let r = &bytes[p..p + len];
        let (nstr, nnum) = (r[5] as usize, r[6] as usize);
        let mut q = 24;
        let mut nums = Vec::with_capacity(nnum);
        let mut strs = Vec::with_capacity(nstr);
        let mut ok = q + nnum * 8 <= len;
        if ok {
            for _ in 0..nnum {
                nums.push(rd64(r, q));
                q += 8;
            }
            for _ in 0..nstr {
                if q + 4 > len {
                    ok = false;
                    break;
                }
                let l = rd32(r, q) as usize;
                q += 4;
                if q + l > len {
                    ok = false;
                    break;
                }
                strs.push(String::from_utf8_lossy(&r[q..q + l]).into_owned());
                q += l;
            }
        }
        if !ok {
            break;
        }
        out.push(Record {
            kind: r[4],
            seq: rd64(r, 8),
            at_nanos: rd64(r, 16),
            nums,
            strs,
        });
        p += len;
    }
}

/// Decodes the records in `bytes`.
pub fn decode(bytes: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    decode_into(bytes, &mut out);
    out
}

/// Where the stream's bytes `tail..head` are in the ring (`ring` = the whole
/// mapping): one slice, or two when they wrap.
fn ring_slices(ring: &[u8], tail: u64, head: u64) -> [&[u8]; 2] {
    let n = (head.saturating_sub(tail) as usize).min(DATA);
    let a = HEADER + (tail % DATA as u64) as usize;
    let first = n.min(SIZE - a);
    [&ring[a..a + first], &ring[HEADER..HEADER + (n - first)]]
}

/// The statement id of record `seq` of a journal: unique per (seed, seq),
/// formatted as a UUID v4.
pub fn statement_id(seed: u128, seq: u64) -> uuid::Uuid {
    fn mix(mut z: u64) -> u64 {
        // splitmix64's finaliser: a bijection, so distinct inputs stay distinct.
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
    let hi = mix((seed >> 64) as u64 ^ seq);
    let lo = mix(seed as u64 ^ seq.rotate_left(32) ^ hi);
    uuid::Builder::from_random_bytes(((hi as u128) << 64 | lo as u128).to_be_bytes()).into_uuid()
}

impl Journal {
    /// Creates and maps this process's journal in `dir`.
    pub fn create(dir: &Path, registration: &str, actor: &str) -> std::io::Result<Journal> {
        fs::create_dir_all(dir)?;
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let path = dir.join(format!("{millis:013}-{}.journal", std::process::id()));
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)?;
        unsafe {
            if libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        file.set_len(SIZE as u64)?;
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            let e = std::io::Error::last_os_error();
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        let mut j = Journal {
            map: map.cast(),
            path,
            _file: file,
            head: 0,
            tail: 0,
            seed: uuid::Uuid::new_v4().as_u128(),
            actor: String::new(),
        };
        let pid = std::process::id();
        let seed = j.seed;
        let h = j.bytes();
        h[H_PID..H_PID + 4].copy_from_slice(&pid.to_le_bytes());
        h[H_SEED..H_SEED + 16].copy_from_slice(&seed.to_le_bytes());
        let reg = registration.as_bytes();
        h[H_REG..H_REG + reg.len().min(36)].copy_from_slice(&reg[..reg.len().min(36)]);
        j.set_actor(actor);
        j.store(H_HEAD, 0);
        j.store(H_TAIL, 0);
        j.bytes()[0..8].copy_from_slice(MAGIC);
        Ok(j)
    }

    fn bytes(&mut self) -> &mut [u8] {
        unsafe { std::slice::from_raw_parts_mut(self.map, SIZE) }
    }

    fn store(&mut self, at: usize, v: u64) {
        self.bytes()[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// Records the actor recovery should use (when the configured one changes).
    pub fn set_actor(&mut self, actor: &str) {
        if actor == self.actor || H_ACTOR + actor.len() > HEADER {
            return;
        }
        self.actor = actor.to_string();
        let b = self.bytes();
        b[H_ACTOR..H_ACTOR + actor.len()].copy_from_slice(actor.as_bytes());
        b[H_ACTOR_LEN..H_ACTOR_LEN + 4].copy_from_slice(&(actor.len() as u32).to_le_bytes());
    }

    /// Appends a record; false when the journal is full (the caller keeps it in memory).
    pub fn put(&mut self, kind: u8, seq: u64, at: u64, strs: &[&[u8]], nums: &[u64]) -> bool {
        let len = record_len(strs, nums);
        let phys = HEADER + (self.head % DATA as u64) as usize;
        let room = SIZE - phys;
        let need = if len <= room { len } else { room + len };
        if (self.head - self.tail) as usize + need > DATA {
            return false;
        }
        let mut at_phys = phys;
        if len > room {
            let b = self.bytes();
            b[phys..phys + 4].copy_from_slice(&(room as u32).to_le_bytes());
            b[phys + 4] = PADDING;
            self.head += room as u64;
            at_phys = HEADER;
        }
        encode(
            &mut self.bytes()[at_phys..at_phys + len],
            kind,
            seq,
            at,
            strs,
            nums,
        );
        // The head moves only once the record is complete.
        self.head += len as u64;
        self.store(H_HEAD, self.head);
        true
    }

    /// The records not yet spooled, read in place (one or two slices), and the
    /// position that consumes them. The bytes stay valid and unchanged until
    /// `consumed` is called (producers only write past the head, and never
    /// over the tail; the mapping lives as long as the process), so the
    /// recorder reads them without holding the lock.
    pub fn unconsumed(&mut self) -> ([&'static [u8]; 2], u64) {
        let ring: &'static [u8] = unsafe { std::slice::from_raw_parts(self.map, SIZE) };
        (ring_slices(ring, self.tail, self.head), self.head)
    }

    /// Marks everything before `upto` as spooled.
    pub fn consumed(&mut self, upto: u64) {
        self.tail = upto;
        self.store(H_TAIL, self.tail);
    }

    pub fn is_empty(&self) -> bool {
        self.head == self.tail
    }

    /// Removes the journal (at a clean exit, once everything is spooled).
    pub fn remove(&self) {
        let _ = fs::remove_file(&self.path);
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Only tests drop a journal; a process keeps its own mapped until it ends.
        unsafe { libc::munmap(self.map.cast(), SIZE) };
    }
}

/// A dead process's journal, read for recovery.
pub struct Orphan {
    pub path: PathBuf,
    /// Holds the lock while the journal is recovered.
    pub _lock: File,
    pub pid: u32,
    pub seed: u128,
    pub registration: String,
    pub actor: String,
    pub records: Vec<Record>,
}

/// Journals in `dir` whose process is gone (their lock is free), with their
/// pending records. The returned files hold the lock until dropped.
pub fn orphans(dir: &Path) -> Vec<Orphan> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "journal"))
        .collect();
    paths.sort();
    for path in paths {
        let Ok(file) = OpenOptions::new().read(true).write(true).open(&path) else {
            continue;
        };
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            continue; // alive
        }
        let Ok(bytes) = fs::read(&path) else { continue };
        if bytes.len() < HEADER || &bytes[0..8] != MAGIC {
            // Killed while creating it: nothing was ever recorded into it.
            out.push(Orphan {
                path,
                _lock: file,
                pid: 0,
                seed: 0,
                registration: String::new(),
                actor: String::new(),
                records: Vec::new(),
            });
            continue;
        }
        let (head, tail) = (rd64(&bytes, H_HEAD), rd64(&bytes, H_TAIL));
        let actor_len = (rd32(&bytes, H_ACTOR_LEN) as usize).min(HEADER - H_ACTOR);
        let mut records = Vec::new();
        if head > tail && bytes.len() >= SIZE {
            for part in ring_slices(&bytes, tail, head) {
                decode_into(part, &mut records);
            }
        }
        out.push(Orphan {
            pid: rd32(&bytes, H_PID),
            seed: u128::from_le_bytes(bytes[H_SEED..H_SEED + 16].try_into().unwrap()),
            registration: String::from_utf8_lossy(&bytes[H_REG..H_REG + 36]).into_owned(),
            actor: String::from_utf8_lossy(&bytes[H_ACTOR..H_ACTOR + actor_len]).into_owned(),
            records,
            path,
            _lock: file,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_survive_the_process_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(
            dir.path(),
            "0b9c7f2e-6a1d-4f7e-9c3b-2d5e8f1a0b4c",
            "{\"mbox\":\"mailto:a@b.c\"}",
        )
        .unwrap();
        assert!(j.put(3, 7, 99, &[b"vm1", b"return 1", b""], &[1, 2, 3]));
        assert!(j.put(1, 8, 100, &[b"vm2", b"thread"], &[]));
        let ([bytes, rest], upto) = j.unconsumed();
        assert!(rest.is_empty());
        let recs = decode(bytes);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].strs, ["vm1", "return 1", ""]);
        assert_eq!(recs[0].nums, [1, 2, 3]);
        assert_eq!((recs[1].kind, recs[1].seq, recs[1].at_nanos), (1, 8, 100));
        // Still locked by its owner: not an orphan.
        assert!(orphans(dir.path()).is_empty());
        let seed = j.seed;
        // Forget the owner without consuming: the file keeps both records.
        let path = j.path.clone();
        drop(j);
        let o = orphans(dir.path());
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].records.len(), 2);
        assert_eq!(o[0].seed, seed);
        assert_eq!(o[0].registration, "0b9c7f2e-6a1d-4f7e-9c3b-2d5e8f1a0b4c");
        assert_eq!(o[0].actor, "{\"mbox\":\"mailto:a@b.c\"}");
        assert_eq!(o[0].pid, std::process::id());
        let _ = upto;
        let _ = fs::remove_file(path);
    }

    #[test]
    fn consumed_records_are_not_pending_and_ids_are_stable_uuid4() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path(), "r", "{}").unwrap();
        j.put(1, 1, 1, &[b"a", b"b"], &[]);
        let (_, upto) = j.unconsumed();
        j.put(1, 2, 2, &[b"c", b"d"], &[]);
        j.consumed(upto);
        let ([bytes, _], _) = j.unconsumed();
        assert_eq!(decode(bytes)[0].seq, 2);
        let a = statement_id(42, 1);
        assert_eq!(a, statement_id(42, 1));
        assert_ne!(a, statement_id(42, 2));
        assert_ne!(a, statement_id(43, 1));
        assert_eq!(a.get_version_num(), 4);
    }

    #[test]
    fn the_ring_wraps_and_refuses_records_when_full_until_consumed() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path(), "r", "{}").unwrap();
        let blob = vec![b'x'; 1000];
        let per = record_len(&[&blob], &[]);
        let fits = DATA / per;
        let mut seq = 0;
        for _ in 0..fits {
            seq += 1;
            assert!(j.put(3, seq, 0, &[&blob], &[]));
        }
        assert!(!j.put(3, seq + 1, 0, &[&blob], &[]), "full");
        // Consume half: the next records wrap around to the start of the ring.
        let (_, _) = j.unconsumed();
        let half = (fits / 2 * per) as u64;
        j.consumed(half);
        let mut wrote = 0;
        while j.put(3, seq + 1, 0, &[&blob], &[]) {
            seq += 1;
            wrote += 1;
        }
        assert!(wrote >= fits / 2 - 1, "{wrote}");
        let ([a, b], _) = j.unconsumed();
        assert!(!b.is_empty(), "wrapped");
        let mut recs = decode(a);
        decode_into(b, &mut recs);
        let seqs: Vec<u64> = recs.iter().map(|r| r.seq).collect();
        let want: Vec<u64> = (fits as u64 / 2 + 1..=seq).collect();
        assert_eq!(seqs, want);
        // A dead process's wrapped ring is recovered the same way.
        drop(j);
        let o = orphans(dir.path());
        assert_eq!(o[0].records.iter().map(|r| r.seq).collect::<Vec<_>>(), want);
    }
}
