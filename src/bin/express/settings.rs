//! The resolved server settings: the options of `start-server`/`setup-server` checked against
//! each other and the machine, with every derived default filled in (server root, working
//! directory, Python path, capacity, the user Apache runs as).
//!
//! Everything the outside world contributes (current directory, uid, environment, where the
//! module is) comes in through [`Env`], so the resolution is unit-tested without touching the
//! machine beyond `Path::exists`.

use std::path::{Path, PathBuf};

use crate::options::Parsed;

/// What the application is.
#[derive(Clone, Debug, PartialEq)]
pub enum App {
    /// A WSGI script file, mounted directly.
    Script(PathBuf),
    /// A module import path; a generated handler script imports it.
    Module { module: String },
}

/// The daemon and capacity timeouts, in seconds (0 is off where the module allows it).
#[derive(Clone, Debug, PartialEq)]
pub struct Timeouts {
    pub request: u32,
    pub queue: u32,
    pub socket: u32,
    pub connect: u32,
    pub startup: u32,
    pub deadlock: u32,
    pub inactivity: u32,
    pub graceful: u32,
    pub shutdown: u32,
}

/// Facts about the machine and the invocation.
#[derive(Clone, Debug)]
pub struct Env {
    pub cwd: PathBuf,
    pub uid: u32,
    /// `$TMPDIR`, or `/tmp`.
    pub tmpdir: PathBuf,
    /// `$VIRTUAL_ENV`, when a virtualenv is active.
    pub virtual_env: Option<String>,
}

/// Everything the configuration template needs.
#[derive(Clone, Debug)]
pub struct Server {
    pub app: App,
    /// `None`: every interface.
    pub host: Option<String>,
    pub port: u16,
    pub processes: u32,
    pub threads: u32,
    pub max_clients: u32,
    pub embedded: bool,
    pub server_root: PathBuf,
    pub working_directory: PathBuf,
    /// Working directory first, then `--python-path` entries.
    pub python_path: Vec<PathBuf>,
    pub python_home: Option<String>,
    pub callable_object: String,
    pub application_group: String,
    pub url_aliases: Vec<(String, PathBuf)>,
    pub document_root: Option<PathBuf>,
    pub reload_on_changes: bool,
    pub log_to_terminal: bool,
    pub access_log: bool,
    pub log_level: String,
    pub timeouts: Timeouts,
    pub maximum_requests: u32,
    /// `User`/`Group` for Apache; only when started as root (otherwise Apache cannot switch).
    pub run_as: Option<(String, String)>,
    pub setenv: Vec<(String, String)>,
    pub include_files: Vec<PathBuf>,
    pub trust_proxy_headers: Vec<String>,
    pub trust_proxies: Vec<String>,
    pub httpd: PathBuf,
    pub module: PathBuf,
}

impl Server {
    /// The name Apache and the URL use for this server.
    pub fn server_name(&self) -> &str {
        self.host.as_deref().filter(|h| !h.is_empty() && *h != "0.0.0.0").unwrap_or("localhost")
    }

    /// mod_wsgi-express's daemon group name, `host:port`.
    pub fn process_group(&self) -> String {
        format!("{}:{}", self.server_name(), self.port)
    }

    pub fn url(&self) -> String {
        format!("http://{}:{}/", self.server_name(), self.port)
    }

    pub fn error_log(&self) -> PathBuf {
        self.server_root.join("error_log")
    }

    pub fn access_log_path(&self) -> PathBuf {
        self.server_root.join("access_log")
    }

    pub fn config_file(&self) -> PathBuf {
        self.server_root.join("httpd.conf")
    }

    /// The generated script for `--application-type module`.
    pub fn handler_script(&self) -> PathBuf {
        self.server_root.join("handler.wsgi")
    }

    /// The file `WSGIScriptAlias /` points at.
    pub fn script(&self) -> PathBuf {
        match &self.app {
            App::Script(path) => path.clone(),
            App::Module { .. } => self.handler_script(),
        }
    }
}

/// Makes `path` absolute against `cwd` and drops `.` parts (not `..`: symlinks make that
/// unsafe to resolve by text).
fn absolute(cwd: &Path, path: &str) -> PathBuf {
    cwd.join(path).components().collect()
}

/// Refuses text that cannot sit inside an Apache configuration line.
fn one_line(what: &str, value: &str) -> Result<(), String> {
    if value.contains(['\n', '\r', '\0']) {
        return Err(format!("{what} may not contain a line break: {value:?}"));
    }
    Ok(())
}

/// Checks `pkg.module[:callable]`; returns the module and the callable, if given.
fn module_path(text: &str) -> Result<(String, Option<String>), String> {
    let (module, callable) = match text.split_once(':') {
        Some((m, c)) => (m, Some(c)),
        None => (text, None),
    };
    let ident = |s: &str| {
        !s.is_empty()
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars().all(|c| c == '_' || c.is_alphanumeric())
    };
    if !module.split('.').all(ident) || !callable.is_none_or(ident) {
        return Err(format!(
            "'{text}' is not a module import path such as myproject.wsgi or \
             myproject.wsgi:application"
        ));
    }
    Ok((module.to_string(), callable.map(str::to_string)))
}

