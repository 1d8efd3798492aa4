//! `Request`: the fields of `request_rec` the module reads and writes.

use std::ffi::CStr;

use super::table::Table;
use super::{c_bytes, c_str};
use crate::ffi;

/// A borrowed `request_rec` for the duration of one hook call.
#[derive(Clone, Copy)]
pub struct Request(*mut ffi::request_rec);

impl Request {
    /// # Safety
    /// `r` is the live request passed to the current hook; the value must not be used
    /// after the hook returns.
    pub unsafe fn from_raw(r: *mut ffi::request_rec) -> Request {
        debug_assert!(!r.is_null());
        Request(r)
    }

    pub fn as_ptr(&self) -> *mut ffi::request_rec {
        self.0
    }

    fn rec(&self) -> &ffi::request_rec {
        // SAFETY: the constructor's contract: `r` is live while this value is used.
        unsafe { &*self.0 }
    }

    pub fn pool(&self) -> *mut ffi::apr_pool_t {
        self.rec().pool
    }

    pub fn server(&self) -> *mut ffi::server_rec {
        self.rec().server
    }

    pub fn connection(&self) -> *mut ffi::conn_rec {
        self.rec().connection
    }

    pub fn handler(&self) -> &[u8] {
        // SAFETY: request strings are NUL-terminated and live in the request pool.
        unsafe { c_bytes(self.rec().handler) }
    }

    pub fn method(&self) -> &[u8] {
        // SAFETY: as in `handler`.
        unsafe { c_bytes(self.rec().method) }
    }

    pub fn protocol(&self) -> &[u8] {
        // SAFETY: as in `handler`.
        unsafe { c_bytes(self.rec().protocol) }
    }

    pub fn uri(&self) -> &[u8] {
        // SAFETY: as in `handler`.
        unsafe { c_bytes(self.rec().uri) }
    }

    pub fn unparsed_uri(&self) -> &[u8] {
        // SAFETY: as in `handler`.
        unsafe { c_bytes(self.rec().unparsed_uri) }
    }

    pub fn args(&self) -> &[u8] {
        // SAFETY: as in `handler`.
        unsafe { c_bytes(self.rec().args) }
    }

