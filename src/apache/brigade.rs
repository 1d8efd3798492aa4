//! Moving bytes through Apache's filters: the response brigade and the request body.

use super::request::Request;
use crate::ffi;
use crate::io::{BodyError, BodySource, ClientGone, ResponseSink};
use crate::response::Head;
use crate::validate::latin1_bytes;

/// Output filters that only transform and write bytes: a pass through them waits on
/// nothing but the client's socket. Any other filter (mod_ratelimit sleeps, for one)
/// keeps a response from being held back.
const QUICK_FILTERS: &[&[u8]] = &[
    b"byterange",
    b"content_length",
    b"http_header",
    b"http_outerror",
    b"chunk",
    b"deflate",
    b"brotli_compress",
    b"fixup_headers_out",
    b"ssl/tls filter",
    b"ssl/tls coalescing filter",
    b"core",
];

/// A brigade bound to a request's output filter chain.
///
/// Buckets are appended, then `pass` hands them to the filters and empties the brigade.
/// Byte buckets are transient: the caller keeps the bytes alive until `pass` returns
/// (filters that hold on to data set it aside, which copies it).
pub struct Output {
    request: Request,
    bb: *mut ffi::apr_bucket_brigade,
}

impl Output {
    pub fn new(request: Request) -> Output {
        // SAFETY: the request and its connection are live for the hook; the brigade is
        // allocated from the request pool and dies with it.
        let bb = unsafe {
            ffi::apr_brigade_create(request.pool(), (*request.connection()).bucket_alloc)
        };
        Output { request, bb }
    }

    /// Whether the output can be held back and passed later by another thread: every
    /// output filter only transforms and writes bytes (see [`QUICK_FILTERS`]), and the
    /// connection is a plain one (an HTTP/2 stream's flow control can make a pass wait).
    pub fn can_be_held(&self) -> bool {
        // SAFETY: reads the live request's connection and walks its output filter chain;
        // each filter has a registered record with a NUL-terminated name.
        unsafe {
            if !(*self.request.connection()).master.is_null() {
                return false;
            }
            let mut f = (*self.request.as_ptr()).output_filters;
            while !f.is_null() {
                let name = std::ffi::CStr::from_ptr((*(*f).frec).name).to_bytes();
                if !QUICK_FILTERS.iter().any(|q| q.eq_ignore_ascii_case(name)) {
                    return false;
                }
                f = (*f).next;
            }
        }
        true
    }

    /// How much the client's connection can take now without waiting: `None` when it
    /// is closed or failed. Data Apache's core filter already keeps back counts as no
    /// room (a flush would write that too).
    pub fn client_room(&self) -> Option<usize> {
        let c = self.request.connection();
        let mut fd: ffi::apr_os_sock_t = -1;
        // SAFETY: the connection is live; `ap_get_conn_socket` returns its socket (or
        // null) and `apr_os_sock_get` only reads the descriptor out of it.
        let (found, backlog) = unsafe {
            let sock = ffi::ap_get_conn_socket(c);
            (
                !sock.is_null() && ffi::apr_os_sock_get(&mut fd, sock) == 0,
                (*c).data_in_output_filters,
            )
        };
        if !found {
            return None;
        }
        let mut poll = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
        // SAFETY: polls one live descriptor without waiting.
        let ready = unsafe { libc::poll(&mut poll, 1, 0) };
        if ready == 1 && poll.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            return None;
        }
        if ready != 1 || backlog != 0 {
            return Some(0);
        }
        let (mut queued, mut sndbuf) = (0 as libc::c_int, 0 as libc::c_int);
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: TIOCOUTQ and SO_SNDBUF each write one int for a live socket.
        let known = unsafe {
            libc::ioctl(fd, libc::TIOCOUTQ, &mut queued) == 0
                && libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_SNDBUF,
                    (&mut sndbuf as *mut libc::c_int).cast(),
                    &mut len,
                ) == 0
        };
        // The kernel doubles SO_SNDBUF for its own bookkeeping: count half of it.
        Some(if known { (sndbuf / 2 - queued).max(0) as usize } else { 0 })
    }

    /// The request this brigade belongs to.
    pub fn request(&self) -> Request {
        self.request
    }

    fn alloc(&self) -> *mut ffi::apr_bucket_alloc_t {
        // SAFETY: the connection outlives the request.
        unsafe { (*self.request.connection()).bucket_alloc }
    }

    fn append(&mut self, bucket: *mut ffi::apr_bucket) {
        // SAFETY: `bucket` was just created from this connection's allocator.
        unsafe { ffi::wsgi_shim_brigade_append(self.bb, bucket) }
    }

    /// Appends `len` bytes that `fill` writes straight into the memory of a new heap
    /// bucket (for large blocks: small ones are better copied into shared buffers).
    pub fn fill(
        &mut self,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        // SAFETY: `apr_bucket_alloc` gives `len` writable bytes (or null); they become the
        // heap bucket's (freed with it), or are freed here if `fill` fails.
        unsafe {
            let buf = ffi::apr_bucket_alloc(len, self.alloc()).cast::<u8>();
            if buf.is_null() {
                return Err(std::io::ErrorKind::OutOfMemory.into());
            }
            if let Err(e) = fill(std::slice::from_raw_parts_mut(buf, len)) {
                ffi::apr_bucket_free(buf.cast());
                return Err(e);
            }
            let b = ffi::apr_bucket_heap_create(
                buf.cast(),
                len,
                Some(ffi::apr_bucket_free),
                self.alloc(),
            );
            self.append(b);
        }
        Ok(())
    }
}

