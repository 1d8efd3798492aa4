//! Per-directory configuration: everything that can differ between requests, set at server
//! level or inside `<Directory>`, `<Location>`, `<Files>` and (for some) `.htaccess`.
//!
//! Every field is an `Option` (or a map that may be empty) so [`DirConfig::merge`] can tell "not
//! set here" from "set to the default". The accessors apply mod_wsgi's defaults, so callers
//! never repeat them.

use std::collections::BTreeMap;

use super::proxy::TrustedProxy;

/// `WSGIMapHEADToGET`: whether a HEAD request is shown to the application as GET.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MapHeadToGet {
    /// Never rewrite.
    Off,
    /// Always rewrite.
    On,
    /// Rewrite only when an output filter that needs the body is configured.
    #[default]
    Auto,
}

/// A per-request hook script (`WSGIDispatchScript`, `WSGIAccessScript`, `WSGIAuthUserScript`,
/// `WSGIAuthGroupScript`). Stored so existing configurations load; the hooks themselves are not
/// implemented yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptRef {
    /// Script file, as typed.
    pub path: String,
    /// `application-group=`, as typed; `None` means the hook's default interpreter.
    pub application_group: Option<String>,
}

/// A named handler from `WSGIHandlerScript` (stored; not implemented yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandlerScript {
    /// Script file, as typed.
    pub path: String,
    /// `process-group=`, as typed.
    pub process_group: Option<String>,
    /// `application-group=`, as typed.
    pub application_group: Option<String>,
    /// `pass-authorization=`.
    pub pass_authorization: Option<bool>,
}

/// Module configuration for one directory section (or a server's defaults).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DirConfig {
    /// `WSGIProcessGroup` template.
    pub process_group: Option<String>,
    /// `WSGIApplicationGroup` template.
    pub application_group: Option<String>,
    /// `WSGICallableObject` (a name, or `%{ENV:var}`).
    pub callable_object: Option<String>,
    /// `WSGIRestrictProcess`: the only process groups a request may select, as expanded names
    /// (`%{GLOBAL}` is stored as `""`, embedded mode). `Some(empty)` allows none.
    pub restrict_process: Option<Vec<String>>,
    /// `WSGIPassApacheRequest`.
    pub pass_apache_request: Option<bool>,
    /// `WSGIPassAuthorization`.
    pub pass_authorization: Option<bool>,
    /// `WSGIScriptReloading`.
    pub script_reloading: Option<bool>,
    /// `WSGIErrorOverride`.
    pub error_override: Option<bool>,
    /// `WSGIChunkedRequest`.
    pub chunked_request: Option<bool>,
    /// `WSGIMapHEADToGET`.
    pub map_head_to_get: Option<MapHeadToGet>,
    /// `WSGIIgnoreActivity`.
    pub ignore_activity: Option<bool>,
    /// `WSGIEnableSendfile`.
    pub enable_sendfile: Option<bool>,
    /// `WSGITrustedProxyHeaders`, as CGI names (`X-Forwarded-For` is `HTTP_X_FORWARDED_FOR`).
    /// Repeats within one section add to the list; a nested section replaces it.
    pub trusted_proxy_headers: Option<Vec<String>>,
    /// `WSGITrustedProxies`. Same add/replace rule as the headers.
    pub trusted_proxies: Option<Vec<TrustedProxy>>,
    /// `WSGIDispatchScript`.
    pub dispatch_script: Option<ScriptRef>,
    /// `WSGIAccessScript`.
    pub access_script: Option<ScriptRef>,
    /// `WSGIAuthUserScript`.
    pub auth_user_script: Option<ScriptRef>,
    /// `WSGIAuthGroupScript`.
    pub auth_group_script: Option<ScriptRef>,
    /// `WSGIGroupAuthoritative`.
    pub group_authoritative: Option<bool>,
    /// `WSGIHandlerScript` entries by handler name. Merging overlays the child's on the
    /// parent's.
    pub handler_scripts: BTreeMap<String, HandlerScript>,
}