    pub fn filename(&self) -> std::borrow::Cow<'_, str> {
        // SAFETY: as in `handler`.
        unsafe { c_str(self.rec().filename) }
    }

    pub fn path_info(&self) -> &[u8] {
        // SAFETY: as in `handler`.
        unsafe { c_bytes(self.rec().path_info) }
    }

    pub fn user(&self) -> Option<&[u8]> {
        let user = self.rec().user;
        // SAFETY: as in `handler`.
        (!user.is_null()).then(|| unsafe { c_bytes(user) })
    }

    pub fn auth_type(&self) -> Option<&[u8]> {
        let t = self.rec().ap_auth_type;
        // SAFETY: as in `handler`.
        (!t.is_null()).then(|| unsafe { c_bytes(t) })
    }

    pub fn useragent_ip(&self) -> &[u8] {
        // SAFETY: as in `handler`.
        unsafe { c_bytes(self.rec().useragent_ip) }
    }

    pub fn header_only(&self) -> bool {
        self.rec().header_only != 0
    }

    /// The file type Apache found at `filename` during the directory walk.
    pub fn file_type(&self) -> ffi::apr_filetype_e {
        self.rec().finfo.filetype
    }

    /// Modification time of the script (microseconds), from the directory walk's stat.
    pub fn file_mtime(&self) -> i64 {
        self.rec().finfo.mtime
    }

    pub fn headers_in(&self) -> Table {
        // SAFETY: request tables live as long as the request.
        unsafe { Table::from_raw(self.rec().headers_in) }
    }

    pub fn headers_out(&self) -> Table {
        // SAFETY: as in `headers_in`.
        unsafe { Table::from_raw(self.rec().headers_out) }
    }

    pub fn subprocess_env(&self) -> Table {
        // SAFETY: as in `headers_in`.
        unsafe { Table::from_raw(self.rec().subprocess_env) }
    }

    pub fn notes(&self) -> Table {
        // SAFETY: as in `headers_in`.
        unsafe { Table::from_raw(self.rec().notes) }
    }

    /// Whether `AcceptPathInfo Off` forbids a PATH_INFO here.
    pub fn rejects_path_info(&self) -> bool {
        self.rec().used_path_info == ffi::AP_REQ_REJECT_PATH_INFO as i32
    }

    /// Whether `Options ExecCGI` is on for this request's location.
    pub fn allows_exec_cgi(&self) -> bool {
        // SAFETY: ap_allow_options only reads the request's merged core config.
        (unsafe { ffi::ap_allow_options(self.0) } & ffi::OPT_EXECCGI as i32) != 0
    }

    /// The per-directory config vector of this request.
    pub fn per_dir_config(&self) -> *mut ffi::ap_conf_vector_t {
        self.rec().per_dir_config
    }

    pub fn set_filename(&self, name: &[u8]) {
        // SAFETY: the request is live and the hook has exclusive use of it; the copy lives
        // in the request pool, as long as the request.
        unsafe { (*self.0).filename = super::pool::pstrdup(self.pool(), name) };
    }

    pub fn set_handler(&self, handler: &'static CStr) {
        // SAFETY: the request is live and the hook has exclusive use of it; the handler
        // name is static.
        unsafe { (*self.0).handler = handler.as_ptr() };
    }

    pub fn set_status(&self, status: u16, status_line: &[u8]) {
        // SAFETY: the request is live and the hook has exclusive use of it; the status
        // line is copied into the request pool.
        unsafe {
            (*self.0).status = i32::from(status);
            (*self.0).status_line = super::pool::pstrdup(self.pool(), status_line);
        }
    }

    pub fn set_content_type(&self, value: &[u8]) {
        // SAFETY: the copy lives in the request pool; ap_set_content_type keeps it.
        unsafe { ffi::ap_set_content_type(self.0, super::pool::pstrdup(self.pool(), value)) }
    }

    /// Closes the connection after this response (used when a response is cut short).
    pub fn close_connection(&self) {
        // SAFETY: the connection outlives the request.
        unsafe { (*self.connection()).keepalive = ffi::ap_conn_keepalive_e_AP_CONN_CLOSE };
    }

    /// Client port of the connection.
    pub fn remote_port(&self) -> u16 {
        // SAFETY: client_addr is set for every connection and outlives it.
        unsafe { (*(*self.connection()).client_addr).port }
    }

    /// Local address and port the request arrived on.
    pub fn local_addr(&self) -> (&[u8], u16) {
        // SAFETY: as for `remote_port`; local_ip is a NUL-terminated connection string.
        unsafe {
            let c = &*self.connection();
            (c_bytes(c.local_ip), (*c.local_addr).port)
        }
    }

    /// Whether the connection is HTTPS (mod_ssl's optional function).
    pub fn is_https(&self) -> bool {
        // SAFETY: the shim looks up mod_ssl's optional function and calls it with the
        // request's live connection.
        unsafe { ffi::wsgi_shim_is_https(self.connection()) != 0 }
    }

    /// The request's Apache log id (`%L`), when mod_unique_id or logging assigned one.
    pub fn log_id(&self) -> &[u8] {
        // SAFETY: as in `handler`.
        unsafe { c_bytes(self.rec().log_id) }
    }

    /// Seconds since the epoch at which Apache read the request line.
    pub fn request_time(&self) -> f64 {
        self.rec().request_time as f64 / 1_000_000.0
    }

    /// Whether any content-level output filter (one that might need a body, such as
    /// mod_deflate) will see the response. Decides `WSGIMapHEADToGET Auto`.
    pub fn has_content_output_filter(&self) -> bool {
        let mut f = self.rec().output_filters;
        while !f.is_null() {
            // SAFETY: output filter chains are linked lists of live ap_filter_t for the
            // request's lifetime, and each has its registration record.
            unsafe {
                if (*(*f).frec).ftype < ffi::ap_filter_type_AP_FTYPE_CONTENT_SET {
                    return true;
                }
                f = (*f).next;
            }
        }
        false
    }
}
