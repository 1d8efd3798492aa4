//! Writing the server root and running Apache in the foreground under our supervision.
//!
//! Apache runs as our child, in its own process group, so a Ctrl-C in the terminal reaches
//! only us: we forward one SIGTERM, Apache stops its children and the daemon processes, and
//! we wait. If anything of that process group is still alive once Apache's parent has gone,
//! it is killed, so stopping the command always leaves nothing running.

use std::fs;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

use crate::settings::{App, Server};
use crate::template;

/// Writes `httpd.conf`, the handler script (module applications) and `apachectl` into the
/// server root. Returns warnings for the user.
pub fn prepare(s: &Server) -> Result<Vec<String>, String> {
    let root = &s.server_root;
    let io = |what: &Path, e: std::io::Error| format!("cannot write {}: {e}", what.display());
    fs::create_dir_all(root).map_err(|e| io(root, e))?;
    // Apache's children and the daemons run as another user when we are root: they must
    // reach the sockets and the handler script in here.
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).map_err(|e| io(root, e))?;
    let write = |name: &str, text: String, mode: u32| -> Result<(), String> {
        let path = root.join(name);
        fs::write(&path, text).map_err(|e| io(&path, e))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(|e| io(&path, e))
    };
    write("httpd.conf", template::httpd_conf(s), 0o644)?;
    if let App::Module { module } = &s.app {
        let callable = &s.callable_object;
        write("handler.wsgi", template::handler_script(module, callable), 0o644)?;
    }
    write("apachectl", template::apachectl(s), 0o755)?;
    Ok(readability_warnings(s))
}

/// When Apache drops to another user, the application's files must be readable by it. We do
/// not change the permissions of the user's own files; we say what will fail.
fn readability_warnings(s: &Server) -> Vec<String> {
    let Some((user, _)) = &s.run_as else { return Vec::new() };
    // The daemons reach the sockets in the server root, and read the Python home and the
    // application.
    let mut paths = vec![s.server_root.clone(), s.working_directory.clone()];
    paths.extend(s.python_home.iter().map(std::path::PathBuf::from));
    if let App::Script(script) = &s.app {
        paths.push(script.clone());
    }
    let mut warnings = Vec::new();
    for path in paths {
        // Every directory on the way needs o+x, the target o+r.
        for (i, p) in path.ancestors().collect::<Vec<_>>().into_iter().rev().enumerate() {
            let Ok(meta) = fs::metadata(p) else { continue };
            let is_target = p == path;
            let need = if is_target { 0o004 } else { 0o001 };
            let need = if is_target && meta.is_dir() { 0o005 } else { need };
            let seen =
                warnings.iter().any(|w: &String| w.starts_with(&format!("{} ", p.display())));
            if i > 0 && !seen && meta.permissions().mode() & need != need {
                warnings.push(format!(
                    "{} (mode {:o}) may not be readable by '{user}', the user Apache runs as; \
                     if requests fail with permission errors: chmod o+{} {}",
                    p.display(),
                    meta.permissions().mode() & 0o777,
                    match need {
                        0o005 => "rx",
                        0o004 => "r",
                        _ => "x",
                    },
                    p.display()
                ));
            }
        }
    }
    warnings
}

/// Fails when the port cannot be listened on, before Apache starts (whose own message
/// would only be in the error log).
pub fn check_port(s: &Server) -> Result<(), String> {
    let host = s.host.clone().unwrap_or_else(|| "0.0.0.0".into());
    let addr = if host.contains(':') {
        format!("[{host}]:{}", s.port)
    } else {
        format!("{host}:{}", s.port)
    };
    match TcpListener::bind(&addr) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AddrInUse => Err(format!(
            "port {} is already in use on {host}: another server is listening there; stop it or \
             choose another port with --port",
            s.port
        )),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => Err(format!(
            "not allowed to listen on port {} (ports below 1024 need root); choose another \
             with --port",
            s.port
        )),
        Err(e) => Err(format!("cannot listen on {addr}: {e}")),
    }
}

/// The start-up banner.
pub fn banner(s: &Server) -> String {
    let app = match &s.app {
        App::Script(path) => path.display().to_string(),
        App::Module { module } => format!("{module}:{} (module)", s.callable_object),
    };
    let t = &s.timeouts;
    let (mode, timeouts) = if s.embedded {
        ("embedded (Apache children)".to_string(), "Apache's Timeout 60s only".to_string())
    } else {
        (
            format!("daemon (group '{}')", s.process_group()),
            format!(
                "request {}s, queue {}s, socket {}s, connect {}s, startup {}s, shutdown {}s",
                t.request, t.queue, t.socket, t.connect, t.startup, t.shutdown
            ),
        )
    };
    let error_log = if s.log_to_terminal {
        "this terminal".to_string()
    } else {
        s.error_log().display().to_string()
    };
    let access_log = match (s.access_log, s.log_to_terminal) {
        (false, _) => "off (--access-log)".to_string(),
        (true, true) => "this terminal".to_string(),
        (true, false) => s.access_log_path().display().to_string(),
    };
    let rows = [
        ("URL", s.url()),
        ("Application", app),
        ("Mode", mode),
        ("Processes", s.processes.to_string()),
        ("Threads", s.threads.to_string()),
        ("Max clients", s.max_clients.to_string()),
        ("Timeouts", timeouts),
        ("Reload on changes", if s.reload_on_changes { "on" } else { "off" }.to_string()),
        ("Server root", s.server_root.display().to_string()),
        ("Error log", error_log),
        ("Access log", access_log),
        ("Module", s.module.display().to_string()),
    ];
    let mut text = String::from("mod_wsgi_rs-express\n");
    for (name, value) in rows {
        text.push_str(&format!("  {name:18}: {value}\n"));
    }
    text
}

