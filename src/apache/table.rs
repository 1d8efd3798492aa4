//! Reading and writing `apr_table_t`.

use crate::ffi;

/// A borrowed APR table. Keys and values are byte strings, as HTTP gives them.
#[derive(Clone, Copy)]
pub struct Table(*mut ffi::apr_table_t);

impl Table {
    /// # Safety
    /// `t` is null or a table that outlives every use of the returned value.
    pub unsafe fn from_raw(t: *mut ffi::apr_table_t) -> Table {
        Table(t)
    }

    /// Iterates over the entries in insertion order, skipping deleted ones.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let entries: &[ffi::apr_table_entry_t] = if self.0.is_null() {
            &[]
        } else {
            let mut count = 0;
            // SAFETY: the table is live (constructor contract); the shim returns its
            // element array and length, which stay valid while the table is not modified.
            unsafe {
                let first = ffi::wsgi_shim_table_entries(self.0, &mut count);
                std::slice::from_raw_parts(first, count.max(0) as usize)
            }
        };
        entries.iter().filter(|e| !e.key.is_null()).map(|e| {
            // SAFETY: APR table keys and values are NUL-terminated pool strings.
            unsafe { (super::c_bytes(e.key), super::c_bytes(e.val)) }
        })
    }

    /// The first value for `key` (case-insensitive), if any.
    pub fn get(&self, key: &std::ffi::CStr) -> Option<&[u8]> {
        if self.0.is_null() {
            return None;
        }
        // SAFETY: the table is live; apr_table_get only reads it.
        let v = unsafe { ffi::apr_table_get(self.0, key.as_ptr()) };
        // SAFETY: a found value is a NUL-terminated pool string.
        (!v.is_null()).then(|| unsafe { super::c_bytes(v) })
    }

    /// Adds an entry, copying key and value into `pool`.
    ///
    /// # Safety
    /// `pool` outlives the table's use of the strings (the request pool for request tables).
    pub unsafe fn add(&self, pool: *mut ffi::apr_pool_t, key: &str, value: &[u8]) {
        // SAFETY: both strings are copied into `pool` first; addn keeps the pointers.
        unsafe {
            ffi::apr_table_addn(
                self.0,
                super::pool::pstr(pool, key),
                super::pool::pstrdup(pool, value),
            )
        }
    }

    /// Replaces every entry for `key`, copying key and value into `pool`.
    ///
    /// # Safety
    /// As for [`Table::add`].
    pub unsafe fn set(&self, pool: *mut ffi::apr_pool_t, key: &str, value: &[u8]) {
        // SAFETY: as in `add`.
        unsafe {
            ffi::apr_table_setn(
                self.0,
                super::pool::pstr(pool, key),
                super::pool::pstrdup(pool, value),
            )
        }
    }
}