impl ResponseSink for Output {
    fn head(&mut self, head: &Head) {
        let request = self.request;
        request.set_status(head.status.code, &latin1_bytes(&head.status.line));
        let pool = request.pool();
        for (name, value) in &head.headers {
            let value = latin1_bytes(value);
            if name.eq_ignore_ascii_case("content-type") {
                request.set_content_type(&value);
            } else {
                // SAFETY: the strings are copied into the request pool, which outlives
                // the table.
                unsafe { request.headers_out().add(pool, name, &value) };
            }
        }
    }

    fn data(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        // SAFETY: a transient bucket only points at `data`, which the caller keeps alive
        // until `pass`; filters that keep it longer copy it (setaside).
        let b = unsafe {
            ffi::apr_bucket_transient_create(data.as_ptr().cast(), data.len(), self.alloc())
        };
        self.append(b);
    }

    fn copy(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        // Small copies share 8 KB heap buffers: a heap bucket of its own would take a
        // whole 8 KB block of the connection's allocator for each one, and the allocator
        // keeps what it freed (up to MaxMemFree), so a response streamed in small blocks
        // would leave megabytes behind in every child.
        // SAFETY: copies `data` into heap buckets from the brigade's own allocator.
        unsafe { ffi::wsgi_shim_brigade_copy(self.bb, data.as_ptr().cast(), data.len()) };
    }

    fn flush(&mut self) {
        // SAFETY: creates a metadata bucket from the connection's allocator.
        let b = unsafe { ffi::apr_bucket_flush_create(self.alloc()) };
        self.append(b);
    }

    fn end(&mut self) {
        // SAFETY: as in `flush`.
        let b = unsafe { ffi::apr_bucket_eos_create(self.alloc()) };
        self.append(b);
    }

    /// Marks the response as broken: the chunked encoder then omits the final chunk and
    /// the connection is closed, so the client can tell the body is incomplete.
    fn broken(&mut self) {
        // Whatever is queued (the status and headers, perhaps) goes out first: the header
        // filter turns an error bucket that arrives with the headers into an error page.
        // (A failure here means the client is gone, which the error bucket no longer
        // needs to tell.)
        // SAFETY: the brigade belongs to this live request.
        if unsafe { ffi::wsgi_shim_brigade_empty(self.bb) } == 0 {
            let _ = self.pass();
        }
        self.request.close_connection();
        // SAFETY: creates an error bucket from the request pool and connection allocator.
        let b = unsafe {
            ffi::ap_bucket_error_create(
                ffi::HTTP_BAD_GATEWAY as i32,
                std::ptr::null(),
                self.request.pool(),
                self.alloc(),
            )
        };
        self.append(b);
        self.end();
    }

