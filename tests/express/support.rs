//! Helpers for `tests/express.rs`: temporary directories readable by Apache's user, free
//! ports, a tiny HTTP/1.0 client, running the express binary, and finding processes that
//! belong to a server root.
#![allow(dead_code)]

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The binary under test.
pub const EXPRESS: &str = env!("CARGO_BIN_EXE_mod_wsgi_rs-express");

/// The module cargo built beside the binary (what express loads by default).
pub fn module_so() -> PathBuf {
    let so = Path::new(EXPRESS).with_file_name("libmod_wsgi_rs.so");
    assert!(so.is_file(), "{} is missing: run `cargo build` first", so.display());
    so
}

/// A directory under the system temp dir, removed on drop. Mode 0755 with 0644 files, so
/// Apache's children and daemons (www-data when the tests run as root) can read the apps.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("express-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `rel` (creating its directories, all 0755).
    pub fn write(&self, rel: &str, text: &str) {
        let path = self.0.join(rel);
        let mut dir = path.parent().unwrap().to_path_buf();
        fs::create_dir_all(&dir).unwrap();
        while dir.starts_with(&self.0) && dir != self.0 {
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
            dir.pop();
        }
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs the express binary to completion.
pub fn express(args: &[&str], cwd: &Path) -> Output {
    express_env(args, cwd, &[])
}

/// Runs the express binary to completion with extra environment variables.
pub fn express_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(EXPRESS);
    command.args(args).current_dir(cwd).env_remove("VIRTUAL_ENV");
    command.envs(env.iter().copied());
    command.output().expect("run mod_wsgi_rs-express")
}

/// `GET path` over HTTP/1.0: the status and the body, or `None` if nothing answered.
pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// A running `start-server`, stopped (SIGTERM, then SIGKILL) on drop.
pub struct Express {
    child: Child,
    out_path: PathBuf,
}

impl Express {
    /// Starts `args` in `cwd`; stdout and stderr go to a file next to the server root.
    pub fn start(args: &[&str], cwd: &Path) -> Express {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::SeqCst);
        let out_path = cwd.join(format!("express-output-{n}.txt"));
        // Appending, so Apache's own writes to /dev/stderr (--log-to-terminal) do not
        // overwrite ours.
        let out = fs::OpenOptions::new().create(true).append(true).open(&out_path).unwrap();
        let child = Command::new(EXPRESS)
            .args(args)
            .current_dir(cwd)
            .env_remove("VIRTUAL_ENV")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start mod_wsgi_rs-express");
        Express { child, out_path }
    }

    /// What the program printed so far.
    pub fn output(&self) -> String {
        fs::read_to_string(&self.out_path).unwrap_or_default()
    }

    /// The output and the server's error log, for assertion messages.
    pub fn logs(&self, root: &Path) -> String {
        let log = fs::read_to_string(root.join("error_log")).unwrap_or_default();
        format!("--- express output:\n{}\n--- error_log:\n{log}", self.output())
    }

    /// Polls `path` until it answers (any status), failing if the program exits first.
    pub fn wait_for_page(&mut self, port: u16, path: &str, limit: Duration) -> (u16, String) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(answer) = get(port, path) {
                return answer;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("express exited ({status}) before serving\n{}", self.output());
            }
            assert!(Instant::now() < deadline, "no answer on port {port}\n{}", self.output());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits up to `limit` for the program to exit; its exit code.
    pub fn stop(&mut self, limit: Duration) -> Option<i32> {
        // SAFETY: signals the child this test started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Express {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop(Duration::from_secs(20));
        }
    }
}

/// Live processes of one express server: Apache's parent and children (their command line
/// names the server root) and the daemon processes (`display-name=%{GROUP}` rewrites theirs
/// to `(wsgi:127.0.0.1:PORT)`). All must be gone once the server is stopped. Zombies have an
/// empty command line and do not count.
pub fn leftovers(server_root: &str, port: &str) -> Vec<String> {
    let title = format!("(wsgi:127.0.0.1:{port})");
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(server_root) || cmdline.trim_end() == title {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}
