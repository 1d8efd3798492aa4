//! A daemon worker thread: accept a connection from an Apache child, check it, and run
//! its request through the same WSGI call as embedded mode.

use std::io::Read;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::protocol::{self, Kind, ReadAsk, RequestFrame};
use super::reader::{recv_now, PollReader};
use super::state::{Busy, State};
use super::supervisor::Group;
use super::waiting::Event;
use crate::apache::log::{Level, Target};
use crate::environ;
use crate::ffi;
use crate::io::{as_uninit, BodyError, BodySource, ClientGone, ResponseSink};
use crate::python::app::{Call, Outcome};
use crate::python::errors::LogStream;
use crate::python::{log_exception, script, thread_state};
use crate::response::Head;

/// Loads the group's `WSGIImportScript`s and preloadable aliases at process start.
/// `main` is the main server (the list of servers starts there); failures are logged
/// against `server`, the group's own.
pub fn preload(group: &Group, main: *mut ffi::server_rec, server: *mut ffi::server_rec) {
    // SAFETY: the main server list was configured by this module.
    let scripts = unsafe { crate::hooks::preloads(main, &group.def.name) };
    for path in scripts {
        thread_state::attach(|py| {
            if let Err(e) = script::preload(py, &path) {
                let context = format!(
                    "Failed to preload WSGI script '{path}' in daemon group '{}'",
                    group.def.name
                );
                log_exception(py, Target::Server(server), &context, &e);
            }
        });
    }
}

/// Waits for the next connection with a request to serve, and its token in the wait
/// set. `None` once the process is stopping.
fn next_connection(state: &State) -> Option<(u64, UnixStream)> {
    loop {
        let event = state.waiting.wait();
        // A stop while this worker waited: what woke it is left to the next process (a
        // connection in the backlog) or closed with the idle ones (its Apache child sends
        // the request again). Waiting needs no timeout: a stopping process leaves
        // without its idle workers.
        if state.stopping.load(Ordering::Acquire) {
            return None;
        }
        match event {
            Event::Listener => {
                if let Some(stream) = accept_one(state) {
                    return Some((state.waiting.new_token(), stream));
                }
            }
            Event::Request(token, stream) => return Some((token, stream)),
            Event::Nothing => {}
        }
    }
}

/// Accepts a pending connection, if this process wins it (the group's processes share
/// the listener; losers see EAGAIN), and greets it with this process's pid. Its request
/// follows at once, so the worker that accepted it serves it.
fn accept_one(state: &State) -> Option<UnixStream> {
    // SAFETY: a non-blocking accept on the group's listening socket.
    let fd = unsafe {
        libc::accept4(
            state.group.listener,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
        )
    };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        if !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted) {
            // Out of descriptors, say: the connection stays queued, and re-arming at once
            // would only spin on it.
            std::thread::sleep(Duration::from_millis(50));
        }
        state.waiting.rearm_listener();
        return None;
    }
    // Other workers may accept the next connection while this one greets its own.
    state.waiting.rearm_listener();
    // SAFETY: `fd` is a freshly accepted connection that nothing else owns.
    let stream = unsafe { UnixStream::from_raw_fd(fd) };
    set_buffer_sizes(state, &stream);
    // The pid goes out once per connection, for the child's log lines; a 9-byte frame on
    // a fresh connection cannot block.
    let greeted = stream.set_nonblocking(false).is_ok()
        && stream.set_write_timeout(Some(io_timeout(&state.group))).is_ok()
        && protocol::write_frame(&mut &stream, Kind::Accepted, &std::process::id().to_be_bytes())
            .is_ok();
    greeted.then_some(stream)
}

/// `send-buffer-size=` and `receive-buffer-size=` on a connection (0 leaves the system's
/// default). A connection does not inherit them from the listening socket, so each one
/// gets them. The kernel caps them at `net.core.wmem_max`/`rmem_max` and doubles what it
/// grants, as for any socket (and Linux ignores the receive size of UNIX stream sockets).
fn set_buffer_sizes(state: &State, stream: &UnixStream) {
    let def = &state.group.def;
    for (option, name, size) in [
        (libc::SO_SNDBUF, "send-buffer-size", def.send_buffer_size),
        (libc::SO_RCVBUF, "receive-buffer-size", def.receive_buffer_size),
    ] {
        if size == 0 {
            continue;
        }
        let size = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
        // SAFETY: sets an int option on a socket this function borrows; the pointer and
        // length describe `size`.
        let rv = unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rv != 0 {
            let e = std::io::Error::last_os_error();
            Target::Server(state.server).log(
                Level::Warning,
                &format!("WSGI daemon group '{}': cannot set {name}={size}: {e}", def.name),
            );
        }
    }
}

