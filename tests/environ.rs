//! The WSGI environ: CGI variables, `HTTP_*` headers, `wsgi.*`, `mod_wsgi.*` and
//! `apache.*` keys (PEP 3333 "environ Variables"; mod_wsgi reference section 2.1).
//!
//! Only the keys that mod_wsgi 4.9.4 and 6.x agree on are asserted here: 4.9.4 also sets
//! `GATEWAY_INTERFACE`, `PATH_TRANSLATED` and `SERVER_SIGNATURE`, which 6.0 omits, and its
//! `mod_wsgi.request_start` is a microsecond string where 6.0 has a float.
mod common;
use common::json::Json;
use common::*;

fn environ(s: &Server, path: &str, headers: &[(&str, &str)]) -> Json {
    let r = s.client().request_with("GET", path, headers, b"");
    assert_eq!(r.status, 200, "GET {path} should answer 200, body: {}", r.text());
    r.json()
}

both!(cgi_variables, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let j = environ(&s, "/ks/environ?a=1&b=%20", &[("X-Custom-Header", "v1")]);
    let e = j.get("environ");
    let port = s.port.to_string();
    for (key, want) in [
        ("REQUEST_METHOD", "GET"),
        ("SCRIPT_NAME", "/ks"),
        ("PATH_INFO", "/environ"),
        ("QUERY_STRING", "a=1&b=%20"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("SERVER_NAME", "127.0.0.1"),
        ("SERVER_PORT", port.as_str()),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("SERVER_ADDR", "127.0.0.1"),
        ("REQUEST_URI", "/ks/environ?a=1&b=%20"),
        ("REQUEST_SCHEME", "http"),
        ("HTTP_HOST", &format!("127.0.0.1:{port}")),
        ("HTTP_X_CUSTOM_HEADER", "v1"),
    ] {
        assert_eq!(e.get(key).str(), want, "environ[{key:?}] should be {want:?}");
    }
    assert!(
        e.get("SCRIPT_FILENAME").str().ends_with("/apps/kitchensink.wsgi"),
        "SCRIPT_FILENAME should be the script's path"
    );
    assert!(
        e.get("SERVER_SOFTWARE").str().starts_with("Apache/2.4"),
        "SERVER_SOFTWARE names Apache"
    );
    assert!(e.get("REMOTE_PORT").str().parse::<u16>().is_ok(), "REMOTE_PORT is a port number");
    assert!(e.has("DOCUMENT_ROOT"), "DOCUMENT_ROOT is set");
    assert!(
        !e.has("CONTENT_LENGTH")
            || e.get("CONTENT_LENGTH").str().is_empty()
            || e.get("CONTENT_LENGTH").str() == "0",
        "a GET without body has no meaningful CONTENT_LENGTH"
    );
    // PEP 3333: every CGI/HTTP value is a native str.
    let types = j.get("types");
    for k in types.keys() {
        if k.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
            assert_eq!(types.get(k).str(), "str", "environ[{k:?}] must be a native str (PEP 3333)");
        }
    }
});

both!(content_type_and_length_not_http_prefixed, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let r = s.post("/ks/environ", b"hello", "text/x-test");
    assert_eq!(r.status, 200, "POST /ks/environ answers 200");
    let e = r.json();
    let e = e.get("environ");
    assert_eq!(e.get("CONTENT_TYPE").str(), "text/x-test", "Content-Type becomes CONTENT_TYPE");
    assert_eq!(e.get("CONTENT_LENGTH").str(), "5", "Content-Length becomes CONTENT_LENGTH");
    assert!(!e.has("HTTP_CONTENT_TYPE"), "no HTTP_CONTENT_TYPE (CGI rule)");
    assert!(!e.has("HTTP_CONTENT_LENGTH"), "no HTTP_CONTENT_LENGTH (CGI rule)");
    assert_eq!(e.get("REQUEST_METHOD").str(), "POST", "REQUEST_METHOD is POST");
});

