//! A `WSGIDaemonProcess` group: its name, where it was defined, and every option with
//! mod_wsgi's default. The option parser is in `daemon_options`.
//!
//! Times are [`Duration`]s; for the timeouts that are off by default, zero means off.

use std::time::Duration;

/// Response header line limit used when `header-buffer-size` is unset or 0.
pub const DEFAULT_HEADER_BUFFER_SIZE: u32 = 32768;
/// Bytes passed on without a flush before one is forced, when `response-buffer-size` is unset
/// or 0.
pub const DEFAULT_RESPONSE_BUFFER_SIZE: u32 = 8 * 1024 * 1024;
/// `listen()` backlog of a group's socket when `listen-backlog` is unset.
pub const DEFAULT_LISTEN_BACKLOG: u32 = 100;

/// One daemon process group.
#[derive(Clone, Debug, PartialEq)]
pub struct DaemonProcess {
    /// Group name, unique across the whole configuration.
    pub name: String,
    /// `ServerName` of the server the group was defined in, when known at that point.
    pub server_name: Option<String>,
    /// Defined inside `<VirtualHost>`: then only servers with the same `ServerName` may use it.
    pub in_virtual_host: bool,
    /// `user=`: name or `#uid`, as typed; `None` means Apache's `User`. Never root.
    pub user: Option<String>,
    /// `group=`: name or `#gid`; `None` means Apache's `Group`.
    pub group: Option<String>,
    /// `supplementary-groups=`, split on `,`. `None` means `initgroups()` for the user.
    pub supplementary_groups: Option<Vec<String>>,
    /// `processes=` (default 1).
    pub processes: u32,
    /// True when `processes=` was given at all, even as 1: mod_wsgi then reports
    /// `wsgi.multiprocess` as True.
    pub multiprocess: bool,
    /// `threads=` (default 15). 0 runs no request threads, only import scripts.
    pub threads: u32,
    /// `umask=`, parsed as octal; `None` keeps the inherited umask.
    pub umask: Option<u32>,
    /// `chroot=` directory.
    pub chroot: Option<String>,
    /// `home=`: initial working directory; `None` means the user's home directory.
    pub home: Option<String>,
    /// `lang=`: sets `LANG`.
    pub lang: Option<String>,
    /// `locale=`: sets `LC_ALL` and calls `setlocale`.
    pub locale: Option<String>,
    /// `python-home=`.
    pub python_home: Option<String>,
    /// `python-path=`, split on `:`.
    pub python_path: Vec<String>,
    /// `python-eggs=`.
    pub python_eggs: Option<String>,
    /// `switch-interval=` seconds; `None` keeps Python's default.
    pub switch_interval: Option<f64>,
    /// `stack-size=` bytes for request threads; `None` is the OS default.
    pub stack_size: Option<u32>,
    /// `maximum-requests=`: recycle after this many requests; 0 never.
    pub maximum_requests: u32,
    /// `startup-timeout=` (default off).
    pub startup_timeout: Duration,
    /// `shutdown-timeout=` (default 5 s).
    pub shutdown_timeout: Duration,
    /// `deadlock-timeout=` (default 300 s).
    pub deadlock_timeout: Duration,
    /// `inactivity-timeout=` (default off).
    pub inactivity_timeout: Duration,
    /// `request-timeout=` (default off).
    pub request_timeout: Duration,
    /// `interrupt-timeout=` (default off).
    pub interrupt_timeout: Duration,
    /// `graceful-timeout=` (default 15 s).
    pub graceful_timeout: Duration,
    /// `eviction-timeout=` (default off: `graceful-timeout` applies).
    pub eviction_timeout: Duration,
    /// `restart-interval=` (default off).
    pub restart_interval: Duration,
    /// `connect-timeout=` (default 15 s).
    pub connect_timeout: Duration,
    /// `socket-timeout=`; zero means Apache's `Timeout`.
    pub socket_timeout: Duration,
    /// `queue-timeout=` (default off).
    pub queue_timeout: Duration,
    /// `response-socket-timeout=`; when not given it takes `socket-timeout`'s value, as in
    /// mod_wsgi (so zero again means Apache's `Timeout`).
    pub response_socket_timeout: Duration,
    /// `response-flush-delay=` milliseconds (default 5 ms; zero disables).
    pub response_flush_delay: Duration,
    /// `socket-user=`: owner of the group's socket.
    pub socket_user: Option<String>,
    /// `listen-backlog=` (default 100).
    pub listen_backlog: u32,
    /// `display-name=`, as typed (`%{GROUP}` is expanded when the process starts).
    pub display_name: Option<String>,
    /// `send-buffer-size=`; 0 is the OS default.
    pub send_buffer_size: u32,
    /// `receive-buffer-size=`; 0 is the OS default.
    pub receive_buffer_size: u32,
    /// `header-buffer-size=` (default 32768).
    pub header_buffer_size: u32,
    /// `response-buffer-size=` (default 8 MiB).
    pub response_buffer_size: u32,
    /// `script-user=`: required owner of scripts.
    pub script_user: Option<String>,
    /// `script-group=`: required group of scripts.
    pub script_group: Option<String>,
    /// `cpu-time-limit=` seconds; 0 no limit.
    pub cpu_time_limit: u32,
    /// `cpu-priority=` (nice value; default 0).
    pub cpu_priority: i32,
    /// `memory-limit=` bytes; 0 no limit.
    pub memory_limit: u64,
    /// `virtual-memory-limit=` bytes; 0 no limit.
    pub virtual_memory_limit: u64,
    /// `server-metrics=`.
    pub server_metrics: bool,
}

