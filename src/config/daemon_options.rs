//! The option list of `WSGIDaemonProcess name option=value ...`.
//!
//! Every option mod_wsgi 6.0 knows is accepted with the same limits, plus the two New Relic
//! options 4.x still accepted (ignored). Checks that need the system (does `user=` name exist,
//! are we root for `chroot=`) are left to the code that starts the daemon; what can be checked
//! from the text is checked here, and each error names the option.

use std::time::Duration;

use super::daemon::{DaemonProcess, DEFAULT_HEADER_BUFFER_SIZE, DEFAULT_RESPONSE_BUFFER_SIZE};
use super::options::split_option;
use super::values;

/// mod_wsgi keeps counts and seconds in a C `int`.
const INT_MAX: u32 = i32::MAX as u32;
/// `threads=` must stay below mod_wsgi's worker stack sentinel (0xffff - 1).
const MAX_THREADS: u32 = 0xfffe - 1;

/// Reads a non-negative C-int-sized count.
fn count(option: &str, value: &str) -> Result<u32, String> {
    values::integer(value, 0, INT_MAX).map_err(|e| format!("option '{option}' {e}"))
}

fn seconds(option: &str, value: &str) -> Result<Duration, String> {
    count(option, value).map(|s| Duration::from_secs(s.into()))
}

fn bytes64(option: &str, value: &str) -> Result<u64, String> {
    values::integer(value, 0, i64::MAX as u64).map_err(|e| format!("option '{option}' {e}"))
}

/// A buffer size that is 0 (meaning "default") or at least `min`.
fn buffer(option: &str, value: &str, min: u32) -> Result<u32, String> {
    match count(option, value)? {
        n if n == 0 || n >= min => Ok(n),
        _ => Err(format!("option '{option}' must be 0 or at least {min} bytes, not '{value}'")),
    }
}

fn nonzero_or(value: u32, default: u32) -> u32 {
    if value == 0 {
        default
    } else {
        value
    }
}

fn non_empty(option: &str, value: &str) -> Result<String, String> {
    if value.is_empty() {
        Err(format!("option '{option}' needs a non-empty value"))
    } else {
        Ok(value.to_string())
    }
}

fn absolute(option: &str, value: &str) -> Result<String, String> {
    if value.starts_with('/') {
        Ok(value.to_string())
    } else {
        Err(format!("option '{option}' must be an absolute path, not '{value}'"))
    }
}

/// `root` and `#0` are refused; other names that map to uid 0 can only be caught once they are
/// looked up.
fn daemon_user(value: &str) -> Result<String, String> {
    let user = non_empty("user", value)?;
    let uid_zero = value.strip_prefix('#').is_some_and(|n| n.parse::<u64>() == Ok(0));
    if value == "root" || uid_zero {
        return Err("option 'user': daemon processes may not run as root".to_string());
    }
    Ok(user)
}

