//! Starting and stopping the Python interpreter in a process that serves requests.
//!
//! Python is never started in Apache's parent: embedded mode starts it in each child
//! (`child_init`), a daemon process after it has dropped privileges. Start-up failures
//! (a wrong `WSGIPythonHome`, say) are reported and leave the process without Python,
//! so requests get a 500 with a clear log line instead of a crash loop.

use std::ffi::CString;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use pyo3::ffi;
use pyo3::prelude::*;

use super::errors::LogStream;
use super::module::{self, ProcessFacts};

/// How to configure the interpreter (from the `WSGIPython*` directives, or a daemon
/// group's options).
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub home: Option<String>,
    pub path: Vec<String>,
    pub optimize: u8,
    pub dont_write_bytecode: bool,
    pub hash_seed: Option<u32>,
    pub warnings: Vec<String>,
    pub restrict_stdin: bool,
    pub restrict_stdout: bool,
    pub restrict_signal: bool,
    pub destroy_interpreter: bool,
    pub switch_interval: Option<f64>,
    /// `PYTHON_EGG_CACHE` for setuptools' egg extraction.
    pub python_eggs: Option<String>,
}

static READY: AtomicBool = AtomicBool::new(false);
/// The main thread's state, saved after start-up so finalisation can resume it.
static MAIN_THREAD: AtomicPtr<ffi::PyThreadState> = AtomicPtr::new(std::ptr::null_mut());

/// Whether Python is up and requests may attach.
pub fn is_ready() -> bool {
    READY.load(Ordering::Acquire)
}

fn check(status: ffi::PyStatus, what: &str) -> Result<(), String> {
    // SAFETY: PyStatus_Exception only inspects the status value.
    if unsafe { ffi::PyStatus_Exception(status) } == 0 {
        return Ok(());
    }
    let detail = if status.err_msg.is_null() {
        String::from("unknown error")
    } else {
        // SAFETY: a failed PyStatus carries a static NUL-terminated message.
        unsafe { std::ffi::CStr::from_ptr(status.err_msg) }.to_string_lossy().into_owned()
    };
    Err(format!("{what}: {detail}"))
}

/// Sets a wide-string field of `PyConfig` from bytes.
///
/// # Safety
/// `config` was initialised by `PyConfig_InitPythonConfig`, and `field` points into it.
unsafe fn set_string(
    config: *mut ffi::PyConfig,
    field: *mut *mut libc::wchar_t,
    value: &str,
) -> Result<(), String> {
    let c = CString::new(value).map_err(|_| format!("{value:?} contains a NUL byte"))?;
    // SAFETY: forwarded from the caller; the function copies the string.
    check(
        unsafe { ffi::PyConfig_SetBytesString(config, field, c.as_ptr()) },
        "setting Python configuration",
    )
}

/// Checks a Python home before handing it to CPython, whose own failure is a fatal
/// "No module named 'encodings'" with no hint of the cause.
fn check_home(home: &str) -> Result<(), String> {
    let meta =
        std::fs::metadata(home).map_err(|e| format!("Python home '{home}' cannot be used: {e}"))?;
    if !meta.is_dir() {
        return Err(format!("Python home '{home}' is not a directory"));
    }
    let venv = Path::new(home).join("pyvenv.cfg").exists();
    let lib = Path::new(home).join("lib").join(format!("python{}", runtime_version_xy()));
    if !venv && !lib.is_dir() {
        return Err(format!(
            "Python home '{home}' has neither pyvenv.cfg nor {}: it must be the prefix of a Python {} installation or virtualenv (sys.prefix), not its lib or site-packages directory",
            lib.display(),
            runtime_version_xy()
        ));
    }
    Ok(())
}

