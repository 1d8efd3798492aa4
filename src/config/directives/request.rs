//! Handlers for the per-request directives. They all write into the directory config of the
//! current section; at server level that is the server's default directory config, so
//! sections inherit and override through the normal merge.

use super::super::dir::MapHeadToGet;
use super::super::proxy::TrustedProxy;
use super::super::{values, CallSite, Target};

type Outcome = Result<(), String>;

fn flag(args: &[String]) -> Result<Option<bool>, String> {
    values::on_off(&args[0]).map(Some)
}

/// Kept as typed: the template is expanded per request (see `groups`).
pub(super) fn process_group(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.dir.process_group = Some(args[0].clone());
    Ok(())
}

pub(super) fn application_group(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.dir.application_group = Some(args[0].clone());
    Ok(())
}

pub(super) fn callable_object(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.dir.callable_object = Some(args[0].clone());
    Ok(())
}

/// Replaces the list. `%{GLOBAL}` becomes `""` because the list is compared with expanded
/// process group names, in which embedded mode is the empty name.
pub(super) fn restrict_process(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    let names = args.iter().map(|a| if a == "%{GLOBAL}" { String::new() } else { a.clone() });
    t.dir.restrict_process = Some(names.collect());
    Ok(())
}

pub(super) fn pass_apache_request(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.dir.pass_apache_request = flag(args)?;
    Ok(())
}

pub(super) fn pass_authorization(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.dir.pass_authorization = flag(args)?;
    Ok(())
}

pub(super) fn script_reloading(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.dir.script_reloading = flag(args)?;
    Ok(())
}

pub(super) fn error_override(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.dir.error_override = flag(args)?;
    Ok(())
}

pub(super) fn chunked_request(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.dir.chunked_request = flag(args)?;
    Ok(())
}

pub(super) fn ignore_activity(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.dir.ignore_activity = flag(args)?;
    Ok(())
}

pub(super) fn enable_sendfile(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.dir.enable_sendfile = flag(args)?;
    Ok(())
}

pub(super) fn group_authoritative(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    t.dir.group_authoritative = flag(args)?;
    Ok(())
}

pub(super) fn map_head_to_get(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    let value = &args[0];
    let mode = if value.eq_ignore_ascii_case("auto") {
        MapHeadToGet::Auto
    } else {
        match values::on_off(value) {
            Ok(true) => MapHeadToGet::On,
            Ok(false) => MapHeadToGet::Off,
            Err(_) => return Err(format!("must be On, Off or Auto, not '{value}'")),
        }
    };
    t.dir.map_head_to_get = Some(mode);
    Ok(())
}

/// The CGI name of a request header (`X-Forwarded-For` -> `HTTP_X_FORWARDED_FOR`), as mod_wsgi
/// stores trusted headers. Only letters, digits and `-` are allowed, since `_` would make two
/// headers share a name.
fn cgi_header_name(header: &str) -> Result<String, String> {
    let valid =
        !header.is_empty() && header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !valid {
        return Err(format!("'{header}' is not a header name (letters, digits and '-' only)"));
    }
    Ok(format!("HTTP_{}", header.to_ascii_uppercase().replace('-', "_")))
}

/// Adds to the section's list: repeating the directive in one section extends it.
pub(super) fn trusted_proxy_headers(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    let names = args.iter().map(|a| cgi_header_name(a)).collect::<Result<Vec<_>, _>>()?;
    t.dir.trusted_proxy_headers.get_or_insert_with(Vec::new).extend(names);
    Ok(())
}

