//! `mod_wsgi_rs-express` end to end: `start-server` for a WSGI file and for a module import
//! path, in daemon and embedded mode, fetched over a real socket and stopped with SIGTERM
//! (nothing of the server may remain); `setup-server` output that `apache2 -t` accepts;
//! `install-module` into a temporary tree; bad arguments and a port in use.
//!
//! Needs the module built (`cargo build`, as `scripts/test` does): the express binary finds
//! `libmod_wsgi_rs.so` next to itself in `target/debug/`.

#[path = "express/support.rs"]
mod express_support;

use std::fs;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use express_support::{express, free_port, get, leftovers, Express, TempDir};

const HELLO_WSGI: &str = "\
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    body = 'hello group=[%s] env=%s' % (environ['mod_wsgi.process_group'], environ.get('MODE'))
    return [body.encode()]
";

const MODULE_APP: &str = "\
GREETING = 'from module'

def app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('%s group=[%s]' % (GREETING, environ['mod_wsgi.process_group'])).encode()]
";

/// A new temporary directory holding `hello.wsgi`.
fn hello_dir(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    dir.write("hello.wsgi", HELLO_WSGI);
    dir
}

/// A new temporary directory holding the package `webpkg`, with `site` as `webpkg/site.py`.
fn module_dir(tag: &str, site: &str) -> TempDir {
    let dir = TempDir::new(tag);
    dir.write("webpkg/__init__.py", "");
    dir.write("webpkg/site.py", site);
    dir
}

/// `start-server <app…> --host 127.0.0.1 --port <port> --server-root <root> <extra…>`.
fn start_server_args<'a>(
    app: &[&'a str],
    port: &'a str,
    root: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec!["start-server"];
    args.extend_from_slice(app);
    args.extend(["--host", "127.0.0.1", "--port", port, "--server-root", root]);
    args.extend_from_slice(extra);
    args
}

/// Starts `start-server` (arguments as in [`start_server_args`]) in `dir` on a free port, with
/// its server root at `dir/<root_name>`. Returns the program, the port and the server root.
fn start_server(
    dir: &TempDir,
    root_name: &str,
    app: &[&str],
    extra: &[&str],
) -> (Express, u16, PathBuf) {
    let port = free_port();
    let root = dir.path().join(root_name);
    let (port_text, root_text) = (port.to_string(), root.to_string_lossy().into_owned());
    let args = start_server_args(app, &port_text, &root_text, extra);
    (Express::start(&args, dir.path()), port, root)
}

