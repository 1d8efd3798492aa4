//! `name=value` option lists that follow the positional words of some directives:
//! `WSGIScriptAlias(Match)`, `WSGIImportScript`, `WSGIHandlerScript` and the per-request hook
//! scripts (`WSGIDispatchScript`, `WSGIAccessScript`, `WSGIAuthUserScript`,
//! `WSGIAuthGroupScript`). `WSGIDaemonProcess` has its own, much longer list in `daemon`.
//!
//! Options are matched case-sensitively, as mod_wsgi does; a later repeat of an option
//! replaces the earlier value.

use super::alias::AliasOptions;
use super::dir::{HandlerScript, ScriptRef};
use super::server::ImportScript;
use super::values;

/// Splits one `name=value` word at its first `=`.
pub fn split_option(word: &str) -> Result<(&str, &str), String> {
    match word.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name, value)),
        _ => Err(format!("'{word}' is not an option of the form name=value")),
    }
}

/// A value that names something (a group, a callable) and so may not be empty.
fn name_value(option: &str, value: &str) -> Result<String, String> {
    if value.is_empty() {
        Err(format!("option '{option}' needs a non-empty value"))
    } else {
        Ok(value.to_string())
    }
}

fn flag_value(option: &str, value: &str) -> Result<bool, String> {
    values::on_off(value).map_err(|e| format!("option '{option}' {e}"))
}

fn unknown(option: &str, allowed: &str) -> String {
    format!("unknown option '{option}' (allowed: {allowed})")
}

/// Parses the options of `WSGIScriptAlias` / `WSGIScriptAliasMatch`.
///
/// Group values are kept as typed (`%{GLOBAL}` stays `%{GLOBAL}`); the `groups` module gives
/// them meaning per request.
pub fn alias_options(words: &[String]) -> Result<AliasOptions, String> {
    const ALLOWED: &str = "process-group, application-group, callable-object, pass-authorization";
    let mut options = AliasOptions::default();
    for word in words {
        let (name, value) = split_option(word)?;
        match name {
            "process-group" => options.process_group = Some(name_value(name, value)?),
            "application-group" => options.application_group = Some(name_value(name, value)?),
            "callable-object" => options.callable_object = Some(name_value(name, value)?),
            "pass-authorization" => options.pass_authorization = Some(flag_value(name, value)?),
            _ => return Err(unknown(name, ALLOWED)),
        }
    }
    Ok(options)
}

/// Turns mod_wsgi's spelling of "main interpreter / embedded mode" into the empty name.
fn global_to_empty(name: String) -> String {
    if name == "%{GLOBAL}" {
        String::new()
    } else {
        name
    }
}

/// Parses `WSGIImportScript`'s options; both groups are required.
///
/// The groups are concrete names here, not templates, so `%{GLOBAL}` becomes `""` as in
/// mod_wsgi.
pub fn import_script(path: &str, words: &[String]) -> Result<ImportScript, String> {
    let (mut process_group, mut application_group) = (None, None);
    for word in words {
        let (name, value) = split_option(word)?;
        match name {
            "process-group" => process_group = Some(name_value(name, value)?),
            "application-group" => application_group = Some(name_value(name, value)?),
            _ => return Err(unknown(name, "process-group, application-group")),
        }
    }
    let application_group = application_group.ok_or("the application-group= option is required")?;
    let process_group = process_group.ok_or("the process-group= option is required")?;
    Ok(ImportScript {
        path: path.to_string(),
        process_group: global_to_empty(process_group),
        application_group: global_to_empty(application_group),
    })
}

/// Parses the options of a per-request hook script (dispatch, access, auth user, auth group):
/// only `application-group=` is allowed.
pub fn script_ref(path: &str, words: &[String]) -> Result<ScriptRef, String> {
    let mut script = ScriptRef { path: path.to_string(), application_group: None };
    for word in words {
        let (name, value) = split_option(word)?;
        match name {
            "application-group" => script.application_group = Some(name_value(name, value)?),
            _ => return Err(unknown(name, "application-group")),
        }
    }
    Ok(script)
}

