//! The CGI part of the WSGI environ, computed from request facts. Pure: the embedded
//! handler gathers the facts from `request_rec`, and daemon mode will ship the same
//! list over its socket. The `wsgi.*` and `mod_wsgi.*` keys are Python objects and are
//! added by the Python side.
//!
//! The set of variables follows mod_wsgi 6: request headers as `HTTP_*`, the server
//! and connection variables, then everything in Apache's `subprocess_env`.

use std::borrow::Cow;

/// Facts about one request, borrowed from Apache's structures.
#[derive(Default)]
pub struct Facts<'a> {
    pub method: &'a [u8],
    pub protocol: &'a [u8],
    /// The decoded, normalised URI path (`r->uri`).
    pub uri: &'a [u8],
    /// The request target as the client sent it (`r->unparsed_uri`).
    pub request_uri: &'a [u8],
    pub query_string: &'a [u8],
    /// The part of `uri` after the script (`r->path_info`).
    pub path_info: &'a [u8],
    pub script_filename: &'a [u8],
    pub document_root: &'a [u8],
    pub context_prefix: &'a [u8],
    pub context_document_root: &'a [u8],
    pub server_software: &'a [u8],
    pub server_name: &'a [u8],
    pub server_addr: &'a [u8],
    pub server_port: u16,
    pub server_admin: &'a [u8],
    pub remote_addr: &'a [u8],
    pub remote_port: u16,
    pub request_scheme: &'a str,
    pub remote_user: Option<&'a [u8]>,
    pub auth_type: Option<&'a [u8]>,
    /// `WSGIPassAuthorization On` (or the alias option): expose `Authorization`.
    pub pass_authorization: bool,
}

/// The values behind the environ's `wsgi.*` and `mod_wsgi.*` keys that are not CGI
/// variables. Embedded mode fills them from Apache; daemon mode carries them over its
/// socket.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestKeys {
    pub url_scheme: String,
    pub multithread: bool,
    pub multiprocess: bool,
    pub run_once: bool,
    /// "" in embedded mode.
    pub process_group: String,
    pub application_group: String,
    pub callable_object: String,
    /// Apache's handler name for the request (`wsgi-script`, ...).
    pub request_handler: String,
    pub script_reloading: bool,
    pub enable_sendfile: bool,
    pub listener_host: String,
    pub listener_port: u16,
    /// PID of the Apache child that accepted the request.
    pub server_pid: u32,
    pub request_id: String,
    /// Seconds since the epoch: when Apache read the request, when a daemon queued it,
    /// and when a daemon started on it (both 0 in embedded mode).
    pub request_start: f64,
    pub queue_start: f64,
    pub daemon_start: f64,
    pub apache_version: (u32, u32, u32),
}

/// Seconds since the epoch, as the float the `mod_wsgi.*_start` keys hold.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Maps a request header name to its environ key, or `None` when the header must not
/// reach the application: names with characters other than letters, digits and `-`
/// (they could collide with a legitimate header once `-` becomes `_`), `Proxy`
/// (httpoxy), and credentials unless passing them was allowed.
pub fn header_key(name: &[u8], pass_authorization: bool) -> Option<Cow<'static, str>> {
    if name.is_empty() || !name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-') {
        return None;
    }
    let is = |other: &str| name.eq_ignore_ascii_case(other.as_bytes());
    if is("Content-Type") {
        return Some(Cow::Borrowed("CONTENT_TYPE"));
    }
    if is("Content-Length") {
        return Some(Cow::Borrowed("CONTENT_LENGTH"));
    }
    if is("Proxy") || is("Proxy-Authorization") || (is("Authorization") && !pass_authorization) {
        return None;
    }
    let mut key = String::with_capacity(5 + name.len());
    key.push_str("HTTP_");
    key.extend(name.iter().map(|&b| if b == b'-' { '_' } else { b.to_ascii_uppercase() as char }));
    Some(Cow::Owned(key))
}

/// Replaces runs of `/` with one `/`.
fn collapse_slashes(path: &[u8]) -> Cow<'_, [u8]> {
    if !path.windows(2).any(|w| w == b"//") {
        return Cow::Borrowed(path);
    }
    let mut out = Vec::with_capacity(path.len());
    for &b in path {
        if !(b == b'/' && out.last() == Some(&b'/')) {
            out.push(b);
        }
    }
    Cow::Owned(out)
}

/// Splits the request path into `SCRIPT_NAME` (the mount point) and `PATH_INFO`.
///
/// `path_info` is the tail Apache could not map to a file; `SCRIPT_NAME` is what
/// remains of the URI in front of it, matched segment by segment so that repeated
/// slashes in the URI don't shift the split.
pub fn script_name_and_path_info<'a>(
    uri: &'a [u8],
    path_info: &'a [u8],
) -> (Cow<'a, [u8]>, Cow<'a, [u8]>) {
    let uri_c = collapse_slashes(uri);
    let info_c = collapse_slashes(path_info);
    let script = match uri_c.strip_suffix(info_c.as_ref()) {
        Some(prefix) => prefix.to_vec(),
        None => uri_c.to_vec(),
    };
    (Cow::Owned(script), info_c)
}

