//! APR pools: copying strings into them and tying Rust values to their lifetime.

use std::os::raw::{c_char, c_void};

use crate::ffi;

/// Copies `s` into the pool; the result lives as long as the pool.
///
/// # Safety
/// `pool` is a live APR pool.
pub unsafe fn pstrdup(pool: *mut ffi::apr_pool_t, s: &[u8]) -> *mut c_char {
    // SAFETY: apr_pstrmemdup copies exactly `len` bytes and NUL-terminates the copy.
    unsafe { ffi::apr_pstrmemdup(pool, s.as_ptr().cast(), s.len()) }
}

/// Copies `s` into the pool, cutting it at its first NUL.
///
/// # Safety
/// `pool` is a live APR pool.
pub unsafe fn pstr(pool: *mut ffi::apr_pool_t, s: &str) -> *mut c_char {
    let end = s.find('\0').unwrap_or(s.len());
    // SAFETY: forwarded from the caller.
    unsafe { pstrdup(pool, &s.as_bytes()[..end]) }
}

unsafe extern "C" fn drop_boxed<T>(data: *mut c_void) -> ffi::apr_status_t {
    // SAFETY: `data` came from Box::into_raw in `attach` and the pool runs each
    // cleanup exactly once. A panic in a destructor must not cross into C.
    let _ = std::panic::catch_unwind(|| drop(unsafe { Box::from_raw(data.cast::<T>()) }));
    0
}

/// Moves `value` into the pool: it is dropped when the pool is cleared or destroyed.
/// Returns a pointer that is valid until then.
///
/// # Safety
/// `pool` is a live APR pool.
pub unsafe fn attach<T>(pool: *mut ffi::apr_pool_t, value: T) -> *mut T {
    let raw = Box::into_raw(Box::new(value));
    // SAFETY: `raw` stays valid until `drop_boxed` runs in the pool's cleanup; child
    // cleanups are irrelevant for plain memory, so the null one is used.
    unsafe {
        ffi::apr_pool_cleanup_register(
            pool,
            raw.cast(),
            Some(drop_boxed::<T>),
            Some(ffi::apr_pool_cleanup_null),
        )
    };
    raw
}

/// Runs `f` when the pool is cleared or destroyed.
///
/// # Safety
/// `pool` is a live APR pool.
pub unsafe fn on_cleanup(pool: *mut ffi::apr_pool_t, f: impl FnOnce() + 'static) {
    struct RunOnDrop<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for RunOnDrop<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    // SAFETY: forwarded from the caller.
    unsafe { attach(pool, RunOnDrop(Some(f))) };
}
