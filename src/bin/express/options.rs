//! The command line: the subcommands, one table holding every option (name, values,
//! default, help), and a parser that checks words against that table.
//!
//! This is the "what was typed" stage: values are checked for shape (a count is a number, a
//! choice is one of its choices) but not resolved. `settings` turns them into the facts the
//! configuration template needs (paths made absolute, defaults that depend on other options).
//! Option names and defaults are mod_wsgi-express's, so its users' command lines keep working;
//! the options themselves are defined in `table`.

use std::fmt::Write as _;

use crate::table::{Kind, Spec, INSTALL, MODULE, OPTIONS, SERVER};
use Kind::{Choice, Count, Flag};

/// A subcommand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    StartServer,
    SetupServer,
    ModuleConfig,
    InstallModule,
}

impl Command {
    const ALL: [(&'static str, Command, &'static str); 4] = [
        ("start-server", Command::StartServer, "write the configuration and run Apache"),
        ("setup-server", Command::SetupServer, "write the configuration and an apachectl script"),
        ("module-config", Command::ModuleConfig, "print the lines that load the module"),
        ("install-module", Command::InstallModule, "install the module into Apache"),
    ];

    fn parse(word: &str) -> Option<Command> {
        Self::ALL.iter().find(|(name, ..)| *name == word).map(|&(_, c, _)| c)
    }

    /// The name typed on the command line.
    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, c, _)| *c == self).map_or("", |(name, ..)| name)
    }

    /// Which bit of [`Spec::used_by`] stands for this command.
    fn bit(self) -> u8 {
        match self {
            Command::StartServer | Command::SetupServer => SERVER,
            Command::ModuleConfig => MODULE,
            Command::InstallModule => INSTALL,
        }
    }

    /// Whether the command takes the application (script path or module name) as its one
    /// positional argument.
    fn takes_app(self) -> bool {
        self.bit() == SERVER
    }
}

/// A command line that parsed.
#[derive(Debug)]
pub struct Parsed {
    pub command: Command,
    /// The positional argument of `start-server`/`setup-server`.
    pub app: Option<String>,
    /// Options given, in order, with their values.
    given: Vec<(&'static str, Vec<String>)>,
}

/// What `parse` found instead of a command to run.
#[derive(Debug, PartialEq)]
pub enum Stop {
    /// `--help`: print this and exit 0.
    Help(String),
    /// A usage error: print this and exit 2.
    Usage(String),
}

fn spec(name: &str) -> Option<&'static Spec> {
    OPTIONS.iter().find(|s| s.name == name)
}

/// Parses `args` (without the program name).
pub fn parse(args: &[String]) -> Result<Parsed, Stop> {
    let Some(first) = args.first() else {
        return Err(Stop::Usage(format!("a command is required\n\n{}", overview())));
    };
    if matches!(first.as_str(), "-h" | "--help" | "help") {
        return Err(Stop::Help(overview()));
    }
    let command = Command::parse(first)
        .ok_or_else(|| Stop::Usage(format!("unknown command '{first}'\n\n{}", overview())))?;
    let mut parsed = Parsed { command, app: None, given: Vec::new() };
    let mut words = args[1..].iter();
    while let Some(word) = words.next() {
        if word == "-h" || word == "--help" {
            return Err(Stop::Help(help(command)));
        }
        let Some(body) = word.strip_prefix("--") else {
            if command.takes_app() && parsed.app.is_none() && !word.is_empty() {
                parsed.app = Some(word.clone());
                continue;
            }
            return Err(usage(command, &format!("unexpected argument '{word}'")));
        };
        // `--name=value` is accepted for one-value options, as argparse does.
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let spec = spec(name)
            .filter(|s| s.used_by & command.bit() != 0)
            .ok_or_else(|| usage(command, &format!("unknown option '--{name}'")))?;
        let mut values: Vec<String> = inline.into_iter().collect();
        if spec.kind.arity() != 1 && !values.is_empty() {
            return Err(usage(command, &format!("--{name} cannot take a value after '='")));
        }
        while values.len() < spec.kind.arity() {
            let value = words.next().ok_or_else(|| {
                usage(command, &format!("--{name} needs {}", spec.metavar.replace(' ', " and ")))
            })?;
            values.push(value.clone());
        }
        check_values(spec, &values).map_err(|e| usage(command, &e))?;
        parsed.given.push((spec.name, values));
    }
    if command.takes_app() && parsed.app.is_none() {
        return Err(usage(
            command,
            "the application (a WSGI script file or module name) is missing",
        ));
    }
    Ok(parsed)
}

