//! `mod_wsgi_rs-express`: one command from a WSGI file to a running Apache, with
//! mod_wsgi-express's subcommands and option names.
//!
//! - `start-server APP`: writes a complete Apache configuration into a server root and runs
//!   `apache2 -DFOREGROUND` as a supervised child until Ctrl-C or SIGTERM.
//! - `setup-server APP`: the same files plus an `apachectl` script; starts nothing.
//! - `module-config`: the `LoadModule` (and `WSGIPythonHome`) lines for a system Apache.
//! - `install-module`: copies the module into Apache's module directory with Debian-style
//!   `wsgi_rs.load`/`wsgi_rs.conf`.
//!
//! This program is plain Rust over std and libc: it never links Apache or Python, it only
//! writes text and runs `/usr/sbin/apache2`. Bad arguments exit with status 2, other failures
//! with 1. See `docs/express.md`.

mod install;
/// The option table and the parser.
mod options;
/// `--reload-on-changes`.
mod reload;
/// The server root's files, Apache as a supervised child.
mod server;
/// Options resolved into server settings.
mod settings;
/// Every option, defined once.
mod table;
/// `httpd.conf`, the handler script and `apachectl` as text.
mod template;

use std::path::PathBuf;
use std::process::ExitCode;

use options::{Command, Parsed, Stop};

/// Why the program stops early.
enum Failure {
    /// The command line is wrong: exit 2.
    Usage(String),
    /// Something on the machine is in the way: exit 1.
    Runtime(String),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match options::parse(&args) {
        Ok(parsed) => parsed,
        Err(Stop::Help(text)) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(Stop::Usage(message)) => return fail(Failure::Usage(message)),
    };
    match run(&parsed) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => fail(failure),
    }
}

fn fail(failure: Failure) -> ExitCode {
    let (message, code) = match failure {
        Failure::Usage(m) => (m, 2),
        Failure::Runtime(m) => (m, 1),
    };
    eprintln!("mod_wsgi_rs-express: {message}");
    ExitCode::from(code)
}

fn run(p: &Parsed) -> Result<u8, Failure> {
    let module = install::find_module(p.text("module").as_deref()).map_err(Failure::Runtime)?;
    match p.command {
        Command::ModuleConfig => {
            let venv = std::env::var("VIRTUAL_ENV").ok();
            print!("{}", install::module_config(&module, venv.as_deref()));
            Ok(0)
        }
        Command::InstallModule => {
            let conf_dir = PathBuf::from(p.text("apache-conf-dir").unwrap_or_default());
            let done =
                install::install_module(&module, p.text("modules-dir").as_deref(), &conf_dir)
                    .map_err(Failure::Runtime)?;
            for line in done {
                println!("{line}");
            }
            println!("Enable it with: a2enmod wsgi_rs && systemctl restart apache2");
            Ok(0)
        }
        Command::StartServer | Command::SetupServer => serve(p, module),
    }
}

fn serve(p: &Parsed, module: PathBuf) -> Result<u8, Failure> {
    let cwd = std::env::current_dir().map_err(|e| Failure::Runtime(format!("no cwd: {e}")))?;
    let env = settings::Env {
        cwd,
        // SAFETY: getuid cannot fail.
        uid: unsafe { libc::getuid() },
        tmpdir: std::env::var_os("TMPDIR").map_or_else(|| "/tmp".into(), PathBuf::from),
        virtual_env: std::env::var("VIRTUAL_ENV").ok().filter(|v| !v.is_empty()),
    };
    let s = settings::resolve(p, &env, module).map_err(Failure::Usage)?;
    if s.run_as.is_none() && (p.text("user").is_some() || p.text("group").is_some()) {
        eprintln!("mod_wsgi_rs-express: --user/--group only apply when started as root; ignored");
    }
    for warning in server::prepare(&s).map_err(Failure::Runtime)? {
        eprintln!("mod_wsgi_rs-express: warning: {warning}");
    }
    if p.command == Command::SetupServer {
        let ctl = s.server_root.join("apachectl");
        println!("Server configuration written to {}", s.config_file().display());
        println!("Start it with: {} start   (stop, restart, graceful, configtest)", ctl.display());
        println!("Then point a browser at {}", s.url());
        return Ok(0);
    }
    server::check_port(&s).map_err(Failure::Runtime)?;
    print!("{}", server::banner(&s));
    println!("Point a browser at {} (Ctrl-C stops the server)", s.url());
    let code = server::run(&s).map_err(Failure::Runtime)?;
    Ok(u8::try_from(code).unwrap_or(1))
}