impl DaemonProcess {
    /// A group called `name` with every option at mod_wsgi's default.
    /// Options that were given but that this module accepts without acting on them,
    /// so an existing mod_wsgi configuration loads; the supervisor logs them once.
    pub fn ignored_options(&self) -> Vec<&'static str> {
        let d = Self::new(&self.name);
        let checks = [
            ("chroot", self.chroot != d.chroot),
            ("script-user", self.script_user != d.script_user),
            ("script-group", self.script_group != d.script_group),
            ("interrupt-timeout", self.interrupt_timeout != d.interrupt_timeout),
            ("eviction-timeout", self.eviction_timeout != d.eviction_timeout),
            ("response-socket-timeout", self.response_socket_timeout != self.socket_timeout),
            ("server-metrics", self.server_metrics != d.server_metrics),
        ];
        checks.iter().filter(|(_, given)| *given).map(|(name, _)| *name).collect()
    }

    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            server_name: None,
            in_virtual_host: false,
            user: None,
            group: None,
            supplementary_groups: None,
            processes: 1,
            multiprocess: false,
            threads: 15,
            umask: None,
            chroot: None,
            home: None,
            lang: None,
            locale: None,
            python_home: None,
            python_path: Vec::new(),
            python_eggs: None,
            switch_interval: None,
            stack_size: None,
            maximum_requests: 0,
            startup_timeout: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(5),
            deadlock_timeout: Duration::from_secs(300),
            inactivity_timeout: Duration::ZERO,
            request_timeout: Duration::ZERO,
            interrupt_timeout: Duration::ZERO,
            graceful_timeout: Duration::from_secs(15),
            eviction_timeout: Duration::ZERO,
            restart_interval: Duration::ZERO,
            connect_timeout: Duration::from_secs(15),
            socket_timeout: Duration::ZERO,
            queue_timeout: Duration::ZERO,
            response_socket_timeout: Duration::ZERO,
            response_flush_delay: Duration::from_millis(5),
            socket_user: None,
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
            display_name: None,
            send_buffer_size: 0,
            receive_buffer_size: 0,
            header_buffer_size: DEFAULT_HEADER_BUFFER_SIZE,
            response_buffer_size: DEFAULT_RESPONSE_BUFFER_SIZE,
            script_user: None,
            script_group: None,
            cpu_time_limit: 0,
            cpu_priority: 0,
            memory_limit: 0,
            virtual_memory_limit: 0,
            server_metrics: false,
        }
    }

    /// Whether a request on a server called `server_name` may use this group: always for a
    /// group defined at main-server level, otherwise only from a server with the same
    /// `ServerName` (both unset counts as the same).
    pub fn visible_from(&self, server_name: Option<&str>) -> bool {
        !self.in_virtual_host || self.server_name.as_deref() == server_name
    }

    /// mod_wsgi's `wsgi.run_once`: one thread that serves a single request per process.
    pub fn run_once(&self) -> bool {
        self.threads == 1 && self.maximum_requests == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_has_mod_wsgi_defaults() {
        let d = DaemonProcess::new("g");
        assert_eq!((d.processes, d.threads, d.multiprocess), (1, 15, false));
        assert_eq!(d.deadlock_timeout, Duration::from_secs(300));
        assert_eq!(d.graceful_timeout, Duration::from_secs(15));
        assert_eq!(d.shutdown_timeout, Duration::from_secs(5));
        assert_eq!(d.connect_timeout, Duration::from_secs(15));
        assert_eq!(d.listen_backlog, 100);
        assert_eq!(d.header_buffer_size, 32768);
        assert_eq!(d.response_buffer_size, 8_388_608);
        assert_eq!(d.response_flush_delay, Duration::from_millis(5));
        assert!(!d.run_once());
    }

    #[test]
    fn visibility_follows_server_name() {
        let mut d = DaemonProcess::new("g");
        d.server_name = Some("a.example".into());
        assert!(d.visible_from(Some("b.example")), "main-server groups are visible everywhere");
        d.in_virtual_host = true;
        assert!(d.visible_from(Some("a.example")));
        assert!(!d.visible_from(Some("b.example")));
        assert!(!d.visible_from(None));
        d.server_name = None;
        assert!(d.visible_from(None));
        assert!(!d.visible_from(Some("a.example")));
    }

    #[test]
    fn ignored_options_are_the_given_unimplemented_ones() {
        assert!(DaemonProcess::new("g").ignored_options().is_empty(), "defaults are not 'given'");
        let mut d = DaemonProcess::new("g");
        d.chroot = Some("/jail".into());
        d.script_user = Some("u".into());
        d.socket_timeout = Duration::from_secs(5);
        d.response_socket_timeout = Duration::from_secs(5);
        assert_eq!(d.ignored_options(), vec!["chroot", "script-user"]);
    }
}