impl DirConfig {
    /// Merges a nested section (`child`) over its enclosing one (`parent`): every setting the
    /// child has wins, everything else is inherited. Handler scripts are combined by name.
    pub fn merge(parent: &Self, child: &Self) -> Self {
        fn pick<T: Clone>(parent: &Option<T>, child: &Option<T>) -> Option<T> {
            child.as_ref().or(parent.as_ref()).cloned()
        }
        let mut handler_scripts = parent.handler_scripts.clone();
        handler_scripts.extend(child.handler_scripts.iter().map(|(k, v)| (k.clone(), v.clone())));
        Self {
            process_group: pick(&parent.process_group, &child.process_group),
            application_group: pick(&parent.application_group, &child.application_group),
            callable_object: pick(&parent.callable_object, &child.callable_object),
            restrict_process: pick(&parent.restrict_process, &child.restrict_process),
            pass_apache_request: pick(&parent.pass_apache_request, &child.pass_apache_request),
            pass_authorization: pick(&parent.pass_authorization, &child.pass_authorization),
            script_reloading: pick(&parent.script_reloading, &child.script_reloading),
            error_override: pick(&parent.error_override, &child.error_override),
            chunked_request: pick(&parent.chunked_request, &child.chunked_request),
            map_head_to_get: pick(&parent.map_head_to_get, &child.map_head_to_get),
            ignore_activity: pick(&parent.ignore_activity, &child.ignore_activity),
            enable_sendfile: pick(&parent.enable_sendfile, &child.enable_sendfile),
            trusted_proxy_headers: pick(
                &parent.trusted_proxy_headers,
                &child.trusted_proxy_headers,
            ),
            trusted_proxies: pick(&parent.trusted_proxies, &child.trusted_proxies),
            dispatch_script: pick(&parent.dispatch_script, &child.dispatch_script),
            access_script: pick(&parent.access_script, &child.access_script),
            auth_user_script: pick(&parent.auth_user_script, &child.auth_user_script),
            auth_group_script: pick(&parent.auth_group_script, &child.auth_group_script),
            group_authoritative: pick(&parent.group_authoritative, &child.group_authoritative),
            handler_scripts,
        }
    }

    /// Process group template; `%{GLOBAL}` (embedded mode) when unset.
    pub fn process_group(&self) -> &str {
        self.process_group.as_deref().unwrap_or("%{GLOBAL}")
    }

    /// Application group template; `%{RESOURCE}` (one interpreter per host and mount point)
    /// when unset.
    pub fn application_group(&self) -> &str {
        self.application_group.as_deref().unwrap_or("%{RESOURCE}")
    }

    /// Callable name template; `application` when unset.
    pub fn callable_object(&self) -> &str {
        self.callable_object.as_deref().unwrap_or("application")
    }

    /// Process groups a request may select, if restricted.
    pub fn restrict_process(&self) -> Option<&[String]> {
        self.restrict_process.as_deref()
    }

    /// Add the `apache.request_rec` capsule to the environ (default Off).
    #[allow(dead_code)] // Parsed and tested; the feature that reads it is not built yet.
    pub fn pass_apache_request(&self) -> bool {
        self.pass_apache_request.unwrap_or(false)
    }

    /// Pass the `Authorization` header as `HTTP_AUTHORIZATION` (default Off).
    pub fn pass_authorization(&self) -> bool {
        self.pass_authorization.unwrap_or(false)
    }

    /// Reload a script whose modification time changed (default On).
    pub fn script_reloading(&self) -> bool {
        self.script_reloading.unwrap_or(true)
    }

    /// Replace daemon error responses with Apache's error documents (default Off).
    #[allow(dead_code)] // Parsed and tested; the feature that reads it is not built yet.
    pub fn error_override(&self) -> bool {
        self.error_override.unwrap_or(false)
    }

    /// Accept chunked request bodies instead of answering 411 (default Off).
    pub fn chunked_request(&self) -> bool {
        self.chunked_request.unwrap_or(false)
    }

    /// HEAD to GET mapping (default Auto).
    pub fn map_head_to_get(&self) -> MapHeadToGet {
        self.map_head_to_get.unwrap_or_default()
    }

