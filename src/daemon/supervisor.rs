//! Apache's parent side of daemon mode: sockets, forking, and re-forking the dead.

use std::ffi::CString;
use std::os::raw::{c_int, c_void};
use std::sync::{Arc, Mutex};

use crate::apache::log::{self, Level};
use crate::apache::pool;
use crate::config::DaemonProcess;
use crate::ffi;

/// A daemon group as every process of this generation sees it.
#[derive(Debug)]
pub struct Group {
    pub def: DaemonProcess,
    pub socket_path: String,
    /// The listening socket (inherited by the group's processes).
    pub listener: c_int,
}

/// This generation's groups and the secret that proves a connection comes from Apache.
#[derive(Debug, Default)]
pub struct Generation {
    pub secret: Vec<u8>,
    pub groups: Vec<Arc<Group>>,
}

/// Set in the parent at each `post_config`, before any child or daemon is forked, so
/// every process of the generation inherits it.
static GENERATION: Mutex<Option<Arc<Generation>>> = Mutex::new(None);

/// The current generation (none before daemon groups were set up).
pub fn generation() -> Option<Arc<Generation>> {
    GENERATION.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Where Apache's parent keeps the secret between generations. The environment
/// survives the module being unloaded and loaded again on every restart, which statics
/// do not; daemons and Apache's children remove it before Python starts.
pub const SECRET_ENV: &str = "MOD_WSGI_RS_SECRET";

/// The secret that proves a connection comes from this Apache: made once per parent
/// process and kept across graceful restarts, so an old child still finishing its
/// requests can talk to the new generation's daemons on the same socket path.
fn parent_secret() -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let from_env = std::env::var(SECRET_ENV).ok().and_then(|hex| {
        (hex.len() == 2 * super::protocol::SECRET_LEN)
            .then(|| {
                (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
                    .collect::<Option<Vec<u8>>>()
            })
            .flatten()
    });
    if let Some(secret) = from_env {
        return Ok(secret);
    }
    let mut secret = vec![0u8; super::protocol::SECRET_LEN];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut secret)?;
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    // Apache's parent is single-threaded while it reads its configuration.
    std::env::set_var(SECRET_ENV, hex);
    Ok(secret)
}

