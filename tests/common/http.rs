//! A tiny HTTP/1.1 client over `std::net::TcpStream`, enough for the tests: raw requests
//! (malformed ones too), Content-Length / chunked / until-close bodies, and a flag saying
//! whether the body ended the way its framing promised. Every socket has a timeout.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A parsed response.
#[derive(Clone, Debug, Default)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// False when the connection ended before the framing said the body was complete
    /// (missing final chunk, fewer bytes than Content-Length), or nothing came back.
    pub complete: bool,
    /// True when the body was chunked.
    pub chunked: bool,
    /// Bytes received in total (for diagnostics).
    pub raw_len: usize,
    /// Why nothing (or not all) came back: the socket error or "eof" (for diagnostics).
    pub io_error: Option<String>,
}

impl Response {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of this header.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> super::json::Json {
        super::json::parse(&self.text()).unwrap_or_else(|e| {
            panic!("response body is not JSON ({e}): status {} body {:?}", self.status, self.text())
        })
    }
}

/// Connects to 127.0.0.1:port for each request.
#[derive(Clone, Copy, Debug)]
pub struct Client {
    pub port: u16,
}

impl Client {
    pub fn new(port: u16) -> Client {
        Client { port }
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to apache");
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        s
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], None)
    }

    pub fn head(&self, path: &str) -> Response {
        let raw = format!(
            "HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        );
        let mut s = self.connect();
        s.write_all(raw.as_bytes()).unwrap();
        read_response(&mut s, true)
    }

    pub fn post(&self, path: &str, body: &[u8], content_type: &str) -> Response {
        self.request("POST", path, body, Some(content_type))
    }

    /// A well-formed request with `Connection: close` and extra headers.
    pub fn request_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut raw = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n",
            self.port
        );
        for (k, v) in headers {
            raw.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" || method == "PUT" {
            raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        raw.push_str("\r\n");
        let mut bytes = raw.into_bytes();
        bytes.extend_from_slice(body);
        self.request_raw_inner(&bytes, method == "HEAD")
    }

    fn request(&self, method: &str, path: &str, body: &[u8], ct: Option<&str>) -> Response {
        let mut h = Vec::new();
        if let Some(ct) = ct {
            h.push(("Content-Type", ct));
        }
        self.request_with(method, path, &h, body)
    }

    /// Sends exactly these bytes, half-closes nothing, and reads one response.
    pub fn request_raw(&self, bytes: &[u8]) -> Response {
        self.request_raw_inner(bytes, bytes.starts_with(b"HEAD "))
    }

    fn request_raw_inner(&self, bytes: &[u8], head: bool) -> Response {
        let mut s = self.connect();
        // The server may answer (and close) before reading everything: ignore write errors.
        let _ = s.write_all(bytes);
        read_response(&mut s, head)
    }

    /// Sends bytes then shuts down the write side, and reads one response.
    pub fn request_raw_then_shutdown(&self, bytes: &[u8]) -> Response {
        let mut s = self.connect();
        let _ = s.write_all(bytes);
        let _ = s.shutdown(Shutdown::Write);
        read_response(&mut s, false)
    }
}

/// Reads from the stream until `buf` holds the end of the header block; returns its length.
fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize, String> {
    loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            return Ok(i + 4);
        }
        let mut chunk = [0u8; 8192];
        match read_retry(s, &mut chunk) {
            Ok(0) => return Err("eof before the end of the response head".into()),
            Err(e) => return Err(e.to_string()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `read`, retried on EINTR: the test process gets signals (e.g. SIGCHLD from the
/// `apache2`/`python` commands other tests run), and `read` does not restart by itself.
pub fn read_retry(s: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match s.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Reads more bytes into `buf`; false at EOF or error (timeout included).
fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16384];
    match read_retry(s, &mut chunk) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

/// Reads one response from `s`. `head` says the request was HEAD (no body follows).
pub fn read_response(s: &mut TcpStream, head: bool) -> Response {
    let mut buf = Vec::new();
    let head_len = match read_head(s, &mut buf) {
        Ok(n) => n,
        Err(e) => return Response { raw_len: buf.len(), io_error: Some(e), ..Default::default() },
    };
    // Header bytes are Latin-1 (RFC 9110): one byte, one char.
    let head_text: String = buf[..head_len - 4].iter().map(|&b| b as char).collect();
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let _version = parts.next();
    let status = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    let reason = parts.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let mut resp = Response { status, reason, headers, ..Default::default() };
    let mut rest = buf[head_len..].to_vec();
    let no_body = head || status / 100 == 1 || status == 204 || status == 304;
    if no_body {
        resp.complete = true;
    } else if resp.header("Transfer-Encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        resp.chunked = true;
        let (body, complete) = read_chunked(s, &mut rest);
        resp.body = body;
        resp.complete = complete;
    } else if let Some(len) = resp.header("Content-Length").and_then(|v| v.parse::<usize>().ok()) {
        while rest.len() < len && fill(s, &mut rest) {}
        resp.complete = rest.len() >= len;
        rest.truncate(len);
        resp.body = rest;
    } else {
        while fill(s, &mut rest) {}
        resp.body = rest;
        resp.complete = true;
    }
    resp.raw_len = head_len + resp.body.len();
    resp
}

fn read_chunked(s: &mut TcpStream, buf: &mut Vec<u8>) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        // chunk-size line
        let line_end = loop {
            if let Some(i) = find(&buf[pos..], b"\r\n") {
                break pos + i;
            }
            if !fill(s, buf) {
                return (body, false);
            }
        };
        let line = String::from_utf8_lossy(&buf[pos..line_end]).into_owned();
        let size_hex = line.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_hex, 16) else {
            return (body, false);
        };
        pos = line_end + 2;
        if size == 0 {
            // trailers until an empty line
            loop {
                if let Some(i) = find(&buf[pos..], b"\r\n") {
                    if i == 0 {
                        return (body, true);
                    }
                    pos += i + 2;
                } else if !fill(s, buf) {
                    return (body, false);
                }
            }
        }
        while buf.len() < pos + size + 2 {
            if !fill(s, buf) {
                let end = buf.len().min(pos + size);
                body.extend_from_slice(&buf[pos..end]);
                return (body, false);
            }
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        pos += size + 2;
    }
}

/// Encodes `data` as a chunked body split into `piece`-byte chunks, with the final chunk.
pub fn chunked(data: &[u8], piece: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in data.chunks(piece.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// The chunks of a chunked HTTP/1.1 response body, as sent.
pub fn chunks_of(body: &[u8]) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    let mut rest = body;
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16)
            .expect("hex chunk size");
        if size == 0 {
            return chunks;
        }
        chunks.push(rest[line_end + 2..line_end + 2 + size].to_vec());
        rest = &rest[line_end + 2 + size + 2..];
    }
}
