//! Real applications (issue 2, point 7): a Flask app (forms, sessions, uploads, JSON,
//! streaming) and a Django project (CSRF form, admin login on sqlite, FileResponse),
//! served from the test virtualenv (`scripts/setup-test-venv`) through `WSGIPythonHome`.
mod common;
use common::*;
use std::collections::BTreeMap;
use std::process::Command;

fn framework_server(m: Module, mount: &str) -> Server {
    let venv = test_venv();
    Server::start(ServerSpec::new(m).config(&format!(
        "WSGIPythonHome {}\n{mount}\nWSGIApplicationGroup %{{GLOBAL}}\n<Directory @APPS@>\n Require all granted\n</Directory>",
        venv.display()
    )))
}

/// A cookie jar: name -> value, from Set-Cookie headers.
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn take(&mut self, r: &Response) {
        for v in r.header_all("Set-Cookie") {
            if let Some((k, val)) = v.split(';').next().and_then(|kv| kv.split_once('=')) {
                self.0.insert(k.trim().to_string(), val.trim().to_string());
            }
        }
    }

    fn header(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }
}

fn urlencode(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

// ===== Flask =====

both!(flask_app, |m| {
    let s = framework_server(m, "WSGIScriptAlias /flask @APPS@/flask.wsgi");
    let c = s.client();

    let r = c.get("/flask/");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "flask index"),
        "Flask index page: {}",
        s.error_log()
    );

    let form = urlencode(&[("name", "Zoë & co"), ("age", "42")]);
    let r = c.post("/flask/form", form.as_bytes(), "application/x-www-form-urlencoded");
    assert_eq!(r.text(), "hello Zoë & co, you are 42", "Flask reads an urlencoded form");

    // Session: the signed cookie must round-trip.
    let mut jar = Jar::default();
    let r = c.get("/flask/session/set/round-trip-value");
    assert_eq!(r.status, 200, "session set answers 200");
    jar.take(&r);
    assert!(jar.get("session").is_some(), "Flask sets a session cookie");
    let r = c.request_with("GET", "/flask/session/get", &[("Cookie", &jar.header())], b"");
    assert_eq!(r.text(), "session value: round-trip-value", "the session cookie round-trips");

    // Multipart upload.
    let file: Vec<u8> = (0..150_000u32).map(|i| (i * 13 % 256) as u8).collect();
    let boundary = "----modwsgirsboundary7MA4YWxk";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nsome note\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"data.bin\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(&file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let r = c.post("/flask/upload", &body, &format!("multipart/form-data; boundary={boundary}"));
    assert_eq!(r.status, 200, "multipart upload answers 200: {}", r.text());
    let j = r.json();
    assert_eq!(j.get("filename").str(), "data.bin", "uploaded file name");
    assert_eq!(j.get("size").num() as usize, file.len(), "uploaded file size");
    assert_eq!(j.get("note").str(), "some note", "form field beside the file");

    // JSON in and out.
    let r = c.post(
        "/flask/json",
        br#"{"numbers": [1, 2, 3.5], "text": "h\u00e9"}"#,
        "application/json",
    );
    assert_eq!(r.status, 200, "JSON POST answers 200");
    let j = r.json();
    assert_eq!(j.get("total").num(), 6.5, "JSON body parsed");
    assert_eq!(j.get("echo").str(), "h\u{e9}", "JSON unicode round-trips");

    // Streaming.
    let r = c.get("/flask/stream");
    let want: String = (0..50).map(|i| format!("line {i}\n")).collect();
    assert_eq!(r.text(), want, "a streamed Flask response arrives whole");

    // An exception in a view: Flask's own 500 page, traceback in the error log.
    let r = c.get("/flask/error");
    assert_eq!(r.status, 500, "an exception in a Flask view gives 500");
    s.assert_log_contains(
        "flask-route-error-marker",
        "Flask logs the view's exception to wsgi.errors",
    );
});

both!(flask_runs_in_virtualenv, |m| {
    let s = framework_server(m, "WSGIScriptAlias /ks @APPS@/kitchensink.wsgi");
    let j = s.get("/ks/environ").json();
    let venv = test_venv();
    assert_eq!(
        j.get("sys_prefix").str(),
        venv.to_str().unwrap(),
        "WSGIPythonHome <venv>: sys.prefix is the virtualenv"
    );
});