/// A short file-name-safe tag for a group name (names may hold `/` or `:`).
fn socket_tag(name: &str) -> String {
    use md5::{Digest, Md5};
    Md5::digest(name.as_bytes())[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// Resolves `user=`/`socket-user=` style names (`name` or `#uid`) to a uid.
pub fn lookup_uid(user: &str) -> Option<libc::uid_t> {
    if let Some(n) = user.strip_prefix('#') {
        return n.parse().ok();
    }
    let name = CString::new(user).ok()?;
    // SAFETY: getpwnam reads the passwd database; the result is used before any other
    // passwd call on this (single-threaded, start-up) parent.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    // SAFETY: a non-null result points to a valid passwd record.
    (!pw.is_null()).then(|| unsafe { (*pw).pw_uid })
}

/// Resolves a `group=` style name (`name` or `#gid`) to a gid.
pub fn lookup_gid(group: &str) -> Option<libc::gid_t> {
    if let Some(n) = group.strip_prefix('#') {
        return n.parse().ok();
    }
    let name = CString::new(group).ok()?;
    // SAFETY: getgrnam reads the group database; the result is used at once, before
    // any other group call.
    let gr = unsafe { libc::getgrnam(name.as_ptr()) };
    // SAFETY: a non-null result points to a valid group record.
    (!gr.is_null()).then(|| unsafe { (*gr).gr_gid })
}

/// Checks that the users and groups a `WSGIDaemonProcess` names exist, so a typo fails
/// `apache2 -t` instead of every daemon start.
pub fn check_accounts(def: &DaemonProcess) -> Result<(), String> {
    let users = [("user", &def.user), ("socket-user", &def.socket_user)];
    for (option, user) in users {
        if let Some(user) = user.as_deref().filter(|u| lookup_uid(u).is_none()) {
            return Err(format!("WSGIDaemonProcess {}: {option}={user}: no such user", def.name));
        }
    }
    let groups = def.group.iter().chain(def.supplementary_groups.iter().flatten());
    for group in groups {
        if lookup_gid(group).is_none() {
            return Err(format!("WSGIDaemonProcess {}: no such group '{group}'", def.name));
        }
    }
    Ok(())
}

/// Creates the group's listening socket at `path`, owned by `owner` with mode 0600.
fn listen(path: &str, backlog: u32, owner: libc::uid_t) -> std::io::Result<c_int> {
    let _ = std::fs::remove_file(path);
    if let Some(dir) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(dir)?;
    }
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    // Every process of the group races to accept each connection; the losers must get
    // EAGAIN, not block.
    listener.set_nonblocking(true)?;
    let fd = std::os::fd::IntoRawFd::into_raw_fd(listener);
    let c_path = CString::new(path).map_err(std::io::Error::other)?;
    // SAFETY: plain syscalls on our own socket and its path.
    unsafe {
        libc::listen(fd, backlog as c_int);
        if libc::chown(c_path.as_ptr(), owner, libc::gid_t::MAX) != 0
            || libc::chmod(c_path.as_ptr(), 0o600) != 0
        {
            let err = std::io::Error::last_os_error();
            libc::close(fd);
            return Err(err);
        }
    }
    Ok(fd)
}

/// What the other-child callback needs to fork a process again.
struct Slot {
    group: Arc<Group>,
    generation: Arc<Generation>,
    index: u32,
    pconf: *mut ffi::apr_pool_t,
    server: *mut ffi::server_rec,
    proc_: ffi::apr_proc_t,
}

/// Whether Apache is on its way down (then dead daemons are not replaced).
fn stopping() -> bool {
    let mut state: c_int = 0;
    // SAFETY: ap_mpm_query writes one int.
    unsafe { ffi::ap_mpm_query(ffi::AP_MPMQ_MPM_STATE as c_int, &mut state) };
    state == ffi::AP_MPMQ_STOPPING as c_int
}

/// Describes how a daemon ended. Apache hands the callback the exit code or the
/// signal number without saying which; daemons exit with 0 (a recycle) or with
/// [`super::process::FAILED`] (start-up failure), above every signal number, so a value
/// in the signal range is taken as the signal that killed the process.
fn describe_status(status: c_int) -> String {
    match status {
        0 => "exited".into(),
        super::process::FAILED => "could not start (see the lines above)".into(),
        super::process::DEADLOCKED => "left after its deadlock-timeout".into(),
        1..=64 => {
            // SAFETY: strsignal returns a description for any signal number.
            let name = unsafe { std::ffi::CStr::from_ptr(libc::strsignal(status)) };
            format!("was killed by signal {status} ({})", name.to_string_lossy())
        }
        _ => format!("exited with status {status}"),
    }
}

unsafe extern "C" fn maintenance(reason: c_int, data: *mut c_void, status: c_int) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: `data` is the Slot registered in `spawn`, which lives in the
        // configuration pool as long as the registration.
        let slot = unsafe { &mut *data.cast::<Slot>() };
        match reason as u32 {
            ffi::APR_OC_REASON_DEATH | ffi::APR_OC_REASON_LOST => {
                let what = describe_status(status);
                // SAFETY: unregistering the registration this callback belongs to.
                unsafe { ffi::apr_proc_other_child_unregister(data) };
                if stopping() {
                    return;
                }
                // A clean exit is a recycle (maximum-requests and the like), which the
                // daemon logged itself; anything else is news.
                let clean = status == 0;
                log::server(
                    slot.server,
                    if clean { Level::Info } else { Level::Error },
                    &format!(
                        "Daemon process {} of WSGI group '{}' (pid {}) {what}; starting a new one",
                        slot.index, slot.group.def.name, slot.proc_.pid
                    ),
                );
                // SAFETY: the slot's pool and server are this generation's.
                unsafe {
                    spawn(slot.pconf, slot.server, &slot.generation, &slot.group, slot.index)
                };
            }
            ffi::APR_OC_REASON_RESTART => {
                // SAFETY: as above. (Unregistering calls back with UNREGISTER, which must
                // not unregister again: APR crashes on an unknown registration.)
                unsafe { ffi::apr_proc_other_child_unregister(data) };
            }
            _ => {}
        }
    });
}

/// Forks process `index` of `group`; the child never returns.
///
/// # Safety
/// Called in Apache's parent with this generation's configuration pool and main server.
unsafe fn spawn(
    pconf: *mut ffi::apr_pool_t,
    server: *mut ffi::server_rec,
    generation: &Arc<Generation>,
    group: &Arc<Group>,
    index: u32,
) {
    // SAFETY: the slot lives in the configuration pool, as long as its registrations.
    let slot = unsafe {
        pool::attach(
            pconf,
            Slot {
                group: group.clone(),
                generation: generation.clone(),
                index,
                pconf,
                server,
                proc_: std::mem::zeroed(),
            },
        )
    };
    // SAFETY: apr_proc_fork forks this single-threaded parent and fills proc_.
    let rv = unsafe { ffi::apr_proc_fork(&mut (*slot).proc_, pconf) };
    if rv == ffi::APR_INCHILD as i32 {
        super::process::run(group, generation, index, server);
    }
    if rv != ffi::APR_INPARENT as i32 {
        log::server(
            server,
            Level::Crit,
            &format!(
                "Cannot fork a daemon process for WSGI group '{}': error {rv}",
                group.def.name
            ),
        );
        return;
    }
    // SAFETY: register the child for reaping callbacks and for termination when the
    // configuration pool goes (restart or stop).
    unsafe {
        ffi::apr_pool_note_subprocess(
            pconf,
            &mut (*slot).proc_,
            ffi::apr_kill_conditions_e_APR_KILL_AFTER_TIMEOUT,
        );
        ffi::apr_proc_other_child_register(
            &mut (*slot).proc_,
            Some(maintenance),
            slot.cast(),
            std::ptr::null_mut(),
            pconf,
        );
    }
}

