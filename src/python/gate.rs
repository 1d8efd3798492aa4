//! A gate in front of the GIL: one request thread at a time competes for it.
//!
//! With many Apache threads per process, every thread that wants the GIL sleeps on it
//! and the holder is asked to drop it every switch interval; much of the time then goes
//! to waking threads that only queue again. The thread that holds the permit takes the
//! GIL almost uncontended; the others wait here without disturbing it.
//!
//! A permit holder can also block with the GIL released (a database query, `sleep`),
//! and then the others must not wait for it. So a waiter's patience follows what the
//! recent permit holders did: when they were mostly on the CPU (their thread CPU time
//! close to their wall time), waiting is worth it; when they were mostly blocked, a
//! waiter gives up almost at once and goes for the GIL like any thread.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

struct Gate {
    state: Mutex<GateState>,
    freed: Condvar,
}

struct GateState {
    free: bool,
    /// Threads waiting for the permit: with none, giving it back wakes nobody (a
    /// `notify_one` costs a system call even when no one waits).
    waiting: u32,
}

static GATE: Gate =
    Gate { state: Mutex::new(GateState { free: true, waiting: 0 }), freed: Condvar::new() };

/// Share of wall time recent permit holders spent on the CPU, in percent (a moving
/// average).
static CPU_SHARE: AtomicU32 = AtomicU32::new(100);

/// Patience when holders compute, and when they block.
const PATIENCE_BUSY: Duration = Duration::from_millis(2);
const PATIENCE_BLOCKED: Duration = Duration::from_micros(100);

/// One permit in this many is timed: reading a thread's CPU clock takes the scheduler's
/// lock, too dear to do on every pass of a streamed response.
const TIME_ONE_IN: u32 = 16;

thread_local! {
    // No destructors: safe in any process.
    /// Whether this thread holds the permit, and for a timed permit, when it took it in
    /// wall and CPU time.
    static HOLDING: Cell<Option<Option<(Instant, Duration)>>> = const { Cell::new(None) };
    /// Permits this thread took, to pick the ones to time.
    static TAKEN: Cell<u32> = const { Cell::new(0) };
}

/// CPU time used by the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec for a valid clock id.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Waits (briefly) for the permit. Call without the GIL.
pub fn enter() {
    let patience =
        if CPU_SHARE.load(Ordering::Relaxed) >= 20 { PATIENCE_BUSY } else { PATIENCE_BLOCKED };
    let mut gate = GATE.state.lock().unwrap_or_else(|e| e.into_inner());
    if !gate.free {
        gate.waiting += 1;
        gate = GATE
            .freed
            .wait_timeout_while(gate, patience, |g| !g.free)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        gate.waiting -= 1;
    }
    if gate.free {
        gate.free = false;
        let n = TAKEN.with(|t| t.replace(t.get().wrapping_add(1)));
        let timed = (n % TIME_ONE_IN == 0).then(|| (Instant::now(), thread_cpu_time()));
        HOLDING.with(|h| h.set(Some(timed)));
    }
}

/// Gives back the permit, if this thread holds it.
pub fn leave() {
    let Some(timed) = HOLDING.with(|h| h.take()) else { return };
    if let Some((since, cpu_since)) = timed {
        let wall = since.elapsed().as_nanos().max(1);
        let cpu = thread_cpu_time().saturating_sub(cpu_since).as_nanos();
        let share = (cpu * 100 / wall).min(100) as u32;
        let old = CPU_SHARE.load(Ordering::Relaxed);
        CPU_SHARE.store((old * 7 + share) / 8, Ordering::Relaxed);
    }
    let waiting = {
        let mut gate = GATE.state.lock().unwrap_or_else(|e| e.into_inner());
        gate.free = true;
        gate.waiting
    };
    if waiting > 0 {
        GATE.freed.notify_one();
    }
}