/// Apache's pid once started (also its process group), for the signal handler.
static APACHE: AtomicI32 = AtomicI32::new(0);
/// A stop was asked for (possibly before Apache started).
static STOPPING: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(signal: libc::c_int) {
    let pid = APACHE.load(Ordering::SeqCst);
    // SIGUSR1 is Apache's graceful restart; anything else means stop.
    let forward = if signal == libc::SIGUSR1 { signal } else { libc::SIGTERM };
    if forward == libc::SIGTERM {
        STOPPING.store(true, Ordering::SeqCst);
    }
    if pid > 0 {
        // SAFETY: kill is async-signal-safe; the pid is our own child.
        unsafe { libc::kill(pid, forward) };
    }
}

fn install_handlers() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGUSR1] {
        // SAFETY: the handler only touches atomics and calls kill, both async-signal-safe.
        unsafe { libc::signal(signal, on_signal as *const () as libc::sighandler_t) };
    }
}

/// Sends a graceful restart to the running Apache (the reload watcher's way of restarting
/// the application).
pub fn graceful_restart() {
    let pid = APACHE.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: signals our own child.
        unsafe { libc::kill(pid, libc::SIGUSR1) };
    }
}

/// Runs Apache in the foreground until it exits or we are told to stop. Returns the exit
/// code for our own process.
pub fn run(s: &Server) -> Result<i32, String> {
    install_handlers();
    // Daemons that outlive Apache's parent become our children rather than init's, so we can
    // see them exit (a container's init may never reap them).
    // SAFETY: sets a flag on this process.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    let mut command = Command::new(&s.httpd);
    command.arg("-f").arg(s.config_file()).arg("-DFOREGROUND").process_group(0);
    // SAFETY: prctl is async-signal-safe and touches nothing of the parent's state.
    unsafe {
        command.pre_exec(|| {
            // If we are killed outright, Apache is told to stop too.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut child =
        command.spawn().map_err(|e| format!("cannot start {}: {e}", s.httpd.display()))?;
    let pid = child.id() as i32;
    APACHE.store(pid, Ordering::SeqCst);
    if STOPPING.load(Ordering::SeqCst) {
        // SAFETY: signals our own child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    if s.reload_on_changes {
        crate::reload::watch(s);
    }
    let status = child.wait().map_err(|e| format!("waiting for Apache: {e}"))?;
    APACHE.store(0, Ordering::SeqCst);
    reap_group(pid, Duration::from_secs(u64::from(s.timeouts.shutdown) + 5));
    if STOPPING.load(Ordering::SeqCst) {
        eprintln!("mod_wsgi_rs-express: stopped");
        return Ok(0);
    }
    if !status.success() {
        eprintln!("mod_wsgi_rs-express: Apache exited ({status})");
        if !s.log_to_terminal {
            eprint!("{}", log_tail(&s.error_log(), 20));
        }
    }
    Ok(status.code().unwrap_or(1))
}

/// Waits up to `grace` for every process of Apache's process group (children, daemons) to
/// exit, then kills what is left.
fn reap_group(pgid: i32, grace: Duration) {
    let alive = || {
        // We are the subreaper of Apache's orphans: collect the ones that exited so they stop
        // counting as members of the group.
        // SAFETY: waitpid with WNOHANG only reaps our own exited children.
        while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
        // SAFETY: signal 0 only checks whether the group has members.
        unsafe { libc::kill(-pgid, 0) == 0 }
    };
    let deadline = Instant::now() + grace;
    while alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if alive() {
        eprintln!(
            "mod_wsgi_rs-express: processes of Apache's group {pgid} outlived it; killing them"
        );
        // SAFETY: the group is the one Apache led; only its leftovers are in it.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

/// The last `lines` lines of a log file, for a start-up failure.
fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(text) = fs::read_to_string(path) else { return String::new() };
    let all: Vec<&str> = text.lines().collect();
    let mut tail = format!("last lines of {}:\n", path.display());
    for line in &all[all.len().saturating_sub(lines)..] {
        tail.push_str(&format!("  {line}\n"));
    }
    tail
}
