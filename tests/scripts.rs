//! Script loading and reloading (mod_wsgi reference 2.4; issue 2, point 5): the module
//! name, mtime reload, `WSGIScriptReloading Off`, scripts with a syntax error, an import
//! error or no callable (500 + traceback, then fixed -> 200), `WSGICallableObject`,
//! `callable-object=`, `WSGIScriptAliasMatch`, `AddHandler wsgi-script`, `WSGIImportScript`,
//! `WSGIPythonPath`.
mod common;
use common::*;
use std::fs;
use std::time::{Duration, SystemTime};

fn app_returning(text: &str) -> String {
    format!(
        "def application(environ, start_response):\n    \
         body = {text:?}.encode()\n    \
         start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])\n    \
         return [body]\n"
    )
}

/// Mounts `<root>/scripts/app.wsgi` at `/app`, in the main interpreter.
const APP_CONF: &str = "\
WSGIScriptAlias /app @ROOT@/scripts/app.wsgi
WSGIApplicationGroup %{GLOBAL}
<Directory @ROOT@/scripts>
    Require all granted
</Directory>
";

/// Rewrites a script and moves its mtime forward, so the change is seen even within the
/// same second as the previous write.
fn rewrite(s: &Server, rel: &str, content: &str) {
    let p = s.path(rel);
    fs::write(&p, content).unwrap();
    let later = SystemTime::now() + Duration::from_secs(5);
    fs::File::options().write(true).open(&p).unwrap().set_modified(later).unwrap();
    make_world_readable(&p);
}

fn app_server(m: Module, script: &str, extra: &str) -> Server {
    Server::start(
        ServerSpec::new(m).config(APP_CONF).config(extra).file("scripts/app.wsgi", script),
    )
}

both!(reload_when_script_changes, |m| {
    let s = app_server(m, &app_returning("version-1"), "");
    assert_eq!(s.get("/app").body, b"version-1", "first load serves version 1");
    rewrite(&s, "scripts/app.wsgi", &app_returning("version-2"));
    assert_eq!(
        s.get("/app").body,
        b"version-2",
        "a changed script is reloaded (WSGIScriptReloading On)"
    );
});

both!(no_reload_when_reloading_off, |m| {
    let s = app_server(m, &app_returning("version-1"), "WSGIScriptReloading Off");
    assert_eq!(s.get("/app").body, b"version-1", "first load serves version 1");
    rewrite(&s, "scripts/app.wsgi", &app_returning("version-2"));
    assert_eq!(s.get("/app").body, b"version-1", "WSGIScriptReloading Off keeps the loaded script");
});

both!(module_named_like_mod_wsgi, |m| {
    let script = "def application(environ, start_response):\n    \
                  start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
                  return [__name__.encode()]\n";
    let s = app_server(m, script, "");
    let name = s.get("/app").text();
    let hex = name
        .strip_prefix("_mod_wsgi_")
        .unwrap_or_else(|| panic!("module name {name:?} starts with _mod_wsgi_"));
    assert_eq!(hex.len(), 32, "module name ends with an md5 hex digest: {name:?}");
    assert!(hex.chars().all(|c| c.is_ascii_hexdigit()), "module name ends with hex: {name:?}");
});

both!(syntax_error_then_fixed, |m| {
    let s = app_server(m, "def application(environ, start_response:\n    pass\n", "");
    let off = s.log_len();
    let r = s.get("/app");
    assert_eq!(r.status, 500, "a script with a syntax error answers 500");
    s.assert_log_since(off, "SyntaxError", "the SyntaxError is logged");
    rewrite(&s, "scripts/app.wsgi", &app_returning("fixed"));
    let r = s.get("/app");
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, b"fixed".as_slice()),
        "the fixed script is served"
    );
});

both!(import_error_then_fixed, |m| {
    let s = app_server(m, "import module_that_does_not_exist_xyz\n", "");
    let off = s.log_len();
    let r = s.get("/app");
    assert_eq!(r.status, 500, "a script with an import error answers 500");
    s.assert_log_since(off, "module_that_does_not_exist_xyz", "the import error is logged");
    s.assert_log_since(off, "Traceback", "the import error's traceback is logged");
    rewrite(&s, "scripts/app.wsgi", &app_returning("fixed"));
    assert_eq!(s.get("/app").status, 200, "after fixing the import the script is served");
});

both!(exception_at_import_then_fixed, |m| {
    let s = app_server(m, "raise RuntimeError('failing-at-import-xyz')\n", "");
    let off = s.log_len();
    assert_eq!(s.get("/app").status, 500, "a script raising at import answers 500");
    s.assert_log_since(off, "failing-at-import-xyz", "the exception at import is logged");
    // Not cached as loaded: the next request tries again (and fails again).
    let off = s.log_len();
    assert_eq!(s.get("/app").status, 500, "still 500 on the next request");
    s.assert_log_since(off, "failing-at-import-xyz", "the failed import is retried");
    rewrite(&s, "scripts/app.wsgi", &app_returning("fixed"));
    assert_eq!(s.get("/app").body, b"fixed", "fixed script served");
});

both!(missing_callable_is_500, |m| {
    let s = app_server(m, "def something_else(environ, start_response):\n    pass\n", "");
    let off = s.log_len();
    let status = s.get("/app").status;
    if m.is_ours() || m.is_daemon() {
        // Issue 2 point 5: a script with no callable answers 500. mod_wsgi 4.9.4 answers
        // 404 ("Target WSGI script ... does not contain WSGI application") embedded, and
        // 500 in daemon mode.
        assert_eq!(status, 500, "a script without `application` answers 500");
    } else {
        assert_eq!(
            status, 404,
            "reference behaviour: mod_wsgi 4.9.4 answers 404 for a missing callable"
        );
    }
    s.assert_log_since(off, "application", "the log names the missing callable");
    s.assert_log_since(off, "app.wsgi", "the log names the script");
    rewrite(&s, "scripts/app.wsgi", &app_returning("fixed"));
    assert_eq!(s.get("/app").status, 200, "after adding the callable the script is served");
});

