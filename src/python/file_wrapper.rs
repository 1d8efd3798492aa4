//! `wsgi.file_wrapper` (PEP 3333, "Optional Platform-Specific File Handling").
//!
//! When an application returns a wrapper around a real file, the handler sends the file
//! with Apache file buckets (sendfile where enabled) instead of iterating; any other
//! file-like object is read in blocks through the iterator protocol below.

use pyo3::prelude::*;

/// Block size mod_wsgi uses by default (Apache's HUGE_STRING_LEN).
const DEFAULT_BLOCK_SIZE: usize = 8192;

#[pyclass(frozen, module = "mod_wsgi")]
pub struct FileWrapper {
    pub filelike: Py<PyAny>,
    pub block_size: usize,
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, blksize = DEFAULT_BLOCK_SIZE))]
    fn new(filelike: Py<PyAny>, blksize: usize) -> PyResult<Self> {
        if blksize == 0 {
            return Err(pyo3::exceptions::PyValueError::new_err("block size must be positive"));
        }
        Ok(FileWrapper { filelike, block_size: blksize })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let block = self.filelike.bind(py).call_method1("read", (self.block_size,))?;
        Ok(if block.is_truthy()? { Some(block) } else { None })
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let filelike = self.filelike.bind(py);
        if filelike.hasattr("close")? {
            filelike.call_method0("close")?;
        }
        Ok(())
    }
}