fn check_values(spec: &Spec, values: &[String]) -> Result<(), String> {
    let name = spec.name;
    if values.iter().any(String::is_empty) {
        return Err(format!("--{name} needs a non-empty value"));
    }
    match spec.kind {
        Count if values[0].parse::<u32>().is_err() => {
            Err(format!("--{name} must be a whole number, not '{}'", values[0]))
        }
        Choice(choices) if !choices.contains(&values[0].as_str()) => {
            Err(format!("--{name} must be one of {}, not '{}'", choices.join(", "), values[0]))
        }
        _ => Ok(()),
    }
}

fn usage(command: Command, message: &str) -> Stop {
    Stop::Usage(format!("{message}\nTry 'mod_wsgi_rs-express {} --help'.", command.name()))
}

impl Parsed {
    fn last(&self, name: &str) -> Option<&[String]> {
        debug_assert!(spec(name).is_some(), "--{name} is not in OPTIONS");
        self.given.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| v.as_slice())
    }

    /// Whether a flag was given.
    pub fn flag(&self, name: &str) -> bool {
        self.last(name).is_some()
    }

    /// The last value given, else the table's default.
    pub fn text(&self, name: &str) -> Option<String> {
        match self.last(name) {
            Some(values) => Some(values[0].clone()),
            None => spec(name).and_then(|s| s.default).map(str::to_string),
        }
    }

    /// A count option's value (checked by `parse`), or `None` without value and default.
    pub fn count(&self, name: &str) -> Option<u32> {
        self.text(name).and_then(|v| v.parse().ok())
    }

    /// Every value of a repeatable one-value option, in order.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.all(name).map(|v| v[0].clone()).collect()
    }

    /// Every value of a repeatable pair option, in order.
    pub fn pairs(&self, name: &str) -> Vec<(String, String)> {
        self.all(name).map(|v| (v[0].clone(), v[1].clone())).collect()
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [String]> + 'a {
        debug_assert!(spec(name).is_some_and(|s| s.repeat), "--{name} is not a repeatable option");
        self.given.iter().filter(move |(n, _)| *n == name).map(|(_, v)| v.as_slice())
    }
}

/// The list of commands.
fn overview() -> String {
    let mut text = String::from("usage: mod_wsgi_rs-express COMMAND [OPTIONS]\n\ncommands:\n");
    for (name, _, what) in Command::ALL {
        let _ = writeln!(text, "  {name:16}{what}");
    }
    text.push_str("\n'mod_wsgi_rs-express COMMAND --help' lists a command's options.");
    text
}

