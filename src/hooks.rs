//! Every entry point Apache calls: configuration create/merge, the directive callback,
//! and the request and process hooks. Each one catches panics (a panic must never
//! unwind into C) and turns them into a 500 or a configuration error.

use std::os::raw::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use crate::apache::log::Target as LogTarget;
use crate::apache::log::{self, Level};
use crate::apache::pool;
use crate::apache::request::Request;
use crate::config::{self, CallSite, DirConfig, ServerConfig, Target};
use crate::ffi;
use crate::python::interpreter::{self, Settings};
use crate::python::module::ProcessFacts;
use crate::python::{log_exception, script, thread_state};

/// Facts about this Apache child, fixed in `child_init`.
static PROCESS: OnceLock<ProcessFacts> = OnceLock::new();

/// Runs `f`, turning a panic into `fallback` after logging where it happened.
fn guard<T>(place: &str, fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        log::server(
            std::ptr::null(),
            Level::Crit,
            &format!("mod_wsgi_rs: internal error in {place}: {what}"),
        );
        fallback
    })
}

/// The module's server config for `s`.
///
/// # Safety
/// `s` is a live server_rec whose config vector holds this module's entry (created by
/// `create_server_config`, so it lives as long as the configuration pool).
pub(crate) unsafe fn server_config<'a>(s: *const ffi::server_rec) -> &'a mut ServerConfig {
    // SAFETY: forwarded from the caller.
    unsafe {
        &mut *ffi::ap_get_module_config((*s).module_config, crate::module_ptr())
            .cast::<ServerConfig>()
    }
}

/// # Safety
/// `v` is a per-directory config vector holding this module's entry.
unsafe fn dir_config<'a>(v: *const ffi::ap_conf_vector_t) -> &'a DirConfig {
    // SAFETY: forwarded from the caller.
    unsafe { &*ffi::ap_get_module_config(v, crate::module_ptr()).cast::<DirConfig>() }
}

// ===== Configuration =====

pub unsafe extern "C" fn create_server_config(
    p: *mut ffi::apr_pool_t,
    _s: *mut ffi::server_rec,
) -> *mut c_void {
    // SAFETY: `p` is the configuration pool Apache passes; the value lives as long as it.
    guard("create_server_config", std::ptr::null_mut(), || unsafe {
        pool::attach(p, ServerConfig::default()).cast()
    })
}

pub unsafe extern "C" fn merge_server_config(
    p: *mut ffi::apr_pool_t,
    base: *mut c_void,
    vhost: *mut c_void,
) -> *mut c_void {
    guard("merge_server_config", std::ptr::null_mut(), || {
        // SAFETY: both came from create_server_config in the same configuration pool.
        unsafe {
            let merged =
                ServerConfig::merge(&*base.cast::<ServerConfig>(), &*vhost.cast::<ServerConfig>());
            pool::attach(p, merged).cast()
        }
    })
}

pub unsafe extern "C" fn create_dir_config(
    p: *mut ffi::apr_pool_t,
    _dir: *mut c_char,
) -> *mut c_void {
    // SAFETY: as in create_server_config.
    guard("create_dir_config", std::ptr::null_mut(), || unsafe {
        pool::attach(p, DirConfig::default()).cast()
    })
}

pub unsafe extern "C" fn merge_dir_config(
    p: *mut ffi::apr_pool_t,
    parent: *mut c_void,
    child: *mut c_void,
) -> *mut c_void {
    guard("merge_dir_config", std::ptr::null_mut(), || {
        // SAFETY: both came from create_dir_config; `p` outlives the merged value's use.
        unsafe {
            let merged =
                DirConfig::merge(&*parent.cast::<DirConfig>(), &*child.cast::<DirConfig>());
            pool::attach(p, merged).cast()
        }
    })
}

