//! Loading WSGI script files as Python modules, and reloading them when they change.
//!
//! A script is executed as a module named `_mod_wsgi_<md5 of its path>` and kept in
//! `sys.modules`, as mod_wsgi does, with the file's modification time in `__mtime__`.
//! The check on each request compares modification times without calling Python.
//! Loads are serialised so two threads never execute the same script at once.

use std::sync::Mutex;

use md5::{Digest, Md5};
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::PyModule;

/// Serialises script loading across threads (taken attached, waiting detached).
static LOAD_LOCK: Mutex<()> = Mutex::new(());

/// A script this process executed: its modification time then, and its module.
struct Loaded {
    path: String,
    mtime: i64,
    module: Py<PyModule>,
}

/// The scripts this process executed. Looking a script up here on every request costs
/// no Python calls; the modules also sit in `sys.modules`, as applications expect.
static LOADED: Mutex<Vec<Loaded>> = Mutex::new(Vec::new());

/// The modification time `path` had when this process executed it, if it did.
pub fn loaded_mtime(path: &str) -> Option<i64> {
    let loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    loaded.iter().find(|l| l.path == path).map(|l| l.mtime)
}

/// Whether this process has executed any script successfully.
pub fn any_loaded() -> bool {
    !LOADED.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
}

/// Records a successful load (called attached: replacing drops a module reference).
fn record_loaded(path: &str, mtime: i64, module: &Bound<'_, PyModule>) {
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    let module = module.clone().unbind();
    match loaded.iter_mut().find(|l| l.path == path) {
        Some(entry) => {
            entry.mtime = mtime;
            entry.module = module;
        }
        None => loaded.push(Loaded { path: path.to_owned(), mtime, module }),
    }
}

/// The module name mod_wsgi gives the script at `path`.
pub fn module_name(path: &str) -> String {
    let digest = Md5::digest(path.as_bytes());
    let mut name = String::with_capacity(10 + 32);
    name.push_str("_mod_wsgi_");
    for b in digest {
        name.push_str(&format!("{b:02x}"));
    }
    name
}

/// Returns the loaded module if it is current: loaded and, when `reload` is on,
/// recorded with the same modification time.
fn cached<'py>(
    py: Python<'py>,
    path: &str,
    mtime: i64,
    reload: bool,
) -> Option<Bound<'py, PyModule>> {
    let loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    let entry = loaded.iter().find(|l| l.path == path)?;
    (!reload || entry.mtime == mtime).then(|| entry.module.bind(py).clone())
}

/// Returns the module for the script at `path`, executing it if it is not loaded yet
/// or (with `reload`) if its modification time changed. A script that fails to execute
/// is removed from `sys.modules`, so the next request tries again.
pub fn load<'py>(
    py: Python<'py>,
    path: &str,
    mtime: i64,
    reload: bool,
) -> PyResult<Bound<'py, PyModule>> {
    if let Some(module) = cached(py, path, mtime, reload) {
        return Ok(module);
    }
    let _guard = LOAD_LOCK.lock_py_attached(py).unwrap_or_else(|e| e.into_inner());
    if let Some(module) = cached(py, path, mtime, reload) {
        return Ok(module);
    }
    let name = module_name(path);
    let source = std::fs::read(path).map_err(|e| {
        pyo3::exceptions::PyOSError::new_err(format!("cannot read WSGI script '{path}': {e}"))
    })?;
    let module = PyModule::new(py, &name)?;
    module.setattr("__file__", path)?;
    module.setattr("__mtime__", mtime)?;
    let builtins = py.import("builtins")?;
    let code = builtins.getattr("compile")?.call1((
        pyo3::types::PyBytes::new(py, &source),
        path,
        "exec",
    ))?;
    let modules = py.import("sys")?.getattr("modules")?;
    modules.set_item(&name, &module)?;
    if let Err(e) = builtins.getattr("exec")?.call1((code, module.dict())) {
        let _ = modules.del_item(&name);
        return Err(e);
    }
    record_loaded(path, mtime, &module);
    Ok(module)
}

/// Loads a script at process start (`WSGIImportScript`), recording the file's
/// modification time in Apache's units (microseconds) so the first request does not
/// load it again.
pub fn preload(py: Python<'_>, path: &str) -> PyResult<()> {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).map_err(|e| {
        pyo3::exceptions::PyOSError::new_err(format!("cannot stat WSGI script '{path}': {e}"))
    })?;
    let mtime = modified.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
    load(py, path, mtime, true).map(drop)
}

#[cfg(test)]
mod tests {
    #[test]
    fn module_names_follow_mod_wsgi() {
        // hashlib.md5(b"/srv/app.wsgi").hexdigest()
        assert_eq!(
            super::module_name("/srv/app.wsgi"),
            "_mod_wsgi_295f8766fc4bd953ab4cd252da58a6a3"
        );
    }
}