/// Parses `WSGIHandlerScript`'s options.
pub fn handler_script(path: &str, words: &[String]) -> Result<HandlerScript, String> {
    let mut script = HandlerScript {
        path: path.to_string(),
        process_group: None,
        application_group: None,
        pass_authorization: None,
    };
    for word in words {
        let (name, value) = split_option(word)?;
        match name {
            "process-group" => script.process_group = Some(name_value(name, value)?),
            "application-group" => script.application_group = Some(name_value(name, value)?),
            "pass-authorization" => script.pass_authorization = Some(flag_value(name, value)?),
            _ => return Err(unknown(name, "process-group, application-group, pass-authorization")),
        }
    }
    Ok(script)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn split_option_cuts_at_first_equals() {
        assert_eq!(split_option("a=b=c"), Ok(("a", "b=c")));
        assert_eq!(split_option("a="), Ok(("a", "")));
        assert!(split_option("a").is_err());
        assert!(split_option("=b").is_err());
    }

    #[test]
    fn alias_options_all_fields_and_last_wins() {
        let o = alias_options(&words(&[
            "process-group=one",
            "process-group=two",
            "application-group=%{GLOBAL}",
            "callable-object=app",
            "pass-authorization=on",
        ]))
        .unwrap();
        assert_eq!(o.process_group.as_deref(), Some("two"));
        assert_eq!(o.application_group.as_deref(), Some("%{GLOBAL}"));
        assert_eq!(o.callable_object.as_deref(), Some("app"));
        assert_eq!(o.pass_authorization, Some(true));
        assert_eq!(alias_options(&[]).unwrap(), AliasOptions::default());
    }

    #[test]
    fn alias_options_errors_name_the_option() {
        let err = alias_options(&words(&["processes=2"])).unwrap_err();
        assert!(err.contains("unknown option 'processes'"), "{err}");
        let err = alias_options(&words(&["process-group="])).unwrap_err();
        assert!(err.contains("'process-group'"), "{err}");
        let err = alias_options(&words(&["pass-authorization=maybe"])).unwrap_err();
        assert!(err.contains("'pass-authorization'") && err.contains("'maybe'"), "{err}");
        // Option names are case-sensitive in mod_wsgi.
        assert!(alias_options(&words(&["Process-Group=x"])).is_err());
    }

    #[test]
    fn import_script_needs_both_groups_and_maps_global() {
        let s = import_script(
            "/a.py",
            &words(&["process-group=%{GLOBAL}", "application-group=%{GLOBAL}"]),
        )
        .unwrap();
        assert_eq!((s.process_group.as_str(), s.application_group.as_str()), ("", ""));
        let s =
            import_script("/a.py", &words(&["application-group=x", "process-group=p"])).unwrap();
        assert_eq!((s.path.as_str(), s.process_group.as_str()), ("/a.py", "p"));
        let err = import_script("/a.py", &words(&["process-group=p"])).unwrap_err();
        assert!(err.contains("application-group"), "{err}");
        let err = import_script("/a.py", &words(&["application-group=x"])).unwrap_err();
        assert!(err.contains("process-group"), "{err}");
        assert!(import_script("/a.py", &words(&["callable-object=x"])).is_err());
    }

    #[test]
    fn hook_scripts_take_only_application_group() {
        let s = script_ref("/auth.py", &words(&["application-group=auth"])).unwrap();
        assert_eq!(s.application_group.as_deref(), Some("auth"));
        assert!(script_ref("/auth.py", &words(&["process-group=p"])).is_err());
    }

    #[test]
    fn handler_script_options() {
        let s = handler_script("/h.py", &words(&["pass-authorization=Off", "process-group=p"]))
            .unwrap();
        assert_eq!(s.pass_authorization, Some(false));
        assert_eq!(s.process_group.as_deref(), Some("p"));
        assert!(handler_script("/h.py", &words(&["callable-object=x"])).is_err());
    }
}
