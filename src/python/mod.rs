//! Hosting CPython: the interpreter's life cycle, per-thread state, and the objects a
//! WSGI application talks to (`wsgi.input`, `wsgi.errors`, `start_response`,
//! `wsgi.file_wrapper`).
//!
//! GIL rules for this crate: a thread attaches only through [`thread_state::attach`],
//! which pins one thread state per OS thread for its whole life; every call that can
//! block on Apache or the network runs inside [`detach`], with the GIL released.

pub mod errors;
pub mod file_wrapper;
pub mod input;
pub mod interpreter;
pub mod module;
pub mod script;
pub mod start_response;
pub mod thread_state;

use pyo3::Python;

/// Makes a value `Send` for the length of a [`detach`] call.
struct AssertSend<T>(T);
// SAFETY: `detach` runs its closure synchronously on the calling thread; the wrapper
// only lets Apache pointers and borrowed byte slices through pyo3's `Send` bound, which
// exists to keep Python objects from being touched without the GIL. Nothing wrapped here
// is a Python object.
unsafe impl<T> Send for AssertSend<T> {}

/// Runs `f` with the GIL released. `f` must not touch Python objects.
pub fn detach<T>(py: Python<'_>, f: impl FnOnce() -> T) -> T {
    let f = AssertSend(f);
    let out = py.detach(move || {
        let f = f;
        AssertSend((f.0)())
    });
    out.0
}

/// The Python thread identifier of the calling thread (`threading.get_ident()`).
pub fn thread_ident() -> u64 {
    // SAFETY: PyThread_get_thread_ident only reads the OS thread id.
    u64::from(unsafe { pyo3::ffi::PyThread_get_thread_ident() })
}
