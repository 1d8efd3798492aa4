//! Regular expressions through libpcre2-8, the library behind Apache's own `ap_pregcomp`,
//! which mod_wsgi compiles `WSGIScriptAliasMatch` with. Using it keeps the accepted syntax
//! (lookarounds, back-references, `(?i)`) and the matching of bytes, not characters, the
//! same as under mod_wsgi. Apache has the library loaded already, so it costs no memory.

use std::ffi::{c_int, c_void};
use std::ptr::NonNull;
use std::sync::Arc;

/// What `ap_pregcomp` compiles every pattern with: `PCRE2_DUPNAMES` (always), and
/// `PCRE2_DOTALL | PCRE2_DOLLAR_ENDONLY`, Apache's default `RegexDefaultOptions`
/// (`AP_REG_DEFAULT`).
const APACHE_OPTIONS: u32 = 0x40 | 0x20 | 0x10;
/// `PCRE2_UNSET`: the offsets of a group that took no part in the match.
const UNSET: usize = usize::MAX;

#[link(name = "pcre2-8")]
extern "C" {
    fn pcre2_compile_8(
        pattern: *const u8,
        length: usize,
        options: u32,
        error_code: *mut c_int,
        error_offset: *mut usize,
        context: *mut c_void,
    ) -> *mut c_void;
    fn pcre2_code_free_8(code: *mut c_void);
    fn pcre2_get_error_message_8(code: c_int, buffer: *mut u8, length: usize) -> c_int;
    fn pcre2_match_data_create_from_pattern_8(
        code: *const c_void,
        context: *mut c_void,
    ) -> *mut c_void;
    fn pcre2_match_data_free_8(data: *mut c_void);
    fn pcre2_match_8(
        code: *const c_void,
        subject: *const u8,
        length: usize,
        start: usize,
        options: u32,
        data: *mut c_void,
        context: *mut c_void,
    ) -> c_int;
    fn pcre2_get_ovector_pointer_8(data: *mut c_void) -> *const usize;
}

/// A compiled pattern. Clones share it.
#[derive(Clone)]
pub struct Regex {
    code: Arc<Code>,
    source: String,
}

struct Code(NonNull<c_void>);

// SAFETY: a compiled pcre2 pattern is read-only after pcre2_compile and the library
// documents it as safe to match from several threads at once; each match brings its own
// match data.
unsafe impl Send for Code {}
// SAFETY: as above.
unsafe impl Sync for Code {}

impl Drop for Code {
    fn drop(&mut self) {
        // SAFETY: the pointer came from pcre2_compile_8 and this is its only owner.
        unsafe { pcre2_code_free_8(self.0.as_ptr()) };
    }
}

impl std::fmt::Debug for Regex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Regex({:?})", self.source)
    }
}

/// The groups of one match: byte ranges into the subject, `None` for a group that took no
/// part.
pub struct Captures<'s> {
    subject: &'s [u8],
    spans: Vec<Option<(usize, usize)>>,
}

impl<'s> Captures<'s> {
    /// Group `i` (0 is the whole match), if the pattern has it and it took part.
    pub fn get(&self, i: usize) -> Option<&'s [u8]> {
        let (start, end) = (*self.spans.get(i)?)?;
        Some(&self.subject[start..end])
    }

    /// Where the whole match ends in the subject.
    pub fn end(&self) -> usize {
        self.spans[0].map_or(0, |(_, end)| end)
    }
}

impl Regex {
    /// Compiles `pattern` with Apache's default options; the error is pcre2's message and
    /// the offset it points at.
    pub fn new(pattern: &str) -> Result<Regex, String> {
        let (mut error_code, mut error_offset) = (0, 0);
        // SAFETY: the pattern pointer and length describe a live buffer, the out-pointers
        // are valid, and a null context asks for the defaults.
        let code = unsafe {
            pcre2_compile_8(
                pattern.as_ptr(),
                pattern.len(),
                APACHE_OPTIONS,
                &mut error_code,
                &mut error_offset,
                std::ptr::null_mut(),
            )
        };
        match NonNull::new(code) {
            Some(code) => Ok(Regex { code: Arc::new(Code(code)), source: pattern.to_string() }),
            None => Err(format!("{} at offset {error_offset}", error_message(error_code))),
        }
    }