/// One command's usage and options, from the table.
fn help(command: Command) -> String {
    let app = if command.takes_app() { " APP" } else { "" };
    let mut text = format!("usage: mod_wsgi_rs-express {}{app} [OPTIONS]\n\n", command.name());
    for spec in OPTIONS.iter().filter(|s| s.used_by & command.bit() != 0) {
        let flag = format!("--{} {}", spec.name, spec.metavar);
        let _ = write!(text, "  {:30} {}", flag.trim_end(), spec.help);
        if spec.repeat {
            text.push_str(" (repeatable)");
        }
        match spec.default {
            Some(d) if spec.kind != Flag => {
                let _ = writeln!(text, " [default: {d}]");
            }
            _ => text.push('\n'),
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(line: &str) -> Result<Parsed, Stop> {
        parse(&line.split_whitespace().map(str::to_string).collect::<Vec<_>>())
    }

    fn usage_of(line: &str) -> String {
        match run(line) {
            Err(Stop::Usage(m)) => m,
            other => panic!("{line}: expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn table_names_are_unique_and_defaults_fit_their_kind() {
        for (i, s) in OPTIONS.iter().enumerate() {
            assert!(OPTIONS[..i].iter().all(|o| o.name != s.name), "--{} twice", s.name);
            if let Some(d) = s.default {
                check_values(s, &[d.to_string()]).unwrap();
                assert!(!s.repeat && s.kind != Flag, "--{}", s.name);
            }
            assert_eq!(s.metavar.split_whitespace().count(), s.kind.arity(), "--{}", s.name);
        }
    }

    #[test]
    fn defaults_are_mod_wsgi_express_ones() {
        let p = run("start-server app.wsgi").unwrap();
        assert_eq!(p.command, Command::StartServer);
        assert_eq!(p.app.as_deref(), Some("app.wsgi"));
        assert_eq!(p.count("port"), Some(8000));
        assert_eq!(p.count("threads"), Some(5));
        assert_eq!(p.count("processes"), Some(1));
        assert_eq!(p.count("request-timeout"), Some(60));
        assert_eq!(p.count("queue-timeout"), Some(45));
        assert_eq!(p.count("max-clients"), None);
        assert_eq!(p.text("application-type").as_deref(), Some("script"));
        assert_eq!(p.text("callable-object").as_deref(), Some("application"));
        assert_eq!(p.text("host"), None);
        assert!(!p.flag("embedded-mode"));
    }

    #[test]
    fn values_last_wins_and_repeats_accumulate() {
        let p = run("setup-server --port 9000 x.wsgi --port=9001 --embedded-mode \
                     --url-alias /static /srv/s --url-alias /media /srv/m \
                     --python-path /a --python-path=/b --setenv K V")
        .unwrap();
        assert_eq!(p.command, Command::SetupServer);
        assert_eq!(p.app.as_deref(), Some("x.wsgi"));
        assert_eq!(p.count("port"), Some(9001));
        assert!(p.flag("embedded-mode"));
        assert_eq!(p.list("python-path"), ["/a", "/b"]);
        let aliases = p.pairs("url-alias");
        assert_eq!(aliases[1], ("/media".to_string(), "/srv/m".to_string()));
        assert_eq!(p.pairs("setenv"), [("K".to_string(), "V".to_string())]);
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        assert!(usage_of("").contains("a command is required"));
        assert!(usage_of("serve x").contains("unknown command 'serve'"));
        assert!(usage_of("start-server").contains("application"));
        assert!(usage_of("start-server a b").contains("unexpected argument 'b'"));
        assert!(usage_of("start-server a --bogus").contains("unknown option '--bogus'"));
        assert!(usage_of("start-server a --port").contains("--port needs N"));
        assert!(usage_of("start-server a --port eighty").contains("whole number, not 'eighty'"));
        assert!(usage_of("start-server a --port -1").contains("not '-1'"));
        assert!(usage_of("start-server a --url-alias /s").contains("needs URL and PATH"));
        assert!(usage_of("start-server a --log-level loud").contains("one of emerg"));
        assert!(usage_of("start-server a --embedded-mode=yes").contains("cannot take a value"));
        assert!(usage_of("start-server a --port=").contains("non-empty"));
        // Options belong to their commands.
        assert!(usage_of("module-config --port 1").contains("unknown option '--port'"));
        assert!(usage_of("module-config extra").contains("unexpected argument"));
        assert!(usage_of("start-server a --modules-dir /x").contains("unknown option"));
        assert!(usage_of("start-server a --bogus").contains("start-server --help"));
    }

    #[test]
    fn install_and_module_config_options() {
        let p = run("install-module --modules-dir /m --apache-conf-dir /c --module /x.so").unwrap();
        assert_eq!(p.command, Command::InstallModule);
        assert_eq!(p.text("modules-dir").as_deref(), Some("/m"));
        assert_eq!(p.text("module").as_deref(), Some("/x.so"));
        let p = run("install-module").unwrap();
        assert_eq!(p.text("apache-conf-dir").as_deref(), Some("/etc/apache2"));
        assert!(run("module-config").unwrap().app.is_none());
    }

    #[test]
    fn help_lists_each_commands_options_with_defaults() {
        let Err(Stop::Help(text)) = run("start-server --help") else { panic!() };
        assert!(text.contains("--port N"), "{text}");
        assert!(text.contains("[default: 8000]"));
        assert!(text.contains("--url-alias URL PATH"));
        assert!(!text.contains("--modules-dir"));
        let Err(Stop::Help(text)) = run("--help") else { panic!() };
        assert!(text.contains("install-module"));
    }
}
