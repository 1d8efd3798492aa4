//! mod_wsgi's configuration directives, parsed into plain Rust values.
//!
//! This tree is pure: it never touches Apache, APR or Python (only libpcre2, for
//! `WSGIScriptAliasMatch`), so all of it runs under `cargo test`. The Apache glue registers every entry of [`directives::DIRECTIVES`] as a
//! RAW_ARGS command and forwards each call to [`directives::apply`] with a [`Target`] (the
//! configs to write into) and a [`CallSite`] (where the line sits). At request time it merges
//! configs with [`ServerConfig::merge`] and [`DirConfig::merge`], maps URIs with
//! [`alias::translate`] and names process and application groups with the [`groups`]
//! functions.
//!
//! One piece of state is shared between servers: the names and visibility of the daemon
//! process groups defined so far, which `WSGIDaemonProcess`, `WSGIScriptAlias` and
//! `WSGIImportScript` check. The glue must call [`reset_daemon_groups`] before every read of
//! the configuration.
//!
//! Behaviour follows mod_wsgi 6.0 (`src/server/wsgi_config.c`, `wsgi_daemon.c`,
//! `mod_wsgi.c`), with the 4.9 directives that 6.0 dropped still accepted so an existing
//! Debian configuration loads.

pub mod alias;
pub mod args;
pub mod daemon;
mod daemon_options;
pub mod dir;
pub mod directives;
pub mod groups;
pub mod options;
pub mod pcre;
pub mod proxy;
mod registry;
pub mod server;
pub mod values;

pub use daemon::DaemonProcess;
pub use dir::{DirConfig, MapHeadToGet};
pub use server::{HashSeed, ImportScript, ServerConfig};

/// Where a directive may be used. The glue maps it to Apache's `req_override` bits:
/// `Global` is `RSRC_CONF` plus an `ap_check_cmd_context(GLOBAL_ONLY)` check,
/// `ServerOrVhost` is `RSRC_CONF`, `ServerVhostDirectory` is `RSRC_CONF | ACCESS_CONF`,
/// `FileInfo` is `RSRC_CONF | ACCESS_CONF | OR_FILEINFO` and `AuthConfig` is
/// `OR_AUTHCFG | ACCESS_CONF`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// Main server only, outside `<VirtualHost>`.
    Global,
    /// Main server or `<VirtualHost>`.
    ServerOrVhost,
    /// Also `<Directory>`, `<Location>` and `<Files>`, but not `.htaccess`.
    ServerVhostDirectory,
    /// Anywhere, including `.htaccess` with `AllowOverride FileInfo`.
    FileInfo,
    /// Directory sections and `.htaccess` with `AllowOverride AuthConfig`.
    AuthConfig,
}

/// Facts about where the directive line sits.
#[derive(Clone, Debug, Default)]
pub struct CallSite {
    /// Inside `<VirtualHost>`.
    pub in_virtual_host: bool,
    /// `ServerName` of the enclosing server, if set by this point; decides which servers may
    /// use a daemon group defined in a virtual host.
    pub server_name: Option<String>,
}

/// What a directive writes into: the enclosing server's config and the directory config of the
/// current section (at server level Apache passes the server's default directory config).
pub struct Target<'a> {
    /// The enclosing server's config.
    pub server: &'a mut ServerConfig,
    /// The current section's directory config.
    pub dir: &'a mut DirConfig,
}

/// Forgets the daemon process groups of the previous configuration read. Call from the
/// `pre_config` hook, before Apache reads the configuration (again).
pub fn reset_daemon_groups() {
    registry::reset();
}
