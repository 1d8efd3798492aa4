//! Integration-test harness shared by every `tests/*.rs` file.
//!
//! It starts a real `apache2 -f <generated httpd.conf>` on 127.0.0.1 with an ephemeral port
//! and a temporary ServerRoot, loads the module under test (ours or Debian's mod_wsgi
//! 4.9.4), and talks to it with a tiny HTTP/1.1 client written over `TcpStream` (it has to
//! be hand-written anyway: several tests send malformed requests on purpose). The server
//! is stopped by PID and its root removed when the [`Server`] is dropped, also when the
//! test panics. It never touches `/etc/apache2` or the system service.
//!
//! Not every test file uses every helper.
#![allow(dead_code)]

pub mod http;
pub mod json;

use std::fmt::Write as _;
use std::fs;
use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use http::Response;

/// Root of the mod_wsgi_rs repository: `$MOD_WSGI_RS_ROOT` if set (used when the tests are
/// compiled from a scratch crate), else this crate's manifest directory.
pub fn repo_root() -> PathBuf {
    match std::env::var_os("MOD_WSGI_RS_ROOT") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    }
}

/// `tests/apps/` of the repository.
pub fn apps_dir() -> PathBuf {
    repo_root().join("tests/apps")
}

pub const APACHE2: &str = "/usr/sbin/apache2";
pub const MODULES_DIR: &str = "/usr/lib/apache2/modules";
pub const DEBIAN_MOD_WSGI: &str = "/usr/lib/apache2/modules/mod_wsgi.so";

/// Which WSGI module the server loads, and whether the test's WSGI scripts run embedded
/// (in Apache's children) or in the daemon group [`DAEMON_GROUP`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Module {
    /// mod_wsgi_rs: `$MOD_WSGI_RS_SO`, else `target/debug/libmod_wsgi_rs.so`.
    Ours,
    /// Debian's mod_wsgi 4.9.4 (`libapache2-mod-wsgi-py3`), the reference.
    ModWsgi,
    /// mod_wsgi_rs with every script in the daemon group [`DAEMON_GROUP`].
    OursDaemon,
    /// mod_wsgi 4.9.4 with every script in the daemon group [`DAEMON_GROUP`].
    ModWsgiDaemon,
}

/// Name of the `WSGIDaemonProcess` group the daemon variants add to every config.
pub const DAEMON_GROUP: &str = "testgroup";
/// Default `threads=` of that group (no `processes=`: one process, so
/// `wsgi.multiprocess` is False, as in mod_wsgi).
pub const DAEMON_THREADS: usize = 4;

impl Module {
    pub fn so_path(self) -> PathBuf {
        if self.is_ours() {
            match std::env::var_os("MOD_WSGI_RS_SO") {
                Some(p) => PathBuf::from(p),
                None => repo_root().join("target/debug/libmod_wsgi_rs.so"),
            }
        } else {
            PathBuf::from(DEBIAN_MOD_WSGI)
        }
    }

    /// mod_wsgi_rs, embedded or daemon.
    pub fn is_ours(self) -> bool {
        matches!(self, Module::Ours | Module::OursDaemon)
    }

    /// The scripts run in the daemon group [`DAEMON_GROUP`].
    pub fn is_daemon(self) -> bool {
        matches!(self, Module::OursDaemon | Module::ModWsgiDaemon)
    }

    /// The same module in daemon mode.
    pub fn daemon(self) -> Module {
        if self.is_ours() {
            Module::OursDaemon
        } else {
            Module::ModWsgiDaemon
        }
    }

    /// The same module in embedded mode.
    pub fn embedded(self) -> Module {
        if self.is_ours() {
            Module::Ours
        } else {
            Module::ModWsgi
        }
    }

    /// Whether a response that fails after its headers were sent reaches the client cut
    /// (no final chunk, short of Content-Length). Not so in mod_wsgi 4.9.4's daemon mode:
    /// the end of a response from its daemon is only the socket closing, so Apache's
    /// child ends a failed response as if it were complete (a known mod_wsgi weakness
    /// that ours frames away; DESIGN.md "Daemon mode").
    pub fn cuts_failed_responses(self) -> bool {
        self != Module::ModWsgiDaemon
    }