/// "3.11" for the libpython this module is linked with.
fn runtime_version_xy() -> String {
    let v = runtime_version();
    v.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// The linked libpython's version, e.g. "3.11.2" or "3.13.0rc1". It comes from the
/// `Py_Version` constant: Apache's parent asks for it, and `Py_GetVersion` would run (and
/// keep resident there) libpython's string formatting for it.
pub fn runtime_version() -> String {
    // SAFETY: `Py_Version` is a constant libpython exports from 3.11 on; reading it needs
    // no interpreter.
    let v = unsafe { ffi::Py_Version };
    let (major, minor, micro) = (v >> 24 & 0xff, v >> 16 & 0xff, v >> 8 & 0xff);
    let release = match (v >> 4 & 0xf, v & 0xf) {
        (0xf, _) => String::new(),
        (0xa, n) => format!("a{n}"),
        (0xb, n) => format!("b{n}"),
        (_, n) => format!("rc{n}"),
    };
    format!("{major}.{minor}.{micro}{release}")
}

/// Starts Python in this process. `server` receives `sys.stdout`/`sys.stderr` lines.
pub fn start(
    settings: &Settings,
    facts: &ProcessFacts,
    server: *mut crate::ffi::server_rec,
) -> Result<(), String> {
    // SAFETY: plain query of interpreter state.
    if unsafe { ffi::Py_IsInitialized() } != 0 {
        return Err("Python was already initialised in this process by another module (is mod_python or mod_wsgi also loaded?); embedded mode is disabled".into());
    }
    if let Some(home) = &settings.home {
        check_home(home)?;
    }
    let mut config = std::mem::MaybeUninit::<ffi::PyConfig>::uninit();
    let config = config.as_mut_ptr();
    // SAFETY: InitPythonConfig fully initialises the struct before any field is read;
    // every later access goes through that initialised struct, and PyConfig_Clear frees
    // what the setters allocated.
    unsafe {
        ffi::PyConfig_InitPythonConfig(config);
        let result = configure(config, settings);
        let result =
            result.and_then(|()| check(ffi::Py_InitializeFromConfig(config), "starting Python"));
        ffi::PyConfig_Clear(config);
        result?;
    }
    let setup = Python::attach(|py| after_start(py, settings, facts, server));
    // SAFETY: this thread holds the GIL since Py_InitializeFromConfig; release it and keep
    // the state so `finish` can resume it.
    MAIN_THREAD.store(unsafe { ffi::PyEval_SaveThread() }, Ordering::Release);
    setup.map_err(|e| format!("setting up Python: {e}"))?;
    READY.store(true, Ordering::Release);
    Ok(())
}

/// # Safety
/// `config` was initialised by `PyConfig_InitPythonConfig`.
unsafe fn configure(config: *mut ffi::PyConfig, settings: &Settings) -> Result<(), String> {
    // SAFETY: forwarded from the caller; fields are written through the initialised struct.
    unsafe {
        (*config).install_signal_handlers = 0;
        (*config).parse_argv = 0;
        (*config).optimization_level = i32::from(settings.optimize);
        (*config).write_bytecode = i32::from(!settings.dont_write_bytecode);
        if let Some(seed) = settings.hash_seed {
            (*config).use_hash_seed = 1;
            (*config).hash_seed = seed as libc::c_ulong;
        }
        if let Some(home) = &settings.home {
            if Path::new(home).join("pyvenv.cfg").exists() {
                // Let CPython's own virtualenv detection find the base installation.
                let program = format!("{home}/bin/python");
                set_string(config, &mut (*config).program_name, &program)?;
            } else {
                set_string(config, &mut (*config).home, home)?;
            }
        }
        for warning in &settings.warnings {
            let wide = ffi::Py_DecodeLocale(
                CString::new(warning.as_str()).map_err(|e| e.to_string())?.as_ptr(),
                std::ptr::null_mut(),
            );
            if wide.is_null() {
                return Err(format!("cannot decode warning option {warning:?}"));
            }
            let status = ffi::PyWideStringList_Append(&mut (*config).warnoptions, wide);
            ffi::PyMem_RawFree(wide.cast());
            check(status, "adding a warning option")?;
        }
    }
    Ok(())
}

/// Process set-up that needs the interpreter: threading, log streams, the `mod_wsgi`
/// module, `WSGIPythonPath`, and the `WSGIRestrict*` replacements.
fn after_start(
    py: Python<'_>,
    settings: &Settings,
    facts: &ProcessFacts,
    server: *mut crate::ffi::server_rec,
) -> PyResult<()> {
    // Importing threading here, on the main thread, makes it record this thread as the
    // main one instead of whichever request thread imports it first.
    py.import("threading")?;
    let sys = py.import("sys")?;
    sys.setattr("stderr", Py::new(py, LogStream::for_server(server))?)?;
    if settings.restrict_stdout {
        sys.setattr("stdout", restricted(py, "sys.stdout access restricted by mod_wsgi")?)?;
    } else {
        sys.setattr("stdout", Py::new(py, LogStream::for_server(server))?)?;
    }
    if settings.restrict_stdin {
        sys.setattr("stdin", restricted(py, "sys.stdin access restricted by mod_wsgi")?)?;
    }
    sys.setattr("argv", vec![String::from("mod_wsgi")])?;
    module::install(py, facts)?;
    let site = py.import("site")?;
    for dir in &settings.path {
        site.call_method1("addsitedir", (dir,))?;
    }
    if settings.restrict_signal {
        intercept_signals(py)?;
    }
    if let Some(interval) = settings.switch_interval {
        sys.call_method1("setswitchinterval", (interval,))?;
    }
    if let Some(eggs) = &settings.python_eggs {
        py.import("os")?.getattr("environ")?.set_item("PYTHON_EGG_CACHE", eggs)?;
    }
    Ok(())
}

/// An object whose every use raises `OSError(message)`.
fn restricted<'py>(py: Python<'py>, message: &str) -> PyResult<Bound<'py, PyAny>> {
    let code = c"class Restricted:\n    def __init__(self, message):\n        self._message = message\n    def __getattr__(self, name):\n        raise OSError(self._message)\n";
    let module = PyModule::from_code(py, code, c"<mod_wsgi_rs>", c"_mod_wsgi_restricted")?;
    module.getattr("Restricted")?.call1((message,))
}

