//! Handlers for the process-wide directives: how Python is started and how daemon sockets and
//! locks are made. All are main-server only, so they write into the server config only.
//!
//! Accepted and validated but otherwise ignored, so older or newer configurations still load:
//! `WSGIVerboseDebugging` (a no-op in mod_wsgi 6 too), `WSGILazyInitialization` and the
//! `WSGINewRelic*` pair (mod_wsgi 4 only), and the telemetry directives (`WSGITelemetryService`,
//! `WSGISlowRequests`, `WSGITelemetryOptions`), whose feature is not implemented.

use super::super::server::{AcceptMutex, HashSeed};
use super::super::{values, CallSite, Target};

type Outcome = Result<(), String>;

fn flag(args: &[String]) -> Result<bool, String> {
    values::on_off(&args[0])
}

pub(super) fn python_home(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.server.python_home = Some(args[0].clone());
    Ok(())
}

/// Replaces the path list: like mod_wsgi, a second `WSGIPythonPath` wins over the first.
pub(super) fn python_path(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.server.python_path =
        args[0].split(':').filter(|p| !p.is_empty()).map(str::to_string).collect();
    Ok(())
}

pub(super) fn python_eggs(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.server.python_eggs = Some(args[0].clone());
    Ok(())
}

/// mod_wsgi takes any integer here (via `atoi`); Python only knows 0 to 2, so anything else is
/// refused up front.
pub(super) fn python_optimize(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.server.optimize = match args[0].as_str() {
        "0" => 0,
        "1" => 1,
        "2" => 2,
        other => return Err(format!("must be 0, 1 or 2, not '{other}'")),
    };
    Ok(())
}

pub(super) fn python_hash_seed(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.server.hash_seed = match args[0].as_str() {
        "random" => HashSeed::Random,
        value => HashSeed::Fixed(value.parse().map_err(|_| {
            format!("must be 'random' or an integer from 0 to 4294967295, not '{value}'")
        })?),
    };
    Ok(())
}

/// Repeatable: each directive adds one filter.
pub(super) fn python_warnings(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.server.warnings.push(args[0].clone());
    Ok(())
}

pub(super) fn dont_write_bytecode(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.server.dont_write_bytecode = flag(args)?;
    Ok(())
}

pub(super) fn switch_interval(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.server.switch_interval = Some(values::positive_number(&args[0])?);
    Ok(())
}

pub(super) fn destroy_interpreter(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.server.destroy_interpreter = flag(args)?;
    Ok(())
}

pub(super) fn per_interpreter_gil(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.server.per_interpreter_gil = flag(args)?;
    Ok(())
}

pub(super) fn free_threading(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.server.free_threading = flag(args)?;
    Ok(())
}

pub(super) fn restrict_embedded(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.server.restrict_embedded = flag(args)?;
    Ok(())
}

pub(super) fn restrict_stdin(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.server.restrict_stdin = flag(args)?;
    Ok(())
}

pub(super) fn restrict_stdout(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.server.restrict_stdout = flag(args)?;
    Ok(())
}

pub(super) fn restrict_signal(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.server.restrict_signal = flag(args)?;
    Ok(())
}

pub(super) fn case_sensitivity(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.server.case_sensitivity = flag(args)?;
    Ok(())
}

pub(super) fn server_metrics(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.server.server_metrics = flag(args)?;
    Ok(())
}

pub(super) fn socket_prefix(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.server.socket_prefix = Some(args[0].clone());
    Ok(())
}

pub(super) fn socket_rotation(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.server.socket_rotation = flag(args)?;
    Ok(())
}

pub(super) fn accept_mutex(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    const NAMES: [(&str, AcceptMutex); 6] = [
        ("default", AcceptMutex::Default),
        ("flock", AcceptMutex::Flock),
        ("fcntl", AcceptMutex::Fcntl),
        ("sysvsem", AcceptMutex::SysvSem),
        ("posixsem", AcceptMutex::PosixSem),
        ("pthread", AcceptMutex::Pthread),
    ];
    let value = &args[0];
    let Some(&(_, mutex)) = NAMES.iter().find(|(name, _)| name.eq_ignore_ascii_case(value)) else {
        let known: Vec<&str> = NAMES.iter().map(|(name, _)| *name).collect();
        return Err(format!("'{value}' is not a mutex type (known: {})", known.join(", ")));
    };
    t.server.accept_mutex = mutex;
    Ok(())
}

