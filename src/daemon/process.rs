//! A daemon process, from fork to exit: shed Apache's resources, become the group's
//! user, start Python, serve requests on worker threads, and leave when told to or when
//! a recycling limit is reached.

use std::ffi::CString;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::state::State;
use super::supervisor::{Generation, Group};
use crate::apache::log::{self, Level};
use crate::ffi;
use crate::python::interpreter::{self, Settings};
use crate::python::module::ProcessFacts;

/// Exit code of a daemon that could not start: above every signal number, so the
/// supervisor can tell it from a kill.
pub const FAILED: i32 = 100;
/// Exit code of a daemon that left because its GIL was stuck (`deadlock-timeout`).
pub const DEADLOCKED: i32 = 101;

/// Pause before a daemon that cannot start exits, so Apache's parent (which forks a
/// replacement at once) does not spin on a broken configuration.
const FAILED_PAUSE: Duration = Duration::from_secs(5);

fn fail(server: *mut ffi::server_rec, msg: &str) -> ! {
    log::server(server, Level::Crit, msg);
    std::thread::sleep(FAILED_PAUSE);
    // SAFETY: leaves the forked child at once, without running Apache's exit handlers.
    unsafe { libc::_exit(FAILED) }
}

struct Account {
    uid: libc::uid_t,
    gid: libc::gid_t,
    name: CString,
    home: Option<String>,
}

/// Resolves the group's user and group (defaults: Apache's `User` and `Group`).
fn account(group: &Group) -> Result<Account, String> {
    // SAFETY: ap_unixd_config was filled while reading the configuration.
    let apache = unsafe { &*std::ptr::addr_of!(ffi::ap_unixd_config) };
    let (uid, mut gid) = match &group.def.user {
        Some(user) => {
            let uid = super::supervisor::lookup_uid(user)
                .ok_or_else(|| format!("unknown user '{user}'"))?;
            // SAFETY: reads the passwd record of a known uid.
            let pw = unsafe { libc::getpwuid(uid) };
            // SAFETY: non-null records are valid until the next passwd call.
            (uid, if pw.is_null() { apache.group_id } else { unsafe { (*pw).pw_gid } })
        }
        None => (apache.user_id, apache.group_id),
    };
    if let Some(g) = &group.def.group {
        gid = super::supervisor::lookup_gid(g).ok_or_else(|| format!("unknown group '{g}'"))?;
    }
    // SAFETY: reads the passwd record of the chosen uid.
    let pw = unsafe { libc::getpwuid(uid) };
    let (name, home) = if pw.is_null() {
        (CString::new(format!("#{uid}")).expect("no NUL"), None)
    } else {
        // SAFETY: non-null records hold NUL-terminated strings.
        unsafe {
            (
                std::ffi::CStr::from_ptr((*pw).pw_name).to_owned(),
                Some(std::ffi::CStr::from_ptr((*pw).pw_dir).to_string_lossy().into_owned()),
            )
        }
    };
    Ok(Account { uid, gid, name, home })
}