both!(wsgi_keys, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let j = environ(&s, "/ks/environ", &[]);
    let e = j.get("environ");
    let types = j.get("types");
    assert_eq!(
        e.get("wsgi.version"),
        &Json::Arr(vec![Json::Num(1.0), Json::Num(0.0)]),
        "wsgi.version is (1, 0)"
    );
    assert_eq!(types.get("wsgi.version").str(), "tuple", "wsgi.version is a tuple");
    assert_eq!(e.get("wsgi.url_scheme").str(), "http", "wsgi.url_scheme is http on plain HTTP");
    if m.is_daemon() {
        // mod_wsgi: threads=4 makes it multithread; without `processes=` a daemon group is
        // one process and wsgi.multiprocess is False.
        assert!(e.get("wsgi.multithread").bool(), "daemon threads=4: wsgi.multithread is True");
        assert!(
            !e.get("wsgi.multiprocess").bool(),
            "daemon group without processes=: wsgi.multiprocess is False"
        );
    } else {
        assert!(
            e.get("wsgi.multithread").bool(),
            "event MPM with 8 threads: wsgi.multithread is True"
        );
        assert!(e.get("wsgi.multiprocess").bool(), "ServerLimit 2: wsgi.multiprocess is True");
    }
    assert!(!e.get("wsgi.run_once").bool(), "embedded mode: wsgi.run_once is False");
    assert!(e.get("wsgi.input_terminated").bool(), "wsgi.input_terminated is True");
    for k in ["wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once", "wsgi.input_terminated"] {
        assert_eq!(types.get(k).str(), "bool", "{k} is a bool");
    }
    assert!(j.get("errors_has_write").bool(), "wsgi.errors has write()");
    assert!(j.get("input_has_read").bool(), "wsgi.input has read()");
    assert!(j.get("file_wrapper_callable").bool(), "wsgi.file_wrapper is callable");
});

both!(wsgiref_validator_accepts_environ, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let r = s.get("/ks/validate");
    assert_eq!(
        r.status,
        200,
        "wsgiref.validate found a PEP 3333 violation: {}\n{}",
        r.text(),
        s.error_log()
    );
    assert_eq!(r.body, b"validated", "validated body comes back");
});

both!(query_string_always_present, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let j = environ(&s, "/ks/environ", &[]);
    assert_eq!(
        j.get("environ").get("QUERY_STRING").str(),
        "",
        "QUERY_STRING is present and empty without a query"
    );
});

both!(proxy_header_never_passed, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let j = environ(&s, "/ks/environ", &[("Proxy", "http://evil.example:1")]);
    assert!(
        !j.get("environ").has("HTTP_PROXY"),
        "the Proxy header must never reach the app (httpoxy)"
    );
});

both!(invalid_header_names_dropped, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let j = environ(&s, "/ks/environ", &[("X_Under_Score", "u"), ("X-Dash-Ok", "d")]);
    let e = j.get("environ");
    assert!(
        !e.has("HTTP_X_UNDER_SCORE"),
        "a header name with '_' is dropped (it would alias X-Under-Score)"
    );
    assert_eq!(e.get("HTTP_X_DASH_OK").str(), "d", "a valid header name is passed");
});

both!(authorization_hidden_by_default, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let j = environ(&s, "/ks/environ", &[("Authorization", "Basic Zm9vOmJhcg==")]);
    assert!(
        !j.get("environ").has("HTTP_AUTHORIZATION"),
        "Authorization is hidden unless WSGIPassAuthorization On"
    );
});

both!(authorization_passed_when_enabled, |m| {
    let s = Server::start(ServerSpec::kitchensink(m).config("WSGIPassAuthorization On"));
    let j = environ(&s, "/ks/environ", &[("Authorization", "Basic Zm9vOmJhcg==")]);
    assert_eq!(
        j.get("environ").get("HTTP_AUTHORIZATION").str(),
        "Basic Zm9vOmJhcg==",
        "WSGIPassAuthorization On passes Authorization"
    );
});

both!(header_values_are_latin1, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let raw = format!(
        "GET /ks/environ HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nX-Latin: caf\u{e9}\r\n\r\n",
        s.port
    );
    // Send the header value as the single byte 0xE9, not UTF-8.
    let raw: Vec<u8> = raw.chars().map(|c| c as u32 as u8).collect();
    let r = s.request_raw(&raw);
    assert_eq!(r.status, 200, "request with a Latin-1 header byte answers 200");
    assert_eq!(
        r.json().get("environ").get("HTTP_X_LATIN").str(),
        "caf\u{e9}",
        "byte 0xE9 decodes as Latin-1 U+00E9"
    );
});

