//! One Python thread state per OS thread, kept for the thread's whole life.
//!
//! `PyGILState_Ensure` is taken once on a thread's first request and never released,
//! so the thread state (and with it `threading.local` data such as Django's database
//! connections) survives from one request to the next. Each request then attaches with
//! pyo3's `Python::attach`, which nests inside that first Ensure.

use std::cell::Cell;

use pyo3::{ffi, Python};

thread_local! {
    // No destructor: safe in any process (see DESIGN.md on thread-locals).
    static PINNED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` attached to the interpreter, on this thread's long-lived thread state.
pub fn attach<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    PINNED.with(|pinned| {
        if !pinned.get() {
            // SAFETY: the interpreter is initialised (callers check
            // `interpreter::is_ready`) and this thread holds no GIL: Ensure creates the
            // thread state and takes the GIL, SaveThread releases the GIL and keeps the
            // state, leaving the Ensure count at one for the rest of the thread's life.
            unsafe {
                ffi::PyGILState_Ensure();
                ffi::PyEval_SaveThread();
            }
            pinned.set(true);
        }
    });
    super::gate::enter();
    let out = Python::attach(f);
    super::gate::leave();
    out
}