/// Becomes the group's user. A daemon never runs as root.
fn drop_privileges(group: &Group, account: &Account) -> Result<(), String> {
    if account.uid == 0 {
        return Err("WSGI process blocked from running as root".into());
    }
    // SAFETY: plain credential syscalls in this single-threaded child.
    unsafe {
        if libc::geteuid() != 0 {
            return Ok(()); // Apache was not started as root: nothing to drop.
        }
        if libc::setgid(account.gid) != 0 {
            return Err(format!(
                "setgid({}) failed: {}",
                account.gid,
                std::io::Error::last_os_error()
            ));
        }
        let groups_ok = match &group.def.supplementary_groups {
            Some(names) => {
                let mut gids = Vec::new();
                for name in names {
                    let gid = super::supervisor::lookup_gid(name)
                        .ok_or_else(|| format!("unknown supplementary group '{name}'"))?;
                    gids.push(gid);
                }
                libc::setgroups(gids.len(), gids.as_ptr()) == 0
            }
            None => libc::initgroups(account.name.as_ptr(), account.gid) == 0,
        };
        if !groups_ok {
            return Err(format!(
                "setting supplementary groups failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        if libc::setuid(account.uid) != 0 {
            return Err(format!(
                "setuid({}) failed: {}",
                account.uid,
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// The signals that end a daemon: blocked in every thread, waited for by the main one.
fn stop_signals() -> libc::sigset_t {
    // SAFETY: builds a signal set on the stack.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in
            [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR1, libc::SIGUSR2, libc::SIGXCPU]
        {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Undoes what the fork inherited from Apache's parent: its signal handlers, its signal
/// mask, its listening sockets and the other groups' sockets.
fn shed_apache(own: &Group, generation: &Generation) {
    // SAFETY: resets dispositions and closes descriptors this child does not use.
    unsafe {
        for sig in [
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGCHLD,
            libc::SIGALRM,
        ] {
            libc::signal(sig, libc::SIG_DFL);
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        ffi::ap_close_listeners();
        std::env::remove_var(super::supervisor::SECRET_ENV);
        for group in &generation.groups {
            if group.def.name != own.def.name {
                libc::close(group.listener);
            }
        }
    }
}

/// Interpreter settings for the group: its own `python-home`/`python-path`, the
/// process-wide `WSGIPython*` settings otherwise.
fn settings(group: &Group, server: *mut ffi::server_rec) -> Settings {
    // SAFETY: the main server was configured by this module.
    let main = unsafe { crate::hooks::server_config(server) };
    let mut settings = crate::hooks::python_settings(main);
    if group.def.python_home.is_some() {
        settings.home = group.def.python_home.clone();
    }
    settings.path = group.def.python_path.clone();
    if group.def.python_eggs.is_some() {
        settings.python_eggs = group.def.python_eggs.clone();
    }
    if group.def.switch_interval.is_some() {
        settings.switch_interval = group.def.switch_interval;
    }
    settings.destroy_interpreter = false;
    settings
}

/// The daemon process's life. Never returns.
pub fn run(
    group: &Arc<Group>,
    generation: &Arc<Generation>,
    index: u32,
    server: *mut ffi::server_rec,
) -> ! {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        serve(group, generation, index, server)
    }));
    let code = if result.is_ok() { 0 } else { 1 };
    // SAFETY: leaves the forked child without running Apache's atexit handlers or pool
    // cleanups, which belong to the parent.
    unsafe { libc::_exit(code) }
}

/// The server whose `WSGIDaemonProcess` defined `name`: the group's log lines and its
/// Python output go to that server's `ErrorLog` (a virtual host's own, if it has one).
fn defining_server(main: *mut ffi::server_rec, name: &str) -> *mut ffi::server_rec {
    let mut server = main;
    while !server.is_null() {
        // SAFETY: Apache's server list, configured by this module, lives for the generation.
        unsafe {
            if crate::hooks::server_config(server).daemon_processes.iter().any(|d| d.name == name) {
                return server;
            }
            server = (*server).next;
        }
    }
    main
}

fn serve(group: &Arc<Group>, generation: &Arc<Generation>, index: u32, main: *mut ffi::server_rec) {
    let def = &group.def;
    let server = defining_server(main, &def.name);
    shed_apache(group, generation);
    let account = account(group)
        .unwrap_or_else(|e| fail(server, &format!("WSGI daemon group '{}': {e}", def.name)));
    if let Err(e) = drop_privileges(group, &account) {
        fail(server, &format!("WSGI daemon group '{}': {e}", def.name));
    }
    // SAFETY: plain process-attribute syscalls.
    unsafe {
        if let Some(mask) = def.umask {
            libc::umask(mask as libc::mode_t);
        }
        if def.cpu_priority != 0 {
            libc::setpriority(libc::PRIO_PROCESS, 0, def.cpu_priority);
        }
    }
    set_limits(def);
    if let Some(lang) = &def.lang {
        std::env::set_var("LANG", lang);
    }
    if let Some(locale) = &def.locale {
        std::env::set_var("LC_ALL", locale);
    }
    if let Some(home) = def.home.as_ref().or(account.home.as_ref()) {
        let _ = std::env::set_current_dir(home);
    }
    let title =
        def.display_name.as_deref().map(|d| d.replace("%{GROUP}", &format!("(wsgi:{})", def.name)));
    if let Some(title) = title {
        set_title(&title);
    }

    let facts = ProcessFacts {
        process_group: def.name.clone(),
        maximum_processes: def.processes as i32,
        threads_per_process: def.threads as i32,
        ..crate::hooks::process_facts()
    };
    if let Err(e) = interpreter::start(&settings(group, main), &facts, server) {
        fail(server, &format!("WSGI daemon group '{}': cannot start Python: {e}", def.name));
    }
    log::server(
        server,
        Level::Info,
        &format!(
            "Daemon process {index} of WSGI group '{}' started (pid {}, {} threads)",
            def.name,
            std::process::id(),
            def.threads
        ),
    );
    super::worker::preload(group, main, server);

    let state = match State::new(group.clone(), generation.clone(), server) {
        Ok(state) => Arc::new(state),
        Err(e) => fail(
            server,
            &format!("WSGI daemon group '{}': cannot wait for requests (epoll): {e}", def.name),
        ),
    };
    let signals = stop_signals();
    // SAFETY: blocks the stop signals in this thread before any worker exists, so every
    // worker inherits the mask and only `sigtimedwait` below receives them.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &signals, std::ptr::null_mut()) };
    // The threads of a daemon: `threads=` workers and one monitor. A process that cannot
    // start them is of no use, so it leaves.
    let start_thread = |role: &str, stack: Option<u32>, body: Box<dyn FnOnce() + Send>| {
        let mut builder = std::thread::Builder::new().name(format!("wsgi:{}{role}", def.name));
        if let Some(size) = stack {
            builder = builder.stack_size(size as usize);
        }
        if let Err(e) = builder.spawn(body) {
            fail(server, &format!("WSGI daemon group '{}': cannot start a thread: {e}", def.name));
        }
    };
    for slot in 0..def.threads as usize {
        let worker = state.clone();
        start_thread("", def.stack_size, Box::new(move || super::worker::work_loop(&worker, slot)));
    }
    let monitor = state.clone();
    start_thread(":monitor", None, Box::new(move || super::monitor::run(&monitor)));
    let (reason, forced) = wait_for_stop(&state, &signals);
    state.waiting.close();
    log::server(
        server,
        Level::Info,
        &format!(
            "Daemon process {index} of WSGI group '{}' (pid {}) stopping: {reason}",
            def.name,
            std::process::id()
        ),
    );
    // A stuck process (request-timeout) gets shutdown-timeout to finish what it holds;
    // a recycle waits up to graceful-timeout for its requests.
    let grace = if forced { def.shutdown_timeout } else { def.graceful_timeout };
    let deadline = Instant::now() + grace.max(Duration::from_secs(1));
    while state.active.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Blocks until a stop signal arrives or a thread asks the process to stop; returns the
/// reason and whether the stop is forced.
fn wait_for_stop(state: &State, signals: &libc::sigset_t) -> (String, bool) {
    loop {
        if let Some(reason) = state.stop_reason() {
            return reason;
        }
        let timeout = libc::timespec { tv_sec: 0, tv_nsec: 200_000_000 };
        // SAFETY: waits for one of the blocked stop signals with a timeout.
        let sig = unsafe { libc::sigtimedwait(signals, std::ptr::null_mut(), &timeout) };
        if sig == libc::SIGXCPU {
            state.stop(
                format!("cpu-time-limit ({}s) reached", state.group.def.cpu_time_limit),
                false,
            );
        } else if sig > 0 {
            state.stop(format!("signal {sig}"), false);
        }
    }
}

/// Where the kernel keeps this process's command line: `arg_start` and `arg_end` of
/// `/proc/self/stat` (fields 48 and 49).
fn command_line_area() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which may itself hold spaces, start at field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(48 - 3);
    let start = fields.next()?.parse().ok()?;
    let end = fields.next()?.parse().ok()?;
    (start < end).then_some((start, end))
}

/// Renames the process for `ps` and `pkill -f`: the command line (overwritten in place
/// and cut to its length, as mod_wsgi does) and the thread name (`comm`, what `top`
/// shows).
fn set_title(title: &str) {
    if let Some((start, end)) = command_line_area() {
        let room = end - start - 1; // Keep the final NUL.
        let bytes = &title.as_bytes()[..title.len().min(room)];
        // SAFETY: the kernel reports [start, end) as this process's argument strings:
        // writable memory at the top of the main thread's stack that nothing else reads
        // after start-up (Apache's own argv pointers are no longer used in a daemon).
        unsafe {
            std::ptr::write_bytes(start as *mut u8, 0, room);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), start as *mut u8, bytes.len());
        }
    }
    if let Ok(name) = CString::new(title) {
        // SAFETY: names the calling (main) thread; the kernel copies the name.
        unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
    }
}

/// Applies `cpu-time-limit`, `memory-limit` and `virtual-memory-limit`.
fn set_limits(def: &crate::config::DaemonProcess) {
    let limits = [
        (libc::RLIMIT_CPU, u64::from(def.cpu_time_limit)),
        (libc::RLIMIT_DATA, def.memory_limit),
        (libc::RLIMIT_AS, def.virtual_memory_limit),
    ];
    for (resource, value) in limits {
        if value > 0 {
            // The soft limit is what the daemon reacts to (SIGXCPU: a graceful restart);
            // the hard limit leaves room for that restart before the kernel steps in.
            let hard = if resource == libc::RLIMIT_CPU { value + 60 } else { value };
            let limit = libc::rlimit { rlim_cur: value, rlim_max: hard };
            // SAFETY: sets a resource limit of this process.
            unsafe { libc::setrlimit(resource, &limit) };
        }
    }
}