    /// The first match in `subject`, searching from its start. A failed match (pcre2's
    /// match limit, say) counts as no match, as with `ap_regexec`.
    pub fn captures<'s>(&self, subject: &'s [u8]) -> Option<Captures<'s>> {
        let code = self.code.0.as_ptr();
        // SAFETY: `code` is a live compiled pattern; a null context asks for the defaults.
        let data = NonNull::new(unsafe {
            pcre2_match_data_create_from_pattern_8(code, std::ptr::null_mut())
        })?;
        // SAFETY: subject pointer and length describe a live buffer; `data` was made for
        // this pattern.
        let rc = unsafe {
            pcre2_match_8(
                code,
                subject.as_ptr(),
                subject.len(),
                0,
                0,
                data.as_ptr(),
                std::ptr::null_mut(),
            )
        };
        let spans = (rc > 0).then(|| {
            // SAFETY: after a match the ovector holds `rc` pairs of offsets.
            let pairs = unsafe {
                std::slice::from_raw_parts(
                    pcre2_get_ovector_pointer_8(data.as_ptr()),
                    2 * rc as usize,
                )
            };
            pairs
                .chunks_exact(2)
                .map(|pair| (pair[0] != UNSET).then_some((pair[0], pair[1])))
                .collect()
        });
        // SAFETY: `data` came from pcre2_match_data_create_from_pattern_8, used no more.
        unsafe { pcre2_match_data_free_8(data.as_ptr()) };
        spans.map(|spans| Captures { subject, spans })
    }
}

fn error_message(code: c_int) -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer and its length are valid; pcre2 writes a terminated message.
    let n = unsafe { pcre2_get_error_message_8(code, buffer.as_mut_ptr(), buffer.len()) };
    match usize::try_from(n) {
        Ok(n) => String::from_utf8_lossy(&buffer[..n]).into_owned(),
        Err(_) => format!("pcre2 error {code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(re: &str, subject: &str) -> Option<Vec<Option<String>>> {
        let re = Regex::new(re).unwrap();
        let caps = re.captures(subject.as_bytes())?;
        Some(
            (0..caps.spans.len())
                .map(|i| caps.get(i).map(|g| String::from_utf8(g.to_vec()).unwrap()))
                .collect(),
        )
    }

    #[test]
    fn groups_that_take_no_part_are_none() {
        let got = groups("^/(x)?(y)", "/y/z").unwrap();
        assert_eq!(got, [Some("/y".into()), None, Some("y".into())]);
        assert_eq!(groups("^/a", "/b"), None);
    }

    #[test]
    fn perl_syntax_that_apache_accepts_is_accepted() {
        assert!(groups("^/(?!static/)", "/static/x").is_none());
        assert!(groups("^/(?!static/)", "/app/x").is_some());
        assert_eq!(groups("^/(a+)-\\1$", "/aa-aa").unwrap()[1].as_deref(), Some("aa"));
        assert!(groups("(?i)^/APP", "/app").is_some());
    }

    #[test]
    fn dot_matches_a_byte_and_newline_like_apache() {
        let re = Regex::new("^/.$").unwrap();
        assert!(re.captures(b"/\xff").is_some());
        assert!(re.captures("/é".as_bytes()).is_none(), "two bytes");
        assert!(re.captures(b"/\n").is_some(), "DOTALL");
        assert!(re.captures(b"/a\n").is_none(), "DOLLAR_ENDONLY");
    }

    #[test]
    fn a_group_name_may_repeat_as_in_apache() {
        let re = Regex::new("^/(?<n>a)|^/(?<n>b)").unwrap();
        assert!(re.captures(b"/b").is_some());
    }

    #[test]
    fn a_bad_pattern_says_what_and_where() {
        let err = Regex::new("^/(unclosed").unwrap_err();
        assert!(err.contains("missing closing parenthesis") && err.ends_with("offset 11"), "{err}");
    }
}