/// `WSGIVerboseDebugging`: deprecated in mod_wsgi 6 and a no-op there too; `LogLevel wsgi:debug`
/// replaces it. The value is still checked.
pub(super) fn verbose_debugging(_: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    flag(args).map(drop)
}

/// `WSGILazyInitialization` (mod_wsgi 4): we never initialise Python in the Apache parent, which
/// is what On asked for, so the value has no effect.
pub(super) fn lazy_initialization(_: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    flag(args).map(drop)
}

/// A directive whose single value is accepted and ignored.
pub(super) fn ignored_value(_: &mut Target<'_>, _: &[String], _: &CallSite) -> Outcome {
    Ok(())
}

/// `WSGITelemetryService unix:/path [interval=N]`, checked as mod_wsgi 6 does, then ignored.
pub(super) fn telemetry_service(_: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    if !args[0].starts_with("unix:") {
        return Err(format!("the target must be unix:/path, not '{}'", args[0]));
    }
    if let Some(second) = args.get(1) {
        let interval = second
            .strip_prefix("interval=")
            .ok_or_else(|| format!("the second argument must be interval=N, not '{second}'"))?;
        match interval.parse::<f64>() {
            Ok(secs) if secs >= 0.5 => {}
            _ => return Err(format!("interval must be at least 0.5 seconds, not '{interval}'")),
        }
    }
    Ok(())
}

/// `WSGISlowRequests seconds`, checked and ignored.
pub(super) fn slow_requests(_: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    values::non_negative_number(&args[0]).map(drop)
}