    /// What `process-group=` / `WSGIProcessGroup` must say to reach the test's scripts:
    /// `%{GLOBAL}` (embedded) or [`DAEMON_GROUP`]. Also the `@PROCESS_GROUP@` placeholder.
    pub fn process_group(self) -> &'static str {
        if self.is_daemon() {
            DAEMON_GROUP
        } else {
            "%{GLOBAL}"
        }
    }
}

/// Multi-processing module of the server under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mpm {
    Event,
    Worker,
    Prefork,
}

impl Mpm {
    fn config(self) -> String {
        let (name, tuning) = match self {
            // Small pools: the test machine has 2 cores shared with a compiler.
            Mpm::Event | Mpm::Worker => (
                if self == Mpm::Event { "event" } else { "worker" },
                "StartServers 1\nServerLimit 2\nThreadLimit 8\nThreadsPerChild 8\n\
                 MinSpareThreads 8\nMaxSpareThreads 16\nMaxRequestWorkers 16\n\
                 MaxConnectionsPerChild 0\n",
            ),
            Mpm::Prefork => (
                "prefork",
                "StartServers 2\nMinSpareServers 1\nMaxSpareServers 3\nServerLimit 4\n\
                 MaxRequestWorkers 4\nMaxConnectionsPerChild 0\n",
            ),
        };
        format!("LoadModule mpm_{name}_module {MODULES_DIR}/mod_mpm_{name}.so\n{tuning}")
    }
}

/// What to start: module, MPM, log level and the test's own configuration.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    pub module: Module,
    pub mpm: Mpm,
    /// `LogLevel` argument, e.g. `"info"` or `"info wsgi:debug"`.
    pub log_level: String,
    /// Appended after the LoadModule lines. `@ROOT@` is replaced by the ServerRoot path,
    /// `@APPS@` by the copied apps directory (`<root>/apps`), `@PORT@` by the port.
    pub config: String,
    /// Files written into the ServerRoot before start: (relative path, content).
    pub files: Vec<(String, Vec<u8>)>,
    /// Copy `tests/apps/` into `<root>/apps` (readable by Apache's `www-data` children).
    pub copy_apps: bool,
    /// Daemon variants only: extra options of the `WSGIDaemonProcess` line, e.g.
    /// `python-path=@ROOT@/lib` (placeholders as in `config`).
    pub daemon_options: String,
}

impl ServerSpec {
    pub fn new(module: Module) -> Self {
        ServerSpec {
            module,
            mpm: Mpm::Event,
            log_level: "info".into(),
            config: String::new(),
            files: Vec::new(),
            copy_apps: true,
            daemon_options: String::new(),
        }
    }

    /// The common case: the kitchensink app mounted at `/ks` in the main interpreter.
    pub fn kitchensink(module: Module) -> Self {
        Self::new(module).config(KITCHENSINK_CONF)
    }

    pub fn mpm(mut self, mpm: Mpm) -> Self {
        self.mpm = mpm;
        self
    }

    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = level.into();
        self
    }

    pub fn config(mut self, extra: &str) -> Self {
        self.config.push_str(extra);
        self.config.push('\n');
        self
    }

    /// Adds options to the daemon variants' `WSGIDaemonProcess` line (ignored embedded).
    pub fn daemon_options(mut self, options: &str) -> Self {
        self.daemon_options.push(' ');
        self.daemon_options.push_str(options);
        self
    }

    pub fn file(mut self, rel: &str, content: impl Into<Vec<u8>>) -> Self {
        self.files.push((rel.into(), content.into()));
        self
    }
}

/// Mounts `tests/apps/kitchensink.wsgi` at `/ks` in the main interpreter.
pub const KITCHENSINK_CONF: &str = "\
WSGIScriptAlias /ks @APPS@/kitchensink.wsgi
WSGIApplicationGroup %{GLOBAL}
<Directory @APPS@>
    Require all granted
</Directory>
";

