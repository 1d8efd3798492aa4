//! mod_wsgi_rs: an Apache httpd 2.4 module that serves Python WSGI applications
//! (PEP 3333), a drop-in replacement for mod_wsgi.
//!
//! Apache loads this cdylib with `LoadModule wsgi_module .../mod_wsgi_rs.so`; the
//! exported `wsgi_module` record below is what it reads. Modules marked *pure* never
//! touch Apache or Python and carry most unit tests.

/// Safe wrappers over the httpd/APR APIs.
mod apache;
/// Directive parsing and the configuration model (pure).
mod config;
/// Daemon mode: supervised process groups reached over UNIX sockets.
mod daemon;
/// The CGI part of the WSGI environ (pure).
mod environ;
/// Raw bindings (bindgen) and the C shim's declarations.
mod ffi;
/// The content handler: runs the application here (embedded mode) or hands the
/// request to its daemon process group.
mod handler;
/// Apache entry points: config create/merge, directives, hooks.
mod hooks;
/// The body source and response sink traits the WSGI objects use (pure).
mod io;
/// The Python host: interpreter, thread states, WSGI objects.
mod python;
/// PEP 3333 response rules (pure).
mod response;
/// Status line and header checks (pure).
mod validate;

use std::os::raw::c_int;

/// Builds Apache's command table from the directive table at compile time.
mod commands {
    use crate::config::directives::DIRECTIVES;
    use crate::config::Context;
    use crate::ffi::{self, command_rec};

    const COUNT: usize = DIRECTIVES.len();

    /// The command table; Apache only reads it.
    pub struct Table(pub [command_rec; COUNT + 1]);
    // SAFETY: the table holds pointers to static strings and functions and is never written.
    unsafe impl Sync for Table {}

    const fn overrides(context: Context) -> i32 {
        (match context {
            Context::Global | Context::ServerOrVhost => ffi::RSRC_CONF,
            Context::ServerVhostDirectory => ffi::RSRC_CONF | ffi::ACCESS_CONF,
            Context::FileInfo => ffi::RSRC_CONF | ffi::ACCESS_CONF | ffi::OR_FILEINFO,
            Context::AuthConfig => ffi::ACCESS_CONF | ffi::OR_AUTHCFG,
        }) as i32
    }

    const fn build() -> [command_rec; COUNT + 1] {
        let mut table = [command_rec::END; COUNT + 1];
        let mut i = 0;
        while i < COUNT {
            let d = &DIRECTIVES[i];
            table[i] = command_rec {
                name: d.name.as_ptr(),
                func: ffi::cmd_func { raw_args: Some(crate::hooks::directive) },
                cmd_data: std::ptr::without_provenance_mut(i),
                req_override: overrides(d.context),
                args_how: ffi::cmd_how_RAW_ARGS,
                errmsg: d.usage.as_ptr(),
            };
            i += 1;
        }
        table
    }

    pub static COMMANDS: Table = Table(build());
}

/// The module record Apache loads. Apache writes `module_index`, `next` and
/// `dynamic_load_handle` into it, so it must be mutable; nothing in Rust writes it.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut wsgi_module: ffi::module = ffi::module {
    version: ffi::MODULE_MAGIC_NUMBER_MAJOR as c_int,
    minor_version: ffi::MODULE_MAGIC_NUMBER_MINOR as c_int,
    module_index: -1,
    // Same name as mod_wsgi: `<IfModule mod_wsgi.c>` keeps working, and mod_so refuses
    // to load both modules at once.
    name: c"mod_wsgi.c".as_ptr(),
    dynamic_load_handle: std::ptr::null_mut(),
    next: std::ptr::null_mut(),
    magic: ffi::MODULE_MAGIC_COOKIE as std::os::raw::c_ulong,
    rewrite_args: None,
    create_dir_config: Some(hooks::create_dir_config),
    merge_dir_config: Some(hooks::merge_dir_config),
    create_server_config: Some(hooks::create_server_config),
    merge_server_config: Some(hooks::merge_server_config),
    cmds: commands::COMMANDS.0.as_ptr(),
    register_hooks: Some(hooks::register_hooks),
    flags: 0,
};

/// Pointer to the module record, for config lookups.
fn module_ptr() -> *const ffi::module {
    std::ptr::addr_of!(wsgi_module)
}

/// This module's index, assigned by Apache when it loaded the module.
fn module_index() -> c_int {
    // SAFETY: Apache writes module_index once while loading the module, before any hook
    // or log call can run; afterwards the field is only read.
    unsafe { (*module_ptr()).module_index }
}