/// Resolves the options. `module` is the module file already located by the caller.
pub fn resolve(p: &Parsed, env: &Env, module: PathBuf) -> Result<Server, String> {
    let text = |name: &str| p.text(name).unwrap_or_default();
    let count = |name: &str| p.count(name).unwrap_or(0);
    let app_text = p.app.clone().unwrap_or_default();
    one_line("APP", &app_text)?;
    let mut callable_object = text("callable-object");
    let app = if text("application-type") == "module" {
        let (module, callable) = module_path(&app_text)?;
        if let Some(c) = callable {
            callable_object = c;
        }
        App::Module { module }
    } else {
        let path = absolute(&env.cwd, &app_text);
        if !path.is_file() {
            return Err(format!(
                "the WSGI script '{}' does not exist (for a module, add --application-type module)",
                path.display()
            ));
        }
        App::Script(path)
    };
    let port = match p.count("port") {
        Some(n @ 1..=65535) => n as u16,
        other => return Err(format!("--port must be from 1 to 65535, not {other:?}")),
    };
    let (processes, threads) = (count("processes"), count("threads"));
    if processes == 0 || threads == 0 {
        return Err("--processes and --threads must be at least 1".into());
    }
    let embedded = p.flag("embedded-mode");
    // Daemon mode: Apache's threads only pass requests on, so allow a backlog beyond the
    // daemon's threads (mod_wsgi-express's 1.5x). Embedded mode: Apache's threads are the
    // application's threads, so capacity is exactly processes x threads.
    let max_clients = match p.count("max-clients") {
        Some(n) if n > 0 => n,
        _ if embedded => processes * threads,
        _ => (processes * threads * 3).div_ceil(2).max(10),
    };
    let host = p.text("host");
    let server_name = host.clone().unwrap_or_else(|| "localhost".into());
    let server_root = match p.text("server-root") {
        Some(dir) => absolute(&env.cwd, &dir),
        None => env.tmpdir.join(format!("mod_wsgi_rs-{server_name}:{port}:{}", env.uid)),
    };
    let working_directory = match (p.text("working-directory"), &app) {
        (Some(dir), _) => absolute(&env.cwd, &dir),
        (None, App::Script(path)) => path.parent().unwrap_or(Path::new("/")).to_path_buf(),
        (None, App::Module { .. }) => env.cwd.clone(),
    };
    let mut python_path = vec![working_directory.clone()];
    python_path.extend(p.list("python-path").iter().map(|d| absolute(&env.cwd, d)));
    let run_as = (env.uid == 0).then(|| {
        let user = p.text("user").unwrap_or_else(|| "www-data".into());
        (user, p.text("group").unwrap_or_else(|| "www-data".into()))
    });
    let mut url_aliases = Vec::new();
    for (url, path) in p.pairs("url-alias") {
        if !url.starts_with('/') {
            return Err(format!("--url-alias: the URL must start with '/', not '{url}'"));
        }
        url_aliases.push((url.trim_end_matches('/').to_string(), absolute(&env.cwd, &path)));
    }
    let server = Server {
        app,
        host,
        port,
        processes,
        threads,
        max_clients,
        embedded,
        server_root,
        working_directory,
        python_path,
        python_home: p.text("python-home").or_else(|| env.virtual_env.clone()),
        callable_object,
        application_group: text("application-group"),
        url_aliases,
        document_root: p.text("document-root").map(|d| absolute(&env.cwd, &d)),
        reload_on_changes: p.flag("reload-on-changes"),
        log_to_terminal: p.flag("log-to-terminal"),
        access_log: p.flag("access-log"),
        log_level: text("log-level"),
        timeouts: Timeouts {
            request: count("request-timeout"),
            queue: count("queue-timeout"),
            socket: count("socket-timeout"),
            connect: count("connect-timeout"),
            startup: count("startup-timeout"),
            deadlock: count("deadlock-timeout"),
            inactivity: count("inactivity-timeout"),
            graceful: count("graceful-timeout"),
            shutdown: count("shutdown-timeout"),
        },
        maximum_requests: count("maximum-requests"),
        run_as,
        setenv: p.pairs("setenv"),
        include_files: p.list("include-file").iter().map(|f| absolute(&env.cwd, f)).collect(),
        trust_proxy_headers: p.list("trust-proxy-header"),
        trust_proxies: p.list("trust-proxy"),
        httpd: PathBuf::from(text("httpd-executable")),
        module,
    };
    check_one_line(&server)?;
    Ok(server)
}

