//! The directive table: every mod_wsgi directive with its context, help text, argument shape
//! and the function that stores it.
//!
//! The handlers live in three files by what they configure: `process` (Python and the daemon
//! machinery, main server only), `request` (per-directory settings) and `scripts` (aliases,
//! daemon groups and the scripts mod_wsgi loads).
//!
//! Left out on purpose: `<WSGIInterpreterOptions>` is a section container, which the glue's
//! RAW_ARGS commands cannot represent, so a configuration using it fails with Apache's "Invalid
//! command" until containers are supported. `WSGIPy3kWarningFlag` (Python 2 only) and
//! `WSGIUserAuthoritative` (never built for Apache 2.4) are not in either mod_wsgi we follow.

mod process;
mod request;
mod scripts;

use std::ffi::CStr;

use super::Context::{AuthConfig, FileInfo, Global, ServerOrVhost, ServerVhostDirectory};
use super::{args, CallSite, Context, Target};
use Syntax::{Options, Take1, Take12, Words};

/// How the raw argument text is split before the handler sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// Exactly one non-empty word (Apache's TAKE1).
    Take1,
    /// One or two words (Apache's TAKE12).
    Take12,
    /// Any number of words.
    Words,
    /// This many positional words, then `name=value` options that may quote their values.
    Options(usize),
}