    /// Appends `len` bytes of the open file `fd` from `offset`. The descriptor is
    /// duplicated, so the caller keeps ownership of `fd`.
    fn file(&mut self, fd: i32, offset: i64, len: u64) -> std::io::Result<()> {
        // SAFETY: dup of a descriptor the caller holds open.
        let dup = unsafe { libc::dup(fd) };
        if dup < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut file: *mut ffi::apr_file_t = std::ptr::null_mut();
        let mut os_fd = dup;
        // SAFETY: wraps our own duplicate in an apr_file_t from the request pool; the
        // pool cleanup closes it once the buckets are gone.
        unsafe {
            let rv = ffi::apr_os_file_put(
                &mut file,
                &mut os_fd,
                (ffi::APR_FOPEN_READ | ffi::APR_FOPEN_SENDFILE_ENABLED) as i32,
                self.request.pool(),
            );
            if rv != 0 {
                libc::close(dup);
                return Err(std::io::Error::other("apr_os_file_put failed"));
            }
            ffi::apr_pool_cleanup_register(
                self.request.pool(),
                file.cast(),
                Some(close_apr_file),
                Some(ffi::apr_pool_cleanup_null),
            );
            ffi::apr_brigade_insert_file(
                self.bb,
                file,
                offset,
                len as ffi::apr_off_t,
                self.request.pool(),
            );
        }
        Ok(())
    }

    /// Hands the buckets to the output filters (may block: call with the GIL released).
    fn pass(&mut self) -> Result<(), ClientGone> {
        // SAFETY: the request's filter chain is live; the brigade belongs to it.
        let rv = unsafe { ffi::ap_pass_brigade((*self.request.as_ptr()).output_filters, self.bb) };
        // SAFETY: empties the brigade we own, whatever the filters left in it.
        unsafe { ffi::apr_brigade_cleanup(self.bb.cast()) };
        if rv == 0 {
            Ok(())
        } else {
            Err(ClientGone)
        }
    }
}

unsafe extern "C" fn close_apr_file(file: *mut std::os::raw::c_void) -> ffi::apr_status_t {
    // SAFETY: registered only in `Output::file` with the apr_file_t it created.
    unsafe { ffi::apr_file_close(file.cast()) }
}

/// The request body, read through Apache's input filters (dechunked) into buckets that
/// are written on as they are: a daemon-mode upload is not copied on its way through.
pub struct Body {
    request: Request,
    /// Where each read lands before it is set aside into `gathered` (both made on the
    /// first `gather`).
    scratch: *mut ffi::apr_bucket_brigade,
    /// The bytes of the current [`gather`](Self::gather).
    gathered: *mut ffi::apr_bucket_brigade,
    /// The input filters gave the end of the body.
    ended: bool,
    /// A read failed: the body is broken from here on, and never seen to end.
    failed: bool,
}

impl Body {
    pub fn new(request: Request) -> Body {
        let none = std::ptr::null_mut();
        Body { request, scratch: none, gathered: none, ended: false, failed: false }
    }

