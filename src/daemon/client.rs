//! The Apache child's side of daemon mode: hand a request to the group's daemon and
//! stream the answer into Apache's output filters.
//!
//! Everything the daemon says is checked again here (status line, headers, framing), so
//! a broken or hostile daemon cannot inject headers or pass off a truncated response as
//! complete.

use std::io::{BufReader, ErrorKind, Read};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::protocol::{self, Kind, ReadAsk, RequestFrame, BODY_PIECE};
use super::reader::{readable_within, recv_now, PollReader};
use super::supervisor::Group;
use crate::apache::brigade::{Body, Output};
use crate::apache::log::{self, Level};
use crate::apache::request::Request;
use crate::ffi;
use crate::io::ResponseSink;
use crate::response::Response;

/// Most request body bytes sent in one `Body` frame.
const MAX_BODY_BLOCK: usize = 1024 * 1024;

/// Response blocks up to this size are copied into buffers they share; larger ones are
/// read straight into a bucket of their own.
const SHARED_COPY_MAX: usize = 8000;

/// Size of the buffer frames from the daemon are read through.
const READ_BUFFER: usize = 16 * 1024;

/// Body bytes held in the brigade before they are passed on without a flush.
const PASS_THRESHOLD: usize = 64 * 1024;

/// Connects to the group's socket, retrying while the daemon starts up or its queue is
/// full, for up to `connect-timeout`.
fn connect(group: &Group) -> std::io::Result<UnixStream> {
    let deadline = Instant::now() + group.def.connect_timeout.max(Duration::from_millis(100));
    let mut pause = Duration::from_millis(10);
    loop {
        match connect_now(&group.socket_path) {
            Ok(stream) => return Ok(stream),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionRefused | ErrorKind::NotFound | ErrorKind::WouldBlock
                ) && Instant::now() + pause < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Connects without waiting: when the group's listen backlog is full (every daemon
/// thread busy and `listen-backlog=` connections queued) this fails at once with
/// `WouldBlock`, where a blocking connect would sleep, with no time limit, until a
/// daemon thread is free. The connection returned blocks (reads wait in `PollReader`).
fn connect_now(path: &str) -> std::io::Result<UnixStream> {
    // SAFETY: sockaddr_un is plain data; all zeros is a valid (empty) value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return Err(std::io::Error::new(ErrorKind::InvalidInput, "socket path too long"));
    }
    for (slot, byte) in addr.sun_path.iter_mut().zip(bytes) {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: creates a socket; the descriptor is checked before it is owned.
    let fd = unsafe {
        libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0)
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket that nothing else owns.
    let stream = unsafe { UnixStream::from_raw_fd(fd) };
    // SAFETY: connects our socket to the address built above, whose size is passed.
    let rv = unsafe {
        libc::connect(
            fd,
            (&addr as *const libc::sockaddr_un).cast(),
            std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
        )
    };
    if rv != 0 {
        return Err(std::io::Error::last_os_error());
    }
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// A connection to a daemon process, and that process's pid once its greeting arrived.
struct Connection {
    stream: UnixStream,
    pid: Option<u32>,
    /// The write timeout set on the socket.
    timeout: Option<Duration>,
    /// Most read-ahead bytes an answer to `Read` may carry (see [`widen_send_buffer`]).
    ahead_room: usize,
}

impl Connection {
    fn new(stream: UnixStream) -> Connection {
        let ahead_room = widen_send_buffer(&stream);
        Connection { stream, pid: None, timeout: None, ahead_room }
    }
}

/// Send buffer asked for on a connection to a daemon; the kernel grants at most twice
/// `net.core.wmem_max` (about 416 KiB by default).
const SEND_BUFFER: usize = 1024 * 1024;

/// The daemon leaves the read-ahead of an answer in the socket until its application
/// reads it, and the application may never read it while it writes its response. So
/// the read-ahead must fit in the socket's send buffer, with a piece to spare for what
/// the kernel adds: were this child's write to block there, neither process would read
/// the other (until the write timed out). So this widens the buffer (the larger the
/// read-ahead, the fewer round trips a large upload costs) and gives the read-ahead
/// that then fits.
fn widen_send_buffer(stream: &UnixStream) -> usize {
    let fd = std::os::fd::AsRawFd::as_raw_fd(stream);
    let int_len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let wanted = SEND_BUFFER as libc::c_int;
    // SAFETY: sets an int option of a socket we own from `wanted`, whose length is
    // passed; a refusal leaves the default, which the read below then finds.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&wanted as *const libc::c_int).cast(),
            int_len,
        )
    };
    let mut size: libc::c_int = 0;
    let mut len = int_len;
    // SAFETY: reads an int option of a socket we own into `size`, whose length is passed.
    let rv = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&mut size as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    let size = if rv == 0 { usize::try_from(size).unwrap_or(0) } else { 0 };
    size.saturating_sub(BODY_PIECE)
}

/// Connections to daemons kept open between requests, by socket path (which names the
/// generation, so a restart never reuses an old daemon's connection).
static IDLE: Mutex<Vec<(String, Connection)>> = Mutex::new(Vec::new());
/// Idle connections kept per Apache child.
const MAX_IDLE: usize = 64;

/// Takes an idle connection to `path` that the daemon has not closed. Each is checked
/// after the lock is let go: the check is a system call, and every worker thread of the
/// child takes this lock twice per request.
fn take_idle(path: &str) -> Option<Connection> {
    loop {
        let connection = {
            let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
            let i = idle.iter().rposition(|(p, _)| p == path)?;
            idle.swap_remove(i).1
        };
        let mut probe = [std::mem::MaybeUninit::uninit(); 1];
        // A peek that does not wait: nothing there means the daemon still has it open
        // (end of file would mean it closed it).
        if matches!(recv_now(&connection.stream, &mut probe, libc::MSG_PEEK), Ok(None)) {
            return Some(connection);
        }
    }
}

fn put_idle(path: &str, connection: Connection) {
    let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
    if idle.len() < MAX_IDLE {
        idle.push((path.to_owned(), connection));
    }
}

/// Answers a `Read`: the body bytes asked for, a piece (at most `BODY_PIECE`) at a time,
/// as `BodyPart` frames and a last `Body` frame, so a large read never has more than a
/// piece of the body in memory here.
fn answer_read(
    body: &mut Body,
    stream: &UnixStream,
    ask: ReadAsk,
    ahead_room: usize,
) -> std::io::Result<()> {
    let want = (ask.want as usize).clamp(1, MAX_BODY_BLOCK);
    let limit = want + (ask.ahead as usize).min(ahead_room).min(MAX_BODY_BLOCK - want);
    let mut sent = 0;
    loop {
        // What this piece waits for (without `all`, only the first piece waits), and the
        // most it takes: the rest of the piece is what has already arrived.
        let wait = if ask.all || sent == 0 { want.saturating_sub(sent).min(BODY_PIECE) } else { 0 };
        let most = (limit - sent).min(BODY_PIECE);
        let gathered = match body.gather(wait, ask.all, most - wait) {
            Ok(gathered) => gathered,
            Err(_) => return protocol::write_frame(&mut &*stream, Kind::BodyError, b""),
        };
        let len = gathered.size();
        // A short piece ends the answer: the body ended, or nothing more had arrived.
        let last = len < most || sent + len == limit;
        let kind = if last { Kind::Body } else { Kind::BodyPart };
        match gathered.slices() {
            Ok(slices) => protocol::write_frame_parts(&mut &*stream, kind, &slices)?,
            Err(_) => return protocol::write_frame(&mut &*stream, Kind::BodyError, b""),
        }
        if last {
            return Ok(());
        }
        sent += len;
    }
}

/// How one attempt at a request ended.
enum Exchange {
    /// Finished with this Apache status; the connection can carry another request.
    Done(i32, bool),
    /// The connection failed before the daemon took the request (a reused connection
    /// the daemon had closed, or a daemon that was stopping): nothing ran, so the
    /// request can go again on another connection.
    Stale,
}

/// Serves `request` through `group`. Returns an Apache status (`OK` once a response
/// went out).
pub fn handle(request: Request, group: &Group, frame: &RequestFrame) -> i32 {
    let encoded = frame.encode();
    // Fresh connections that fail before the daemon takes the request are retried a
    // few times (daemons being recycled); reused ones do not count.
    let mut fresh_failures = 0;
    loop {
        let (mut connection, reused) = match take_idle(&group.socket_path) {
            Some(connection) => (connection, true),
            None => match connect(group) {
                Ok(stream) => (Connection::new(stream), false),
                Err(e) => {
                    log::request(request.as_ptr(), Level::Error, &format!("Unable to connect to WSGI daemon process group '{}' on '{}' within {:?}: {e}", group.def.name, group.socket_path, group.def.connect_timeout));
                    return ffi::HTTP_SERVICE_UNAVAILABLE as i32;
                }
            },
        };
        let last_try = !reused && fresh_failures >= 2 * group.def.processes;
        match exchange(request, group, &mut connection, &encoded, !last_try) {
            Exchange::Done(status, reusable) => {
                if reusable {
                    put_idle(&group.socket_path, connection);
                }
                return status;
            }
            Exchange::Stale => fresh_failures += u32::from(!reused),
        }
    }
}

/// Sends the request on `connection` and relays the answer.
fn exchange(
    request: Request,
    group: &Group,
    connection: &mut Connection,
    encoded: &[u8],
    retry: bool,
) -> Exchange {
    let name = &group.def.name;
    let uri = String::from_utf8_lossy(request.uri()); // Borrowed unless not UTF-8.
    let r = request.as_ptr();
    let timeout = if group.def.socket_timeout.is_zero() {
        // SAFETY: the request's server lives for the generation; `timeout` is Apache's
        // `Timeout` in microseconds.
        Duration::from_micros(unsafe { (*request.server()).timeout }.max(1_000_000) as u64)
    } else {
        group.def.socket_timeout
    };
    let stream = &connection.stream;
    if connection.timeout != Some(timeout) {
        let _ = stream.set_write_timeout(Some(timeout)); // Reads wait in `PollReader`.
        connection.timeout = Some(timeout);
    }
    if let Err(e) = protocol::write_frame(&mut &*stream, Kind::Request, encoded) {
        if retry {
            return Exchange::Stale;
        }
        log::request(
            r,
            Level::Error,
            &format!(
                "Unable to send the request for '{uri}' to WSGI daemon process group '{name}': {e}"
            ),
        );
        return Exchange::Done(ffi::HTTP_BAD_GATEWAY as i32, false);
    }

    let mut output = Output::new(request);
    let mut body = Body::new(request);
    let mut response = Response::default();
    let pid = &mut connection.pid;
    // Whether the daemon said anything about this request (its greeting does not count).
    let mut answered = false;
    let mut payload = Vec::new();
    let mut queued = 0;
    let mut unflushed = 0;
    let daemon = |pid: &Option<u32>| {
        pid.map_or_else(|| format!("of group '{name}'"), |p| format!("{p} of group '{name}'"))
    };
    // When the daemon asked for a flush it still owes: a flush waits up to
    // `response-flush-delay` for more of the response, so blocks the daemon sends close
    // together go out in one write, and none waits longer than the delay.
    let mut flush_owed: Option<Instant> = None;
    // Frames are read through a buffer: a daemon streaming many small blocks costs one
    // read per batch, not two per frame.
    let poll = PollReader { stream, timeout, answer_pending: true };
    let mut reader = BufReader::with_capacity(READ_BUFFER, poll);
    loop {
        if let Some(since) = flush_owed {
            // More of the response coming within the delay postpones the flush; nothing
            // postpones it past the delay.
            let wait =
                (since + group.def.response_flush_delay).saturating_duration_since(Instant::now());
            let more =
                !wait.is_zero() && (!reader.buffer().is_empty() || readable_within(stream, wait));
            if !more {
                flush_owed = None;
                queued = 0;
                unflushed = 0;
                output.flush();
                if output.pass().is_err() {
                    return Exchange::Done(ffi::OK as i32, false); // The client is gone; closing tells the daemon.
                }
            }
        }
        // A large block of the body is read straight into a bucket (no copy on the way).
        let mut read_frame = || -> std::io::Result<(Kind, usize, bool)> {
            let (kind, len) = protocol::read_header(&mut reader)?;
            payload.clear();
            if kind == Kind::Data && len > SHARED_COPY_MAX && response.head_sent() {
                output.fill(len, |buf| reader.read_exact(buf))?;
                return Ok((kind, len, true));
            }
            payload.resize(len, 0);
            reader.read_exact(&mut payload)?;
            Ok((kind, len, false))
        };
        let (kind, len, filled) = match read_frame() {
            Ok(frame) => frame,
            // A daemon that closes a connection without reading the request resets it:
            // nothing ran, so it can go again. End of file means the daemon read it.
            Err(e) if !answered && retry && e.kind() == ErrorKind::ConnectionReset => {
                return Exchange::Stale
            }
            Err(e) => {
                let timed_out = matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
                let what = if timed_out {
                    format!("did not answer within {timeout:?}")
                } else {
                    format!("closed the connection ({e})")
                };
                log::request(
                    r,
                    Level::Error,
                    &format!(
                        "WSGI daemon process {} {what} before the response of '{uri}' was complete",
                        daemon(pid)
                    ),
                );
                if response.head_sent() {
                    output.broken();
                    let _ = output.pass();
                    return Exchange::Done(ffi::OK as i32, false);
                }
                let status =
                    if timed_out { ffi::HTTP_GATEWAY_TIME_OUT } else { ffi::HTTP_BAD_GATEWAY };
                return Exchange::Done(status as i32, false);
            }
        };
        let first = !answered;
        answered |= kind != Kind::Accepted;
        match kind {
            Kind::Accepted if payload.len() == 4 && pid.is_none() => {
                *pid = Some(u32::from_be_bytes(payload[..4].try_into().expect("4 bytes")));
                continue;
            }
            Kind::Declined if first && retry => return Exchange::Stale,
            Kind::Declined if first => {
                log::request(r, Level::Error, &format!("WSGI daemon process group '{name}' kept declining the request for '{uri}' (its processes are restarting)"));
                return Exchange::Done(ffi::HTTP_SERVICE_UNAVAILABLE as i32, false);
            }
            Kind::Read if ReadAsk::decode(&payload).is_some() => {
                // The client may be waiting for what is owed before it sends more.
                if flush_owed.take().is_some() {
                    output.flush();
                    if output.pass().is_err() {
                        return Exchange::Done(ffi::OK as i32, false);
                    }
                }
                let ask = ReadAsk::decode(&payload).expect("checked");
                // A failed send is reported by the read below (what happened to the daemon).
                let _ = answer_read(&mut body, stream, ask, connection.ahead_room);
            }
            Kind::Head if payload.len() > group.def.header_buffer_size as usize => {
                log::request(r, Level::Error, &format!("WSGI daemon process {} sent response headers for '{uri}' of {} bytes, more than header-buffer-size={}", daemon(pid), payload.len(), group.def.header_buffer_size));
                return Exchange::Done(ffi::HTTP_INTERNAL_SERVER_ERROR as i32, false);
            }
            Kind::Head if !response.head_sent() => {
                let checked = protocol::decode_head(&payload).map_err(|e| e.to_string()).and_then(
                    |(status, headers)| {
                        response.start(&status, headers, false).map_err(|e| format!("{e:?}"))
                    },
                );
                if let Err(e) = checked {
                    log::request(
                        r,
                        Level::Error,
                        &format!(
                            "WSGI daemon process {} sent an invalid response head for '{uri}': {e}",
                            daemon(pid)
                        ),
                    );
                    return Exchange::Done(ffi::HTTP_BAD_GATEWAY as i32, false);
                }
                let _ = response.write(0);
                output.head(response.head().expect("just started"));
            }
            Kind::Data if response.head_sent() => {
                // Held until the daemon flushes or ends, so a short response goes out in
                // one piece with a Content-Length, as in embedded mode.
                if !filled {
                    output.copy(&payload);
                }
                queued += len;
                unflushed += len;
                if queued >= PASS_THRESHOLD {
                    queued = 0;
                    // response-buffer-size: a daemon that never flushes still gets its
                    // output pushed to the client now and then.
                    if unflushed >= group.def.response_buffer_size as usize {
                        unflushed = 0;
                        flush_owed = None;
                        output.flush();
                    }
                    if output.pass().is_err() {
                        return Exchange::Done(ffi::OK as i32, false); // The client is gone; closing tells the daemon.
                    }
                }
            }
            Kind::Flush if response.head_sent() => {
                flush_owed.get_or_insert_with(Instant::now);
            }
            Kind::End if response.head_sent() => {
                output.end();
                let _ = output.pass();
                // Nothing may follow the end: anything buffered would confuse the
                // connection's next request, so such a connection is not reused.
                return Exchange::Done(ffi::OK as i32, reader.buffer().is_empty());
            }
            Kind::Broken if response.head_sent() => {
                output.broken();
                let _ = output.pass();
                return Exchange::Done(ffi::OK as i32, false);
            }
            Kind::Fail if payload.len() == 2 => {
                let status = u16::from_be_bytes([payload[0], payload[1]]);
                if response.head_sent() {
                    output.broken();
                    let _ = output.pass();
                    return Exchange::Done(ffi::OK as i32, false);
                }
                let status = if (400..600).contains(&status) {
                    i32::from(status)
                } else {
                    ffi::HTTP_INTERNAL_SERVER_ERROR as i32
                };
                // Not reused: after a request-timeout the daemon is closing this
                // connection, and its stuck worker may still hold it.
                return Exchange::Done(status, false);
            }
            other => {
                log::request(r, Level::Error, &format!("WSGI daemon process {} broke the protocol for '{uri}' (unexpected {other:?} frame)", daemon(pid)));
                if response.head_sent() {
                    output.broken();
                    let _ = output.pass();
                    return Exchange::Done(ffi::OK as i32, false);
                }
                return Exchange::Done(ffi::HTTP_BAD_GATEWAY as i32, false);
            }
        }
    }
}
