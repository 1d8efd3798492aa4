//! The `mod_wsgi` and `apache` modules an application can import, describing the
//! process it runs in. They are plain module objects built at start-up and placed in
//! `sys.modules` (not PyO3 `#[pymodule]`s, which are per-process and would not be
//! sound once sub-interpreters arrive).

use pyo3::prelude::*;
use pyo3::types::PyModule;

use super::file_wrapper::FileWrapper;

/// The version of the mod_wsgi API this module implements (reported as
/// `mod_wsgi.version`, as applications test it).
pub const MOD_WSGI_VERSION: (u32, u32, u32) = (6, 0, 0);

/// Facts about the process, fixed for its lifetime.
#[derive(Clone, Debug)]
pub struct ProcessFacts {
    /// "" in Apache's own children (embedded mode), the group name in a daemon.
    pub process_group: String,
    pub maximum_processes: i32,
    pub threads_per_process: i32,
    pub mpm_name: String,
    pub server_description: String,
    pub apache_version: (u32, u32, u32),
    /// This process's id, read once (`getpid` is a system call).
    pub pid: u32,
}

impl ProcessFacts {
    pub fn multithread(&self) -> bool {
        self.threads_per_process != 1
    }

    pub fn multiprocess(&self) -> bool {
        self.maximum_processes != 1
    }
}

/// Creates `mod_wsgi` and `apache` and registers them in `sys.modules`.
pub fn install(py: Python<'_>, facts: &ProcessFacts) -> PyResult<()> {
    let modules = py.import("sys")?.getattr("modules")?;

    let mod_wsgi = PyModule::new(py, "mod_wsgi")?;
    mod_wsgi.setattr("version", MOD_WSGI_VERSION)?;
    mod_wsgi.setattr("process_group", &facts.process_group)?;
    mod_wsgi.setattr("application_group", "")?;
    mod_wsgi.setattr("maximum_processes", facts.maximum_processes)?;
    mod_wsgi.setattr("threads_per_process", facts.threads_per_process)?;
    mod_wsgi.add_class::<FileWrapper>()?;
    modules.set_item("mod_wsgi", mod_wsgi)?;

    let apache = PyModule::new(py, "apache")?;
    apache.setattr("version", facts.apache_version)?;
    apache.setattr("maximum_processes", facts.maximum_processes)?;
    apache.setattr("threads_per_process", facts.threads_per_process)?;
    apache.setattr("description", &facts.server_description)?;
    apache.setattr("mpm_name", &facts.mpm_name)?;
    modules.set_item("apache", apache)?;
    Ok(())
}
