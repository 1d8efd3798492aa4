//! Per-server configuration: the process-wide Python and daemon settings (only the main
//! server's copy is meaningful, since every one of those directives is refused inside
//! `<VirtualHost>`), and the lists each server collects: script aliases, daemon process groups
//! and scripts to preload.
//!
//! Per-request settings that can also be given at server level (`WSGIProcessGroup`,
//! `WSGIScriptReloading`, ...) are not here: at server level Apache hands us the server's default
//! directory configuration, so they live in [`DirConfig`](super::DirConfig) and inherit the
//! normal way.

use super::alias::ScriptAlias;
use super::daemon::DaemonProcess;

/// `WSGIPythonHashSeed`: Python's `PYTHONHASHSEED`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HashSeed {
    /// A fresh random seed per process (Python's default).
    #[default]
    Random,
    /// A fixed seed; 0 disables hash randomisation.
    Fixed(u32),
}

/// `WSGIAcceptMutex`: the cross-process lock daemon processes take around `accept()` when a
/// group has more than one process. Names match APR's lock mechanisms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AcceptMutex {
    /// APR's default for the platform.
    #[default]
    Default,
    /// `flock()` on a lock file.
    Flock,
    /// `fcntl()` on a lock file.
    Fcntl,
    /// System V semaphore.
    SysvSem,
    /// POSIX named semaphore.
    PosixSem,
    /// Process-shared pthread mutex.
    Pthread,
}

/// A script to load when a process starts, before any request: from `WSGIImportScript`, or
/// from a `WSGIScriptAlias` whose process and application groups are both fixed names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportScript {
    /// Script file, as typed.
    pub path: String,
    /// Daemon group to load it in; `""` means the Apache children (embedded mode).
    pub process_group: String,
    /// Interpreter to load it in; `""` means the main interpreter.
    pub application_group: String,
}

/// Module configuration for one server (the main server or a `<VirtualHost>`).
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// `WSGIPythonHome`: `prefix` or `prefix:exec_prefix`, as typed.
    pub python_home: Option<String>,
    /// `WSGIPythonPath`, split on `:` (empty entries dropped). The last directive wins.
    pub python_path: Vec<String>,
    /// `WSGIPythonEggs`: `PYTHON_EGG_CACHE` for embedded mode.
    pub python_eggs: Option<String>,
    /// `WSGIPythonOptimize`: 0, 1 or 2.
    pub optimize: u8,
    /// `WSGIDontWriteBytecode`.
    pub dont_write_bytecode: bool,
    /// `WSGIPythonHashSeed`.
    pub hash_seed: HashSeed,
    /// `WSGIPythonWarnings`, one `-W` filter per directive, in order.
    pub warnings: Vec<String>,
    /// `WSGISwitchInterval` in seconds; `None` keeps Python's default.
    pub switch_interval: Option<f64>,
    /// `WSGIDestroyInterpreter` (default On).
    pub destroy_interpreter: bool,
    /// `WSGIPerInterpreterGIL` (stored; sub-interpreters are not implemented yet).
    pub per_interpreter_gil: bool,
    /// `WSGIFreeThreading` (stored; only matters on a free-threaded Python).
    pub free_threading: bool,
    /// `WSGIRestrictEmbedded`.
    pub restrict_embedded: bool,
    /// `WSGIRestrictStdin`.
    pub restrict_stdin: bool,
    /// `WSGIRestrictStdout`.
    pub restrict_stdout: bool,
    /// `WSGIRestrictSignal` (default On).
    pub restrict_signal: bool,
    /// `WSGICaseSensitivity`: whether script paths are case-sensitive. Default On, except on
    /// Windows and macOS whose file systems usually are not.
    pub case_sensitivity: bool,
    /// `WSGIServerMetrics`.
    pub server_metrics: bool,
    /// `WSGISocketPrefix`, as typed (Apache resolves it against ServerRoot).
    pub socket_prefix: Option<String>,
    /// `WSGISocketRotation`: socket names include the generation, so a graceful restart makes
    /// new sockets (default On).
    pub socket_rotation: bool,
    /// `WSGIAcceptMutex`.
    pub accept_mutex: AcceptMutex,
    /// Scripts to preload, in configuration order. Not inherited by virtual hosts: each server
    /// keeps the ones written in it, so walking every server finds each entry once.
    pub import_scripts: Vec<ImportScript>,
    /// `WSGIDaemonProcess` groups defined in this server. Not inherited, for the same reason.
    pub daemon_processes: Vec<DaemonProcess>,
    /// `WSGIScriptAlias` / `WSGIScriptAliasMatch`, in the order matching should try them.
    pub script_aliases: Vec<ScriptAlias>,
}

