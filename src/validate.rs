//! Checks on what an application hands to `start_response`: the status line and the
//! response headers (PEP 3333, "The start_response() Callable"). Pure: no Apache, no
//! Python. Every rejection explains itself, because the text reaches the application as
//! the exception message and the error log.

/// Hop-by-hop headers: a WSGI application must not set them (PEP 3333, "Other HTTP
/// Features"); the server owns the connection.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

/// A parsed status line such as `"404 Not Found"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: u16,
    pub line: String,
}

/// Parses and checks a status line: three digits, a space, then a reason phrase free of
/// control characters.
pub fn status(line: &str) -> Result<Status, String> {
    let bytes = line.as_bytes();
    let well_formed = bytes.len() >= 4
        && bytes[..3].iter().all(u8::is_ascii_digit)
        && bytes[3] == b' '
        && bytes[0] != b'0';
    if !well_formed {
        return Err(format!(
            "invalid status line {line:?}: expected three digits, a space and a reason"
        ));
    }
    if let Some(c) = line.chars().find(|c| c.is_control()) {
        return Err(format!("status line {line:?} contains control character {c:?}"));
    }
    let code = line[..3].parse().expect("three ASCII digits");
    Ok(Status { code, line: line.to_owned() })
}

/// Whether `b` may appear in a header name (an RFC 9110 token character).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks one response header; `name` and `value` are already known to be Latin-1.
pub fn header(name: &str, value: &str) -> Result<(), String> {
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(format!("invalid response header name {name:?}"));
    }
    if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
        return Err(format!("hop-by-hop header {name:?} is not allowed in a WSGI response"));
    }
    if let Some(c) = value.chars().find(|&c| c.is_control() && c != '\t') {
        return Err(format!("value of response header {name:?} contains control character {c:?}"));
    }
    Ok(())
}

/// Encodes text already checked to be Latin-1 (every char below U+0100) as the bytes
/// HTTP sends, one per char. PEP 3333 header values are Latin-1, not UTF-8.
pub fn latin1_bytes(text: &str) -> std::borrow::Cow<'_, [u8]> {
    if text.is_ascii() {
        return std::borrow::Cow::Borrowed(text.as_bytes());
    }
    std::borrow::Cow::Owned(
        text.chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')).collect(),
    )
}

/// Parses a Content-Length value the application declared.
pub fn content_length(value: &str) -> Result<u64, String> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid Content-Length {value:?}"));
    }
    v.parse().map_err(|_| format!("Content-Length {value:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(status("200 OK").unwrap(), Status { code: 200, line: "200 OK".into() });
        assert_eq!(status("599 ").unwrap().code, 599);
        assert!(status("200").is_err(), "reason separator is required");
        assert!(status("20 OK").is_err());
        assert!(status("2000 OK").is_err());
        assert!(status("200OK").is_err());
        assert!(status("abc OK").is_err());
        assert!(status("099 Low").is_err());
        assert!(status("200 OK\r\nX-Injected: 1").is_err(), "CR/LF must not pass");
    }

    #[test]
    fn header_names_and_values() {
        assert!(header("Content-Type", "text/plain; charset=utf-8").is_ok());
        assert!(header("X-Tab", "a\tb").is_ok());
        assert!(header("", "x").is_err());
        assert!(header("Bad Name", "x").is_err());
        assert!(header("Bad:Name", "x").is_err());
        assert!(header("X-Evil", "a\r\nSet-Cookie: x=1").is_err());
        assert!(header("X-Nul", "a\0b").is_err());
    }

    #[test]
    fn hop_by_hop_headers_are_refused() {
        for name in ["Connection", "keep-alive", "Transfer-Encoding", "Upgrade", "TE"] {
            let err = header(name, "x").unwrap_err();
            assert!(err.contains("hop-by-hop"), "{name}: {err}");
        }
    }

    #[test]
    fn latin1_encoding_is_one_byte_per_char() {
        assert_eq!(latin1_bytes("plain").as_ref(), b"plain");
        assert_eq!(latin1_bytes("caf\u{e9}").as_ref(), b"caf\xe9");
    }

    #[test]
    fn content_lengths() {
        assert_eq!(content_length("5").unwrap(), 5);
        assert_eq!(content_length(" 12 ").unwrap(), 12);
        assert!(content_length("-1").is_err());
        assert!(content_length("1e3").is_err());
        assert!(content_length("99999999999999999999999").is_err());
    }
}