both!(wsgi_callable_object_directive, |m| {
    let script = app_returning("from-app-callable").replace("def application", "def app");
    let s = app_server(m, &script, "WSGICallableObject app");
    let r = s.get("/app");
    assert_eq!(r.status, 200, "WSGICallableObject app: the callable `app` is used");
    assert_eq!(r.body, b"from-app-callable", "body from `app`");
});

both!(callable_object_alias_option, |m| {
    let script = app_returning("via-option").replace("def application", "def my_app");
    let s = Server::start(
        ServerSpec::new(m)
            .config(
                "WSGIScriptAlias /opt @ROOT@/scripts/app.wsgi callable-object=my_app application-group=%{GLOBAL}\n\
                 <Directory @ROOT@/scripts>\n Require all granted\n</Directory>",
            )
            .file("scripts/app.wsgi", script),
    );
    assert_eq!(
        s.get("/opt").body,
        b"via-option",
        "callable-object= on WSGIScriptAlias picks the callable"
    );
});

both!(script_alias_match, |m| {
    let s = Server::start(
        ServerSpec::new(m)
            .config(
                "WSGIScriptAliasMatch ^/m/([^/]+) @ROOT@/scripts/$1.wsgi\n\
                 WSGIScriptAliasMatch (?i)^/n/(?!two)([a-z]+) @ROOT@/scripts/$1.wsgi\n\
                 WSGIApplicationGroup %{GLOBAL}\n\
                 <Directory @ROOT@/scripts>\n Require all granted\n</Directory>",
            )
            .file("scripts/one.wsgi", app_returning("script-one"))
            .file("scripts/two.wsgi", app_returning("script-two")),
    );
    assert_eq!(s.get("/m/one").body, b"script-one", "WSGIScriptAliasMatch maps /m/one to one.wsgi");
    assert_eq!(
        s.get("/m/two/extra").body,
        b"script-two",
        "WSGIScriptAliasMatch maps /m/two/extra to two.wsgi"
    );
    // Apache's regular expressions are PCRE: inline flags and lookarounds work as under
    // mod_wsgi.
    assert_eq!(s.get("/N/one").body, b"script-one", "(?i) makes the match case-blind");
    assert_eq!(s.get("/n/two").status, 404, "the negative lookahead excludes /n/two");
});

both!(add_handler_wsgi_script, |m| {
    let s = Server::start(ServerSpec::new(m).config(
        "Alias /h @APPS@\nWSGIApplicationGroup %{GLOBAL}\n<Directory @APPS@>\n Options ExecCGI\n \
             AddHandler wsgi-script .wsgi\n Require all granted\n</Directory>",
    ));
    let r = s.get("/h/kitchensink.wsgi/environ");
    assert_eq!(r.status, 200, "AddHandler wsgi-script serves a .wsgi file: {}", r.text());
    let j = r.json();
    let e = j.get("environ");
    assert_eq!(
        e.get("SCRIPT_NAME").str(),
        "/h/kitchensink.wsgi",
        "handler mode: SCRIPT_NAME is the file's URL"
    );
    assert_eq!(e.get("PATH_INFO").str(), "/environ", "handler mode: PATH_INFO is the rest");
});

both!(import_script_preloads, |m| {
    let script = format!(
        "import sys\nprint('preload-marker-q9', file=sys.stderr)\n{}",
        app_returning("preloaded")
    );
    let s = Server::start(
        ServerSpec::new(m)
            .config(APP_CONF)
            .config("WSGIImportScript @ROOT@/scripts/app.wsgi process-group=@PROCESS_GROUP@ application-group=%{GLOBAL}")
            .file("scripts/app.wsgi", script),
    );
    // No request yet: the child (or the daemon process) loaded the script at start.
    s.assert_log_contains(
        "preload-marker-q9",
        "WSGIImportScript runs the script when the child starts",
    );
    let before = s.log_count("preload-marker-q9");
    assert_eq!(s.get("/app").body, b"preloaded", "the preloaded script serves requests");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        s.log_count("preload-marker-q9"),
        before,
        "the first request reuses the preloaded module"
    );
});

both!(python_path_directive, |m| {
    let script = "import helper_mod_q3\n\
                  def application(environ, start_response):\n    \
                  start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
                  return [helper_mod_q3.VALUE.encode()]\n";
    let s = Server::start(
        ServerSpec::new(m)
            .config(APP_CONF)
            .config("WSGIPythonPath @ROOT@/lib")
            // mod_wsgi: WSGIPythonPath is for embedded mode, a daemon group has python-path=.
            .daemon_options("python-path=@ROOT@/lib")
            .file("scripts/app.wsgi", script)
            .file("lib/helper_mod_q3.py", "VALUE = 'from-python-path'\n"),
    );
    assert_eq!(s.get("/app").body, b"from-python-path", "WSGIPythonPath adds to sys.path");
});

both!(script_not_found_is_404, |m| {
    let s = Server::start(
        ServerSpec::new(m).config(
            "WSGIScriptAlias /missing @ROOT@/scripts/nope.wsgi\n<Directory @ROOT@/scripts>\n Require all granted\n</Directory>",
        ).file("scripts/.keep", ""),
    );
    assert_eq!(s.get("/missing").status, 404, "a WSGIScriptAlias to a missing file answers 404");
});