both!(path_info_is_latin1_decoded_bytes, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let j = environ(&s, "/ks/environ/caf%C3%A9", &[]);
    // PEP 3333: the URL-decoded bytes, each byte one code point (Latin-1), not UTF-8 decoded.
    assert_eq!(
        j.get("environ").get("PATH_INFO").str(),
        "/environ/caf\u{c3}\u{a9}",
        "PATH_INFO holds Latin-1 decoded bytes"
    );
    assert_eq!(j.get("environ").get("SCRIPT_NAME").str(), "/ks", "SCRIPT_NAME is the mount point");
    // A byte that is not UTF-8 reaches the application as it came.
    let j = environ(&s, "/ks/environ/caf%E9", &[]);
    assert_eq!(j.get("environ").get("PATH_INFO").str(), "/environ/caf\u{e9}", "byte 0xE9 kept");
});

both!(root_mount_has_empty_script_name, |m| {
    let s = Server::start(ServerSpec::new(m).config(
        "WSGIScriptAlias / @APPS@/kitchensink.wsgi\nWSGIApplicationGroup %{GLOBAL}\n<Directory @APPS@>\n Require all granted\n</Directory>",
    ));
    let j = environ(&s, "/environ", &[]);
    let e = j.get("environ");
    assert_eq!(e.get("SCRIPT_NAME").str(), "", "mounted at /: SCRIPT_NAME is empty");
    assert_eq!(e.get("PATH_INFO").str(), "/environ", "mounted at /: PATH_INFO is the whole path");
});

both!(mod_wsgi_keys, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let j = environ(&s, "/ks/environ", &[]);
    let e = j.get("environ");
    let types = j.get("types");
    if m.is_daemon() {
        assert_eq!(
            e.get("mod_wsgi.process_group").str(),
            DAEMON_GROUP,
            "daemon mode: mod_wsgi.process_group is the group's name"
        );
        // mod_wsgi 4.9.4: a string of microseconds; 6.x: a float of seconds.
        let seconds = |key: &str| match e.get(key) {
            Json::Num(n) => *n,
            Json::Str(s) => s.parse::<f64>().unwrap_or(0.0) / 1e6,
            other => panic!("{key} is a number or a numeric string: {other}"),
        };
        let (request, queue, daemon) = (
            seconds("mod_wsgi.request_start"),
            seconds("mod_wsgi.queue_start"),
            seconds("mod_wsgi.daemon_start"),
        );
        assert!(
            daemon > 0.0,
            "daemon mode: mod_wsgi.daemon_start is a non-zero time, got {daemon}"
        );
        // The Apache child hands the request over (queue_start) after it arrived and
        // before a daemon thread takes it (daemon_start).
        assert!(
            request <= queue && queue <= daemon && daemon - request < 10.0,
            "request_start {request} <= queue_start {queue} <= daemon_start {daemon}"
        );
    } else {
        assert_eq!(
            e.get("mod_wsgi.process_group").str(),
            "",
            "embedded mode: mod_wsgi.process_group is ''"
        );
    }
    assert_eq!(
        e.get("mod_wsgi.application_group").str(),
        "",
        "%{{GLOBAL}}: mod_wsgi.application_group is ''"
    );
    assert_eq!(e.get("mod_wsgi.callable_object").str(), "application", "default callable object");
    assert_eq!(
        e.get("mod_wsgi.request_handler").str(),
        "wsgi-script",
        "mod_wsgi.request_handler is r->handler"
    );
    assert_eq!(e.get("mod_wsgi.script_name").str(), "/ks", "mod_wsgi.script_name");
    assert_eq!(e.get("mod_wsgi.path_info").str(), "/environ", "mod_wsgi.path_info");
    assert_eq!(e.get("mod_wsgi.listener_host").str(), "127.0.0.1", "mod_wsgi.listener_host");
    assert_eq!(e.get("mod_wsgi.listener_port").str(), s.port.to_string(), "mod_wsgi.listener_port");
    assert_eq!(types.get("mod_wsgi.version").str(), "tuple", "mod_wsgi.version is a tuple");
    assert_eq!(types.get("apache.version").str(), "tuple", "apache.version is a tuple");
    assert_eq!(e.get("apache.version").arr().len(), 3, "apache.version is (major, minor, patch)");
    assert_eq!(e.get("apache.version").arr()[0].num(), 2.0, "apache.version major is 2");
    // request_id/connection_id exist only once Apache made a log id for the request: not asserted.
    assert_eq!(types.get("mod_wsgi.thread_id").str(), "int", "mod_wsgi.thread_id is an int");
    assert!(
        !e.keys().iter().any(|k| k.starts_with("mod_wsgi.x-")),
        "no internal mod_wsgi.x-* keys leak"
    );
});