fn split_list(value: &str, sep: char) -> Vec<String> {
    value.split(sep).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

impl DaemonProcess {
    /// Builds a group from its name and the `name=value` words after it (as produced by
    /// [`args::split_options`](super::args::split_options)). Later repeats of an option win.
    pub fn parse(name: &str, options: &[String]) -> Result<Self, String> {
        if name.is_empty() {
            return Err("the daemon process group needs a name".to_string());
        }
        let mut d = DaemonProcess::new(name);
        let mut response_socket_timeout = None;
        let mut header_buffer_size = 0;
        let mut response_buffer_size = 0;
        for word in options {
            let (option, v) = split_option(word)?;
            match option {
                "user" => d.user = Some(daemon_user(v)?),
                "group" => d.group = Some(non_empty(option, v)?),
                "supplementary-groups" => d.supplementary_groups = Some(split_list(v, ',')),
                "processes" => {
                    d.processes = values::integer(v, 1, INT_MAX)
                        .map_err(|e| format!("option '{option}' {e}"))?;
                    d.multiprocess = true;
                }
                "threads" => {
                    d.threads = values::integer(v, 0, MAX_THREADS)
                        .map_err(|e| format!("option '{option}' {e}"))?
                }
                "umask" => {
                    let mask = u32::from_str_radix(v, 8);
                    d.umask = Some(
                        mask.map_err(|_| format!("option '{option}' must be octal, not '{v}'"))?,
                    );
                }
                "chroot" => d.chroot = Some(absolute(option, v)?),
                "home" => d.home = Some(absolute(option, v)?),
                "lang" => d.lang = Some(v.to_string()),
                "locale" => d.locale = Some(v.to_string()),
                "python-home" => d.python_home = Some(v.to_string()),
                "python-path" => d.python_path = split_list(v, ':'),
                "python-eggs" => d.python_eggs = Some(v.to_string()),
                "switch-interval" => {
                    let secs =
                        values::positive_number(v).map_err(|e| format!("option '{option}' {e}"))?;
                    d.switch_interval = Some(secs);
                }
                "stack-size" => {
                    let size = values::integer(v, 1, INT_MAX)
                        .map_err(|e| format!("option '{option}' {e}"))?;
                    d.stack_size = Some(size);
                }
                "maximum-requests" => d.maximum_requests = count(option, v)?,
                "startup-timeout" => d.startup_timeout = seconds(option, v)?,
                "shutdown-timeout" => d.shutdown_timeout = seconds(option, v)?,
                "deadlock-timeout" => d.deadlock_timeout = seconds(option, v)?,
                "inactivity-timeout" => d.inactivity_timeout = seconds(option, v)?,
                "request-timeout" => d.request_timeout = seconds(option, v)?,
                "interrupt-timeout" => d.interrupt_timeout = seconds(option, v)?,
                "graceful-timeout" => d.graceful_timeout = seconds(option, v)?,
                "eviction-timeout" => d.eviction_timeout = seconds(option, v)?,
                "restart-interval" => d.restart_interval = seconds(option, v)?,
                "connect-timeout" => d.connect_timeout = seconds(option, v)?,
                "socket-timeout" => d.socket_timeout = seconds(option, v)?,
                "queue-timeout" => d.queue_timeout = seconds(option, v)?,
                "response-socket-timeout" => response_socket_timeout = Some(seconds(option, v)?),
                "response-flush-delay" => {
                    d.response_flush_delay = Duration::from_millis(count(option, v)?.into())
                }
                "listen-backlog" => d.listen_backlog = count(option, v)?,
                "display-name" => d.display_name = Some(v.to_string()),
                "send-buffer-size" => d.send_buffer_size = buffer(option, v, 512)?,
                "receive-buffer-size" => d.receive_buffer_size = buffer(option, v, 512)?,
                "header-buffer-size" => header_buffer_size = buffer(option, v, 8192)?,
                "response-buffer-size" => response_buffer_size = buffer(option, v, 65536)?,
                "socket-user" => d.socket_user = Some(non_empty(option, v)?),
                "script-user" => d.script_user = Some(non_empty(option, v)?),
                "script-group" => d.script_group = Some(non_empty(option, v)?),
                "cpu-time-limit" => d.cpu_time_limit = count(option, v)?,
                // mod_wsgi passes any int to setpriority(), which clamps it.
                "cpu-priority" => {
                    d.cpu_priority = values::integer(v, i32::MIN, i32::MAX)
                        .map_err(|e| format!("option '{option}' {e}"))?
                }
                "memory-limit" => d.memory_limit = bytes64(option, v)?,
                "virtual-memory-limit" => d.virtual_memory_limit = bytes64(option, v)?,
                "server-metrics" => {
                    d.server_metrics =
                        values::on_off(v).map_err(|e| format!("option '{option}' {e}"))?
                }
                // mod_wsgi 4.x options for the New Relic agent, dropped in 6.0. Accepted and
                // ignored so a 4.x configuration still loads.
                "newrelic-config-file" | "newrelic-environment" => {}
                _ => return Err(format!("unknown option '{option}'")),
            }
        }
        if d.script_user.is_some() && d.script_group.is_some() {
            return Err(
                "only one of the options 'script-user' and 'script-group' may be given".to_string()
            );
        }
        // 0 means "default" for these two, so resolve it once here.
        d.header_buffer_size = nonzero_or(header_buffer_size, DEFAULT_HEADER_BUFFER_SIZE);
        d.response_buffer_size = nonzero_or(response_buffer_size, DEFAULT_RESPONSE_BUFFER_SIZE);
        d.response_socket_timeout = match response_socket_timeout {
            Some(t) if !t.is_zero() => t,
            _ => d.socket_timeout,
        };
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(options: &[&str]) -> Result<DaemonProcess, String> {
        let words: Vec<String> = options.iter().map(|s| s.to_string()).collect();
        DaemonProcess::parse("grp", &words)
    }

    #[test]
    fn no_options_gives_defaults() {
        assert_eq!(parse(&[]).unwrap(), DaemonProcess::new("grp"));
        assert!(DaemonProcess::parse("", &[]).is_err());
    }

    #[test]
    fn processes_sets_multiprocess_even_when_one() {
        let d = parse(&["processes=1"]).unwrap();
        assert_eq!((d.processes, d.multiprocess), (1, true));
        let err = parse(&["processes=0"]).unwrap_err();
        assert!(err.contains("'processes'"), "{err}");
    }

    #[test]
    fn threads_range() {
        assert_eq!(parse(&["threads=0"]).unwrap().threads, 0);
        assert_eq!(parse(&["threads=65533"]).unwrap().threads, 65533);
        assert!(parse(&["threads=65534"]).is_err());
        let err = parse(&["threads=lots"]).unwrap_err();
        assert!(err.contains("'threads'") && err.contains("'lots'"), "{err}");
    }

    #[test]
    fn every_documented_option_is_accepted() {
        let d = parse(&[
            "user=www-data",
            "group=www-data",
            "supplementary-groups=a,,b",
            "processes=3",
            "threads=5",
            "umask=0027",
            "chroot=/jail",
            "home=/srv",
            "lang=en_US.UTF-8",
            "locale=C.UTF-8",
            "python-home=/venv",
            "python-path=/a:/b",
            "python-eggs=/tmp/eggs",
            "switch-interval=0.01",
            "stack-size=524288",
            "maximum-requests=1000",
            "startup-timeout=15",
            "shutdown-timeout=6",
            "deadlock-timeout=60",
            "inactivity-timeout=300",
            "request-timeout=60",
            "interrupt-timeout=2",
            "graceful-timeout=20",
            "eviction-timeout=3",
            "restart-interval=3600",
            "connect-timeout=10",
            "socket-timeout=30",
            "queue-timeout=45",
            "response-socket-timeout=40",
            "response-flush-delay=0",
            "listen-backlog=500",
            "display-name=%{GROUP}",
            "send-buffer-size=1024",
            "receive-buffer-size=0",
            "header-buffer-size=65536",
            "response-buffer-size=65536",
            "socket-user=#33",
            "script-user=app",
            "cpu-time-limit=100",
            "cpu-priority=-5",
            "memory-limit=1073741824",
            "virtual-memory-limit=4294967296",
            "server-metrics=On",
            "newrelic-config-file=/x.ini",
        ])
        .unwrap();
        assert_eq!(d.supplementary_groups, Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(d.umask, Some(0o027));
        assert_eq!(d.python_path, ["/a", "/b"]);
        assert_eq!(d.switch_interval, Some(0.01));
        assert_eq!(d.queue_timeout, Duration::from_secs(45));
        assert_eq!(d.response_socket_timeout, Duration::from_secs(40));
        assert_eq!(d.response_flush_delay, Duration::ZERO);
        assert_eq!((d.header_buffer_size, d.response_buffer_size), (65536, 65536));
        assert_eq!(d.cpu_priority, -5);
        assert_eq!(d.virtual_memory_limit, 4_294_967_296);
        assert!(d.server_metrics);
        assert_eq!(d.display_name.as_deref(), Some("%{GROUP}"));
    }

    #[test]
    fn later_option_wins() {
        assert_eq!(parse(&["threads=2", "threads=7"]).unwrap().threads, 7);
    }

    #[test]
    fn response_socket_timeout_follows_socket_timeout() {
        let d = parse(&["socket-timeout=30"]).unwrap();
        assert_eq!(d.response_socket_timeout, Duration::from_secs(30));
        let d = parse(&["socket-timeout=30", "response-socket-timeout=0"]).unwrap();
        assert_eq!(d.response_socket_timeout, Duration::from_secs(30));
    }

    #[test]
    fn buffer_sizes_have_minimums_and_zero_means_default() {
        assert!(parse(&["header-buffer-size=4096"]).unwrap_err().contains("8192"));
        assert!(parse(&["response-buffer-size=1000"]).unwrap_err().contains("65536"));
        assert!(parse(&["send-buffer-size=100"]).is_err());
        assert_eq!(parse(&["header-buffer-size=0"]).unwrap().header_buffer_size, 32768);
    }

    #[test]
    fn root_is_refused() {
        for user in ["user=root", "user=#0", "user=#000"] {
            assert!(parse(&[user]).unwrap_err().contains("root"), "{user}");
        }
        assert_eq!(parse(&["user=#1000"]).unwrap().user.as_deref(), Some("#1000"));
    }

    #[test]
    fn invalid_values_name_the_option() {
        let cases = [
            ("umask=0999", "'umask'"),
            ("home=relative", "'home'"),
            ("chroot=jail", "'chroot'"),
            ("switch-interval=0", "'switch-interval'"),
            ("stack-size=0", "'stack-size'"),
            ("deadlock-timeout=-1", "'deadlock-timeout'"),
            ("server-metrics=yes", "'server-metrics'"),
            ("group=", "'group'"),
            ("bogus=1", "unknown option 'bogus'"),
            ("threads", "not an option"),
        ];
        for (option, expect) in cases {
            let err = parse(&[option]).unwrap_err();
            assert!(err.contains(expect), "{option}: {err}");
        }
        assert!(parse(&["script-user=a", "script-group=b"]).is_err());
    }
}