/// The one callback behind every directive (`RAW_ARGS`); `cmd->info` is the index of the
/// directive in `config::directives::DIRECTIVES`.
pub unsafe extern "C" fn directive(
    cmd: *mut ffi::cmd_parms,
    mconfig: *mut c_void,
    args: *const c_char,
) -> *const c_char {
    let internal =
        c"mod_wsgi_rs: internal error while reading this directive (see the error log)".as_ptr();
    guard("a configuration directive", internal, || {
        // SAFETY: Apache passes the live cmd_parms of the directive being read, its
        // directory config (created by create_dir_config), and a NUL-terminated argument
        // string; error strings are copied into the command's pool.
        unsafe {
            let cmd = &*cmd;
            let index = cmd.info as usize;
            let directive = &config::directives::DIRECTIVES[index];
            if directive.context == config::Context::Global {
                let err = ffi::ap_check_cmd_context(cmd as *const _ as *mut _, ffi::GLOBAL_ONLY);
                if !err.is_null() {
                    return err;
                }
            }
            let server = &*cmd.server;
            let site = CallSite {
                in_virtual_host: server.is_virtual != 0,
                server_name: (!server.server_hostname.is_null())
                    .then(|| crate::apache::c_str(server.server_hostname).into_owned()),
            };
            let mut target = Target {
                server: server_config(cmd.server),
                dir: &mut *mconfig.cast::<DirConfig>(),
            };
            let raw = crate::apache::c_str(args);
            let mut result = config::directives::apply(index, &raw, &mut target, &site);
            if result.is_ok() && directive.name == c"WSGIDaemonProcess" {
                // Accounts are looked up here, where the system is at hand, not in the
                // pure parser.
                let defined = target.server.daemon_processes.last();
                result = defined.map_or(Ok(()), crate::daemon::supervisor::check_accounts);
            }
            match result {
                Ok(()) => std::ptr::null(),
                Err(message) => pool::pstr(cmd.pool, &message),
            }
        }
    })
}

// ===== Process hooks =====

/// Runs before each reading of the configuration (start, every restart).
unsafe extern "C" fn pre_config(
    _pconf: *mut ffi::apr_pool_t,
    _plog: *mut ffi::apr_pool_t,
    _ptemp: *mut ffi::apr_pool_t,
) -> c_int {
    guard("pre_config", ffi::OK as c_int, || {
        // Daemon group names must be unique per reading, not across restarts.
        config::reset_daemon_groups();
        ffi::OK as c_int
    })
}

unsafe extern "C" fn post_config(
    pconf: *mut ffi::apr_pool_t,
    _plog: *mut ffi::apr_pool_t,
    _ptemp: *mut ffi::apr_pool_t,
    s: *mut ffi::server_rec,
) -> c_int {
    guard("post_config", ffi::HTTP_INTERNAL_SERVER_ERROR as c_int, || {
        let component = format!(
            "mod_wsgi_rs/{} Python/{}",
            env!("CARGO_PKG_VERSION"),
            interpreter::runtime_version()
        );
        // SAFETY: the string is copied into the configuration pool, which Apache keeps
        // for the generation the version component belongs to.
        unsafe { ffi::ap_add_version_component(pconf, pool::pstr(pconf, &component)) };
        // Daemons start only on the pass that serves: not under `apache2 -t`, and not in
        // the first pass at start-up, whose process exits.
        // SAFETY: ap_state_query only reads Apache's state.
        let (run_mode, main_state) = unsafe {
            (
                ffi::ap_state_query(ffi::AP_SQ_RUN_MODE as c_int),
                ffi::ap_state_query(ffi::AP_SQ_MAIN_STATE as c_int),
            )
        };
        if run_mode == ffi::AP_SQ_RM_CONFIG_TEST as c_int
            || main_state == ffi::AP_SQ_MS_CREATE_PRE_CONFIG as c_int
        {
            return ffi::OK as c_int;
        }
        // SAFETY: this is the parent's post_config with the generation's pool and main server.
        match unsafe { crate::daemon::supervisor::start(pconf, s) } {
            Ok(()) => ffi::OK as c_int,
            Err(message) => {
                log::server(s, Level::Crit, &format!("mod_wsgi_rs: {message}"));
                ffi::HTTP_INTERNAL_SERVER_ERROR as c_int
            }
        }
    })
}

fn mpm_query(what: u32) -> c_int {
    let mut value: c_int = 0;
    // SAFETY: ap_mpm_query writes one int for a known query code.
    let rv = unsafe { ffi::ap_mpm_query(what as c_int, &mut value) };
    if rv == 0 {
        value
    } else {
        0
    }
}

