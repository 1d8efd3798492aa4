//! Generates Rust bindings for the parts of the httpd/APR API the module uses, and
//! compiles the C shim for the APIs that are macros or variadic functions.

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// Runs a configuration tool (`apxs`, `apr-1-config`) and returns its trimmed output.
fn query(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}; install apache2-dev"));
    assert!(out.status.success(), "{program} {args:?} failed");
    String::from_utf8(out.stdout).expect("tool output is UTF-8").trim().to_owned()
}

fn main() {
    println!("cargo:rerun-if-changed=shim/wrapper.h");
    println!("cargo:rerun-if-changed=shim/shim.c");

    // Include directories and the -D flags APR was built with: the flags change struct
    // layouts, so bindgen and cc must both see them.
    let mut clang_args = vec![format!("-I{}", query("apxs", &["-q", "INCLUDEDIR"]))];
    for word in query("apr-1-config", &["--includes", "--cppflags"]).split_whitespace() {
        clang_args.push(word.to_owned());
    }
    for word in query("apu-1-config", &["--includes"]).split_whitespace() {
        clang_args.push(word.to_owned());
    }

    let bindings = bindgen::Builder::default()
        .header("shim/wrapper.h")
        .clang_args(&clang_args)
        .allowlist_function("ap_.*|apr_.*|wsgi_shim_.*|unixd_.*")
        .allowlist_type("apr_pool_t|apr_bucket_alloc_t|ap_conf_vector_t|request_rec|server_rec|conn_rec|module|command_rec|cmd_parms|process_rec")
        .allowlist_var("MODULE_MAGIC_.*|APLOG_.*|OK|DECLINED|DONE|HTTP_.*|RSRC_CONF|ACCESS_CONF|OR_.*|GLOBAL_ONLY|NOT_IN_.*|APR_HOOK_.*|AP_MPMQ_.*|REQUEST_.*|APR_SUCCESS|APR_EOF|APR_BLOCK_READ|APR_INCOMPLETE|APR_TIMEUP|APR_FINFO_.*|APR_REG|APR_DIR|APR_READ|APR_BINARY|APR_OS_DEFAULT|AP_SERVER_.*|MODULE_INDEX|AP_FILTER_.*|WSGI_SHIM_.*|OPT_.*|AP_REQ_.*|AP_CONN_.*|AP_FTYPE_.*|HUGE_STRING_LEN|APR_SENDFILE_ENABLED|APR_FOPEN_.*|AP_SQ_.*|APR_OC_REASON_.*|APR_INCHILD|APR_INPARENT|ap_unixd_config|ap_server_conf")
        // The httpd headers declare some structs we only pass through by pointer.
        .opaque_type("apr_pool_t|apr_bucket_alloc_t|ap_conf_vector_t")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen over shim/wrapper.h");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    bindings.write_to_file(out.join("bindings.rs")).expect("write bindings.rs");

    let mut build = cc::Build::new();
    build.file("shim/shim.c").warnings(true).flag_if_supported("-Wno-unused-parameter");
    for arg in &clang_args {
        if let Some(dir) = arg.strip_prefix("-I") {
            build.include(dir);
        } else if let Some(def) = arg.strip_prefix("-D") {
            let (name, value) = def.split_once('=').map_or((def, None), |(n, v)| (n, Some(v)));
            build.define(name, value);
        }
    }
    build.compile("wsgi_shim");
}
