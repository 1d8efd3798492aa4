//! Per-request expansion of the `%{...}` templates in `WSGIProcessGroup`,
//! `WSGIApplicationGroup`, `WSGICallableObject` and the matching alias options.
//!
//! The strings produced are exactly what mod_wsgi reports as `mod_wsgi.process_group` and
//! `mod_wsgi.application_group`, since applications and log analysis key on them:
//!
//! | template | result |
//! |---|---|
//! | `%{GLOBAL}` | `""` (embedded mode / the main interpreter) |
//! | `%{RESOURCE}` | `host[:port]\|script_name` |
//! | `%{SERVER}` | `host[:port]` |
//! | `%{HOST}` | `hostname[:port]` from the request's `Host`, else the server name |
//! | `%{ENV:name}` | the variable's value (itself expanded once if it is another template) |
//! | anything else | itself |
//!
//! `host` is the `ServerName`; `:port` is left out for ports 80 and 443, whatever the scheme.
//! Only a whole-string template is recognised: `app-%{SERVER}` is a literal name.

/// What a template may refer to, gathered by the caller from the request.
pub struct RequestFacts<'a> {
    /// The server's `ServerName` (`r->server->server_hostname`).
    pub server_hostname: &'a str,
    /// The server port as Apache reports it (`ap_get_server_port`).
    pub port: u16,
    /// The script's mount point, as mod_wsgi's `wsgi_script_name` computes it: the URI minus
    /// `PATH_INFO`, lower-cased when `WSGICaseSensitivity` is Off. Runs of `/` are collapsed
    /// here.
    pub script_name: &'a str,
    /// The host name Apache parsed from the request (`r->hostname`: no port, lower case), if
    /// the request had one.
    pub host_header: Option<&'a str>,
    /// Looks up a variable for `%{ENV:name}`; mod_wsgi tries `r->notes`, then
    /// `r->subprocess_env`, then the process environment.
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

fn with_port(host: &str, port: u16) -> String {
    if port == 80 || port == 443 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    }
}

/// `ap_no2slash`: replaces each run of `/` with one.
fn collapse_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

/// The variable name of an `%{ENV:name}` template.
fn env_name(template: &str) -> Option<&str> {
    template.strip_prefix("%{ENV:")?.strip_suffix('}')
}

fn expand(template: &str, facts: &RequestFacts<'_>, allow_env: bool) -> String {
    match template {
        "%{GLOBAL}" => String::new(),
        "%{RESOURCE}" => format!(
            "{}|{}",
            with_port(facts.server_hostname, facts.port),
            collapse_slashes(facts.script_name)
        ),
        "%{SERVER}" => with_port(facts.server_hostname, facts.port),
        "%{HOST}" => {
            let host = facts.host_header.filter(|h| !h.is_empty()).unwrap_or(facts.server_hostname);
            with_port(host, facts.port)
        }
        _ => match env_name(template).filter(|_| allow_env).and_then(|n| (facts.env)(n)) {
            // The value may itself be a template, but not another %{ENV:...}, which
            // guarantees the lookup ends.
            Some(value) if value.starts_with('%') => expand(&value, facts, false),
            Some(value) => value,
            // An unset variable leaves the template text as the name, as in mod_wsgi.
            None => template.to_string(),
        },
    }
}

/// The application group (interpreter name) for a request. `template` is the effective
/// `WSGIApplicationGroup` or `application-group=` value (default `%{RESOURCE}`).
pub fn application_group(template: &str, facts: &RequestFacts<'_>) -> String {
    expand(template, facts, true)
}

/// The daemon process group for a request; `""` means embedded mode. `template` is the
/// effective `WSGIProcessGroup` or `process-group=` value (default `%{GLOBAL}`).
pub fn process_group(template: &str, facts: &RequestFacts<'_>) -> String {
    expand(template, facts, true)
}

/// The name of the WSGI callable. Only `%{ENV:name}` is a template here; when the variable is
/// unset, or the value is any other `%` form, mod_wsgi falls back to `application`.
pub fn callable_object(template: &str, facts: &RequestFacts<'_>) -> String {
    if !template.starts_with('%') {
        return template.to_string();
    }
    env_name(template).and_then(|n| (facts.env)(n)).unwrap_or_else(|| "application".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn facts<'a>(port: u16, script_name: &'a str) -> RequestFacts<'a> {
        RequestFacts {
            server_hostname: "www.example.com",
            port,
            script_name,
            host_header: None,
            env: &no_env,
        }
    }

    #[test]
    fn resource_omits_ports_80_and_443() {
        assert_eq!(application_group("%{RESOURCE}", &facts(80, "/app")), "www.example.com|/app");
        assert_eq!(application_group("%{RESOURCE}", &facts(443, "/app")), "www.example.com|/app");
        assert_eq!(
            application_group("%{RESOURCE}", &facts(8080, "/app")),
            "www.example.com:8080|/app"
        );
    }

    #[test]
    fn resource_for_root_mount_ends_with_the_bar() {
        assert_eq!(application_group("%{RESOURCE}", &facts(80, "")), "www.example.com|");
        assert_eq!(application_group("%{RESOURCE}", &facts(80, "//a//b")), "www.example.com|/a/b");
    }

    #[test]
    fn global_server_and_literals() {
        let f = facts(8080, "/app");
        assert_eq!(application_group("%{GLOBAL}", &f), "");
        assert_eq!(process_group("%{GLOBAL}", &f), "");
        assert_eq!(application_group("%{SERVER}", &f), "www.example.com:8080");
        assert_eq!(process_group("mygroup", &f), "mygroup");
        assert_eq!(application_group("app-%{SERVER}", &f), "app-%{SERVER}");
        assert_eq!(application_group("%{UNKNOWN}", &f), "%{UNKNOWN}");
    }

    #[test]
    fn host_uses_the_request_host_and_falls_back_to_server_name() {
        let mut f = facts(443, "/");
        assert_eq!(application_group("%{HOST}", &f), "www.example.com");
        f.host_header = Some("alias.example.com");
        assert_eq!(application_group("%{HOST}", &f), "alias.example.com");
        f.host_header = Some("");
        f.port = 8443;
        assert_eq!(application_group("%{HOST}", &f), "www.example.com:8443");
    }

    #[test]
    fn env_lookup_and_one_level_of_expansion() {
        let env = |name: &str| match name {
            "GROUP" => Some("tenant-a".to_string()),
            "INDIRECT" => Some("%{SERVER}".to_string()),
            "LOOP" => Some("%{ENV:LOOP}".to_string()),
            _ => None,
        };
        let f = RequestFacts { env: &env, ..facts(80, "/app") };
        assert_eq!(process_group("%{ENV:GROUP}", &f), "tenant-a");
        assert_eq!(application_group("%{ENV:INDIRECT}", &f), "www.example.com");
        assert_eq!(application_group("%{ENV:LOOP}", &f), "%{ENV:LOOP}");
        assert_eq!(process_group("%{ENV:MISSING}", &f), "%{ENV:MISSING}");
        assert_eq!(process_group("%{ENV:GROUP", &f), "%{ENV:GROUP");
    }

    #[test]
    fn callable_object_env_or_application() {
        let env = |name: &str| (name == "CALLABLE").then(|| "app".to_string());
        let f = RequestFacts { env: &env, ..facts(80, "/") };
        assert_eq!(callable_object("handler", &f), "handler");
        assert_eq!(callable_object("%{ENV:CALLABLE}", &f), "app");
        assert_eq!(callable_object("%{ENV:NOPE}", &f), "application");
        assert_eq!(callable_object("%{GLOBAL}", &f), "application");
    }
}
