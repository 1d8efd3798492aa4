//! Handlers for the directives that name scripts or define daemon groups: `WSGIScriptAlias`,
//! `WSGIScriptAliasMatch`, `WSGIDaemonProcess`, `WSGIImportScript` and the hook scripts.
//!
//! The hook scripts (`WSGIDispatchScript`, `WSGIAccessScript`, `WSGIAuthUserScript`,
//! `WSGIAuthGroupScript`, `WSGIHandlerScript`) are parsed and stored in the directory config,
//! but nothing runs them yet.

use super::super::alias::{AliasPattern, ScriptAlias};
use super::super::daemon::DaemonProcess;
use super::super::pcre::Regex;
use super::super::{options, registry, CallSite, ImportScript, Target};

type Outcome = Result<(), String>;

/// The first `n` words, each required and non-empty.
fn positional<'a>(args: &'a [String], what: &[&str]) -> Result<&'a [String], String> {
    let n = what.len();
    if args.len() < n || args[..n].iter().any(String::is_empty) {
        return Err(format!("needs {}", what.join(" and ")));
    }
    Ok(&args[..n])
}

/// Adds a preload entry. Like mod_wsgi, a preload into a daemon group needs the group to be
/// defined already (by an earlier `WSGIDaemonProcess`) and visible from this server; an alias
/// that only names a process group is checked later, per request.
fn add_preload(t: &mut Target<'_>, script: ImportScript, site: &CallSite) -> Outcome {
    if !script.process_group.is_empty() {
        registry::shared().check_usable(&script.process_group, site.server_name.as_deref())?;
    }
    t.server.import_scripts.push(script);
    Ok(())
}

fn add_alias(t: &mut Target<'_>, alias: ScriptAlias, site: &CallSite) -> Outcome {
    if let Some(script) = alias.preload() {
        add_preload(t, script, site)?;
    }
    t.server.script_aliases.push(alias);
    Ok(())
}

pub(super) fn script_alias(t: &mut Target<'_>, args: &[String], site: &CallSite) -> Outcome {
    let words = positional(args, &["a URL path", "a file path"])?;
    let alias = ScriptAlias {
        pattern: AliasPattern::Prefix(words[0].clone()),
        target: words[1].clone(),
        options: options::alias_options(&args[2..])?,
    };
    add_alias(t, alias, site)
}

pub(super) fn script_alias_match(t: &mut Target<'_>, args: &[String], site: &CallSite) -> Outcome {
    let words = positional(args, &["a regular expression", "a file path"])?;
    let options = options::alias_options(&args[2..])?;
    let regex = Regex::new(&words[0])
        .map_err(|e| format!("cannot compile regular expression '{}': {e}", words[0]))?;
    let alias =
        ScriptAlias { pattern: AliasPattern::Regex(regex), target: words[1].clone(), options };
    add_alias(t, alias, site)
}

pub(super) fn daemon_process(t: &mut Target<'_>, args: &[String], site: &CallSite) -> Outcome {
    let name = args.first().map_or("", String::as_str);
    let mut group = DaemonProcess::parse(name, args.get(1..).unwrap_or_default())?;
    group.server_name = site.server_name.clone();
    group.in_virtual_host = site.in_virtual_host;
    registry::shared().define(&group)?;
    t.server.daemon_processes.push(group);
    Ok(())
}

pub(super) fn import_script(t: &mut Target<'_>, args: &[String], site: &CallSite) -> Outcome {
    let words = positional(args, &["a script path"])?;
    let script = options::import_script(&words[0], &args[1..])?;
    add_preload(t, script, site)
}

pub(super) fn dispatch_script(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    let words = positional(args, &["a script path"])?;
    t.dir.dispatch_script = Some(options::script_ref(&words[0], &args[1..])?);
    Ok(())
}

pub(super) fn access_script(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    let words = positional(args, &["a script path"])?;
    t.dir.access_script = Some(options::script_ref(&words[0], &args[1..])?);
    Ok(())
}