/// One configuration directive.
pub struct Directive {
    /// Directive name as Apache matches it (case-insensitively).
    pub name: &'static CStr,
    /// Where it may appear.
    pub context: Context,
    /// Short help Apache shows in error messages.
    pub usage: &'static CStr,
    /// How its arguments are split.
    pub syntax: Syntax,
    /// Validates the words and stores the result.
    pub apply: fn(&mut Target<'_>, &[String], &CallSite) -> Result<(), String>,
}

type Handler = fn(&mut Target<'_>, &[String], &CallSite) -> Result<(), String>;

const fn d(
    name: &'static CStr,
    context: Context,
    syntax: Syntax,
    apply: Handler,
    usage: &'static CStr,
) -> Directive {
    Directive { name, context, usage, syntax, apply }
}

/// The table, in the order the glue builds Apache's `command_rec` array. Contexts are those of
/// mod_wsgi's code, which is stricter than its documentation in places.
#[rustfmt::skip]
pub const DIRECTIVES: &[Directive] = &[
    d(c"WSGIScriptAlias", ServerOrVhost, Options(2), scripts::script_alias,
        c"Map a URL path to a WSGI script file or directory."),
    d(c"WSGIScriptAliasMatch", ServerOrVhost, Options(2), scripts::script_alias_match,
        c"Map URLs matching a regular expression to a WSGI script."),
    d(c"WSGIDaemonProcess", ServerOrVhost, Options(1), scripts::daemon_process,
        c"Define a named group of daemon processes."),
    d(c"WSGISocketPrefix", Global, Take1, process::socket_prefix,
        c"Path prefix for daemon process sockets."),
    d(c"WSGISocketRotation", Global, Take1, process::socket_rotation,
        c"On|Off: new daemon socket names on each restart."),
    d(c"WSGIAcceptMutex", Global, Take1, process::accept_mutex,
        c"Accept mutex type for multi-process daemon groups."),
    d(c"WSGILazyInitialization", Global, Take1, process::lazy_initialization,
        c"On|Off: accepted for mod_wsgi 4 configurations; no effect."),
    d(c"WSGIVerboseDebugging", Global, Take1, process::verbose_debugging,
        c"On|Off: deprecated; no effect."),
    d(c"WSGIDontWriteBytecode", Global, Take1, process::dont_write_bytecode,
        c"On|Off: stop Python writing .pyc files."),
    d(c"WSGIPythonWarnings", Global, Take1, process::python_warnings,
        c"Add a Python warnings filter (like -W)."),
    d(c"WSGIPythonOptimize", Global, Take1, process::python_optimize,
        c"Python optimisation level: 0, 1 or 2."),
    d(c"WSGIPythonHome", Global, Take1, process::python_home,
        c"Python prefix, or prefix:exec_prefix, or a virtual environment."),
    d(c"WSGIPythonPath", Global, Take1, process::python_path,
        c"Colon-separated directories to add to sys.path."),
    d(c"WSGIPythonEggs", Global, Take1, process::python_eggs,
        c"Python egg cache directory."),
    d(c"WSGIPythonHashSeed", Global, Take1, process::python_hash_seed,
        c"Python hash seed: random or 0..4294967295."),
    d(c"WSGISwitchInterval", Global, Take1, process::switch_interval,
        c"Python thread switch interval in seconds."),
    d(c"WSGIDestroyInterpreter", Global, Take1, process::destroy_interpreter,
        c"On|Off: finalise Python when a process exits."),
    d(c"WSGIPerInterpreterGIL", Global, Take1, process::per_interpreter_gil,
        c"On|Off: give each sub-interpreter its own GIL."),
    d(c"WSGIFreeThreading", Global, Take1, process::free_threading,
        c"On|Off: run free-threaded Python without the GIL."),
    d(c"WSGIRestrictEmbedded", Global, Take1, process::restrict_embedded,
        c"On|Off: forbid running applications in Apache's own processes."),
    d(c"WSGIRestrictStdin", Global, Take1, process::restrict_stdin,
        c"On|Off: make reading sys.stdin an error."),
    d(c"WSGIRestrictStdout", Global, Take1, process::restrict_stdout,
        c"On|Off: make writing sys.stdout an error."),
    d(c"WSGIRestrictSignal", Global, Take1, process::restrict_signal,
        c"On|Off: ignore signal handlers set by applications."),
    d(c"WSGICaseSensitivity", Global, Take1, process::case_sensitivity,
        c"On|Off: whether script paths are case-sensitive."),
    d(c"WSGIRestrictProcess", ServerVhostDirectory, Words, request::restrict_process,
        c"Process groups that requests here may select."),
    d(c"WSGIProcessGroup", ServerVhostDirectory, Take1, request::process_group,
        c"Daemon process group to run requests in."),
    d(c"WSGIApplicationGroup", ServerVhostDirectory, Take1, request::application_group,
        c"Interpreter to run requests in."),
    d(c"WSGICallableObject", FileInfo, Take1, request::callable_object,
        c"Name of the WSGI callable in the script."),
    d(c"WSGIImportScript", ServerOrVhost, Options(1), scripts::import_script,
        c"Script to load when a process starts."),
    d(c"WSGIDispatchScript", ServerVhostDirectory, Options(1), scripts::dispatch_script,
        c"Script that chooses groups per request."),
    d(c"WSGIPassApacheRequest", ServerVhostDirectory, Take1, request::pass_apache_request,
        c"On|Off: pass the Apache request object."),
    d(c"WSGIPassAuthorization", FileInfo, Take1, request::pass_authorization,
        c"On|Off: pass the Authorization header."),
    d(c"WSGIScriptReloading", FileInfo, Take1, request::script_reloading,
        c"On|Off: reload scripts that change."),
    d(c"WSGIErrorOverride", FileInfo, Take1, request::error_override,
        c"On|Off: use Apache error pages for daemon errors."),
    d(c"WSGIChunkedRequest", FileInfo, Take1, request::chunked_request,
        c"On|Off: accept chunked request bodies."),
    d(c"WSGIMapHEADToGET", FileInfo, Take1, request::map_head_to_get,
        c"On|Off|Auto: show HEAD requests as GET."),
    d(c"WSGIIgnoreActivity", FileInfo, Take1, request::ignore_activity,
        c"On|Off: requests here do not reset the inactivity timeout."),
    d(c"WSGITrustedProxyHeaders", FileInfo, Words, request::trusted_proxy_headers,
        c"Proxy headers to trust."),
    d(c"WSGITrustedProxies", FileInfo, Words, request::trusted_proxies,
        c"Addresses or subnets of trusted proxies."),
    d(c"WSGIEnableSendfile", FileInfo, Take1, request::enable_sendfile,
        c"On|Off: send file wrapper responses with sendfile."),
    d(c"WSGIAccessScript", AuthConfig, Options(1), scripts::access_script,
        c"Script deciding host access."),
    d(c"WSGIAuthUserScript", AuthConfig, Options(1), scripts::auth_user_script,
        c"Script checking user passwords."),
    d(c"WSGIAuthGroupScript", AuthConfig, Options(1), scripts::auth_group_script,
        c"Script listing a user's groups."),
    d(c"WSGIGroupAuthoritative", AuthConfig, Take1, request::group_authoritative,
        c"On|Off: whether the group check is final."),
    d(c"WSGIHandlerScript", ServerVhostDirectory, Options(2), scripts::handler_script,
        c"Define a named handler backed by a script."),
    d(c"WSGIServerMetrics", Global, Take1, process::server_metrics,
        c"On|Off: allow access to server metrics."),
    d(c"WSGINewRelicConfigFile", Global, Take1, process::ignored_value,
        c"Accepted for mod_wsgi 4 configurations; no effect."),
    d(c"WSGINewRelicEnvironment", Global, Take1, process::ignored_value,
        c"Accepted for mod_wsgi 4 configurations; no effect."),
    d(c"WSGITelemetryService", Global, Take12, process::telemetry_service,
        c"unix:/path [interval=N]: telemetry target (not implemented)."),
    d(c"WSGISlowRequests", Global, Take1, process::slow_requests,
        c"Slow request threshold in seconds (not implemented)."),
    d(c"WSGITelemetryOptions", Global, Words, process::telemetry_options,
        c"Telemetry capture flags (not implemented)."),
];

/// The index in [`DIRECTIVES`] of the directive called `name` (any letter case, as Apache
/// matches).
#[cfg(test)]
pub fn find(name: &str) -> Option<usize> {
    DIRECTIVES.iter().position(|d| d.name.to_bytes().eq_ignore_ascii_case(name.as_bytes()))
}

/// Splits `raw_args` as `DIRECTIVES[index]` expects, checks the word count, and runs its
/// handler. Every error message starts with the directive name.
pub fn apply(
    index: usize,
    raw_args: &str,
    target: &mut Target<'_>,
    site: &CallSite,
) -> Result<(), String> {
    let directive = &DIRECTIVES[index];
    let name = directive.name.to_string_lossy();
    let usage = directive.usage.to_string_lossy();
    let words = match directive.syntax {
        Options(positional) => args::split_options(raw_args, positional),
        _ => args::split(raw_args),
    };
    // Same wording as Apache's own TAKE1 / TAKE12 checks.
    let arity_ok = match directive.syntax {
        Take1 => words.len() == 1 && !words[0].is_empty(),
        Take12 => matches!(words.len(), 1 | 2) && !words[0].is_empty(),
        Words | Options(_) => true,
    };
    if !arity_ok {
        let count = if directive.syntax == Take1 { "one argument" } else { "1-2 arguments" };
        return Err(format!("{name} takes {count}, {usage}"));
    }
    (directive.apply)(target, &words, site).map_err(|e| {
        if e.starts_with(name.as_ref()) {
            e
        } else {
            format!("{name}: {e}")
        }
    })
}

/// Test support shared by the handler files: runs whole directive lines against one server
/// and directory config.
#[cfg(test)]
pub(crate) mod testing {
    use super::super::{CallSite, DirConfig, ServerConfig, Target};

    /// A server config, a directory config and where lines are taken to sit.
    #[derive(Default)]
    pub struct Fixture {
        pub server: ServerConfig,
        pub dir: DirConfig,
        pub site: CallSite,
    }

    impl Fixture {
        /// A fixture whose lines sit inside a `<VirtualHost>` with this `ServerName`.
        pub fn in_vhost(server_name: &str) -> Self {
            let site =
                CallSite { in_virtual_host: true, server_name: Some(server_name.to_string()) };
            Self { site, ..Self::default() }
        }

        /// Applies a line such as `WSGIPythonOptimize 2`.
        pub fn run(&mut self, line: &str) -> Result<(), String> {
            let (name, raw) = line.split_once(' ').unwrap_or((line, ""));
            let index = super::find(name).unwrap_or_else(|| panic!("no directive {name}"));
            let mut target = Target { server: &mut self.server, dir: &mut self.dir };
            super::apply(index, raw, &mut target, &self.site)
        }

        /// Applies a line that must fail, returning the message.
        pub fn fail(&mut self, line: &str) -> String {
            self.run(line).expect_err(line)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::Fixture;
    use super::*;

    /// Section 1a of the behaviour reference, minus the `<WSGIInterpreterOptions>` container.
    const REFERENCE: &[&str] = &[
        "WSGIScriptAlias",
        "WSGIScriptAliasMatch",
        "WSGIDaemonProcess",
        "WSGIProcessGroup",
        "WSGIApplicationGroup",
        "WSGICallableObject",
        "WSGIImportScript",
        "WSGIDispatchScript",
        "WSGIHandlerScript",
        "WSGIAccessScript",
        "WSGIAuthUserScript",
        "WSGIAuthGroupScript",
        "WSGIGroupAuthoritative",
        "WSGIPassAuthorization",
        "WSGIPassApacheRequest",
        "WSGIScriptReloading",
        "WSGIErrorOverride",
        "WSGIChunkedRequest",
        "WSGIMapHEADToGET",
        "WSGIIgnoreActivity",
        "WSGIEnableSendfile",
        "WSGITrustedProxyHeaders",
        "WSGITrustedProxies",
        "WSGIRestrictProcess",
        "WSGIRestrictEmbedded",
        "WSGIRestrictStdin",
        "WSGIRestrictStdout",
        "WSGIRestrictSignal",
        "WSGICaseSensitivity",
        "WSGIPythonHome",
        "WSGIPythonPath",
        "WSGIPythonEggs",
        "WSGIPythonOptimize",
        "WSGIPythonHashSeed",
        "WSGIPythonWarnings",
        "WSGIDontWriteBytecode",
        "WSGISwitchInterval",
        "WSGIDestroyInterpreter",
        "WSGIPerInterpreterGIL",
        "WSGIFreeThreading",
        "WSGISocketPrefix",
        "WSGISocketRotation",
        "WSGIAcceptMutex",
        "WSGIServerMetrics",
        "WSGITelemetryService",
        "WSGISlowRequests",
        "WSGITelemetryOptions",
        "WSGIVerboseDebugging",
    ];

    // The glue builds Apache's command table from DIRECTIVES at compile time.
    const _: (&CStr, Context) = (DIRECTIVES[DIRECTIVES.len() - 1].name, DIRECTIVES[0].context);

    #[test]
    fn every_reference_directive_is_in_the_table_once() {
        for name in REFERENCE {
            let hits = DIRECTIVES.iter().filter(|d| d.name.to_str() == Ok(name)).count();
            assert_eq!(hits, 1, "{name}");
        }
        let mut names: Vec<_> = DIRECTIVES.iter().map(|d| d.name.to_bytes()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DIRECTIVES.len(), "duplicate names");
    }

    #[test]
    fn contexts_follow_mod_wsgi_code() {
        let context = |name: &str| DIRECTIVES[find(name).unwrap()].context;
        assert_eq!(context("WSGIScriptAlias"), Context::ServerOrVhost);
        assert_eq!(context("WSGIImportScript"), Context::ServerOrVhost);
        assert_eq!(context("WSGIPythonPath"), Context::Global);
        assert_eq!(context("WSGIProcessGroup"), Context::ServerVhostDirectory);
        assert_eq!(context("WSGIPassApacheRequest"), Context::ServerVhostDirectory);
        assert_eq!(context("WSGICallableObject"), Context::FileInfo);
        assert_eq!(context("WSGIAuthUserScript"), Context::AuthConfig);
    }

    #[test]
    fn find_ignores_case() {
        assert_eq!(find("wsgiscriptalias"), find("WSGIScriptAlias"));
        assert!(find("WSGIScriptAlias").is_some());
        assert_eq!(find("WSGINoSuchThing"), None);
    }

    #[test]
    fn take1_count_errors_use_apache_wording() {
        let mut f = Fixture::default();
        let err = f.fail("WSGIPythonOptimize");
        assert_eq!(
            err,
            "WSGIPythonOptimize takes one argument, Python optimisation level: 0, 1 or 2."
        );
        assert!(f.fail("WSGIPythonOptimize 1 2").starts_with("WSGIPythonOptimize takes one"));
        assert!(f.fail("WSGIPythonHome \"\"").starts_with("WSGIPythonHome takes one"));
        assert!(f.fail("WSGITelemetryService a b c").starts_with("WSGITelemetryService takes 1-2"));
    }

    #[test]
    fn handler_errors_are_prefixed_with_the_name() {
        let mut f = Fixture::default();
        assert_eq!(
            f.fail("WSGIPythonOptimize 7"),
            "WSGIPythonOptimize: must be 0, 1 or 2, not '7'"
        );
        assert_eq!(
            f.fail("WSGIChunkedRequest maybe"),
            "WSGIChunkedRequest: must be On or Off, not 'maybe'"
        );
    }
}