/// Adds to the section's list, like the headers.
pub(super) fn trusted_proxies(t: &mut Target<'_>, args: &[String], _: &CallSite) -> Outcome {
    let proxies = args.iter().map(|a| TrustedProxy::parse(a)).collect::<Result<Vec<_>, _>>()?;
    t.dir.trusted_proxies.get_or_insert_with(Vec::new).extend(proxies);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::Fixture;
    use super::*;

    #[test]
    fn groups_and_callable_are_stored_as_typed_last_wins() {
        let mut f = Fixture::default();
        assert_eq!(f.dir.process_group(), "%{GLOBAL}");
        f.run("WSGIProcessGroup first").unwrap();
        f.run("WSGIProcessGroup %{ENV:GROUP}").unwrap();
        assert_eq!(f.dir.process_group(), "%{ENV:GROUP}");
        f.run("WSGIApplicationGroup %{GLOBAL}").unwrap();
        assert_eq!(f.dir.application_group(), "%{GLOBAL}");
        f.run("WSGICallableObject app").unwrap();
        assert_eq!(f.dir.callable_object(), "app");
        assert!(f.fail("WSGIProcessGroup a b").starts_with("WSGIProcessGroup takes one argument"));
    }

    #[test]
    fn restrict_process_replaces_and_maps_global() {
        let mut f = Fixture::default();
        f.run("WSGIRestrictProcess a b").unwrap();
        f.run("WSGIRestrictProcess %{GLOBAL} c").unwrap();
        assert_eq!(f.dir.restrict_process(), Some(&["".to_string(), "c".to_string()][..]));
        f.run("WSGIRestrictProcess").unwrap();
        assert_eq!(f.dir.restrict_process(), Some(&[][..]));
    }

    #[test]
    fn on_off_flags() {
        let mut f = Fixture::default();
        assert!(f.dir.script_reloading());
        f.run("WSGIScriptReloading Off").unwrap();
        assert!(!f.dir.script_reloading());
        f.run("WSGIScriptReloading On").unwrap();
        assert!(f.dir.script_reloading(), "last one wins");
        for line in [
            "WSGIPassApacheRequest On",
            "WSGIPassAuthorization on",
            "WSGIErrorOverride On",
            "WSGIChunkedRequest ON",
            "WSGIIgnoreActivity On",
            "WSGIEnableSendfile On",
        ] {
            f.run(line).unwrap();
        }
        let d = &f.dir;
        assert!(d.pass_apache_request() && d.pass_authorization() && d.error_override());
        assert!(d.chunked_request() && d.ignore_activity() && d.enable_sendfile());
        f.run("WSGIGroupAuthoritative Off").unwrap();
        assert!(!f.dir.group_authoritative());
        let err = f.fail("WSGIEnableSendfile sometimes");
        assert_eq!(err, "WSGIEnableSendfile: must be On or Off, not 'sometimes'");
    }

    #[test]
    fn map_head_to_get_three_values() {
        let mut f = Fixture::default();
        assert_eq!(f.dir.map_head_to_get(), MapHeadToGet::Auto);
        f.run("WSGIMapHEADToGET Off").unwrap();
        assert_eq!(f.dir.map_head_to_get(), MapHeadToGet::Off);
        f.run("WSGIMapHEADToGET on").unwrap();
        assert_eq!(f.dir.map_head_to_get(), MapHeadToGet::On);
        f.run("WSGIMapHEADToGET AUTO").unwrap();
        assert_eq!(f.dir.map_head_to_get(), MapHeadToGet::Auto);
        assert!(f.fail("WSGIMapHEADToGET yes").contains("On, Off or Auto"));
    }

    #[test]
    fn trusted_headers_become_cgi_names_and_accumulate() {
        let mut f = Fixture::default();
        f.run("WSGITrustedProxyHeaders X-Forwarded-For").unwrap();
        f.run("WSGITrustedProxyHeaders x-forwarded-proto X-Real-IP").unwrap();
        assert_eq!(
            f.dir.trusted_proxy_headers(),
            ["HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_REAL_IP"]
        );
        let err = f.fail("WSGITrustedProxyHeaders X_Forwarded_For");
        assert!(err.starts_with("WSGITrustedProxyHeaders: 'X_Forwarded_For'"), "{err}");
    }

    #[test]
    fn trusted_proxies_accumulate_and_validate() {
        let mut f = Fixture::default();
        f.run("WSGITrustedProxies 127.0.0.1 10.0.0.0/8").unwrap();
        f.run("WSGITrustedProxies ::1").unwrap();
        assert_eq!(f.dir.trusted_proxies().len(), 3);
        assert!(f.dir.trusted_proxies()[1].contains("10.9.8.7".parse().unwrap()));
        let err = f.fail("WSGITrustedProxies proxy.local");
        assert!(err.starts_with("WSGITrustedProxies: 'proxy.local'"), "{err}");
    }
}
