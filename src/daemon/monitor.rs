//! The daemon's watchdog: the timeouts that recycle a process (`request-timeout`,
//! `inactivity-timeout`, `restart-interval`, `deadlock-timeout`), each saying in the
//! error log what happened, to which process and which request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;

use super::protocol::{self, Kind};
use super::state::State;
use crate::apache::log::{self, Level};
use crate::python::{script, thread_state};

/// How often the monitor looks.
const TICK: Duration = Duration::from_millis(250);

/// The Python stack of thread `ident`, innermost call last.
fn python_stack(py: Python<'_>, ident: u64) -> PyResult<String> {
    let frames = py.import("sys")?.call_method0("_current_frames")?;
    let Some(frame) = frames.get_item(ident).ok() else {
        return Ok(String::from("(thread not running Python)"));
    };
    let lines: Vec<String> =
        py.import("traceback")?.call_method1("format_stack", (frame,))?.extract()?;
    Ok(lines.concat())
}

/// Reports a request that ran past `request-timeout`, answers it 504, and stops the
/// process: the thread cannot be freed any other way.
fn request_timed_out(state: &State, slot: usize, timeout: Duration) {
    let busy = state.busy[slot].lock().unwrap_or_else(|e| e.into_inner()).take();
    let Some(busy) = busy else { return };
    let name = &state.group.def.name;
    let pid = std::process::id();
    log::server(state.server, Level::Error, &format!("Daemon process {pid} of WSGI group '{name}': request-timeout of {}s exceeded by the request for '{}' (running {:.1}s); answering 504 and restarting the process", timeout.as_secs_f64(), busy.uri, busy.since.elapsed().as_secs_f64()));
    let stack = thread_state::attach(|py| python_stack(py, busy.thread))
        .unwrap_or_else(|e| format!("(no stack: {e})"));
    for line in stack.lines() {
        log::server(
            state.server,
            Level::Error,
            &format!("request-timeout stack of '{}': {line}", busy.uri),
        );
    }
    let _ = protocol::write_frame(&mut &*busy.connection, Kind::Fail, &504u16.to_be_bytes());
    let _ = busy.connection.shutdown(std::net::Shutdown::Both);
    state.stop(
        format!("request-timeout ({}s) exceeded by '{}'", timeout.as_secs_f64(), busy.uri),
        true,
    );
}

/// Keeps proving that the GIL can be taken; the monitor restarts the process when it
/// cannot be for `deadlock-timeout`.
fn probe_gil(state: Arc<State>, last_seen: Arc<AtomicU64>) {
    while !state.stopping.load(Ordering::Acquire) {
        thread_state::attach(|_| ());
        last_seen.store(state.started.elapsed().as_millis() as u64, Ordering::Release);
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The monitor thread.
pub fn run(state: &Arc<State>) {
    let def = &state.group.def;
    let name = &def.name;
    let pid = std::process::id();
    let gil_seen = Arc::new(AtomicU64::new(0));
    if !def.deadlock_timeout.is_zero() {
        let (probe_state, probe_seen) = (state.clone(), gil_seen.clone());
        let _ = std::thread::Builder::new()
            .name(format!("wsgi:{name}:gil"))
            .spawn(move || probe_gil(probe_state, probe_seen));
    }
    while !state.stopping.load(Ordering::Acquire) {
        std::thread::sleep(TICK);
        if !def.request_timeout.is_zero() {
            let stuck = state.busy.iter().position(|b| {
                b.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                    .is_some_and(|b| b.since.elapsed() > def.request_timeout)
            });
            if let Some(slot) = stuck {
                request_timed_out(state, slot, def.request_timeout);
                return;
            }
        }
        let idle_for = state.last_activity.lock().unwrap_or_else(|e| e.into_inner()).elapsed();
        if !def.inactivity_timeout.is_zero()
            && state.active.load(Ordering::Acquire) == 0
            && idle_for > def.inactivity_timeout
        {
            state.stop(
                format!("inactivity-timeout ({}s) reached", def.inactivity_timeout.as_secs_f64()),
                false,
            );
            return;
        }
        let requests_came =
            state.served.load(Ordering::Acquire) > 0 || state.active.load(Ordering::Acquire) > 0;
        if !def.startup_timeout.is_zero()
            && requests_came
            && !script::any_loaded()
            && state.started.elapsed() > def.startup_timeout
        {
            log::server(state.server, Level::Error, &format!("Daemon process {pid} of WSGI group '{name}': no WSGI script loaded within startup-timeout={}s; restarting the process", def.startup_timeout.as_secs_f64()));
            state.stop("startup-timeout reached".into(), true);
            return;
        }
        if !def.restart_interval.is_zero() && state.started.elapsed() > def.restart_interval {
            state.stop(
                format!("restart-interval ({}s) reached", def.restart_interval.as_secs_f64()),
                false,
            );
            return;
        }
        if !def.deadlock_timeout.is_zero() {
            let seen = Duration::from_millis(gil_seen.load(Ordering::Acquire));
            if state.started.elapsed().saturating_sub(seen)
                > def.deadlock_timeout + Duration::from_secs(1)
            {
                log::server(state.server, Level::Crit, &format!("Daemon process {pid} of WSGI group '{name}': the Python GIL could not be taken for {}s (deadlock-timeout); restarting the process", def.deadlock_timeout.as_secs_f64()));
                // SAFETY: leaves at once: with the GIL held forever nothing else can run.
                unsafe { libc::_exit(super::process::DEADLOCKED) };
            }
        }
    }
}
