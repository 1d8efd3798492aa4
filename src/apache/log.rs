//! Writing to Apache's error log.
//!
//! Messages always travel as the argument of a constant `"%s"` format (see the shim), so
//! text from an application can never act as a format string, and they carry this
//! module's index so `LogLevel wsgi:LEVEL` applies.

use std::ffi::CString;

use crate::ffi;

/// Apache's log levels, most severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(i32)]
pub enum Level {
    Crit = ffi::APLOG_CRIT as i32,
    Error = ffi::APLOG_ERR as i32,
    Warning = ffi::APLOG_WARNING as i32,
    Info = ffi::APLOG_INFO as i32,
}

/// Turns a message into a C string, replacing interior NULs rather than losing the line.
fn c_message(msg: &str) -> CString {
    CString::new(msg.replace('\0', "\\0")).expect("NULs were replaced")
}

/// Logs against a request: Apache adds the client address and the request's log id
/// (which it may allocate from the request's pool: hence the request's lock while a
/// streamed response may be flushed from another thread, see `stream`).
pub fn request(r: *const ffi::request_rec, level: Level, msg: &str) {
    super::stream::with_request_lock(r, || request_unguarded(r, level, msg))
}

/// [`request`] for a caller that holds the request's lock itself.
pub fn request_unguarded(r: *const ffi::request_rec, level: Level, msg: &str) {
    let text = c_message(msg);
    // SAFETY: `r` is the live request of the calling hook (callers only pass requests they
    // are serving); the shim passes `text` as a "%s" argument and does not keep it.
    unsafe {
        ffi::wsgi_shim_log_rerror(
            c"mod_wsgi_rs".as_ptr(),
            0,
            crate::module_index(),
            level as i32,
            0,
            r,
            text.as_ptr(),
        )
    }
}

/// Logs against a server (`null` means the main server's log).
pub fn server(s: *const ffi::server_rec, level: Level, msg: &str) {
    let text = c_message(msg);
    // SAFETY: `s` is null or a server_rec that lives for the process generation; the
    // shim passes `text` as a "%s" argument and does not keep it.
    unsafe {
        ffi::wsgi_shim_log_error(
            c"mod_wsgi_rs".as_ptr(),
            0,
            crate::module_index(),
            level as i32,
            0,
            s,
            text.as_ptr(),
        )
    }
}

/// Where a message goes: a request's log context or a server's.
#[derive(Clone, Copy)]
pub enum Target {
    Request(*const ffi::request_rec),
    Server(*const ffi::server_rec),
}

impl Target {
    pub fn log(self, level: Level, msg: &str) {
        match self {
            Target::Request(r) => request(r, level, msg),
            Target::Server(s) => server(s, level, msg),
        }
    }
}