/// Mounts `tests/apps/<script>` at `alias` in the main interpreter (of the process group,
/// in daemon mode), like [`KITCHENSINK_CONF`].
pub fn mount_conf(alias: &str, script: &str) -> String {
    format!(
        "WSGIScriptAlias {alias} @APPS@/{script}\n\
         WSGIApplicationGroup %{{GLOBAL}}\n\
         <Directory @APPS@>\n    Require all granted\n</Directory>\n"
    )
}

/// Starts `m` (a daemon variant) with `conf`, `options` added to its `WSGIDaemonProcess`
/// line.
pub fn daemon_server(m: Module, conf: &str, options: &str) -> Server {
    Server::start(ServerSpec::new(m).config(conf).daemon_options(options))
}

/// Polls `f` every 100 ms until it is true or `timeout` passed; returns its last value.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The body of `r` as JSON, asserting status 200; `what` names the request, as in
/// `"GET /d/whoami"`.
pub fn json_ok(r: &Response, what: &str) -> json::Json {
    assert_eq!(r.status, 200, "{what} answers 200: {}", r.text());
    r.json()
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique, world-readable temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let path = std::env::temp_dir()
            .join(format!("mod_wsgi_rs-{prefix}-{}-{n}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).expect("create temp dir");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("MOD_WSGI_RS_KEEP_ROOT").is_none() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Makes a path readable (and traversable, for directories) by everyone.
pub fn make_world_readable(path: &Path) {
    let _ = Command::new("chmod").arg("-R").arg("a+rX").arg(path).status();
}

/// Gives a path to `www-data` (for apps that write, e.g. Django's sqlite file), when root.
pub fn chown_www_data(path: &Path) {
    if running_as_root() {
        let _ = Command::new("chown").arg("-R").arg("www-data:www-data").arg(path).status();
    }
}

pub fn running_as_root() -> bool {
    // SAFETY: none needed, `geteuid` has no preconditions; avoided anyway: read /proc.
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).expect("create dir");
    for entry in fs::read_dir(src).expect("read apps dir") {
        let entry = entry.unwrap();
        let target = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() == "__pycache__" {
                continue;
            }
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy app file");
        }
    }
}

/// The content of `apps/static/file.bin` (served by the file-wrapper routes): 100,000
/// bytes with a pattern that does not repeat every 256 bytes.
pub fn static_file_bytes() -> Vec<u8> {
    (0..100_000u32).map(|i| ((i * 7) ^ (i >> 8)) as u8).collect()
}

/// Copies the apps and the spec's files into a new ServerRoot, readable by everyone.
fn populate_root(spec: &ServerSpec, rp: &Path) {
    if spec.copy_apps {
        copy_dir(&apps_dir(), &rp.join("apps"));
        fs::create_dir_all(rp.join("apps/static")).unwrap();
        fs::write(rp.join("apps/static/file.bin"), static_file_bytes()).unwrap();
    }
    for (rel, content) in &spec.files {
        let p = rp.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
    }
    make_world_readable(rp);
}

/// A free TCP port on 127.0.0.1 (bind :0, read the port, close).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind :0");
    l.local_addr().unwrap().port()
}