// ===== Django =====

/// Runs `manage.py` of the copied project with the venv's python.
fn manage(s: &Server, args: &[&str]) {
    let venv = test_venv();
    let project = s.path("apps/django_project");
    let out = Command::new(venv.join("bin/python"))
        .arg(project.join("manage.py"))
        .args(args)
        .current_dir(&project)
        .env("DJANGO_SUPERUSER_PASSWORD", "s3cret-Pass-42")
        .output()
        .expect("run manage.py");
    assert!(
        out.status.success(),
        "manage.py {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn django_server(m: Module) -> Server {
    let s = framework_server(m, "WSGIScriptAlias /dj @APPS@/django_project/testsite/wsgi.py");
    let data = s.path("apps/django_project/data");
    std::fs::create_dir_all(&data).unwrap();
    manage(&s, &["migrate", "--noinput", "-v", "0"]);
    manage(
        &s,
        &["createsuperuser", "--noinput", "--username", "admin", "--email", "admin@example.com"],
    );
    // Apache's children (www-data) write the sqlite file and its journal.
    chown_www_data(&data);
    make_world_readable(&s.path("apps"));
    s
}

/// Value of `name="csrfmiddlewaretoken" value="..."` in a page.
fn csrf_field(html: &str) -> String {
    let i =
        html.find("name=\"csrfmiddlewaretoken\"").expect("page has a csrfmiddlewaretoken field");
    let rest = &html[i..];
    let v = rest.find("value=\"").expect("csrf field has a value") + 7;
    rest[v..v + rest[v..].find('"').unwrap()].to_string()
}

both!(django_admin_login, |m| {
    let s = django_server(m);
    let c = s.client();
    let mut jar = Jar::default();

    let r = c.get("/dj/admin/login/?next=/dj/admin/");
    assert_eq!(r.status, 200, "Django admin login page answers 200: {} {:?}", r.text(), r.io_error);
    jar.take(&r);
    assert!(jar.get("csrftoken").is_some(), "the login page sets the csrftoken cookie");
    let token = csrf_field(&r.text());

    let form = urlencode(&[
        ("csrfmiddlewaretoken", &token),
        ("username", "admin"),
        ("password", "s3cret-Pass-42"),
        ("next", "/dj/admin/"),
    ]);
    let cookie = jar.header();
    let r = c.request_with(
        "POST",
        "/dj/admin/login/?next=/dj/admin/",
        &[("Cookie", &cookie), ("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    );
    assert_eq!(r.status, 302, "valid credentials redirect: {} {:?}", r.text(), r.io_error);
    assert_eq!(
        r.header("Location"),
        Some("/dj/admin/"),
        "redirect to the admin index under the mount point"
    );
    jar.take(&r);
    assert!(jar.get("sessionid").is_some(), "login sets the session cookie");

    let r = c.request_with("GET", "/dj/admin/", &[("Cookie", &jar.header())], b"");
    assert_eq!(r.status, 200, "the admin index answers 200 when logged in");
    assert!(r.text().contains("Site administration"), "the admin index is shown after login");
});

both!(django_csrf_form_and_file_response, |m| {
    let s = django_server(m);
    let c = s.client();

    let r = c.get("/dj/hello/");
    assert_eq!(
        r.text(),
        "django hello, script prefix /dj",
        "Django sees SCRIPT_NAME as its prefix: {r:?}"
    );

    let r = c.post("/dj/form/", b"message=no-token", "application/x-www-form-urlencoded");
    assert_eq!(r.status, 403, "a POST without the CSRF token is refused");

    let mut jar = Jar::default();
    let r = c.get("/dj/form/");
    jar.take(&r);
    let token = csrf_field(&r.text());
    let form = urlencode(&[("csrfmiddlewaretoken", &token), ("message", "with token")]);
    let r = c.request_with(
        "POST",
        "/dj/form/",
        &[("Cookie", &jar.header()), ("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    );
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "posted: with token"),
        "a POST with the CSRF token passes"
    );

    let r = c.get("/dj/file/");
    let want = std::fs::read(s.path("apps/django_project/manage.py")).unwrap();
    assert_eq!(r.status, 200, "FileResponse answers 200");
    assert!(r.body == want, "FileResponse sends the file byte for byte");
});
