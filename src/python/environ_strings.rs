//! Environ keys and values as Python strings, reused from one request to the next.
//!
//! Most CGI variables repeat between requests: the server's names and ports, the Host
//! header, the user agent. Keeping the string of each key, and of the last value seen
//! under it, saves two allocations and a decode per variable, and the dict insert finds
//! the key's hash already computed. (Process-wide, like `intern!`: every application
//! runs in the main interpreter.)

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use pyo3::prelude::*;
use pyo3::types::PyString;

/// Keys kept at most: header names come from clients, so the table must not grow
/// without bound.
const MAX_KEYS: usize = 256;
/// Keys and values longer than these (odd header names, cookies, long query strings)
/// rarely repeat: not kept.
const MAX_KEY: usize = 64;
const MAX_VALUE: usize = 512;

struct Entry {
    key: Py<PyString>,
    value: Vec<u8>,
    string: Py<PyString>,
}

/// Only ever locked with the GIL held, around incref and `str` creation, neither of which
/// runs Python code: no thread can wait for the GIL while holding it.
static TABLE: LazyLock<Mutex<HashMap<Box<str>, Entry>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The Python strings for `key` and `value` (decoded as Latin-1, as PEP 3333 asks).
pub fn key_and_value<'py>(
    py: Python<'py>,
    key: &str,
    value: &[u8],
) -> (Bound<'py, PyString>, Bound<'py, PyString>) {
    let mut table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(entry) = table.get_mut(key) {
        let key = entry.key.bind(py).clone();
        if entry.value == value {
            return (key, entry.string.bind(py).clone());
        }
        let string = latin1(py, value);
        if value.len() <= MAX_VALUE {
            entry.value.clear();
            entry.value.extend_from_slice(value);
            entry.string = string.clone().unbind();
        }
        return (key, string);
    }
    let (key_string, string) = (PyString::new(py, key), latin1(py, value));
    if table.len() < MAX_KEYS && key.len() <= MAX_KEY && value.len() <= MAX_VALUE {
        let entry = Entry {
            key: key_string.clone().unbind(),
            value: value.to_vec(),
            string: string.clone().unbind(),
        };
        table.insert(key.into(), entry);
    }
    (key_string, string)
}

/// Bytes as a Latin-1 `str`: each byte is the code point of the same value.
pub fn latin1<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
    if bytes.is_ascii() {
        return PyString::new(py, std::str::from_utf8(bytes).expect("ASCII is UTF-8"));
    }
    let text: String = bytes.iter().map(|&b| char::from(b)).collect();
    PyString::new(py, &text)
}
