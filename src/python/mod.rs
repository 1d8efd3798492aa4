//! Hosting CPython: the interpreter's life cycle, per-thread state, and the objects a
//! WSGI application talks to (`wsgi.input`, `wsgi.errors`, `start_response`,
//! `wsgi.file_wrapper`).
//!
//! GIL rules for this crate: a thread attaches only through [`thread_state::attach`],
//! which pins one thread state per OS thread for its whole life; every call that can
//! block on Apache or the network runs inside [`detach`], with the GIL released.

pub mod app;
mod environ_strings;
pub mod errors;
pub mod file_wrapper;
mod gate;
pub mod input;
pub mod interpreter;
pub mod module;
pub mod script;
pub mod start_response;
pub mod thread_state;

use pyo3::prelude::*;

use crate::apache::log::{Level, Target};

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
        gate::leave();
        let out = AssertSend((f.0)());
        gate::enter();
        out
    });
    out.0
}

/// The Python thread identifier of the calling thread (`threading.get_ident()`).
pub fn thread_ident() -> u64 {
    // SAFETY: PyThread_get_thread_ident only reads the OS thread id.
    unsafe { pyo3::ffi::PyThread_get_thread_ident() as u64 }
}

/// Logs a Python exception: one line saying what failed where, then the traceback.
pub fn log_exception(py: Python<'_>, target: Target, context: &str, err: &PyErr) {
    let value = err.value(py).repr().map(|r| r.to_string()).unwrap_or_default();
    target.log(Level::Error, &format!("{context}: {value}"));
    let lines = py
        .import("traceback")
        .and_then(|tb| {
            tb.call_method1(
                "format_exception",
                (err.get_type(py), err.value(py), err.traceback(py)),
            )
        })
        .and_then(|l| l.extract::<Vec<String>>());
    if let Ok(lines) = lines {
        for line in lines.concat().lines() {
            target.log(Level::Error, line);
        }
    }
}