both!(application_group_defaults_to_resource, |m| {
    // No WSGIApplicationGroup: %{RESOURCE} = "<server name>|<mount point>".
    let s = Server::start(ServerSpec::new(m).config(
        "WSGIScriptAlias /ks @APPS@/kitchensink.wsgi\n<Directory @APPS@>\n Require all granted\n</Directory>",
    ));
    let j = environ(&s, "/ks/environ", &[]);
    let group = j.get("environ").get("mod_wsgi.application_group").str().to_string();
    assert!(
        group == "127.0.0.1|/ks" || group == format!("127.0.0.1:{}|/ks", s.port),
        "default application group is %{{RESOURCE}} (host|/ks), got {group:?}"
    );
});

both!(setenv_reaches_environ, |m| {
    let s = Server::start(ServerSpec::kitchensink(m).config("SetEnv MY_SETTING configured-value"));
    let j = environ(&s, "/ks/environ", &[]);
    assert_eq!(
        j.get("environ").get("MY_SETTING").str(),
        "configured-value",
        "SetEnv variables reach the environ"
    );
});

both!(prefork_is_not_multithread, |m| {
    let s = Server::start(ServerSpec::kitchensink(m).mpm(Mpm::Prefork));
    let j = environ(&s, "/ks/environ", &[]);
    let e = j.get("environ");
    if m.is_daemon() {
        // The daemon's threads=, not the MPM, decides (mod_wsgi behaviour).
        assert!(e.get("wsgi.multithread").bool(), "prefork + daemon threads=4: multithread");
        assert!(
            !e.get("wsgi.multiprocess").bool(),
            "prefork + one daemon process: not multiprocess"
        );
    } else {
        assert!(!e.get("wsgi.multithread").bool(), "prefork: wsgi.multithread is False");
        assert!(e.get("wsgi.multiprocess").bool(), "prefork: wsgi.multiprocess is True");
    }
});

both!(main_interpreter_is_debian_python, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let j = environ(&s, "/ks/environ", &[]);
    assert!(j.get("python").str().starts_with("3.11."), "the app runs on Python 3.11");
});

both!(each_request_sees_its_own_values, |m| {
    // Values repeat from request to request, and change: every request must see its own
    // (including a long one, a Latin-1 one, and a header that comes and goes).
    let s = Server::start(ServerSpec::kitchensink(m));
    let long = "v".repeat(2000);
    let cases: [(&str, Option<&str>); 6] = [
        ("/ks/environ?a=1", Some("one")),
        ("/ks/environ?a=1", Some("one")),
        ("/ks/environ?a=2", Some("two")),
        ("/ks/environ?a=1", None),
        ("/ks/environ?a=1", Some(&long)),
        ("/ks/environ?a=3", Some("one")),
    ];
    for (path, probe) in cases {
        let headers: Vec<(&str, &str)> = probe.iter().map(|v| ("X-Probe", *v)).collect();
        let j = environ(&s, path, &headers);
        let env = j.get("environ");
        let query = path.split_once('?').unwrap().1;
        assert_eq!(env.get("QUERY_STRING").str(), query, "QUERY_STRING of {path} {probe:?}");
        assert_eq!(env.opt("HTTP_X_PROBE").map(|v| v.str()), probe, "X-Probe of {path} {probe:?}");
    }
});
