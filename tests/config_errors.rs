//! Start-up errors: `apache2 -t -f <conf>` with a bad directive value must fail, and the
//! message must name the directive (issue 2, point 2). A complete mod_wsgi configuration,
//! daemon-mode directives included, must pass.
mod common;
use common::*;

/// Runs `apache2 -t` on the base config plus `line`, asserting it fails and, when
/// `must_name` is true, that the output names `directive`.
fn assert_rejected(m: Module, line: &str, directive: &str, must_name: bool) {
    let spec = ServerSpec::new(m).config(line);
    let (ok, out) = config_test(&spec);
    assert!(!ok, "apache2 -t must reject {line:?}, but said: {out}");
    assert!(out.contains("Syntax error"), "apache2 -t reports a syntax error for {line:?}: {out}");
    if must_name {
        assert!(out.contains(directive), "the error for {line:?} must name {directive}: {out}");
    }
}

/// Bad values that both modules reject with a message naming the directive.
const BAD_BOTH: &[(&str, &str)] = &[
    ("WSGIScriptReloading Maybe", "WSGIScriptReloading"),
    ("WSGIChunkedRequest bad", "WSGIChunkedRequest"),
    ("WSGIRestrictStdout perhaps", "WSGIRestrictStdout"),
    ("WSGIRestrictStdin perhaps", "WSGIRestrictStdin"),
    ("WSGIRestrictSignal perhaps", "WSGIRestrictSignal"),
    ("WSGIPassAuthorization sure", "WSGIPassAuthorization"),
    ("WSGIDontWriteBytecode yes", "WSGIDontWriteBytecode"),
    ("WSGIPythonHashSeed xyz", "WSGIPythonHashSeed"),
    ("WSGIMapHEADToGET sometimes", "WSGIMapHEADToGET"),
    ("WSGIApplicationGroup", "WSGIApplicationGroup"),
    ("WSGIApplicationGroup a b", "WSGIApplicationGroup"),
    ("WSGIPythonWarnings", "WSGIPythonWarnings"),
    ("WSGICallableObject", "WSGICallableObject"),
    ("WSGIScriptAlias /only-one-arg", "WSGIScriptAlias"),
];

/// Bad values that both reject, but mod_wsgi 4.9.4's message does not name the directive
/// (e.g. "Invalid option to WSGI script alias definition."). Ours must name it.
const BAD_UNNAMED_BY_MOD_WSGI: &[(&str, &str)] = &[
    ("WSGIScriptAlias /x @APPS@/kitchensink.wsgi bogus=1", "WSGIScriptAlias"),
    ("WSGIScriptAliasMatch ^/x @APPS@/kitchensink.wsgi bogus=1", "WSGIScriptAliasMatch"),
    ("WSGIDaemonProcess grp processes=abc", "WSGIDaemonProcess"),
    ("WSGIDaemonProcess grp bogus-option=1", "WSGIDaemonProcess"),
];

both_embedded!(bad_values_fail_and_name_directive, |m| {
    for (line, directive) in BAD_BOTH {
        assert_rejected(m, line, directive, true);
    }
});

both_embedded!(bad_alias_and_daemon_options_fail, |m| {
    for (line, directive) in BAD_UNNAMED_BY_MOD_WSGI {
        // mod_wsgi 4.9.4's message omits the directive name; the issue asks ours to name it.
        assert_rejected(m, line, directive, m.is_ours());
    }
});

#[test]
fn python_optimize_not_a_number_fails_ours() {
    // mod_wsgi 4.9.4 uses atoi() and silently accepts "abc" as 0; an invalid value must
    // fail apache2 -t and name the directive (issue 2, point 2).
    assert_rejected(Module::Ours, "WSGIPythonOptimize abc", "WSGIPythonOptimize", true);
}

#[test]
fn python_optimize_not_a_number_accepted_by_mod_wsgi() {
    let (ok, out) = config_test(&ServerSpec::new(Module::ModWsgi).config("WSGIPythonOptimize abc"));
    assert!(ok, "reference behaviour: mod_wsgi 4.9.4 accepts WSGIPythonOptimize abc: {out}");
}

both_embedded!(directive_in_wrong_context_fails, |m| {
    // WSGIPythonHome is server-config only: not allowed in <Directory>.
    let line = "<Directory /tmp>\nWSGIPythonHome /usr\n</Directory>";
    let (ok, out) = config_test(&ServerSpec::new(m).config(line));
    assert!(!ok, "WSGIPythonHome inside <Directory> must be rejected: {out}");
    assert!(out.contains("WSGIPythonHome"), "the context error names WSGIPythonHome: {out}");
});

/// A configuration using every directive issue 2 lists, as an existing mod_wsgi site would.
const FULL_CONFIG: &str = r#"
WSGIPythonOptimize 1
WSGIDontWriteBytecode On
WSGIPythonHashSeed 42
WSGIPythonWarnings ignore::DeprecationWarning
WSGIPythonPath @APPS@
WSGIRestrictStdin On
WSGIRestrictStdout Off
WSGIRestrictSignal On
WSGIDestroyInterpreter On
WSGIDaemonProcess site1 processes=2 threads=15 display-name=%{GROUP} maximum-requests=1000 inactivity-timeout=300 request-timeout=60 python-path=@APPS@ home=@APPS@ lang=en_US.UTF-8 locale=en_US.UTF-8
WSGIScriptAlias /a @APPS@/kitchensink.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL} callable-object=application pass-authorization=On
WSGIScriptAliasMatch ^/b/([^/]+) @APPS@/$1.wsgi
WSGIImportScript @APPS@/kitchensink.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL}
<Directory @APPS@>
    WSGIProcessGroup %{GLOBAL}
    WSGIApplicationGroup %{GLOBAL}
    WSGICallableObject application
    WSGIScriptReloading On
    WSGIChunkedRequest On
    WSGIPassAuthorization On
    WSGIMapHEADToGET Auto
    Options ExecCGI
    AddHandler wsgi-script .wsgi
    Require all granted
</Directory>
<IfModule wsgi_module>
    WSGIApplicationGroup %{GLOBAL}
</IfModule>
<IfModule mod_wsgi.c>
    WSGICallableObject application
</IfModule>
"#;

both_embedded!(full_mod_wsgi_config_is_accepted, |m| {
    let (ok, out) = config_test(&ServerSpec::new(m).config(FULL_CONFIG));
    assert!(ok, "a complete mod_wsgi configuration must pass apache2 -t: {out}");
    assert!(out.contains("Syntax OK"), "apache2 -t says Syntax OK: {out}");
});

#[test]
fn module_cannot_load_beside_mod_wsgi() {
    // Same module symbol and name ("mod_wsgi.c"): mod_so skips the second one, so an old
    // `LoadModule wsgi_module .../mod_wsgi.so` left in a config is harmless.
    let spec =
        ServerSpec::new(Module::Ours).config(&format!("LoadModule wsgi_module {DEBIAN_MOD_WSGI}"));
    let (_ok, out) = config_test(&spec);
    assert!(
        out.contains("already loaded"),
        "mod_so must skip mod_wsgi.so after mod_wsgi_rs: {out}"
    );
}
