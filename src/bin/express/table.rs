//! The option table: every option of every command, defined once with its name, value
//! shape, default, the commands that take it and its help text. `options` parses command
//! lines against it; `--help` is printed from it.

/// Option used by `start-server` and `setup-server`.
pub const SERVER: u8 = 1;
/// Option used by `module-config`.
pub const MODULE: u8 = 2;
/// Option used by `install-module`.
pub const INSTALL: u8 = 4;

/// What an option's values look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// No value: present or not.
    Flag,
    /// Any non-empty text.
    Text,
    /// A non-negative integer.
    Count,
    /// One of these words.
    Choice(&'static [&'static str]),
    /// Two values (`--url-alias URL PATH`, `--setenv KEY VALUE`).
    Pair,
}

impl Kind {
    /// How many values follow the option.
    pub fn arity(self) -> usize {
        match self {
            Kind::Flag => 0,
            Kind::Pair => 2,
            _ => 1,
        }
    }
}

/// One option, defined once.
pub struct Spec {
    /// Name without the leading `--`.
    pub name: &'static str,
    /// What to call the value(s) in help text.
    pub metavar: &'static str,
    pub kind: Kind,
    /// May be given more than once; every value is kept. Otherwise the last one wins.
    pub repeat: bool,
    /// The value when the option is not given. `None`: no value, or one that `settings`
    /// derives from other options (the help says which).
    pub default: Option<&'static str>,
    /// Bit set of the commands that accept it.
    pub used_by: u8,
    pub help: &'static str,
}

const fn opt(
    name: &'static str,
    metavar: &'static str,
    kind: Kind,
    default: Option<&'static str>,
    used_by: u8,
    help: &'static str,
) -> Spec {
    Spec { name, metavar, kind, repeat: false, default, used_by, help }
}

/// Like [`opt`], for an option that may be repeated.
const fn many(
    name: &'static str,
    metavar: &'static str,
    kind: Kind,
    used_by: u8,
    help: &'static str,
) -> Spec {
    Spec { name, metavar, kind, repeat: true, default: None, used_by, help }
}

const LOG_LEVELS: &[&str] =
    &["emerg", "alert", "crit", "error", "warn", "notice", "info", "debug", "trace1", "trace8"];

use Kind::{Choice, Count, Flag, Pair, Text};

/// Every option, in the order `--help` lists them.
#[rustfmt::skip]
pub const OPTIONS: &[Spec] = &[
    opt("host", "HOST", Text, None, SERVER,
        "address to listen on (default: every interface; the URL says localhost)"),
    opt("port", "N", Count, Some("8000"), SERVER,
        "port to listen on"),
    opt("application-type", "TYPE", Choice(&["script", "module"]), Some("script"), SERVER,
        "APP is a WSGI script file, or a module import path such as pkg.wsgi:application"),
    opt("processes", "N", Count, Some("1"), SERVER,
        "daemon processes (Apache children in --embedded-mode)"),
    opt("threads", "N", Count, Some("5"), SERVER,
        "request threads per process"),
    opt("max-clients", "N", Count, None, SERVER,
        "concurrent requests Apache accepts (default: 1.5 x processes x threads, at least 10; \
         in --embedded-mode processes x threads)"),
    opt("embedded-mode", "", Flag, None, SERVER,
        "run the application inside Apache's own processes"),
    opt("server-root", "DIR", Text, None, SERVER,
        "where the configuration and logs go (default: $TMPDIR/mod_wsgi_rs-HOST:PORT:UID)"),
    opt("working-directory", "DIR", Text, None, SERVER,
        "daemon's current directory, first on sys.path (default: the script's directory, or the \
         current directory for a module)"),
    many("python-path", "DIR", Text, SERVER,
        "add a directory to sys.path"),
    opt("python-home", "DIR", Text, None, SERVER,
        "Python prefix or virtualenv (default: $VIRTUAL_ENV when set)"),
    opt("callable-object", "NAME", Text, Some("application"), SERVER,
        "name of the WSGI callable"),
    opt("application-group", "NAME", Text, Some("%{GLOBAL}"), SERVER,
        "WSGIApplicationGroup of the application"),
    many("url-alias", "URL PATH", Pair, SERVER,
        "serve the file or directory PATH as static files at URL"),
    opt("document-root", "DIR", Text, None, SERVER,
        "serve files that exist under DIR as static files; everything else goes to the \
         application"),
    opt("reload-on-changes", "", Flag, None, SERVER,
        "restart the application when a .py file under the working directory changes"),
    opt("log-to-terminal", "", Flag, None, SERVER,
        "write the error log (and access log) to the terminal"),
    opt("access-log", "", Flag, None, SERVER,
        "write an access log"),
    opt("log-level", "LEVEL", Choice(LOG_LEVELS), Some("warn"), SERVER,
        "Apache LogLevel"),
    opt("request-timeout", "SECONDS", Count, Some("60"), SERVER,
        "a request running longer gets a 504 and its process is restarted (0: off)"),
    opt("queue-timeout", "SECONDS", Count, Some("45"), SERVER,
        "a request waiting longer for a free thread gets a 504 (0: off)"),
    opt("socket-timeout", "SECONDS", Count, Some("60"), SERVER,
        "reads and writes on the daemon socket"),
    opt("connect-timeout", "SECONDS", Count, Some("15"), SERVER,
        "connecting to the daemon socket"),
    opt("startup-timeout", "SECONDS", Count, Some("15"), SERVER,
        "restart a daemon that cannot load the application this long"),
    opt("deadlock-timeout", "SECONDS", Count, Some("60"), SERVER,
        "restart a daemon whose GIL is stuck this long"),
    opt("inactivity-timeout", "SECONDS", Count, Some("0"), SERVER,
        "restart an idle daemon after this long (0: never)"),
    opt("graceful-timeout", "SECONDS", Count, Some("15"), SERVER,
        "time to finish requests on a graceful restart"),
    opt("shutdown-timeout", "SECONDS", Count, Some("5"), SERVER,
        "time a daemon gets to exit before it is killed"),
    opt("maximum-requests", "N", Count, Some("0"), SERVER,
        "restart a daemon after this many requests (0: never)"),
    opt("user", "NAME", Text, None, SERVER,
        "user to run as when started as root (default: www-data)"),
    opt("group", "NAME", Text, None, SERVER,
        "group to run as when started as root (default: www-data)"),
    many("setenv", "KEY VALUE", Pair, SERVER,
        "add KEY to every request's WSGI environ"),
    many("include-file", "FILE", Text, SERVER,
        "Include this Apache configuration file at the end"),
    many("trust-proxy-header", "HEADER", Text, SERVER,
        "WSGITrustedProxyHeaders (accepted by the module, not acted on yet)"),
    many("trust-proxy", "ADDRESS", Text, SERVER,
        "WSGITrustedProxies (accepted by the module, not acted on yet)"),
    opt("httpd-executable", "FILE", Text, Some("/usr/sbin/apache2"), SERVER,
        "the Apache binary"),
    opt("module", "FILE", Text, None, SERVER | MODULE | INSTALL,
        "the module to load (default: libmod_wsgi_rs.so next to this program, else the installed \
         one)"),
    opt("modules-dir", "DIR", Text, None, INSTALL,
        "where to install the module (default: apxs -q LIBEXECDIR)"),
    opt("apache-conf-dir", "DIR", Text, Some("/etc/apache2"), INSTALL,
        "Apache configuration directory holding mods-available/"),
];
