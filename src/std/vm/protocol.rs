//! The framed protocol between the host and a process-backend child over
//! pipes: each frame is a little-endian u32 payload length, a one-byte tag and
//! the payload. Tags in capitals go host -> child, lower case child -> host
//! (plus `M`, the child asking the host for a module's source mid-exec).
//! The interactive-session work extends this with more tags.
use std::io;
use std::os::fd::RawFd;
use std::time::Instant;

pub const INIT: u8 = b'I';
pub const EXEC: u8 = b'X';
pub const CALL: u8 = b'C';
pub const RESET: u8 = b'Z';
pub const MODULE_SOURCE: u8 = b'm';
pub const READY: u8 = b'r';
pub const FAILED: u8 = b'e';
pub const RESULT: u8 = b'x';
pub const MODULE_REQUEST: u8 = b'M';
/// A channel operation from the child (`bioxen.channel`), and the host's reply.
pub const CHANNEL_OP: u8 = b'q';
pub const CHANNEL_REPLY: u8 = b'Q';
// Interactive sessions (src/std/session): input fed like a REPL, its output
// streamed back as it is printed, then a done frame (payload: 1 = unfinished chunk).
pub const SESSION_INPUT: u8 = b'S';
pub const SESSION_OUTPUT: u8 = b'o';
pub const SESSION_DONE: u8 = b'd';
/// Host -> child: forget the unfinished chunk (answered with SESSION_DONE).
pub const SESSION_RESET: u8 = b'R';

/// Frames larger than this are refused (a corrupted length never allocates wildly).
pub const MAX_FRAME: usize = 1 << 30;

pub fn frame(tag: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 5);
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    f.push(tag);
    f.extend_from_slice(payload);
    f
}

#[derive(Debug)]
pub enum ReadError {
    /// The deadline passed before a whole frame arrived.
    Timeout,
    /// The other side closed the pipe (it exited or died).
    Closed,
    Io(io::Error),
}

/// Whether `fd` is readable right now.
fn readable_now(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no timeout.
    unsafe { libc::poll(&mut p, 1, 0) > 0 }
}

/// Waits until `fd` is readable or the deadline passes: a short spin (see
/// runtime::spin), then poll.
fn wait_readable(fd: RawFd, deadline: Option<Instant>) -> Result<(), ReadError> {
    if crate::runtime::spin::briefly(|| readable_now(fd)) {
        return Ok(());
    }
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(ReadError::Timeout);
                }
                left.as_millis().clamp(1, i32::MAX as u128) as i32
            }
        };
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n > 0 {
            return Ok(());
        }
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(ReadError::Io(e));
            }
        }
    }
}

fn read_exact_deadline(
    fd: RawFd,
    buf: &mut [u8],
    deadline: Option<Instant>,
) -> Result<(), ReadError> {
    let mut got = 0;
    while got < buf.len() {
        wait_readable(fd, deadline)?;
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n == 0 {
            return Err(ReadError::Closed);
        }
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted || e.kind() == io::ErrorKind::WouldBlock {
                continue;
            }
            return Err(ReadError::Io(e));
        }
        got += n as usize;
    }
    Ok(())
}

/// Reads one frame from a raw fd, giving up at `deadline`.
pub fn read_frame_deadline(
    fd: RawFd,
    deadline: Option<Instant>,
) -> Result<(u8, Vec<u8>), ReadError> {
    let mut head = [0u8; 5];
    read_exact_deadline(fd, &mut head, deadline)?;
    let n = u32::from_le_bytes(head[..4].try_into().unwrap()) as usize;
    if n > MAX_FRAME {
        return Err(ReadError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        )));
    }
    let mut payload = vec![0u8; n];
    read_exact_deadline(fd, &mut payload, deadline)?;
    Ok((head[4], payload))
}

/// Writes all of `data` to a raw fd.
pub fn write_all_fd(fd: RawFd, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        data = &data[n as usize..];
    }
    Ok(())
}