pub(crate) fn process_facts() -> ProcessFacts {
    let threaded = mpm_query(ffi::AP_MPMQ_IS_THREADED) != ffi::AP_MPMQ_NOT_SUPPORTED as c_int;
    let threads = if threaded { mpm_query(ffi::AP_MPMQ_MAX_THREADS).max(1) } else { 1 };
    // SAFETY: these return static strings owned by httpd.
    let (mpm_name, description) = unsafe {
        (
            crate::apache::c_str(ffi::ap_show_mpm()).into_owned(),
            crate::apache::c_str(ffi::ap_get_server_description()).into_owned(),
        )
    };
    ProcessFacts {
        process_group: String::new(),
        maximum_processes: mpm_query(ffi::AP_MPMQ_MAX_DAEMONS).max(1),
        threads_per_process: threads,
        mpm_name,
        server_description: description,
        apache_version: (
            ffi::AP_SERVER_MAJORVERSION_NUMBER,
            ffi::AP_SERVER_MINORVERSION_NUMBER,
            ffi::AP_SERVER_PATCHLEVEL_NUMBER,
        ),
        pid: std::process::id(),
    }
}

/// The interpreter settings the `WSGIPython*` and `WSGIRestrict*` directives ask for.
pub(crate) fn python_settings(server: &ServerConfig) -> Settings {
    Settings {
        home: server.python_home.clone(),
        path: server.python_path.clone(),
        optimize: server.optimize,
        dont_write_bytecode: server.dont_write_bytecode,
        hash_seed: match server.hash_seed {
            config::HashSeed::Random => None,
            config::HashSeed::Fixed(seed) => Some(seed),
        },
        warnings: server.warnings.clone(),
        restrict_stdin: server.restrict_stdin,
        restrict_stdout: server.restrict_stdout,
        restrict_signal: server.restrict_signal,
        destroy_interpreter: server.destroy_interpreter,
        switch_interval: server.switch_interval,
        python_eggs: server.python_eggs.clone(),
    }
}

/// Scripts a process of `process_group` ("" for embedded mode) loads when it starts:
/// `WSGIImportScript` and preloadable `WSGIScriptAlias` targets, from every server, each
/// once.
///
/// # Safety
/// `s` is the main server; every server in its list was configured by this module.
pub(crate) unsafe fn preloads(s: *mut ffi::server_rec, process_group: &str) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    let mut server = s;
    while !server.is_null() {
        // SAFETY: forwarded from the caller.
        let conf = unsafe { server_config(server) };
        let scripts = conf
            .import_scripts
            .iter()
            .cloned()
            .chain(conf.script_aliases.iter().filter_map(|a| a.preload()));
        for script in scripts.filter(|i| i.process_group == process_group) {
            if !paths.contains(&script.path) {
                paths.push(script.path);
            }
        }
        // SAFETY: the server list is built by Apache and lives for the generation.
        server = unsafe { (*server).next };
    }
    paths
}

unsafe extern "C" fn child_init(pchild: *mut ffi::apr_pool_t, s: *mut ffi::server_rec) {
    guard("child_init", (), || {
        let facts = PROCESS.get_or_init(process_facts);
        // The secret lives on in this child's memory; applications must not find it in
        // their environment. (The child is still single-threaded here.)
        std::env::remove_var(crate::daemon::supervisor::SECRET_ENV);
        // SAFETY: `s` is the main server, configured by create_server_config.
        let server = unsafe { server_config(s) };
        if server.restrict_embedded {
            return;
        }
        let settings = python_settings(server);
        match interpreter::start(&settings, facts, s) {
            Ok(()) => {
                log::server(
                    s,
                    Level::Info,
                    &format!(
                        "Python {} started in Apache child {} (embedded mode)",
                        interpreter::runtime_version(),
                        std::process::id()
                    ),
                );
                // SAFETY: `s` is the main server of a configured generation.
                for path in unsafe { preloads(s, "") } {
                    thread_state::attach(|py| {
                        if let Err(e) = script::preload(py, &path) {
                            log_exception(
                                py,
                                LogTarget::Server(s),
                                &format!("Failed to preload WSGI script '{path}'"),
                                &e,
                            );
                        }
                    });
                }
                // SAFETY: the child pool lives until the child exits; its cleanup runs on
                // the main thread after the MPM has joined the worker threads.
                unsafe { pool::on_cleanup(pchild, move || interpreter::finish(&settings)) };
            }
            Err(message) => log::server(
                s,
                Level::Crit,
                &format!(
                    "mod_wsgi_rs: cannot start Python in Apache child {}: {message}",
                    std::process::id()
                ),
            ),
        }
    })
}