impl Default for ServerConfig {
    /// mod_wsgi's defaults.
    fn default() -> Self {
        Self {
            python_home: None,
            python_path: Vec::new(),
            python_eggs: None,
            optimize: 0,
            dont_write_bytecode: false,
            hash_seed: HashSeed::Random,
            warnings: Vec::new(),
            switch_interval: None,
            destroy_interpreter: true,
            per_interpreter_gil: false,
            free_threading: false,
            restrict_embedded: false,
            restrict_stdin: false,
            restrict_stdout: false,
            restrict_signal: true,
            case_sensitivity: !cfg!(any(windows, target_os = "macos")),
            server_metrics: false,
            socket_prefix: None,
            socket_rotation: true,
            accept_mutex: AcceptMutex::Default,
            import_scripts: Vec::new(),
            daemon_processes: Vec::new(),
            script_aliases: Vec::new(),
        }
    }
}

impl ServerConfig {
    /// Builds a virtual host's effective configuration from the main server's (`base`) and its
    /// own (`vhost`).
    ///
    /// Like mod_wsgi's `wsgi_merge_server_config`, the virtual host's aliases are tried first
    /// and the main server's after them. Process-wide settings are taken from `base`, since a
    /// virtual host cannot set them.
    pub fn merge(base: &Self, vhost: &Self) -> Self {
        let mut merged = Self {
            import_scripts: vhost.import_scripts.clone(),
            daemon_processes: vhost.daemon_processes.clone(),
            script_aliases: vhost.script_aliases.clone(),
            ..base.clone()
        };
        merged.script_aliases.extend(base.script_aliases.iter().cloned());
        merged
    }

    /// The socket prefix as typed, or `<runtime_dir>/wsgi` when unset. `runtime_dir` is
    /// Apache's runtime directory (`DefaultRuntimeDir`); the caller still resolves a
    /// relative result against ServerRoot.
    pub fn socket_prefix(&self, runtime_dir: &str) -> String {
        match &self.socket_prefix {
            Some(prefix) => prefix.clone(),
            None => format!("{runtime_dir}/wsgi"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::alias::{AliasOptions, AliasPattern};
    use super::*;

    fn alias(prefix: &str) -> ScriptAlias {
        ScriptAlias {
            pattern: AliasPattern::Prefix(prefix.to_string()),
            target: format!("/srv{prefix}.wsgi"),
            options: AliasOptions::default(),
        }
    }

    #[test]
    fn defaults_match_mod_wsgi() {
        let c = ServerConfig::default();
        assert!(c.destroy_interpreter && c.restrict_signal && c.socket_rotation);
        assert!(!c.restrict_stdin && !c.restrict_stdout && !c.restrict_embedded);
        assert!(c.case_sensitivity);
        assert_eq!(c.optimize, 0);
        assert_eq!(c.hash_seed, HashSeed::Random);
        assert_eq!(c.accept_mutex, AcceptMutex::Default);
        assert_eq!(c.socket_prefix("logs"), "logs/wsgi");
        assert!(c.python_path.is_empty() && c.warnings.is_empty());
    }

    #[test]
    fn typed_socket_prefix_wins() {
        let c = ServerConfig { socket_prefix: Some("run/wsgi".into()), ..Default::default() };
        assert_eq!(c.socket_prefix("/var/run/apache2"), "run/wsgi");
    }

    #[test]
    fn merge_puts_vhost_aliases_first_and_keeps_main_settings() {
        let main = ServerConfig {
            optimize: 2,
            restrict_signal: false,
            script_aliases: vec![alias("/main")],
            import_scripts: vec![ImportScript {
                path: "/main.py".into(),
                process_group: String::new(),
                application_group: String::new(),
            }],
            ..Default::default()
        };
        let vhost = ServerConfig { script_aliases: vec![alias("/v")], ..Default::default() };
        let merged = ServerConfig::merge(&main, &vhost);
        let order: Vec<_> = merged.script_aliases.iter().map(|a| a.target.as_str()).collect();
        assert_eq!(order, ["/srv/v.wsgi", "/srv/main.wsgi"]);
        assert_eq!(merged.optimize, 2);
        assert!(!merged.restrict_signal);
        // Lists that describe what a server defines are not copied into the vhost.
        assert!(merged.import_scripts.is_empty());
    }
}