pub(super) fn auth_user_script(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    let words = positional(args, &["a script path"])?;
    t.dir.auth_user_script = Some(options::script_ref(&words[0], &args[1..])?);
    Ok(())
}

pub(super) fn auth_group_script(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    let words = positional(args, &["a script path"])?;
    t.dir.auth_group_script = Some(options::script_ref(&words[0], &args[1..])?);
    Ok(())
}

pub(super) fn handler_script(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    let words = positional(args, &["a handler name", "a script path"])?;
    let script = options::handler_script(&words[1], &args[2..])?;
    t.dir.handler_scripts.insert(words[0].clone(), script);
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Group names are unique per test: the daemon group registry is shared by every test in
    //! the process, which run in parallel.

    use super::super::super::alias::translate;
    use super::super::testing::Fixture;
    use super::*;

    #[test]
    fn script_alias_with_quoted_paths_and_options() {
        let mut f = Fixture::default();
        f.run(r#"WSGIScriptAlias "/my app" "/srv/my app/site.wsgi" callable-object=app"#).unwrap();
        let alias = &f.server.script_aliases[0];
        assert!(matches!(&alias.pattern, AliasPattern::Prefix(p) if p == "/my app"));
        assert_eq!(alias.target, "/srv/my app/site.wsgi");
        assert_eq!(alias.options.callable_object.as_deref(), Some("app"));
        assert!(f.server.import_scripts.is_empty(), "no groups, no preload");
    }

    #[test]
    fn script_alias_errors() {
        let mut f = Fixture::default();
        assert!(f.fail("WSGIScriptAlias /only").starts_with("WSGIScriptAlias: needs a URL path"));
        let err = f.fail("WSGIScriptAlias / /x.wsgi processes=2");
        assert!(err.starts_with("WSGIScriptAlias: unknown option 'processes'"), "{err}");
        assert!(f.server.script_aliases.is_empty());
    }

    #[test]
    fn aliases_are_tried_in_order() {
        let mut f = Fixture::default();
        f.run("WSGIScriptAlias /api /srv/api.wsgi").unwrap();
        f.run("WSGIScriptAliasMatch ^/u/([a-z]+) /srv/users/$1.wsgi").unwrap();
        f.run("WSGIScriptAlias / /srv/site.wsgi").unwrap();
        let file =
            |uri: &str| translate(&f.server.script_aliases, uri.as_bytes()).unwrap().filename;
        assert_eq!(file("/api/x"), b"/srv/api.wsgi/x");
        assert_eq!(file("/u/bob/home"), b"/srv/users/bob.wsgi/home");
        assert_eq!(file("/u/1"), b"/srv/site.wsgi/u/1");
    }

    #[test]
    fn script_alias_match_rejects_bad_regex() {
        let mut f = Fixture::default();
        let err = f.fail("WSGIScriptAliasMatch ^/(unclosed /srv/x.wsgi");
        assert!(err.starts_with("WSGIScriptAliasMatch: cannot compile"), "{err}");
    }

    #[test]
    fn process_group_must_exist_before_a_preloading_alias() {
        let mut f = Fixture::default();
        let err =
            f.fail("WSGIScriptAlias / /x.wsgi process-group=t1-late application-group=%{GLOBAL}");
        assert!(err.contains("WSGI process group not yet configured"), "{err}");
        f.run("WSGIDaemonProcess t1-late threads=2").unwrap();
        f.run("WSGIScriptAlias / /x.wsgi process-group=t1-late application-group=%{GLOBAL}")
            .unwrap();
        assert_eq!(
            f.server.import_scripts,
            [ImportScript {
                path: "/x.wsgi".into(),
                process_group: "t1-late".into(),
                application_group: String::new()
            }]
        );
    }

    #[test]
    fn alias_naming_only_a_process_group_is_not_checked_at_config_time() {
        // mod_wsgi checks the group only when it preloads, so this order loads there too.
        let mut f = Fixture::default();
        f.run("WSGIScriptAlias / /x.wsgi process-group=t2-defined-later").unwrap();
        f.run("WSGIScriptAlias /e /e.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL}")
            .unwrap();
        f.run("WSGIScriptAlias /t /t.wsgi process-group=%{ENV:G} application-group=x").unwrap();
        assert_eq!(f.server.import_scripts.len(), 1, "only the embedded one preloads");
    }

    #[test]
    fn daemon_process_records_site_and_refuses_duplicates() {
        let mut f = Fixture::in_vhost("t3.example");
        f.run("WSGIDaemonProcess t3-app processes=2 home='/srv/my app'").unwrap();
        let d = f.server.daemon_processes.iter().find(|d| d.name == "t3-app").unwrap();
        assert_eq!((d.processes, d.multiprocess, d.in_virtual_host), (2, true, true));
        assert_eq!(d.home.as_deref(), Some("/srv/my app"));
        assert_eq!(d.server_name.as_deref(), Some("t3.example"));
        let mut other = Fixture::default();
        let err = other.fail("WSGIDaemonProcess t3-app");
        assert!(err.starts_with("WSGIDaemonProcess: ") && err.contains("already defined"), "{err}");
        assert!(other.fail("WSGIDaemonProcess").contains("needs a name"));
        let err = other.fail("WSGIDaemonProcess t3-bad threads=-1");
        assert!(err.starts_with("WSGIDaemonProcess: option 'threads'"), "{err}");
    }

    #[test]
    fn vhost_group_is_visible_only_to_same_server_name() {
        let mut vhost = Fixture::in_vhost("t4.example");
        vhost.run("WSGIDaemonProcess t4-vhost").unwrap();
        let mut other = Fixture::in_vhost("t4-other.example");
        let err =
            other.fail("WSGIImportScript /s.py process-group=t4-vhost application-group=%{GLOBAL}");
        assert!(err.contains("not accessible"), "{err}");
        vhost
            .run("WSGIImportScript /s.py process-group=t4-vhost application-group=%{GLOBAL}")
            .unwrap();
        assert_eq!(vhost.server.import_scripts[0].process_group, "t4-vhost");
    }

    #[test]
    fn import_script_requires_both_groups() {
        let mut f = Fixture::default();
        f.run("WSGIImportScript /s.py process-group=%{GLOBAL} application-group=%{GLOBAL}")
            .unwrap();
        assert_eq!(f.server.import_scripts[0].process_group, "");
        assert!(f.fail("WSGIImportScript /s.py application-group=x").contains("process-group"));
        assert!(f.fail("WSGIImportScript").contains("needs a script path"));
        let err = f.fail("WSGIImportScript /s.py process-group=t5-nowhere application-group=x");
        assert!(err.contains("not yet configured"), "{err}");
    }

    #[test]
    fn hook_scripts_are_stored() {
        let mut f = Fixture::default();
        f.run("WSGIDispatchScript /d.py application-group=%{GLOBAL}").unwrap();
        f.run("WSGIAccessScript /a.py").unwrap();
        f.run("WSGIAuthUserScript /u.py").unwrap();
        f.run("WSGIAuthGroupScript /g.py application-group=auth").unwrap();
        f.run("WSGIHandlerScript my-handler /h.py pass-authorization=On").unwrap();
        assert_eq!(f.dir.dispatch_script.as_ref().unwrap().path, "/d.py");
        assert_eq!(f.dir.access_script.as_ref().unwrap().path, "/a.py");
        assert_eq!(f.dir.auth_user_script.as_ref().unwrap().path, "/u.py");
        let g = f.dir.auth_group_script.as_ref().unwrap();
        assert_eq!(g.application_group.as_deref(), Some("auth"));
        assert_eq!(f.dir.handler_scripts["my-handler"].pass_authorization, Some(true));
        let err = f.fail("WSGIAccessScript /a.py process-group=x");
        assert!(err.starts_with("WSGIAccessScript: unknown option 'process-group'"), "{err}");
        assert!(f.fail("WSGIHandlerScript only-name").contains("needs a handler name"));
    }
}