/// `WSGITelemetryOptions`: `None`, `All`, flag names, or `+Flag`/`-Flag` (not mixed with the
/// plain form). The only flag is `CaptureUserAgent`. Checked and ignored.
pub(super) fn telemetry_options(_: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    if args.is_empty() {
        return Err("at least one flag is required".to_string());
    }
    let signed = |w: &String| w.starts_with('+') || w.starts_with('-');
    if args.iter().any(signed) && !args.iter().all(signed) {
        return Err("cannot mix +/- flags with plain flag names".to_string());
    }
    for word in args {
        let name = word.trim_start_matches(['+', '-']);
        let known = if signed(word) {
            name.eq_ignore_ascii_case("CaptureUserAgent")
        } else {
            ["None", "All", "CaptureUserAgent"].iter().any(|k| k.eq_ignore_ascii_case(name))
        };
        if !known {
            return Err(format!("unknown flag '{word}'"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::Fixture;
    use super::*;

    #[test]
    fn python_home_path_eggs() {
        let mut f = Fixture::default();
        f.run("WSGIPythonHome /opt/venv").unwrap();
        f.run("WSGIPythonHome /usr:/usr/local").unwrap();
        assert_eq!(f.server.python_home.as_deref(), Some("/usr:/usr/local"));
        f.run("WSGIPythonPath /a::/b").unwrap();
        f.run("WSGIPythonPath /c:/d").unwrap();
        assert_eq!(f.server.python_path, ["/c", "/d"]);
        f.run("WSGIPythonEggs '/tmp/egg cache'").unwrap();
        assert_eq!(f.server.python_eggs.as_deref(), Some("/tmp/egg cache"));
    }

    #[test]
    fn optimize_levels() {
        let mut f = Fixture::default();
        assert_eq!(f.server.optimize, 0);
        f.run("WSGIPythonOptimize 2").unwrap();
        f.run("WSGIPythonOptimize 1").unwrap();
        assert_eq!(f.server.optimize, 1);
        assert!(f.fail("WSGIPythonOptimize -1").contains("not '-1'"));
        assert_eq!(f.server.optimize, 1, "a failed directive changes nothing");
    }

    #[test]
    fn hash_seed() {
        let mut f = Fixture::default();
        f.run("WSGIPythonHashSeed 4294967295").unwrap();
        assert_eq!(f.server.hash_seed, HashSeed::Fixed(u32::MAX));
        f.run("WSGIPythonHashSeed random").unwrap();
        assert_eq!(f.server.hash_seed, HashSeed::Random);
        let err = f.fail("WSGIPythonHashSeed 4294967296");
        assert!(err.starts_with("WSGIPythonHashSeed: must be 'random'"), "{err}");
        assert!(f.fail("WSGIPythonHashSeed Random").contains("'Random'"));
    }

    #[test]
    fn warnings_accumulate() {
        let mut f = Fixture::default();
        f.run("WSGIPythonWarnings ignore::DeprecationWarning").unwrap();
        f.run("WSGIPythonWarnings error").unwrap();
        assert_eq!(f.server.warnings, ["ignore::DeprecationWarning", "error"]);
    }

    #[test]
    fn flags_default_set_and_reject() {
        let mut f = Fixture::default();
        assert!(f.server.restrict_signal);
        f.run("WSGIRestrictSignal off").unwrap();
        assert!(!f.server.restrict_signal);
        assert!(f.server.destroy_interpreter);
        f.run("WSGIDestroyInterpreter Off").unwrap();
        assert!(!f.server.destroy_interpreter);
        for line in [
            "WSGIDontWriteBytecode On",
            "WSGIRestrictEmbedded On",
            "WSGIRestrictStdin On",
            "WSGIRestrictStdout On",
            "WSGIPerInterpreterGIL On",
            "WSGIFreeThreading On",
            "WSGIServerMetrics On",
        ] {
            f.run(line).unwrap();
        }
        let s = &f.server;
        assert!(s.dont_write_bytecode && s.restrict_embedded && s.restrict_stdin);
        assert!(s.restrict_stdout && s.per_interpreter_gil && s.free_threading && s.server_metrics);
        f.run("WSGICaseSensitivity Off").unwrap();
        assert!(!f.server.case_sensitivity);
        assert!(f.fail("WSGIRestrictStdin 1").starts_with("WSGIRestrictStdin: "));
    }

    #[test]
    fn switch_interval() {
        let mut f = Fixture::default();
        f.run("WSGISwitchInterval 0.001").unwrap();
        assert_eq!(f.server.switch_interval, Some(0.001));
        assert!(f.fail("WSGISwitchInterval 0").starts_with("WSGISwitchInterval: "));
    }

    #[test]
    fn sockets_and_mutex() {
        let mut f = Fixture::default();
        f.run("WSGISocketPrefix run/wsgi").unwrap();
        assert_eq!(f.server.socket_prefix("logs"), "run/wsgi");
        f.run("WSGISocketRotation Off").unwrap();
        assert!(!f.server.socket_rotation);
        f.run("WSGIAcceptMutex FCNTL").unwrap();
        assert_eq!(f.server.accept_mutex, AcceptMutex::Fcntl);
        f.run("WSGIAcceptMutex posixsem").unwrap();
        assert_eq!(f.server.accept_mutex, AcceptMutex::PosixSem);
        assert!(f.fail("WSGIAcceptMutex spin").contains("'spin'"));
    }

    #[test]
    fn accepted_but_ignored() {
        let mut f = Fixture::default();
        f.run("WSGIVerboseDebugging On").unwrap();
        f.run("WSGILazyInitialization Off").unwrap();
        f.run("WSGINewRelicConfigFile /etc/newrelic.ini").unwrap();
        f.run("WSGINewRelicEnvironment staging").unwrap();
        assert!(f.fail("WSGIVerboseDebugging loud").starts_with("WSGIVerboseDebugging: "));
    }

    #[test]
    fn telemetry_is_checked() {
        let mut f = Fixture::default();
        f.run("WSGITelemetryService unix:/run/t.sock").unwrap();
        f.run("WSGITelemetryService unix:/run/t.sock interval=2.5").unwrap();
        assert!(f.fail("WSGITelemetryService udp:host:1").contains("unix:/path"));
        assert!(f.fail("WSGITelemetryService unix:/x interval=0.1").contains("0.5"));
        f.run("WSGISlowRequests 2.5").unwrap();
        assert!(f.run("WSGISlowRequests -1").is_err());
        f.run("WSGITelemetryOptions All").unwrap();
        f.run("WSGITelemetryOptions +CaptureUserAgent").unwrap();
        assert!(f.fail("WSGITelemetryOptions None +CaptureUserAgent").contains("mix"));
        assert!(f.fail("WSGITelemetryOptions +None").contains("'+None'"));
        assert!(f.fail("WSGITelemetryOptions Bogus").contains("'Bogus'"));
        assert!(f.run("WSGITelemetryOptions").is_err());
    }
}