    /// Requests here do not count as activity for `inactivity-timeout` (default Off).
    #[allow(dead_code)] // Parsed and tested; the feature that reads it is not built yet.
    pub fn ignore_activity(&self) -> bool {
        self.ignore_activity.unwrap_or(false)
    }

    /// Send `wsgi.file_wrapper` files with sendfile (default Off).
    pub fn enable_sendfile(&self) -> bool {
        self.enable_sendfile.unwrap_or(false)
    }

    /// Trusted proxy headers as CGI names; empty when unset.
    #[allow(dead_code)] // Parsed and tested; the feature that reads it is not built yet.
    pub fn trusted_proxy_headers(&self) -> &[String] {
        self.trusted_proxy_headers.as_deref().unwrap_or_default()
    }

    /// Trusted proxy addresses; empty when unset.
    #[allow(dead_code)] // Parsed and tested; the feature that reads it is not built yet.
    pub fn trusted_proxies(&self) -> &[TrustedProxy] {
        self.trusted_proxies.as_deref().unwrap_or_default()
    }

    /// Whether a failed group check is final (default On).
    #[allow(dead_code)] // Parsed and tested; the feature that reads it is not built yet.
    pub fn group_authoritative(&self) -> bool {
        self.group_authoritative.unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handler(path: &str) -> HandlerScript {
        HandlerScript {
            path: path.into(),
            process_group: None,
            application_group: None,
            pass_authorization: None,
        }
    }

    #[test]
    fn defaults_match_mod_wsgi() {
        let d = DirConfig::default();
        assert_eq!(d.process_group(), "%{GLOBAL}");
        assert_eq!(d.application_group(), "%{RESOURCE}");
        assert_eq!(d.callable_object(), "application");
        assert!(d.script_reloading());
        assert!(!d.pass_authorization() && !d.pass_apache_request() && !d.chunked_request());
        assert!(!d.error_override() && !d.ignore_activity() && !d.enable_sendfile());
        assert_eq!(d.map_head_to_get(), MapHeadToGet::Auto);
        assert!(d.group_authoritative());
        assert!(d.restrict_process().is_none());
        assert!(d.trusted_proxy_headers().is_empty() && d.trusted_proxies().is_empty());
    }

    #[test]
    fn merge_child_wins_where_set_and_inherits_the_rest() {
        let parent = DirConfig {
            process_group: Some("parent".into()),
            application_group: Some("%{GLOBAL}".into()),
            script_reloading: Some(false),
            chunked_request: Some(true),
            trusted_proxy_headers: Some(vec!["HTTP_X_FORWARDED_FOR".into()]),
            ..Default::default()
        };
        let child = DirConfig {
            process_group: Some("child".into()),
            chunked_request: Some(false),
            trusted_proxy_headers: Some(vec![]),
            ..Default::default()
        };
        let m = DirConfig::merge(&parent, &child);
        assert_eq!(m.process_group(), "child");
        assert_eq!(m.application_group(), "%{GLOBAL}");
        assert!(!m.script_reloading());
        // An explicit Off in the child beats the parent's On.
        assert!(!m.chunked_request());
        // A list set in the child replaces the parent's, even when empty.
        assert!(m.trusted_proxy_headers().is_empty());
        // Merging with an empty child changes nothing.
        assert_eq!(DirConfig::merge(&parent, &DirConfig::default()), parent);
    }

    #[test]
    fn merge_overlays_handler_scripts_by_name() {
        let mut parent = DirConfig::default();
        parent.handler_scripts.insert("a".into(), handler("/parent-a.py"));
        parent.handler_scripts.insert("b".into(), handler("/parent-b.py"));
        let mut child = DirConfig::default();
        child.handler_scripts.insert("b".into(), handler("/child-b.py"));
        let m = DirConfig::merge(&parent, &child);
        assert_eq!(m.handler_scripts["a"].path, "/parent-a.py");
        assert_eq!(m.handler_scripts["b"].path, "/child-b.py");
    }
}