// ===== Request hooks =====

/// Maps `WSGIScriptAlias` URLs to their scripts, before mod_alias sees the request.
unsafe extern "C" fn translate_name(r: *mut ffi::request_rec) -> c_int {
    guard("translate_name", ffi::DECLINED, || {
        // SAFETY: Apache passes the live request being translated.
        let request = unsafe { Request::from_raw(r) };
        // SAFETY: the request's server was configured by create_server_config.
        let server = unsafe { server_config(request.server()) };
        let uri = request.uri();
        if server.script_aliases.is_empty() || !uri.starts_with(b"/") {
            return ffi::DECLINED;
        }
        let Some(found) = config::alias::translate(&server.script_aliases, uri) else {
            return ffi::DECLINED;
        };
        request.set_filename(&found.filename);
        request.set_handler(c"wsgi-script");
        let pool = request.pool();
        let notes = request.notes();
        let options = &found.options;
        // SAFETY: keys and values are copied into the request pool.
        unsafe {
            notes.set(pool, "alias-forced-type", b"wsgi-script");
            if let Some(v) = &options.process_group {
                notes.set(pool, "mod_wsgi.process_group", v.as_bytes());
            }
            if let Some(v) = &options.application_group {
                notes.set(pool, "mod_wsgi.application_group", v.as_bytes());
            }
            if let Some(v) = &options.callable_object {
                notes.set(pool, "mod_wsgi.callable_object", v.as_bytes());
            }
            if let Some(v) = options.pass_authorization {
                notes.set(pool, "mod_wsgi.pass_authorization", if v { b"1" } else { b"0" });
            }
        }
        ffi::OK as c_int
    })
}

unsafe extern "C" fn handler(r: *mut ffi::request_rec) -> c_int {
    guard("the content handler", ffi::HTTP_INTERNAL_SERVER_ERROR as c_int, || {
        // SAFETY: Apache passes the live request being served.
        let request = unsafe { Request::from_raw(r) };
        let name = request.handler();
        if name != b"wsgi-script" && name != b"application/x-httpd-wsgi" {
            return ffi::DECLINED;
        }
        // SAFETY: the request's server and per-dir vector carry this module's configs.
        let (server, dir) =
            unsafe { (server_config(request.server()), dir_config(request.per_dir_config())) };
        let process = PROCESS.get_or_init(process_facts);
        crate::handler::handle(request, server, dir, process)
    })
}

/// Hook registration (the module's `register_hooks`).
pub unsafe extern "C" fn register_hooks(_p: *mut ffi::apr_pool_t) {
    /// Modules whose translate_name runs before ours, as in mod_wsgi: an `Alias` for
    /// static files wins over a `WSGIScriptAlias /` mounted at the root.
    struct Pred([*const c_char; 2]);
    // SAFETY: the array holds pointers to static C strings, never written.
    unsafe impl Sync for Pred {}
    static AFTER_ALIAS: Pred = Pred([c"mod_alias.c".as_ptr(), std::ptr::null()]);
    guard("register_hooks", (), || {
        let middle = ffi::APR_HOOK_MIDDLE as c_int;
        // SAFETY: registering hook functions with the signatures Apache expects; the
        // predecessor/successor lists are static.
        unsafe {
            ffi::ap_hook_pre_config(Some(pre_config), std::ptr::null(), std::ptr::null(), middle);
            ffi::ap_hook_post_config(Some(post_config), std::ptr::null(), std::ptr::null(), middle);
            ffi::ap_hook_child_init(Some(child_init), std::ptr::null(), std::ptr::null(), middle);
            ffi::ap_hook_translate_name(
                Some(translate_name),
                AFTER_ALIAS.0.as_ptr(),
                std::ptr::null(),
                middle,
            );
            ffi::ap_hook_handler(Some(handler), std::ptr::null(), std::ptr::null(), middle);
        }
    })
}