/// Starts `args`, waits for a 200 on `/`, checks the body, then stops the server with SIGTERM
/// and checks that no process of its server root is left. Returns the first body.
fn serve_and_stop(dir: &TempDir, args: &[&str], expect: &str) -> String {
    let started = Instant::now();
    let (mut server, port, root) = start_server(dir, "server-root", args, &[]);
    let (root_text, port_text) = (root.to_string_lossy().into_owned(), port.to_string());
    let (status, body) = server.wait_for_page(port, "/", Duration::from_secs(60));
    let took = started.elapsed();
    println!("start-server {:?}: first 200 after {:.0} ms", &args, took.as_secs_f64() * 1000.0);
    assert_eq!(status, 200, "{body}\n{}", server.logs(&root));
    assert!(body.contains(expect), "body {body:?} lacks {expect:?}");

    let running = leftovers(&root_text, &port_text);
    let daemon = !args.contains(&"--embedded-mode");
    let titled = running.iter().any(|p| p.contains("(wsgi:127.0.0.1:"));
    assert!(titled == daemon, "daemon processes (by title) iff daemon mode: {running:#?}");
    let stopping = Instant::now();
    let code = server.stop(Duration::from_secs(30));
    println!(
        "start-server {:?}: stopped {:.0} ms after SIGTERM",
        &args,
        stopping.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(code, Some(0), "express exit status after SIGTERM\n{}", server.output());
    let left = leftovers(&root_text, &port_text);
    assert!(left.is_empty(), "processes left after SIGTERM: {left:#?}");
    body
}

#[test]
fn start_server_script_daemon_mode() {
    let dir = hello_dir("script-daemon");
    let body = serve_and_stop(&dir, &["hello.wsgi", "--setenv", "MODE", "test"], "hello group=[");
    assert!(body.contains(":"), "daemon group is host:port: {body}");
    assert!(body.contains("env=test"), "--setenv reaches the environ: {body}");
}

#[test]
fn start_server_script_embedded_mode() {
    let dir = hello_dir("script-embedded");
    serve_and_stop(&dir, &["hello.wsgi", "--embedded-mode"], "hello group=[] env=None");
}

#[test]
fn start_server_module_daemon_mode() {
    let dir = module_dir("module-daemon", MODULE_APP);
    let args = ["--application-type", "module", "webpkg.site:app", "--processes", "2"];
    let body = serve_and_stop(&dir, &args, "from module group=[127.0.0.1:");
    assert!(!body.contains("[]"), "{body}");
}

#[test]
fn start_server_module_embedded_mode() {
    let dir = module_dir("module-embedded", &MODULE_APP.replace("def app", "def application"));
    let args = ["--application-type", "module", "webpkg.site", "--embedded-mode"];
    serve_and_stop(&dir, &args, "from module group=[]");
}

#[test]
fn url_alias_and_document_root_serve_static_files() {
    let dir = hello_dir("static");
    dir.write("assets/site.css", "body {}");
    dir.write("htdocs/robots.txt", "User-agent: *");
    let extra = ["--url-alias", "/static", "assets", "--document-root", "htdocs"];
    let (mut server, port, root) = start_server(&dir, "root", &["hello.wsgi"], &extra);
    let (status, _) = server.wait_for_page(port, "/", Duration::from_secs(60));
    assert_eq!(status, 200, "{}", server.logs(&root));
    assert_eq!(get(port, "/static/site.css"), Some((200, "body {}".into())));
    assert_eq!(get(port, "/robots.txt"), Some((200, "User-agent: *".into())));
    let (status, body) = get(port, "/static-not/x").unwrap();
    assert!(status == 200 && body.starts_with("hello"), "the app gets the rest: {body}");
    assert_eq!(server.stop(Duration::from_secs(30)), Some(0));
}

#[test]
fn reload_on_changes_restarts_a_module_application() {
    let dir = module_dir("reload", MODULE_APP);
    let app = ["--application-type", "module", "webpkg.site:app"];
    let (mut server, port, root) = start_server(&dir, "root", &app, &["--reload-on-changes"]);
    let (status, body) = server.wait_for_page(port, "/", Duration::from_secs(60));
    assert!(status == 200 && body.starts_with("from module"), "{body}");
    // Past the one-second granularity of some file systems' modification times.
    std::thread::sleep(Duration::from_millis(1100));
    dir.write("webpkg/site.py", &MODULE_APP.replace("from module", "edited module"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((200, body)) = get(port, "/") {
            if body.starts_with("edited module") {
                break;
            }
        }
        assert!(Instant::now() < deadline, "no reload\n{}", server.logs(&root));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(server.stop(Duration::from_secs(30)), Some(0));
    assert!(server.output().contains("changed; restarting"), "{}", server.output());
}

#[test]
fn setup_server_config_passes_apache_configtest() {
    let dir = hello_dir("setup");
    dir.write("webpkg/__init__.py", "");
    dir.write("extra.conf", "# included\n");
    for (name, extra) in [
        ("daemon", vec!["hello.wsgi", "--access-log", "--include-file", "extra.conf"]),
        ("embedded", vec!["hello.wsgi", "--embedded-mode", "--url-alias", "/s", "webpkg"]),
        ("module", vec!["--application-type", "module", "webpkg", "--trust-proxy", "10.0.0.1"]),
    ] {
        let root = dir.path().join(name).to_string_lossy().into_owned();
        let mut args = vec!["setup-server", "--server-root", root.as_str(), "--port", "8123"];
        args.extend(extra);
        let out = express(&args, dir.path());
        assert_eq!(out.status.code(), Some(0), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let conf = format!("{root}/httpd.conf");
        let test = Command::new("/usr/sbin/apache2").args(["-t", "-f", &conf]).output().unwrap();
        let said = String::from_utf8_lossy(&test.stderr);
        assert!(test.status.success() && said.contains("Syntax OK"), "{name}: {said}");
        let ctl = Command::new(format!("{root}/apachectl")).arg("configtest").output().unwrap();
        assert!(ctl.status.success(), "{name}: apachectl configtest");
        assert!(leftovers(&root, "8123").is_empty(), "setup-server starts nothing");
    }
}

#[test]
fn install_module_into_a_temporary_tree() {
    let dir = TempDir::new("install");
    let (modules, etc) = (dir.path().join("modules"), dir.path().join("etc"));
    let (modules_text, etc_text) = (modules.to_string_lossy(), etc.to_string_lossy());
    let args = ["install-module", "--modules-dir", &modules_text, "--apache-conf-dir", &etc_text];
    let out = express(&args, dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let installed = modules.join("mod_wsgi_rs.so");
    let built = fs::metadata(express_support::module_so()).unwrap().len();
    assert_eq!(fs::metadata(&installed).unwrap().len(), built);
    let load = fs::read_to_string(etc.join("mods-available/wsgi_rs.load")).unwrap();
    assert!(load.contains(&format!("LoadModule wsgi_module {}", installed.display())), "{load}");
    assert!(fs::read_to_string(etc.join("mods-available/wsgi_rs.conf"))
        .unwrap()
        .contains("<IfModule"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("a2enmod wsgi_rs"));

    // A second run keeps the administrator's .conf.
    fs::write(etc.join("mods-available/wsgi_rs.conf"), "# mine\n").unwrap();
    let out = express(&args, dir.path());
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(fs::read_to_string(etc.join("mods-available/wsgi_rs.conf")).unwrap(), "# mine\n");

    // Debian's mod_wsgi enabled: refused, nothing touched.
    dir.write("etc/mods-enabled/wsgi.load", "LoadModule wsgi_module /x/mod_wsgi.so\n");
    fs::remove_file(&installed).unwrap();
    let out = express(&args, dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("mod_wsgi is enabled") && err.contains("a2dismod wsgi"), "{err}");
    assert!(!installed.exists(), "nothing installed while mod_wsgi is enabled");
}

#[test]
fn module_config_prints_load_and_virtualenv_lines() {
    let dir = TempDir::new("module-config");
    let out = express_support::express_env(
        &["module-config"],
        dir.path(),
        &[("VIRTUAL_ENV", "/srv/venv")],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let so = express_support::module_so();
    assert_eq!(
        text,
        format!("LoadModule wsgi_module \"{}\"\nWSGIPythonHome \"/srv/venv\"\n", so.display())
    );
}

#[test]
fn bad_arguments_exit_2_with_a_message() {
    let dir = hello_dir("bad-args");
    for (args, message) in [
        (vec!["start-server"], "the application (a WSGI script file or module name) is missing"),
        (vec!["start-server", "hello.wsgi", "--port", "http"], "--port must be a whole number"),
        (
            vec!["start-server", "hello.wsgi", "--no-such-option"],
            "unknown option '--no-such-option'",
        ),
        (vec!["start-server", "missing.wsgi"], "does not exist"),
        (vec!["start-server", "hello.wsgi", "other.wsgi"], "unexpected argument 'other.wsgi'"),
        (vec!["start-server", "--application-type", "module", "a-b"], "not a module import path"),
        (vec!["launch"], "unknown command 'launch'"),
        (vec![], "a command is required"),
    ] {
        let out = express(&args, dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with("mod_wsgi_rs-express: ") && err.contains(message),
            "{args:?}: {err}"
        );
    }
    let out = express(&["start-server", "--help"], dir.path());
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--reload-on-changes"));
}

#[test]
fn port_in_use_is_reported_before_apache_starts() {
    let dir = hello_dir("port-in-use");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let root = dir.path().join("root").to_string_lossy().into_owned();
    let out = express(&start_server_args(&["hello.wsgi"], &port, &root, &[]), dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("port {port} is already in use")), "{err}");
    assert!(leftovers(&root, &port).is_empty());
    drop(taken);
}