/// Renders a complete httpd.conf for `spec` rooted at `root`, listening on `port`.
pub fn render_config(spec: &ServerSpec, root: &Path, port: u16) -> String {
    let r = root.display();
    let mut c = String::new();
    writeln!(c, "ServerRoot \"{r}\"").unwrap();
    writeln!(c, "ServerName 127.0.0.1").unwrap();
    writeln!(c, "Listen 127.0.0.1:{port}").unwrap();
    writeln!(c, "PidFile \"{r}/httpd.pid\"").unwrap();
    writeln!(c, "DefaultRuntimeDir \"{r}\"").unwrap();
    writeln!(c, "Mutex file:{r} default").unwrap();
    writeln!(c, "ErrorLog \"{r}/error_log\"").unwrap();
    writeln!(c, "LogLevel {}", spec.log_level).unwrap();
    writeln!(c, "DocumentRoot \"{r}/htdocs\"").unwrap();
    writeln!(c, "Timeout 20\nKeepAliveTimeout 5\nMaxKeepAliveRequests 1000").unwrap();
    if running_as_root() {
        writeln!(c, "User www-data\nGroup www-data").unwrap();
    }
    c.push_str(&spec.mpm.config());
    for m in ["authz_core", "authz_host", "mime", "alias", "env", "setenvif", "headers"] {
        writeln!(c, "LoadModule {m}_module {MODULES_DIR}/mod_{m}.so").unwrap();
    }
    writeln!(c, "TypesConfig /etc/mime.types").unwrap();
    writeln!(
        c,
        "LogFormat \"%h %l %u %t \\\"%r\\\" %>s %b pid=%{{pid}}P port=%p\" pidlog\nCustomLog \"{r}/access_log\" pidlog"
    )
    .unwrap();
    writeln!(c, "LoadModule wsgi_module {}", spec.module.so_path().display()).unwrap();
    writeln!(c, "WSGISocketPrefix \"{r}/wsgi\"").unwrap();
    writeln!(c, "<Directory />\n    Require all denied\n</Directory>").unwrap();
    // mod_wsgi 4.9.4 makes a PATH_TRANSLATED subrequest into the DocumentRoot: allow it so
    // it does not log "client denied" noise on every request.
    writeln!(c, "<Directory \"{r}/htdocs\">\n    Require all granted\n</Directory>").unwrap();
    let subst = |text: &str| {
        text.replace("@APPS@", &format!("{r}/apps"))
            .replace("@ROOT@", &r.to_string())
            .replace("@PORT@", &port.to_string())
            .replace("@PROCESS_GROUP@", spec.module.process_group())
    };
    if spec.module.is_daemon() {
        // Every script of the test goes to one daemon process group (server-wide
        // WSGIProcessGroup, inherited by every <Directory> and virtual host).
        // A test's own `threads=` replaces the default.
        let threads = if spec.daemon_options.contains(" threads=") {
            String::new()
        } else {
            format!(" threads={DAEMON_THREADS}")
        };
        writeln!(
            c,
            "WSGIDaemonProcess {DAEMON_GROUP}{threads}{}\nWSGIProcessGroup {DAEMON_GROUP}",
            subst(&spec.daemon_options)
        )
        .unwrap();
    }
    c.push_str(&subst(&spec.config));
    c
}

/// A running Apache. Stopped (by PID) and its root removed on drop.
pub struct Server {
    pub spec: ServerSpec,
    pub port: u16,
    pub root: TempDir,
    pub conf: PathBuf,
    pid: Option<i32>,
}

impl Server {
    /// Starts Apache and waits until it answers; panics (after printing the error_log) if
    /// it cannot.
    pub fn start(spec: ServerSpec) -> Server {
        match Server::try_start(spec) {
            Ok(s) => s,
            Err(msg) => panic!("{msg}"),
        }
    }

    /// Like [`Server::start`], but returns the failure (with the error_log) instead.
    pub fn try_start(spec: ServerSpec) -> Result<Server, String> {
        let so = spec.module.so_path();
        if !so.exists() {
            return Err(format!(
                "module under test not found at {} (build it first: cargo build)",
                so.display()
            ));
        }
        let root = TempDir::new("httpd");
        let rp = root.path().to_path_buf();
        fs::create_dir_all(rp.join("htdocs")).unwrap();
        populate_root(&spec, &rp);
        let conf = rp.join("httpd.conf");
        let mut server = Server { spec: spec.clone(), port: 0, root, conf, pid: None };
        let mut last_err = String::new();
        // A port picked by bind(:0) may be taken by another test before Apache binds it.
        for _attempt in 0..3 {
            server.port = free_port();
            let _ = fs::remove_file(rp.join("error_log"));
            fs::write(&server.conf, render_config(&spec, &rp, server.port)).unwrap();
            let out = Command::new(APACHE2)
                .arg("-f")
                .arg(&server.conf)
                .arg("-k")
                .arg("start")
                .output()
                .expect("run apache2");
            if !out.status.success() {
                last_err = format!(
                    "apache2 -k start failed ({}): {}{}\n--- error_log ---\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr),
                    server.error_log()
                );
                if last_err.contains("Address already in use") {
                    continue;
                }
                return Err(last_err);
            }
            match server.wait_ready() {
                Ok(()) => return Ok(server),
                Err(e) => {
                    let log = server.error_log();
                    last_err = format!("{e}\n--- error_log ---\n{log}");
                    server.stop();
                    if !log.contains("Address already in use") {
                        return Err(last_err);
                    }
                }
            }
        }
        Err(last_err)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.pid.is_none() {
                self.pid = fs::read_to_string(self.root.path().join("httpd.pid"))
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
            }
            if let Some(pid) = self.pid {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    return Err(format!("apache2 parent {pid} exited during start-up"));
                }
                if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("apache2 did not answer within 20 s".into())
    }