/// Every `WSGIDaemonProcess` group of the configuration, from the main server and each
/// virtual host, each once.
///
/// # Safety
/// `s` is the main server of a configured generation.
unsafe fn all_groups(s: *mut ffi::server_rec) -> Vec<DaemonProcess> {
    let mut out: Vec<DaemonProcess> = Vec::new();
    let mut server = s;
    while !server.is_null() {
        // SAFETY: forwarded from the caller.
        let conf = unsafe { crate::hooks::server_config(server) };
        for group in &conf.daemon_processes {
            if !out.iter().any(|g| g.name == group.name) {
                out.push(group.clone());
            }
        }
        // SAFETY: Apache's server list lives for the generation.
        server = unsafe { (*server).next };
    }
    out
}

/// Creates every group's socket and forks its processes (`post_config`, real pass).
///
/// # Safety
/// Called in Apache's parent from `post_config`.
pub unsafe fn start(pconf: *mut ffi::apr_pool_t, s: *mut ffi::server_rec) -> Result<(), String> {
    // SAFETY: forwarded from the caller.
    let defs = unsafe { all_groups(s) };
    *GENERATION.lock().unwrap_or_else(|e| e.into_inner()) = None;
    if defs.is_empty() {
        return Ok(());
    }
    let secret = parent_secret().map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    // SAFETY: s is the main server.
    let main = unsafe { crate::hooks::server_config(s) };
    // SAFETY: ap_unixd_config is filled by mod_unixd while reading the configuration.
    let apache_uid = unsafe { (*std::ptr::addr_of!(ffi::ap_unixd_config)).user_id };
    let mut groups = Vec::new();
    for def in defs {
        // SAFETY: the runtime directory helper copies into the configuration pool.
        let runtime_dir =
            unsafe { crate::apache::c_str(ffi::ap_runtime_dir_relative(pconf, c"".as_ptr())) };
        let prefix = main.socket_prefix(runtime_dir.trim_end_matches('/'));
        // SAFETY: resolves a relative prefix against ServerRoot, into the pool.
        let prefix = unsafe {
            crate::apache::c_str(ffi::ap_server_root_relative(pconf, pool::pstr(pconf, &prefix)))
                .into_owned()
        };
        // The same path in every generation (mod_wsgi's `WSGISocketRotation Off`): old
        // children finishing after a graceful restart reach the new daemons.
        let socket_path = format!("{prefix}.{}.{}.sock", std::process::id(), socket_tag(&def.name));
        let owner = match &def.socket_user {
            Some(user) => lookup_uid(user).ok_or_else(|| {
                format!("WSGIDaemonProcess {}: unknown socket-user '{user}'", def.name)
            })?,
            None => apache_uid,
        };
        let listener = listen(&socket_path, def.listen_backlog, owner).map_err(|e| {
            format!(
                "cannot create the socket '{socket_path}' of WSGI daemon group '{}': {e}",
                def.name
            )
        })?;
        let path_for_cleanup = socket_path.clone();
        // SAFETY: the configuration pool outlives the generation; its cleanup closes
        // and removes this generation's socket.
        unsafe {
            pool::on_cleanup(pconf, move || {
                libc::close(listener);
                let _ = std::fs::remove_file(&path_for_cleanup);
            })
        };
        let ignored = def.ignored_options();
        if !ignored.is_empty() {
            log::server(s, Level::Warning, &format!("WSGIDaemonProcess {}: option(s) {} accepted but not implemented by mod_wsgi_rs; they have no effect", def.name, ignored.join(", ")));
        }
        groups.push(Arc::new(Group { def, socket_path, listener }));
    }
    let generation = Arc::new(Generation { secret, groups });
    *GENERATION.lock().unwrap_or_else(|e| e.into_inner()) = Some(generation.clone());
    for group in &generation.groups {
        for index in 0..group.def.processes {
            // SAFETY: forwarded from the caller.
            unsafe { spawn(pconf, s, &generation, group, index) };
        }
    }
    Ok(())
}