/// Emits every CGI variable of the request, in an order where later entries win.
pub fn cgi_variables<'a>(
    facts: &Facts<'a>,
    headers: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    subprocess_env: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    emit: &mut dyn FnMut(&str, &[u8]),
) {
    for (name, value) in headers {
        if let Some(key) = header_key(name, facts.pass_authorization) {
            emit(&key, value);
        }
    }
    for (name, value) in subprocess_env {
        // HTTPS is folded into wsgi.url_scheme; the rest (SetEnv, mod_ssl, mod_rewrite's
        // [E=]) is passed through.
        if name != b"HTTPS" {
            if let Ok(key) = std::str::from_utf8(name) {
                emit(key, value);
            }
        }
    }
    let (script_name, path_info) = script_name_and_path_info(facts.uri, facts.path_info);
    emit("SERVER_SOFTWARE", facts.server_software);
    emit("SERVER_NAME", facts.server_name);
    emit("SERVER_ADDR", facts.server_addr);
    emit("SERVER_PORT", facts.server_port.to_string().as_bytes());
    emit("REMOTE_ADDR", facts.remote_addr);
    emit("REMOTE_PORT", facts.remote_port.to_string().as_bytes());
    emit("DOCUMENT_ROOT", facts.document_root);
    emit("REQUEST_SCHEME", facts.request_scheme.as_bytes());
    emit("CONTEXT_PREFIX", facts.context_prefix);
    emit("CONTEXT_DOCUMENT_ROOT", facts.context_document_root);
    emit("SERVER_ADMIN", facts.server_admin);
    emit("SCRIPT_FILENAME", facts.script_filename);
    if let Some(user) = facts.remote_user {
        emit("REMOTE_USER", user);
    }
    if let Some(auth_type) = facts.auth_type {
        emit("AUTH_TYPE", auth_type);
    }
    emit("GATEWAY_INTERFACE", b"CGI/1.1");
    emit("SERVER_PROTOCOL", facts.protocol);
    emit("REQUEST_METHOD", facts.method);
    emit("QUERY_STRING", facts.query_string);
    emit("REQUEST_URI", facts.request_uri);
    emit("SCRIPT_NAME", &script_name);
    emit("PATH_INFO", &path_info);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_keys() {
        assert_eq!(header_key(b"User-Agent", false).as_deref(), Some("HTTP_USER_AGENT"));
        assert_eq!(header_key(b"content-type", false).as_deref(), Some("CONTENT_TYPE"));
        assert_eq!(header_key(b"Content-Length", false).as_deref(), Some("CONTENT_LENGTH"));
        assert_eq!(header_key(b"X_Forwarded_For", false), None, "underscore names are dropped");
        assert_eq!(header_key(b"X.Dot", false), None);
        assert_eq!(header_key(b"Proxy", true), None, "httpoxy");
        assert_eq!(header_key(b"Authorization", false), None);
        assert_eq!(header_key(b"Authorization", true).as_deref(), Some("HTTP_AUTHORIZATION"));
        assert_eq!(header_key(b"Proxy-Authorization", true), None);
    }

    fn split(uri: &str, info: &str) -> (String, String) {
        let (s, p) = script_name_and_path_info(uri.as_bytes(), info.as_bytes());
        (String::from_utf8(s.into_owned()).unwrap(), String::from_utf8(p.into_owned()).unwrap())
    }

    #[test]
    fn mount_point_split() {
        assert_eq!(split("/app/a/b", "/a/b"), ("/app".into(), "/a/b".into()));
        assert_eq!(split("/app", ""), ("/app".into(), "".into()));
        assert_eq!(split("/", "/"), ("".into(), "/".into()));
        assert_eq!(split("/app//a", "/a"), ("/app".into(), "/a".into()));
        assert_eq!(split("/app/x//y", "/x//y"), ("/app".into(), "/x/y".into()));
    }

    #[test]
    fn later_entries_override_and_query_string_is_always_present() {
        let facts = Facts { uri: b"/app/x", path_info: b"/x", method: b"GET", ..Facts::default() };
        let mut env = std::collections::HashMap::new();
        let headers = [(&b"Host"[..], &b"example"[..]), (&b"Bad_Header"[..], &b"x"[..])];
        let sub = [(&b"HTTPS"[..], &b"on"[..]), (&b"MY_VAR"[..], &b"1"[..])];
        cgi_variables(&facts, headers.into_iter(), sub.into_iter(), &mut |k, v| {
            env.insert(k.to_owned(), v.to_vec());
        });
        assert_eq!(env["HTTP_HOST"], b"example");
        assert_eq!(env["MY_VAR"], b"1");
        assert!(!env.contains_key("HTTPS"));
        assert!(!env.keys().any(|k| k.contains("BAD")));
        assert_eq!(env["QUERY_STRING"], b"");
        assert_eq!(env["SCRIPT_NAME"], b"/app");
        assert_eq!(env["PATH_INFO"], b"/x");
    }
}