    /// PID of the Apache parent.
    pub fn pid(&self) -> i32 {
        self.pid.expect("server started")
    }

    /// PIDs of the parent's children (the processes that serve requests).
    pub fn child_pids(&self) -> Vec<i32> {
        child_pids(self.pid())
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    pub fn error_log(&self) -> String {
        fs::read(self.root.path().join("error_log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Waits up to 10 s for `needle` to appear in the error_log (lines arrive
    /// asynchronously); panics with `what` and the log if it does not.
    pub fn assert_log_contains(&self, needle: &str, what: &str) {
        if !self.wait_log(needle, Duration::from_secs(10)) {
            panic!(
                "{what}: error_log does not contain {needle:?}\n--- error_log ---\n{}",
                self.error_log()
            );
        }
    }

    /// Waits up to `timeout` for `needle` in the error_log.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.error_log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Length of the error_log now: pass it to [`Server::assert_log_since`] to look only at
    /// what a later request logged.
    pub fn log_len(&self) -> usize {
        self.error_log().len()
    }

    /// The part of the error_log written after `offset` (see [`Server::log_len`]).
    pub fn log_since(&self, offset: usize) -> String {
        let log = self.error_log();
        log.get(offset..).unwrap_or("").to_string()
    }

    /// Waits up to 10 s for `needle` in the error_log after `offset`; panics with `what`.
    pub fn assert_log_since(&self, offset: usize, needle: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.log_since(offset).contains(needle) {
            if Instant::now() >= deadline {
                panic!(
                    "{what}: error_log (after the request) does not contain {needle:?}\n--- new error_log lines ---\n{}",
                    self.log_since(offset)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Count of error_log lines containing `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.error_log().lines().filter(|l| l.contains(needle)).count()
    }

    pub fn client(&self) -> http::Client {
        http::Client::new(self.port)
    }

    pub fn get(&self, path: &str) -> Response {
        self.client().get(path)
    }

    pub fn post(&self, path: &str, body: &[u8], content_type: &str) -> Response {
        self.client().post(path, body, content_type)
    }

    pub fn request_raw(&self, bytes: &[u8]) -> Response {
        self.client().request_raw(bytes)
    }

    /// Stops the server: SIGTERM to the parent, wait, SIGKILL to whatever is left.
    pub fn stop(&mut self) {
        let Some(pid) = self.pid.take() else { return };
        let children = child_pids(pid);
        signal(pid, "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && alive(pid) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if alive(pid) {
            signal(pid, "KILL");
        }
        for c in children {
            if alive(c) {
                signal(c, "KILL");
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The parent notices a crashed child about once a second: let that line land.
            std::thread::sleep(Duration::from_millis(1200));
            eprintln!(
                "--- error_log of the server on port {} ({:?}) ---\n{}",
                self.port,
                self.spec.module,
                self.error_log()
            );
            eprintln!(
                "--- access_log ---\n{}",
                read_to_string_lossy(&self.root.path().join("access_log"))
            );
        }
        self.stop();
    }
}

fn signal(pid: i32, sig: &str) {
    let _ = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status();
}

/// True while the process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

/// Children of `pid`, from /proc.
pub fn child_pids(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else { return out };
    for e in dir.flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat")) {
            let rest = stat.rsplit(')').next().unwrap_or("");
            let ppid = rest.split_whitespace().nth(1).and_then(|s| s.parse::<i32>().ok());
            if ppid == Some(pid) {
                out.push(p);
            }
        }
    }
    out
}

/// VmRSS of a process in KiB (0 if gone).
pub fn rss_kib(pid: i32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Reads a file fully (for `/proc` and logs).
pub fn read_to_string_lossy(path: &Path) -> String {
    let mut v = Vec::new();
    if let Ok(mut f) = fs::File::open(path) {
        let _ = f.read_to_end(&mut v);
    }
    String::from_utf8_lossy(&v).into_owned()
}

/// Runs `apache2 -t -f <conf>` for a config made from `spec` (never started).
/// Returns (success, stdout+stderr).
pub fn config_test(spec: &ServerSpec) -> (bool, String) {
    let root = TempDir::new("conftest");
    let rp = root.path();
    fs::create_dir_all(rp.join("htdocs")).unwrap();
    populate_root(spec, rp);
    let conf = rp.join("httpd.conf");
    fs::write(&conf, render_config(spec, rp, free_port())).unwrap();
    let out =
        Command::new(APACHE2).arg("-t").arg("-f").arg(&conf).output().expect("run apache2 -t");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Path of the shared test virtualenv (Flask, Django), creating it with
/// `scripts/setup-test-venv` if missing. Concurrent callers serialise on a lock file.
pub fn test_venv() -> PathBuf {
    let root = repo_root();
    let venv = root.join("target/test-venv");
    let stamp = venv.join(".mod_wsgi_rs-stamp");
    if stamp.exists() {
        return venv;
    }
    fs::create_dir_all(root.join("target")).unwrap();
    let lock = root.join("target/test-venv.lock");
    let status = Command::new("flock")
        .arg(&lock)
        .arg(root.join("scripts/setup-test-venv"))
        .status()
        .expect("run scripts/setup-test-venv");
    assert!(status.success(), "scripts/setup-test-venv failed: cannot create the test virtualenv");
    venv
}

/// Defines one test per listed module variant around a shared body:
/// `variants!(name, [ours => Ours, mod_wsgi => ModWsgi], |m| { ... })` makes the tests
/// `name::ours` and `name::mod_wsgi`, each calling the body with its [`Module`].
#[macro_export]
macro_rules! variants {
    ($name:ident, [$($test:ident => $module:ident),+], |$m:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_variables)]
            fn body($m: $crate::common::Module) $body
            $(
                #[test]
                fn $test() {
                    body($crate::common::Module::$module)
                }
            )+
        }
    };
}

/// Runs one test body against both modules, embedded and in daemon mode:
/// `both!(name, |m| { ... })` defines the tests `name::ours`, `name::mod_wsgi`,
/// `name::ours_daemon` and `name::mod_wsgi_daemon` (so `cargo test -- ::mod_wsgi` runs the
/// reference halves and `cargo test -- _daemon` the daemon halves). The daemon variants
/// add `WSGIDaemonProcess testgroup threads=4` and `WSGIProcessGroup testgroup` to the
/// config (see [`render_config`]). Use only for behaviour that must match mod_wsgi 4.9.4;
/// where PEP 3333 and mod_wsgi disagree, branch on `m.is_ours()`, where daemon mode
/// differs, on `m.is_daemon()`, and say why in a comment.
#[macro_export]
macro_rules! both {
    ($name:ident, |$m:ident| $body:block) => {
        $crate::variants!($name, [ours => Ours, mod_wsgi => ModWsgi, ours_daemon => OursDaemon, mod_wsgi_daemon => ModWsgiDaemon], |$m| $body);
    };
}

/// Like [`both!`] but embedded mode only (`name::ours`, `name::mod_wsgi`): for tests where
/// the daemon group would change nothing, such as `apache2 -t` configuration checks.
#[macro_export]
macro_rules! both_embedded {
    ($name:ident, |$m:ident| $body:block) => {
        $crate::variants!($name, [ours => Ours, mod_wsgi => ModWsgi], |$m| $body);
    };
}