/// `WSGIRestrictSignal On`: `signal.signal()` from an application would steal Apache's
/// signals, so it logs a warning and does nothing. (`traceback` is imported when needed:
/// with `re` and `tokenize` it would add a megabyte to every process.)
fn intercept_signals(py: Python<'_>) -> PyResult<()> {
    let code = c"import signal, sys\n_original = signal.signal\ndef _intercept(signum, handler):\n    import traceback\n    stack = ''.join(traceback.format_stack(limit=4)[:-1]).rstrip()\n    sys.stderr.write('mod_wsgi: callback registration for signal %d ignored.\\n%s\\n' % (signum, stack))\n    return signal.getsignal(signum)\nsignal.signal = _intercept\n";
    PyModule::from_code(py, code, c"<mod_wsgi_rs>", c"_mod_wsgi_signal")?;
    Ok(())
}

/// Stops Python at process exit (from the child pool's cleanup, on the main thread).
/// With `WSGIDestroyInterpreter Off` the interpreter is left as is: finalisation can
/// hang on threads an application started.
pub fn finish(settings: &Settings) {
    if !READY.swap(false, Ordering::AcqRel) || !settings.destroy_interpreter {
        return;
    }
    let main = MAIN_THREAD.swap(std::ptr::null_mut(), Ordering::AcqRel);
    if main.is_null() {
        return;
    }
    // SAFETY: `main` is the main thread's state saved in `start`, and this runs on the
    // main thread with no GIL held; after finalising nothing touches Python again
    // (READY is false).
    unsafe {
        ffi::PyEval_RestoreThread(main);
        ffi::Py_FinalizeEx();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn runtime_version_is_the_first_word_of_py_get_version() {
        // SAFETY: Py_GetVersion returns a static string and needs no interpreter.
        let full = unsafe { std::ffi::CStr::from_ptr(pyo3::ffi::Py_GetVersion()) };
        let first = full.to_str().unwrap().split_whitespace().next().unwrap();
        assert_eq!(super::runtime_version(), first);
    }
}
