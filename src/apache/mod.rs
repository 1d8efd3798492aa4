//! Safe wrappers over the httpd and APR APIs the module uses.
//!
//! This is, with `crate::hooks`, the only home of raw FFI calls: everything above it
//! works with `Request`, `Table`, `Brigade` and the log functions.

pub mod brigade;
pub mod log;
pub mod pool;
pub mod request;
pub mod stream;
pub mod table;

use std::ffi::CStr;
use std::os::raw::c_char;

/// Borrows a NUL-terminated C string as bytes; a null pointer reads as empty.
///
/// # Safety
/// `p` is null or points to a NUL-terminated string that outlives `'a`.
pub unsafe fn c_bytes<'a>(p: *const c_char) -> &'a [u8] {
    if p.is_null() {
        b""
    } else {
        // SAFETY: the caller guarantees a live NUL-terminated string.
        unsafe { CStr::from_ptr(p) }.to_bytes()
    }
}

/// Like [`c_bytes`], decoded lossily as UTF-8 for messages and paths.
///
/// # Safety
/// As for [`c_bytes`].
pub unsafe fn c_str<'a>(p: *const c_char) -> std::borrow::Cow<'a, str> {
    // SAFETY: forwarded from the caller.
    String::from_utf8_lossy(unsafe { c_bytes(p) })
}