/// Every value the template writes must fit on its line; quotes are escaped there.
fn check_one_line(s: &Server) -> Result<(), String> {
    let mut values: Vec<(&str, String)> = vec![
        ("--server-root", s.server_root.display().to_string()),
        ("--working-directory", s.working_directory.display().to_string()),
        ("--callable-object", s.callable_object.clone()),
        ("--application-group", s.application_group.clone()),
        ("--host", s.server_name().to_string()),
        ("--python-home", s.python_home.clone().unwrap_or_default()),
    ];
    values.extend(s.python_path.iter().map(|d| ("--python-path", d.display().to_string())));
    values
        .extend(s.url_aliases.iter().map(|(u, d)| ("--url-alias", format!("{u} {}", d.display()))));
    values.extend(s.setenv.iter().map(|(k, v)| ("--setenv", format!("{k} {v}"))));
    values.extend(s.include_files.iter().map(|f| ("--include-file", f.display().to_string())));
    for (what, value) in values {
        one_line(what, &value)?;
    }
    if s.setenv.iter().any(|(k, _)| k.contains(char::is_whitespace) || k.contains('"')) {
        return Err("--setenv: the KEY may not contain spaces or quotes".into());
    }
    if s.python_path.iter().any(|d| d.to_string_lossy().contains(':')) {
        return Err("--python-path and --working-directory may not contain ':'".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::parse;

    fn env() -> Env {
        Env { cwd: "/proj".into(), uid: 0, tmpdir: "/tmp".into(), virtual_env: None }
    }

    fn resolve_line(line: &str, env: &Env) -> Result<Server, String> {
        let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        resolve(&parse(&args).unwrap(), env, "/m.so".into())
    }

    #[test]
    fn module_app_defaults() {
        let s =
            resolve_line("start-server --application-type module pkg.wsgi:app", &env()).unwrap();
        assert_eq!(s.app, App::Module { module: "pkg.wsgi".into() });
        assert_eq!(s.callable_object, "app", "the callable in APP wins over the default");
        assert_eq!(s.server_root, Path::new("/tmp/mod_wsgi_rs-localhost:8000:0"));
        assert_eq!(s.working_directory, Path::new("/proj"));
        assert_eq!(s.python_path, [PathBuf::from("/proj")]);
        assert_eq!(s.process_group(), "localhost:8000");
        assert_eq!(s.url(), "http://localhost:8000/");
        assert_eq!(s.script(), Path::new("/tmp/mod_wsgi_rs-localhost:8000:0/handler.wsgi"));
        assert_eq!(s.max_clients, 10);
        assert_eq!(s.run_as, Some(("www-data".into(), "www-data".into())));
        assert_eq!(s.timeouts.request, 60);
        assert_eq!(s.timeouts.queue, 45);
    }

    #[test]
    fn script_app_paths_are_absolute_and_must_exist() {
        let dir = std::env::temp_dir().join(format!("express-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("site.wsgi"), "").unwrap();
        let e = Env { cwd: dir.clone(), uid: 1000, ..env() };
        let s = resolve_line(
            "start-server ./site.wsgi --host 127.0.0.1 --port 9000 --python-path lib \
             --url-alias /static/ static --server-root root",
            &e,
        )
        .unwrap();
        assert_eq!(s.app, App::Script(dir.join("site.wsgi")));
        assert_eq!(s.working_directory, dir);
        assert_eq!(s.python_path, [dir.clone(), dir.join("lib")]);
        assert_eq!(s.url_aliases, [("/static".to_string(), dir.join("static"))]);
        assert_eq!(s.server_root, dir.join("root"));
        assert_eq!(s.process_group(), "127.0.0.1:9000");
        assert_eq!(s.run_as, None, "not root: Apache keeps our user");
        let err = resolve_line("start-server missing.wsgi", &e).unwrap_err();
        assert!(err.contains("missing.wsgi' does not exist"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn capacity_defaults_follow_the_mode() {
        let e = env();
        let line = "start-server --application-type module m --processes 2 --threads 10";
        assert_eq!(resolve_line(line, &e).unwrap().max_clients, 30);
        let s = resolve_line(&format!("{line} --embedded-mode"), &e).unwrap();
        assert_eq!(s.max_clients, 20);
        let s = resolve_line(&format!("{line} --max-clients 7"), &e).unwrap();
        assert_eq!(s.max_clients, 7);
    }

    #[test]
    fn virtualenv_is_the_default_python_home() {
        let e = Env { virtual_env: Some("/venv".into()), ..env() };
        let s = resolve_line("start-server --application-type module m", &e).unwrap();
        assert_eq!(s.python_home.as_deref(), Some("/venv"));
        let s = resolve_line("start-server --application-type module m --python-home /o", &e);
        assert_eq!(s.unwrap().python_home.as_deref(), Some("/o"));
    }

    #[test]
    fn bad_values() {
        let e = env();
        let module = "start-server --application-type module";
        for (line, expect) in [
            (format!("{module} 9pkg"), "not a module import path"),
            (format!("{module} pkg:"), "not a module import path"),
            (format!("{module} a-b.c"), "not a module import path"),
            (format!("{module} m --port 0"), "--port must be from 1 to 65535"),
            (format!("{module} m --port 70000"), "--port must be from 1 to 65535"),
            (format!("{module} m --threads 0"), "at least 1"),
            (format!("{module} m --url-alias static /s"), "must start with '/'"),
            (format!("{module} m --python-path /a:b"), "may not contain ':'"),
        ] {
            let err = resolve_line(&line, &e).unwrap_err();
            assert!(err.contains(expect), "{line}: {err}");
        }
        assert!(module_path("a.b_c.d:app").is_ok());
    }
}