/// A worker thread (number `slot`): serves connections as requests arrive on them, until
/// the process stops.
pub fn work_loop(state: &State, slot: usize) {
    let max = state.group.def.maximum_requests;
    while let Some((token, stream)) = next_connection(state) {
        let stream = Arc::new(stream);
        state.active.fetch_add(1, Ordering::AcqRel);
        state.touch();
        let keep = serve(state, &stream, slot);
        *state.busy[slot].lock().unwrap_or_else(|e| e.into_inner()) = None;
        state.active.fetch_sub(1, Ordering::AcqRel);
        state.touch();
        if !keep {
            continue;
        }
        let served = state.served.fetch_add(1, Ordering::AcqRel) + 1;
        if max > 0 && served >= max {
            state.stop(format!("maximum-requests={max} reached"), false);
        }
        match Arc::try_unwrap(stream) {
            Ok(stream) if !state.stopping.load(Ordering::Acquire) => {
                state.waiting.park(token, stream)
            }
            Ok(_) => {} // Closed: the Apache child sends its next request elsewhere.
            // Something of the request still holds the connection, so it cannot wait
            // here; shut down, its Apache child will not send another request on it.
            Err(shared) => {
                let _ = shared.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

fn io_timeout(group: &Group) -> Duration {
    let t = group.def.socket_timeout;
    if t.is_zero() {
        Duration::from_secs(300)
    } else {
        t
    }
}

/// Bytes the first receive of a request may take: enough for a typical request frame.
const REQUEST_READ: usize = 8 * 1024;

/// Serves the next request on a connection. False when there was none (the Apache child
/// closed it) or it was refused. The body, the response and the monitor (which answers
/// 504 on it for a stuck request) share `connection`.
fn serve(state: &State, connection: &Arc<UnixStream>, slot: usize) -> bool {
    let mut stream = &**connection;
    let log = Target::Server(state.server);
    let mut payload = Vec::new();
    let timeout = io_timeout(&state.group);
    // Buffered, so a request frame that has arrived whole is taken in one receive; the
    // child sends nothing more until asked, so nothing is left in the buffer.
    let poll = PollReader { stream, timeout, answer_pending: false };
    let mut reader = std::io::BufReader::with_capacity(REQUEST_READ, poll);
    let frame = match protocol::read_frame(&mut reader, &mut payload) {
        Ok(_) if !reader.buffer().is_empty() => {
            Err(std::io::Error::other("bytes after the request frame"))
        }
        Ok(Kind::Request) => RequestFrame::decode(&payload),
        Ok(other) => Err(std::io::Error::other(format!("expected a request frame, got {other:?}"))),
        Err(e) => Err(e),
    };
    let mut frame = match frame {
        Ok(f) if protocol::secrets_match(&f.secret, &state.generation.secret) => f,
        Ok(_) => {
            log.log(Level::Error, &format!("WSGI daemon group '{}': refused a connection that did not present this generation's secret", state.group.def.name));
            return false;
        }
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && payload.is_empty() => {
            return false
        }
        Err(e) => {
            log.log(
                Level::Error,
                &format!(
                    "WSGI daemon group '{}': bad request from an Apache child: {e}",
                    state.group.def.name
                ),
            );
            return false;
        }
    };
    // A changed script restarts the process (as in mod_wsgi) instead of reloading in
    // place: the request is not taken, so the Apache child sends it again and it lands
    // on a fresh process.
    if frame.reload
        && script::loaded_mtime(&frame.script).is_some_and(|loaded| loaded != frame.mtime)
    {
        state.stop(format!("script '{}' changed", frame.script), false);
        let _ = protocol::write_frame(&mut stream, Kind::Declined, b"");
        return false;
    }
    // `queue_start` is when the Apache child handed the request over (as in mod_wsgi).
    let now = environ::now();
    frame.keys.daemon_start = now;
    if frame.keys.queue_start <= 0.0 {
        frame.keys.queue_start = now;
    }
    let waited = (now - frame.keys.queue_start).max(0.0);
    let queue_timeout = state.group.def.queue_timeout;
    if !queue_timeout.is_zero() && waited > queue_timeout.as_secs_f64() {
        log.log(Level::Error, &format!("WSGI daemon group '{}': request for '{}' waited {waited:.1}s from its hand-over by the Apache child until a daemon thread took it, more than queue-timeout={}s; answering 504", state.group.def.name, request_uri(&frame), queue_timeout.as_secs_f64()));
        return protocol::write_frame(&mut stream, Kind::Fail, &504u16.to_be_bytes()).is_ok();
    }
    *state.busy[slot].lock().unwrap_or_else(|e| e.into_inner()) = Some(Busy {
        since: std::time::Instant::now(),
        thread: crate::python::thread_ident(),
        uri: request_uri(&frame),
        connection: connection.clone(),
    });
    let cgi_vars = std::mem::take(&mut frame.cgi);
    let mut cgi = |emit: &mut dyn FnMut(&str, &[u8])| {
        for (key, value) in cgi_vars.iter() {
            emit(key, value);
        }
    };
    let mut call = Call {
        script: &frame.script,
        mtime: frame.mtime,
        reload: frame.reload,
        keys: &frame.keys,
        cgi: &mut cgi,
        header_only: frame.header_only,
        log,
    };
    let answer = Arc::new(Mutex::new(Answer::default()));
    let outcome = thread_state::attach(|py| {
        let source =
            Box::new(SocketBody { stream: connection.clone(), timeout, answer: answer.clone() });
        let sink = Box::new(SocketSink::new(connection.clone()));
        call.run(py, source, sink, LogStream::for_server(state.server))
    });
    let sent = match outcome.send_rest() {
        Outcome::Failed(status) => {
            protocol::write_frame(&mut stream, Kind::Fail, &status.to_be_bytes()).is_ok()
        }
        Outcome::Sent => true,
    };
    sent && drain(stream, timeout, &answer)
}

/// The request's URI as the client sent it, for log lines.
fn request_uri(frame: &RequestFrame) -> String {
    frame
        .cgi
        .get("REQUEST_URI")
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

/// Body bytes each `Read` also asks for, to be taken if the Apache child already has
/// them: they wait in the socket until the application reads them, so a large upload
/// costs a round trip per few hundred KiB, not per application read, and no buffer
/// here. The child takes no more than its socket's send buffer holds.
const READ_AHEAD: usize = 1024 * 1024;

/// Where the answer to the last `Read` stands. Its bytes are taken from the socket only
/// as the application reads them; what it never reads is drained when the request ends.
#[derive(Default)]
struct Answer {
    /// Bytes of the current frame still in the socket.
    unread: usize,
    /// Frames of the answer still to come after the current one.
    more: bool,
    /// Bytes the answer brought so far.
    brought: usize,
    /// An answer brought nothing: the body has ended.
    ended: bool,
    /// A read failed: the connection is out of step and the body broken.
    broken: bool,
    /// The next frame's header as far as it has arrived (`header_got` bytes).
    header: [u8; protocol::HEADER_LEN],
    header_got: usize,
}

/// The request body, pulled from the Apache child one `Read` at a time.
struct SocketBody {
    stream: Arc<UnixStream>,
    /// How long a read may wait.
    timeout: Duration,
    /// Shared with the worker, which drains it when the request ends.
    answer: Arc<Mutex<Answer>>,
}

impl SocketBody {
    /// Runs a read on the answer's state. A failure other than the child's `BodyError`
    /// leaves the connection out of step, and marks it broken for every later read.
    fn on_answer(
        &self,
        read: impl FnOnce(&UnixStream, Duration, &mut Answer) -> Result<usize, Failure>,
    ) -> Result<usize, BodyError> {
        let mut answer = self.answer.lock().unwrap_or_else(|e| e.into_inner());
        if answer.broken {
            return Err(BodyError);
        }
        let result = read(&self.stream, self.timeout, &mut answer);
        answer.broken |= matches!(result, Err(Failure::Broken));
        result.map_err(|_| BodyError)
    }
}

/// Why a read from the socket failed.
enum Failure {
    /// The Apache child answered `BodyError`: the client broke off the body.
    Client,
    /// The socket failed or carried something else.
    Broken,
}

/// How a read takes the answer's bytes.
#[derive(Clone, Copy)]
enum How {
    /// Only what is in the socket already (headers of its next frames included), without
    /// waiting or asking for more.
    AtHand,
    /// Waiting for them; with `all`, until `buf` is full or the body ends, otherwise what
    /// the first read brings. The Apache child is asked for more when the last answer is
    /// used up.
    Wait { all: bool },
}

/// Reads the answer into `buf`, as `how` says.
fn read_answer(
    stream: &UnixStream,
    timeout: Duration,
    answer: &mut Answer,
    buf: &mut [MaybeUninit<u8>],
    how: How,
) -> Result<usize, Failure> {
    let mut reader = PollReader { stream, timeout, answer_pending: false };
    let wait = matches!(how, How::Wait { .. });
    let mut got = 0;
    while got < buf.len() {
        if answer.unread > 0 {
            let end = got + answer.unread.min(buf.len() - got);
            let part = &mut buf[got..end];
            let n = if wait {
                reader.read_into(part).map_err(|_| Failure::Broken)?
            } else {
                match recv_now(stream, part, 0).map_err(|_| Failure::Broken)? {
                    None => break,
                    Some(n) => n,
                }
            };
            if n == 0 {
                return Err(Failure::Broken);
            }
            got += n;
            answer.unread -= n;
        } else if answer.more {
            if !next_frame(&mut reader, answer, wait)? {
                break;
            }
        } else {
            match how {
                How::Wait { all } if !answer.ended && (got == 0 || all) => {
                    let size = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
                    let ask = ReadAsk { want: size(buf.len() - got), all, ahead: size(READ_AHEAD) };
                    protocol::write_frame(&mut &*stream, Kind::Read, &ask.encode())
                        .map_err(|_| Failure::Broken)?;
                    reader.answer_pending = true;
                    answer.brought = 0;
                    next_frame(&mut reader, answer, true)?;
                }
                _ => break,
            }
        }
    }
    Ok(got)
}

/// Reads the header of the answer's next frame (how long it is, and whether more
/// follow); with `wait`, until it is whole. Without, false if it has not all arrived
/// (what has is kept for the next call).
fn next_frame(
    reader: &mut PollReader<'_>,
    answer: &mut Answer,
    wait: bool,
) -> Result<bool, Failure> {
    while answer.header_got < protocol::HEADER_LEN {
        let rest = &mut answer.header[answer.header_got..];
        let n = if wait {
            reader.read(rest).map_err(|_| Failure::Broken)?
        } else {
            // SAFETY: a receive writes only the bytes it received.
            match recv_now(reader.stream, unsafe { as_uninit(rest) }, 0) {
                Ok(None) => return Ok(false),
                Ok(Some(n)) => n,
                Err(_) => return Err(Failure::Broken),
            }
        };
        if n == 0 {
            return Err(Failure::Broken);
        }
        answer.header_got += n;
    }
    answer.header_got = 0;
    answer.more = false;
    let (kind, len) = protocol::parse_header(&answer.header).map_err(|_| Failure::Broken)?;
    answer.more = match kind {
        Kind::BodyPart => true,
        Kind::Body => false,
        Kind::BodyError if len == 0 => return Err(Failure::Client),
        _ => return Err(Failure::Broken),
    };
    answer.unread = len;
    answer.brought += len;
    answer.ended = !answer.more && answer.brought == 0;
    Ok(true)
}

/// Reads and drops what the application left of the last answer, so the connection is
/// in step for the next request. False if that failed.
fn drain(stream: &UnixStream, timeout: Duration, answer: &Mutex<Answer>) -> bool {
    let mut answer = answer.lock().unwrap_or_else(|e| e.into_inner());
    let mut reader = PollReader { stream, timeout, answer_pending: false };
    let mut scrap = [MaybeUninit::uninit(); 8 * 1024];
    while !answer.broken && (answer.unread > 0 || answer.more) {
        if answer.unread == 0 {
            let next = next_frame(&mut reader, &mut answer, true);
            answer.broken |= matches!(next, Err(Failure::Broken));
            continue;
        }
        let want = answer.unread.min(scrap.len());
        match reader.read_into(&mut scrap[..want]) {
            Ok(n) if n > 0 => answer.unread -= n,
            _ => answer.broken = true,
        }
    }
    !answer.broken
}

impl BodySource for SocketBody {
    fn read(&mut self, buf: &mut [MaybeUninit<u8>]) -> Result<usize, BodyError> {
        let how = How::Wait { all: false };
        self.on_answer(|stream, timeout, answer| read_answer(stream, timeout, answer, buf, how))
    }

    fn read_all(&mut self, buf: &mut [MaybeUninit<u8>]) -> Result<usize, BodyError> {
        let how = How::Wait { all: true };
        self.on_answer(|stream, timeout, answer| read_answer(stream, timeout, answer, buf, how))
    }

    fn read_at_hand(&mut self, buf: &mut [MaybeUninit<u8>]) -> Result<usize, BodyError> {
        let how = How::AtHand;
        self.on_answer(|stream, timeout, answer| read_answer(stream, timeout, answer, buf, how))
    }
}

/// Blocks up to this size are copied into the frame buffer; larger ones are written
/// from where the application keeps them.
const COPY_MAX: usize = 8 * 1024;

/// Larger blocks go in several `Data` frames (a frame holds at most `MAX_FRAME`).
const DATA_FRAME_MAX: usize = 4 * 1024 * 1024;

/// The response, framed onto the connection.
struct SocketSink {
    stream: Arc<UnixStream>,
    /// What `pass` writes, in order.
    parts: Vec<Part>,
}

enum Part {
    /// Frame headers and small blocks.
    Bytes(Vec<u8>),
    /// A large block, which the caller keeps alive until `pass` returns (the contract of
    /// `ResponseSink::data`).
    Borrowed(*const u8, usize),
    /// A file range (duplicated descriptor, offset, length), sent as `Data` frames.
    File(std::fs::File, u64, u64),
}

impl SocketSink {
    fn new(stream: Arc<UnixStream>) -> SocketSink {
        SocketSink { stream, parts: Vec::new() }
    }

    /// The buffer that frames go to next.
    fn bytes(&mut self) -> &mut Vec<u8> {
        if !matches!(self.parts.last(), Some(Part::Bytes(_))) {
            self.parts.push(Part::Bytes(Vec::new()));
        }
        match self.parts.last_mut() {
            Some(Part::Bytes(bytes)) => bytes,
            _ => unreachable!("just pushed"),
        }
    }

    fn put_frame(&mut self, kind: Kind, payload: &[u8]) {
        protocol::put_frame(self.bytes(), kind, payload);
    }

    fn send_file(
        &mut self,
        file: &std::fs::File,
        mut offset: u64,
        mut len: u64,
    ) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let mut block = vec![0u8; 64 * 1024];
        while len > 0 {
            let want = block.len().min(usize::try_from(len).unwrap_or(usize::MAX));
            let n = file.read_at(&mut block[..want], offset)?;
            if n == 0 {
                break;
            }
            protocol::write_frame(&mut &*self.stream, Kind::Data, &block[..n])?;
            offset += n as u64;
            len -= n as u64;
        }
        Ok(())
    }
}

impl ResponseSink for SocketSink {
    fn head(&mut self, head: &Head) {
        let payload = protocol::encode_head(&head.status.line, &head.headers);
        self.put_frame(Kind::Head, &payload);
    }

    fn data(&mut self, data: &[u8]) {
        if data.len() <= COPY_MAX {
            return self.copy(data);
        }
        for block in data.chunks(DATA_FRAME_MAX) {
            self.bytes().extend_from_slice(&protocol::header(Kind::Data, block.len()));
            self.parts.push(Part::Borrowed(block.as_ptr(), block.len()));
        }
    }

    fn copy(&mut self, data: &[u8]) {
        for block in data.chunks(DATA_FRAME_MAX) {
            self.put_frame(Kind::Data, block);
        }
    }

    fn file(&mut self, fd: i32, offset: i64, len: u64) -> std::io::Result<()> {
        // SAFETY: dup of a descriptor the caller keeps open; the File owns the duplicate.
        let dup = unsafe { libc::dup(fd) };
        if dup < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `dup` is a new descriptor owned by nothing else.
        let file = unsafe { std::fs::File::from_raw_fd(dup) };
        self.parts.push(Part::File(file, u64::try_from(offset).unwrap_or(0), len));
        Ok(())
    }

    fn flush(&mut self) {
        self.put_frame(Kind::Flush, b"");
    }

    fn end(&mut self) {
        self.put_frame(Kind::End, b"");
    }

    fn broken(&mut self) {
        self.put_frame(Kind::Broken, b"");
    }

    fn pass(&mut self) -> Result<(), ClientGone> {
        let parts = std::mem::take(&mut self.parts);
        let mut slices: Vec<&[u8]> = Vec::new();
        for part in &parts {
            match part {
                Part::Bytes(bytes) => slices.push(bytes),
                Part::Borrowed(ptr, len) => {
                    // SAFETY: the caller of `data` keeps the block alive until this returns.
                    slices.push(unsafe { std::slice::from_raw_parts(*ptr, *len) })
                }
                Part::File(file, offset, len) => {
                    protocol::write_parts(&mut &*self.stream, &slices).map_err(|_| ClientGone)?;
                    slices.clear();
                    self.send_file(file, *offset, *len).map_err(|_| ClientGone)?;
                }
            }
        }
        protocol::write_parts(&mut &*self.stream, &slices).map_err(|_| ClientGone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket pair: the daemon's end, and the Apache child's end for the test to play.
    fn pair() -> (Arc<UnixStream>, UnixStream) {
        let (daemon, child) = UnixStream::pair().expect("socket pair");
        (Arc::new(daemon), child)
    }

    /// A test buffer as the sources take it.
    fn uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
        // SAFETY: the sources under test write received bytes only.
        unsafe { crate::io::as_uninit(buf) }
    }

    fn body(stream: &Arc<UnixStream>) -> (SocketBody, Arc<Mutex<Answer>>) {
        let answer = Arc::new(Mutex::new(Answer::default()));
        let timeout = Duration::from_secs(5);
        (SocketBody { stream: stream.clone(), timeout, answer: answer.clone() }, answer)
    }

    #[test]
    fn read_ahead_stays_in_the_socket_until_read_and_is_drained_at_the_end() {
        let (daemon, mut child) = pair();
        let (mut source, answer) = body(&daemon);
        // The answer to the first Read: 1000 bytes asked for, 70000 more read ahead, in a
        // part and a last frame.
        let bytes: Vec<u8> = (0..71_000u32).map(|i| (i % 253) as u8).collect();
        protocol::write_frame(&mut child, Kind::BodyPart, &bytes[..65_536]).unwrap();
        protocol::write_frame(&mut child, Kind::Body, &bytes[65_536..]).unwrap();
        // What the connection carries next, which the drain must not touch.
        protocol::write_frame(&mut child, Kind::Request, b"next").unwrap();

        let mut buf = vec![0u8; 1000];
        assert_eq!(source.read_all(uninit(&mut buf)).ok(), Some(1000));
        assert_eq!(buf, bytes[..1000]);
        let mut payload = Vec::new();
        let (kind, ask) = {
            let kind = protocol::read_frame(&mut child, &mut payload).unwrap();
            (kind, ReadAsk::decode(&payload).unwrap())
        };
        assert_eq!(kind, Kind::Read);
        assert_eq!(ask, ReadAsk { want: 1000, all: true, ahead: READ_AHEAD as u32 });

        // The next read is served from what waits in the socket, across the frames,
        // without asking again.
        let mut buf = vec![0u8; 66_000];
        assert_eq!(source.read_all(uninit(&mut buf)).ok(), Some(66_000));
        assert_eq!(buf, bytes[1000..67_000]);
        assert_eq!(answer.lock().unwrap().unread, 4000);

        drop(source);
        assert!(drain(&daemon, Duration::from_secs(5), &answer), "the rest is drained");
        let mut reader = &*daemon;
        assert_eq!(protocol::read_frame(&mut reader, &mut payload).unwrap(), Kind::Request);
        assert_eq!(payload, b"next");
        child.set_nonblocking(true).unwrap();
        assert!(
            protocol::read_frame(&mut child, &mut payload).is_err(),
            "the daemon sent nothing more than the one Read"
        );
    }

    #[test]
    fn an_empty_answer_ends_the_body_and_a_body_error_fails_only_the_read() {
        let (daemon, mut child) = pair();
        let (mut source, answer) = body(&daemon);
        protocol::write_frame(&mut child, Kind::BodyPart, b"abc").unwrap();
        protocol::write_frame(&mut child, Kind::BodyError, b"").unwrap();
        let mut buf = [0u8; 10];
        assert!(source.read_all(uninit(&mut buf)).is_err(), "the client broke off");
        assert!(!answer.lock().unwrap().broken, "the connection is still in step");

        protocol::write_frame(&mut child, Kind::Body, b"").unwrap();
        assert_eq!(source.read(uninit(&mut buf)).ok(), Some(0), "an empty answer ends the body");
        assert_eq!(
            source.read(uninit(&mut buf)).ok(),
            Some(0),
            "and the end is not asked for again"
        );
        let mut payload = Vec::new();
        for _ in 0..2 {
            let kind = protocol::read_frame(&mut child, &mut payload).unwrap();
            assert_eq!(kind, Kind::Read, "one Read per answer");
        }
        child.set_nonblocking(true).unwrap();
        assert!(protocol::read_frame(&mut child, &mut payload).is_err(), "and no third");
        assert!(drain(&daemon, Duration::from_secs(5), &answer));
    }

    #[test]
    fn bytes_at_hand_are_read_without_waiting_or_asking() {
        let (daemon, mut child) = pair();
        let (mut source, _answer) = body(&daemon);
        let mut buf = [0u8; 16];
        assert_eq!(
            source.read_at_hand(uninit(&mut buf)).ok(),
            Some(0),
            "no answer, nothing at hand"
        );
        // Start an answer: a Read goes out, and its first part comes back.
        protocol::write_frame(&mut child, Kind::BodyPart, b"abcdef").unwrap();
        assert_eq!(source.read_all(uninit(&mut buf[..2])).ok(), Some(2));
        // The rest of that part is at hand; the next part has not come, so that is all.
        assert_eq!(source.read_at_hand(uninit(&mut buf)).ok(), Some(4));
        assert_eq!(&buf[..4], b"cdef");
        assert_eq!(source.read_at_hand(uninit(&mut buf)).ok(), Some(0), "waits for nothing");
        // Once the next part is there, its bytes are at hand too.
        protocol::write_frame(&mut child, Kind::Body, b"gh").unwrap();
        assert_eq!(source.read_at_hand(uninit(&mut buf)).ok(), Some(2));
        assert_eq!(&buf[..2], b"gh");
        let mut payload = Vec::new();
        assert_eq!(protocol::read_frame(&mut child, &mut payload).unwrap(), Kind::Read);
        child.set_nonblocking(true).unwrap();
        assert!(protocol::read_frame(&mut child, &mut payload).is_err(), "only one Read");
    }

    #[test]
    fn a_header_half_at_hand_is_kept_and_finished_later() {
        use std::io::Write;
        let (daemon, mut child) = pair();
        let (mut source, _answer) = body(&daemon);
        protocol::write_frame(&mut child, Kind::BodyPart, b"ab").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(source.read_all(uninit(&mut buf[..2])).ok(), Some(2));
        // Only two bytes of the next header have come: nothing to give, and no waiting.
        let header = protocol::header(Kind::Body, 3);
        child.write_all(&header[..2]).unwrap();
        assert_eq!(source.read_at_hand(uninit(&mut buf)).ok(), Some(0));
        // The rest of the header and the payload come; the read picks up where it was.
        child.write_all(&header[2..]).unwrap();
        child.write_all(b"cde").unwrap();
        assert_eq!(source.read_all(uninit(&mut buf[..3])).ok(), Some(3));
        assert_eq!(&buf[..3], b"cde");
    }
}
