//! The PEP 3333 response rules, free of any transport: when `start_response` may be
//! called, when headers go out, and how much of the body a declared Content-Length lets
//! through. Embedded mode (Apache brigades) and daemon mode (a socket) drive the same
//! state, so the rules live in one place.

use crate::validate::{self, Status};

/// What `start_response` recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub status: Status,
    pub headers: Vec<(String, String)>,
    /// The Content-Length the application declared, if any.
    pub content_length: Option<u64>,
}

/// Why a `start_response` call is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum StartError {
    /// Headers were already sent and `exc_info` was given: re-raise the exception.
    ReRaise,
    /// Called a second time without `exc_info` (PEP 3333 makes this a fatal error).
    AlreadyStarted,
    /// The status or a header is malformed.
    Invalid(String),
}

/// What to do with a block of body bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Write {
    /// Send the status and headers first.
    pub send_head: bool,
    /// How many leading bytes of the block to send (less than its length once a
    /// declared Content-Length is reached).
    pub take: usize,
}

/// A body block arrived before `start_response` was called.
#[derive(Debug, PartialEq, Eq)]
pub struct NotStarted;

/// The response of one request.
#[derive(Debug, Default)]
pub struct Response {
    head: Option<Head>,
    head_sent: bool,
    body_sent: u64,
}

impl Response {
    /// Records a `start_response(status, headers, exc_info)` call.
    pub fn start(
        &mut self,
        status: &str,
        headers: Vec<(String, String)>,
        with_exc_info: bool,
    ) -> Result<(), StartError> {
        if self.head_sent {
            return Err(if with_exc_info {
                StartError::ReRaise
            } else {
                StartError::AlreadyStarted
            });
        }
        if self.head.is_some() && !with_exc_info {
            return Err(StartError::AlreadyStarted);
        }
        let status = validate::status(status).map_err(StartError::Invalid)?;
        let mut content_length = None;
        for (name, value) in &headers {
            validate::header(name, value).map_err(StartError::Invalid)?;
            if name.eq_ignore_ascii_case("content-length") {
                content_length =
                    Some(validate::content_length(value).map_err(StartError::Invalid)?);
            }
        }
        self.head = Some(Head { status, headers, content_length });
        Ok(())
    }

    pub fn head(&self) -> Option<&Head> {
        self.head.as_ref()
    }

    pub fn head_sent(&self) -> bool {
        self.head_sent
    }

    /// Declares a Content-Length for a body whose size the server knows (a file) when
    /// the application declared none and nothing has been sent.
    pub fn default_content_length(&mut self, len: u64) {
        if let (Some(head), false) = (self.head.as_mut(), self.head_sent) {
            if head.content_length.is_none() {
                head.content_length = Some(len);
                head.headers.push(("Content-Length".into(), len.to_string()));
            }
        }
    }

    /// Plans the sending of a body block of `len` bytes.
    pub fn write(&mut self, len: usize) -> Result<Write, NotStarted> {
        let head = self.head.as_ref().ok_or(NotStarted)?;
        let take = match head.content_length {
            Some(limit) => {
                len.min(usize::try_from(limit.saturating_sub(self.body_sent)).unwrap_or(usize::MAX))
            }
            None => len,
        };
        let send_head = !self.head_sent;
        self.head_sent = true;
        self.body_sent += take as u64;
        Ok(Write { send_head, take })
    }

    /// Whether a declared Content-Length has been fully sent (the rest is discarded).
    pub fn complete(&self) -> bool {
        matches!(self.head.as_ref().and_then(|h| h.content_length), Some(l) if self.body_sent >= l)
    }

    /// `(sent, declared)` when the body ended short of its declared Content-Length.
    pub fn shortfall(&self) -> Option<(u64, u64)> {
        match self.head.as_ref().and_then(|h| h.content_length) {
            Some(declared) if self.body_sent < declared => Some((self.body_sent, declared)),
            _ => None,
        }
    }

    /// Bytes of body sent so far.
    pub fn body_sent(&self) -> u64 {
        self.body_sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn body_before_start_is_refused() {
        assert_eq!(Response::default().write(3), Err(NotStarted));
    }

    #[test]
    fn head_goes_out_with_first_block_only() {
        let mut r = Response::default();
        r.start("200 OK", headers(&[("Content-Type", "text/plain")]), false).unwrap();
        assert!(!r.head_sent());
        assert_eq!(r.write(0), Ok(Write { send_head: true, take: 0 }));
        assert_eq!(r.write(4), Ok(Write { send_head: false, take: 4 }));
        assert_eq!(r.body_sent(), 4);
    }

    #[test]
    fn second_start_without_exc_info_is_an_error() {
        let mut r = Response::default();
        r.start("200 OK", vec![], false).unwrap();
        assert_eq!(r.start("500 Oops", vec![], false), Err(StartError::AlreadyStarted));
        assert_eq!(r.head().unwrap().status.code, 200, "first status kept");
    }

    #[test]
    fn exc_info_replaces_head_until_sent_then_reraises() {
        let mut r = Response::default();
        r.start("200 OK", vec![], false).unwrap();
        r.start("500 Error", vec![], true).unwrap();
        assert_eq!(r.head().unwrap().status.code, 500);
        r.write(1).unwrap();
        assert_eq!(r.start("503 Later", vec![], true), Err(StartError::ReRaise));
        assert_eq!(r.start("503 Later", vec![], false), Err(StartError::AlreadyStarted));
    }

    #[test]
    fn content_length_truncates() {
        let mut r = Response::default();
        r.start("200 OK", headers(&[("Content-Length", "5")]), false).unwrap();
        assert_eq!(r.write(3).unwrap().take, 3);
        assert!(!r.complete());
        assert_eq!(r.shortfall(), Some((3, 5)));
        assert_eq!(r.write(10).unwrap().take, 2);
        assert!(r.complete());
        assert_eq!(r.shortfall(), None);
        assert_eq!(r.write(10).unwrap().take, 0);
    }

    #[test]
    fn default_content_length_only_when_undeclared() {
        let mut r = Response::default();
        r.start("200 OK", headers(&[("Content-Length", "3")]), false).unwrap();
        r.default_content_length(10);
        assert_eq!(r.head().unwrap().content_length, Some(3));
        let mut r = Response::default();
        r.start("200 OK", vec![], false).unwrap();
        r.default_content_length(10);
        assert_eq!(r.head().unwrap().content_length, Some(10));
        assert!(r.head().unwrap().headers.contains(&("Content-Length".into(), "10".into())));
    }

    #[test]
    fn invalid_heads_are_refused_and_leave_no_state() {
        let mut r = Response::default();
        assert!(matches!(r.start("OK", vec![], false), Err(StartError::Invalid(_))));
        assert!(matches!(
            r.start("200 OK", headers(&[("X", "a\nb")]), false),
            Err(StartError::Invalid(_))
        ));
        assert!(matches!(
            r.start("200 OK", headers(&[("Content-Length", "x")]), false),
            Err(StartError::Invalid(_))
        ));
        assert!(r.head().is_none());
        r.start("200 OK", vec![], false).unwrap();
    }
}