    /// Gathers the next `want` bytes of the body (with `all`, all of them unless the body
    /// ends first; without, whatever the first read brings), then up to `ahead` more that
    /// have already arrived (taken without waiting). The bytes stay in Apache's buckets
    /// until the returned [`Gathered`] is dropped.
    pub fn gather(
        &mut self,
        want: usize,
        all: bool,
        ahead: usize,
    ) -> Result<Gathered<'_>, BodyError> {
        if self.gathered.is_null() {
            // SAFETY: the request and its connection are live in the handler; both
            // brigades come from the request pool and die with it.
            unsafe {
                let alloc = (*self.request.connection()).bucket_alloc;
                self.scratch = ffi::apr_brigade_create(self.request.pool(), alloc);
                self.gathered = ffi::apr_brigade_create(self.request.pool(), alloc);
            }
        }
        if self.failed {
            return Err(BodyError);
        }
        // Whatever happens, what was gathered is let go with this guard.
        let mut gathered = Gathered { body: self, len: 0 };
        let body = &mut *gathered.body;
        let mut got = 0;
        let read = |body: &mut Body, max, block| {
            let read = body.read_into_gathered(max, block);
            body.failed |= read.is_err();
            read
        };
        while !body.ended && got < want && (all || got == 0) {
            got += read(body, want - got, ffi::apr_read_type_e_APR_BLOCK_READ)?;
        }
        let full = got == want;
        while full && !body.ended && got < want + ahead {
            match read(body, want + ahead - got, ffi::apr_read_type_e_APR_NONBLOCK_READ)? {
                0 => break, // Nothing more at hand.
                n => got += n,
            }
        }
        gathered.len = got;
        Ok(gathered)
    }

    /// One read from the input filters of at most `max` bytes, set aside onto `gathered`
    /// (a filter's transient bytes, such as mod_ssl's, are copied into heap buckets that
    /// go with the rest; others are kept as they are). A non-blocking read with nothing
    /// at hand gives 0.
    fn read_into_gathered(
        &mut self,
        max: usize,
        block: ffi::apr_read_type_e,
    ) -> Result<usize, BodyError> {
        let r = self.request;
        // SAFETY: the request, its filters and pool are live in the handler; both
        // brigades belong to this body; `ap_save_brigade` moves the buckets of `scratch`
        // onto `gathered` (it needs no filter when the target brigade exists).
        unsafe {
            let rv = ffi::ap_get_brigade(
                (*r.as_ptr()).input_filters,
                self.scratch,
                ffi::ap_input_mode_t_AP_MODE_READBYTES,
                block,
                max as ffi::apr_off_t,
            );
            let nonblock = block == ffi::apr_read_type_e_APR_NONBLOCK_READ;
            if nonblock && rv == libc::EAGAIN {
                ffi::apr_brigade_cleanup(self.scratch.cast());
                return Ok(0);
            }
            let mut len: ffi::apr_off_t = 0;
            if rv != 0
                || ffi::apr_brigade_length(self.scratch, 1, &mut len) != 0
                || len as usize > max
            {
                ffi::apr_brigade_cleanup(self.scratch.cast());
                return Err(BodyError);
            }
            let mut b = std::ptr::null_mut();
            let (mut data, mut size, mut eos) = (std::ptr::null(), 0, 0);
            while ffi::wsgi_shim_brigade_next(self.scratch, &mut b, &mut data, &mut size, &mut eos)
                == 1
            {
                self.ended |= eos != 0;
            }
            let empty = ffi::wsgi_shim_brigade_empty(self.scratch) != 0;
            if block == ffi::apr_read_type_e_APR_BLOCK_READ && empty {
                return Err(BodyError); // A blocking read that brings nothing is a broken filter.
            }
            if ffi::ap_save_brigade(
                std::ptr::null_mut(),
                &mut self.gathered,
                &mut self.scratch,
                r.pool(),
            ) != 0
            {
                ffi::apr_brigade_cleanup(self.scratch.cast());
                return Err(BodyError);
            }
            (*r.as_ptr()).read_length += len;
            Ok(len as usize)
        }
    }
}

impl BodySource for Body {
    fn read(&mut self, buf: &mut [std::mem::MaybeUninit<u8>]) -> Result<usize, BodyError> {
        // SAFETY: the request is live and ap_setup_client_block ran in the handler; the
        // buffer is writable for its length.
        let n = unsafe {
            ffi::ap_get_client_block(self.request.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
        };
        usize::try_from(n).map_err(|_| BodyError)
    }
}

/// Body bytes gathered in Apache's buckets; they are let go when this is dropped.
pub struct Gathered<'a> {
    body: &'a mut Body,
    len: usize,
}

impl Gathered<'_> {
    /// How many bytes were gathered.
    pub fn size(&self) -> usize {
        self.len
    }

    /// The bytes, in order, as slices of the buckets.
    pub fn slices(&self) -> Result<Vec<&[u8]>, BodyError> {
        let mut slices = Vec::new();
        let mut total = 0;
        let mut b = std::ptr::null_mut();
        let (mut data, mut len, mut eos) = (std::ptr::null(), 0, 0);
        // SAFETY: the buckets were set aside, so their bytes are in memory and stay valid
        // until `drop` empties the brigade, which cannot happen while `self` is borrowed.
        unsafe {
            loop {
                match ffi::wsgi_shim_brigade_next(
                    self.body.gathered,
                    &mut b,
                    &mut data,
                    &mut len,
                    &mut eos,
                ) {
                    0 => break,
                    1 if len > 0 => {
                        slices.push(std::slice::from_raw_parts(data.cast::<u8>(), len));
                        total += len;
                    }
                    1 => {}
                    _ => return Err(BodyError),
                }
            }
        }
        if total == self.len {
            Ok(slices)
        } else {
            Err(BodyError)
        }
    }
}

impl Drop for Gathered<'_> {
    fn drop(&mut self) {
        // SAFETY: empties (and frees the buckets of) a brigade this body owns.
        unsafe { ffi::apr_brigade_cleanup(self.body.gathered.cast()) };
    }
}
