//! The wire format between an Apache child and a daemon process (pure).
//!
//! Every message is a frame: a kind byte, a big-endian `u32` payload length, the payload.
//! Both directions are framed, so a daemon that dies mid-response is seen as an error,
//! never as a complete response (mod_wsgi ends a response at socket EOF).
//!
//! A connection starts with daemon -> child `Accepted` and the daemon's pid (named in the
//! child's log if that daemon dies), and then carries one request after another:
//! 1. child -> daemon `Request`: the generation secret, the request facts, every CGI variable.
//! 2. The daemon answers `Declined` if it is restarting and did not run the request (the
//!    child sends it again elsewhere).
//! 3. The daemon pulls the body: `Read(n, all, ahead)` -> the child answers with up to
//!    `n` bytes (with `all`, exactly `n` unless the body ends first; nothing at the end),
//!    plus up to `ahead` more that had already arrived, or `BodyError`. The answer is
//!    `BodyPart` frames, each at most `BODY_PIECE`, then a `Body` frame with the rest, so
//!    the child never holds more than a piece of a large read. Nothing is pushed, so an
//!    application that answers before reading a large upload cannot deadlock the two
//!    processes.
//! 4. daemon -> child `Head`, `Data`/`Flush`..., then `End`, or `Broken` (cut short after
//!    the head), or `Fail(status)` (nothing sent: the child answers with that status and
//!    closes the connection, which a timed-out request's worker may still hold).
//!
//! A connection the daemon closes without reading the request is reset (`ECONNRESET`), so
//! the child can send it again; end of file before any frame means the daemon read it and
//! died, and the request is not sent twice.

use std::io::{self, Read, Write};

use crate::environ::RequestKeys;

/// Largest payload accepted (the request frame carries every header).
pub const MAX_FRAME: usize = 16 * 1024 * 1024;
/// Most body bytes in one frame of an answer to `Read`.
pub const BODY_PIECE: usize = 64 * 1024;
/// Length of the per-generation secret.
pub const SECRET_LEN: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Request = b'Q',
    Body = b'B',
    BodyPart = b'b',
    BodyError = b'e',
    Accepted = b'A',
    Declined = b'N',
    Read = b'R',
    Head = b'H',
    Data = b'D',
    Flush = b'F',
    End = b'E',
    Broken = b'K',
    Fail = b'X',
}

impl Kind {
    fn from_byte(b: u8) -> io::Result<Kind> {
        Ok(match b {
            b'Q' => Kind::Request,
            b'B' => Kind::Body,
            b'b' => Kind::BodyPart,
            b'e' => Kind::BodyError,
            b'A' => Kind::Accepted,
            b'N' => Kind::Declined,
            b'R' => Kind::Read,
            b'H' => Kind::Head,
            b'D' => Kind::Data,
            b'F' => Kind::Flush,
            b'E' => Kind::End,
            b'K' => Kind::Broken,
            b'X' => Kind::Fail,
            other => return Err(invalid(format!("unknown frame kind {other:#04x}"))),
        })
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Appends one frame to `out`.
pub fn put_frame(out: &mut Vec<u8>, kind: Kind, payload: &[u8]) {
    out.extend_from_slice(&header(kind, payload.len()));
    out.extend_from_slice(payload);
}

/// Bytes of a frame's header.
pub const HEADER_LEN: usize = 5;

/// A frame's header: its kind and payload length.
pub fn header(kind: Kind, len: usize) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[0] = kind as u8;
    header[1..].copy_from_slice(&(len as u32).to_be_bytes());
    header
}

/// Writes one frame, in one system call when the socket takes it all.
pub fn write_frame(w: &mut impl Write, kind: Kind, payload: &[u8]) -> io::Result<()> {
    write_frame_parts(w, kind, &[payload])
}

/// Writes one frame whose payload is `parts` one after another.
pub fn write_frame_parts(w: &mut impl Write, kind: Kind, parts: &[&[u8]]) -> io::Result<()> {
    let header = header(kind, parts.iter().map(|p| p.len()).sum());
    let mut all = Vec::with_capacity(parts.len() + 1);
    all.push(&header[..]);
    all.extend_from_slice(parts);
    write_parts(w, &all)
}

/// Writes `parts` one after another with vectored writes: the peer is woken once for
/// the whole, not once per part.
pub fn write_parts(w: &mut impl Write, parts: &[&[u8]]) -> io::Result<()> {
    let mut slices: Vec<io::IoSlice<'_>> =
        parts.iter().filter(|p| !p.is_empty()).map(|p| io::IoSlice::new(p)).collect();
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        match w.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => io::IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads one frame into `payload` (replacing its contents). EOF before a frame starts is
/// `UnexpectedEof`, like EOF inside one: the peer never closes between frames mid-request.
pub fn read_frame(r: &mut impl Read, payload: &mut Vec<u8>) -> io::Result<Kind> {
    let (kind, len) = read_header(r)?;
    payload.clear();
    payload.resize(len, 0);
    r.read_exact(payload)?;
    Ok(kind)
}

/// Reads a frame's kind and payload length, leaving the payload to the caller (who can
/// read it straight into its own buffer).
pub fn read_header(r: &mut impl Read) -> io::Result<(Kind, usize)> {
    let mut header = [0u8; HEADER_LEN];
    r.read_exact(&mut header)?;
    parse_header(&header)
}

/// A frame's kind and payload length from its header.
pub fn parse_header(header: &[u8; HEADER_LEN]) -> io::Result<(Kind, usize)> {
    let kind = Kind::from_byte(header[0])?;
    let len = u32::from_be_bytes(header[1..].try_into().expect("4 bytes")) as usize;
    if len > MAX_FRAME {
        return Err(invalid(format!("frame of {len} bytes exceeds the {MAX_FRAME}-byte limit")));
    }
    Ok((kind, len))
}

/// What a `Read` frame asks the child for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadAsk {
    /// Bytes wanted (with `all`, waited for unless the body ends first).
    pub want: u32,
    pub all: bool,
    /// Bytes the daemon also takes if they have already arrived.
    pub ahead: u32,
}

impl ReadAsk {
    pub fn encode(&self) -> [u8; 9] {
        let mut out = [0u8; 9];
        out[..4].copy_from_slice(&self.want.to_be_bytes());
        out[4] = u8::from(self.all);
        out[5..].copy_from_slice(&self.ahead.to_be_bytes());
        out
    }

    pub fn decode(payload: &[u8]) -> Option<ReadAsk> {
        let payload: &[u8; 9] = payload.try_into().ok()?;
        Some(ReadAsk {
            want: u32::from_be_bytes(payload[..4].try_into().expect("4 bytes")),
            all: payload[4] != 0,
            ahead: u32::from_be_bytes(payload[5..].try_into().expect("4 bytes")),
        })
    }
}

/// Appends a length-prefixed field.
fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

/// Builds payloads field by field.
#[derive(Default)]
pub struct Encoder(pub Vec<u8>);

impl Encoder {
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        put_bytes(&mut self.0, b);
        self
    }
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn f64(&mut self, v: f64) -> &mut Self {
        self.0.extend_from_slice(&v.to_bits().to_be_bytes());
        self
    }
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.0.push(u8::from(v));
        self
    }
}

/// Reads payloads field by field; every read checks the length.
pub struct Decoder<'a>(pub &'a [u8]);

impl<'a> Decoder<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(invalid("truncated frame payload"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    pub fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    pub fn f64(&mut self) -> io::Result<f64> {
        Ok(f64::from_bits(u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes"))))
    }
    pub fn i64(&mut self) -> io::Result<i64> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    pub fn bool(&mut self) -> io::Result<bool> {
        Ok(self.take(1)?[0] != 0)
    }
    pub fn bytes(&mut self) -> io::Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub fn string(&mut self) -> io::Result<String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| invalid("field is not UTF-8"))
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a daemon needs to run one request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestFrame {
    pub secret: Vec<u8>,
    pub script: String,
    /// The script's modification time as the Apache child saw it (microseconds), so the
    /// daemon need not look again.
    pub mtime: i64,
    pub reload: bool,
    pub header_only: bool,
    pub keys: RequestKeys,
    pub cgi: CgiVars,
}

/// CGI variables packed one after another as they go on the wire (key, then value, each
/// length-prefixed), so neither side allocates per variable.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CgiVars {
    count: u32,
    /// Pairs in `Encoder` form; every key is UTF-8 (checked when decoded).
    packed: Vec<u8>,
}

impl CgiVars {
    pub fn with_capacity(bytes: usize) -> CgiVars {
        CgiVars { count: 0, packed: Vec::with_capacity(bytes) }
    }

    pub fn push(&mut self, key: &str, value: &[u8]) {
        put_bytes(&mut self.packed, key.as_bytes());
        put_bytes(&mut self.packed, value);
        self.count += 1;
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        let mut d = Decoder(&self.packed);
        (0..self.count).map_while(move |_| {
            let key = std::str::from_utf8(d.bytes().ok()?).ok()?;
            Some((key, d.bytes().ok()?))
        })
    }

    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Reads `count` pairs from `d`, checking each.
    fn decode(d: &mut Decoder<'_>) -> io::Result<CgiVars> {
        let count = d.u32()?;
        let start = d.0;
        for _ in 0..count {
            std::str::from_utf8(d.bytes()?).map_err(|_| invalid("CGI name not UTF-8"))?;
            d.bytes()?;
        }
        let packed = start[..start.len() - d.0.len()].to_vec();
        Ok(CgiVars { count, packed })
    }
}

impl RequestFrame {
    pub fn encode(&self) -> Vec<u8> {
        let k = &self.keys;
        let mut e = Encoder(Vec::with_capacity(512 + self.cgi.packed.len()));
        e.bytes(&self.secret).str(&self.script).i64(self.mtime);
        e.bool(self.reload).bool(self.header_only);
        e.str(&k.url_scheme).bool(k.multithread).bool(k.multiprocess).bool(k.run_once);
        e.str(&k.process_group).str(&k.application_group).str(&k.callable_object);
        e.str(&k.request_handler).bool(k.script_reloading).bool(k.enable_sendfile);
        e.str(&k.listener_host).u32(u32::from(k.listener_port)).u32(k.server_pid);
        e.str(&k.request_id).f64(k.request_start).f64(k.queue_start).f64(k.daemon_start);
        e.u32(k.apache_version.0).u32(k.apache_version.1).u32(k.apache_version.2);
        e.u32(self.cgi.count).0.extend_from_slice(&self.cgi.packed);
        e.0
    }

    pub fn decode(payload: &[u8]) -> io::Result<RequestFrame> {
        let mut d = Decoder(payload);
        let secret = d.bytes()?.to_vec();
        let script = d.string()?;
        let mtime = d.i64()?;
        let reload = d.bool()?;
        let header_only = d.bool()?;
        let keys = RequestKeys {
            url_scheme: d.string()?,
            multithread: d.bool()?,
            multiprocess: d.bool()?,
            run_once: d.bool()?,
            process_group: d.string()?,
            application_group: d.string()?,
            callable_object: d.string()?,
            request_handler: d.string()?,
            script_reloading: d.bool()?,
            enable_sendfile: d.bool()?,
            listener_host: d.string()?,
            listener_port: u16::try_from(d.u32()?).map_err(|_| invalid("bad port"))?,
            server_pid: d.u32()?,
            request_id: d.string()?,
            request_start: d.f64()?,
            queue_start: d.f64()?,
            daemon_start: d.f64()?,
            apache_version: (d.u32()?, d.u32()?, d.u32()?),
        };
        let cgi = CgiVars::decode(&mut d)?;
        if !d.is_empty() {
            return Err(invalid("trailing bytes in request frame"));
        }
        Ok(RequestFrame { secret, script, mtime, reload, header_only, keys, cgi })
    }
}

/// Encodes a response head: the status line, then each header.
pub fn encode_head(status_line: &str, headers: &[(String, String)]) -> Vec<u8> {
    let mut e = Encoder::default();
    e.str(status_line).u32(headers.len() as u32);
    for (name, value) in headers {
        e.str(name).str(value);
    }
    e.0
}

pub fn decode_head(payload: &[u8]) -> io::Result<(String, Vec<(String, String)>)> {
    let mut d = Decoder(payload);
    let status = d.string()?;
    let count = d.u32()? as usize;
    let mut headers = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        headers.push((d.string()?, d.string()?));
    }
    Ok((status, headers))
}

/// Compares secrets in time independent of where they differ.
pub fn secrets_match(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `limit` bytes per call, to exercise partial writes.
    struct Trickle {
        out: Vec<u8>,
        limit: usize,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[io::IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
            self.calls += 1;
            let mut taken = 0;
            for b in bufs {
                let n = b.len().min(self.limit - taken);
                self.out.extend_from_slice(&b[..n]);
                taken += n;
            }
            Ok(taken)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn frames_go_out_whole_in_one_write_or_across_partial_writes() {
        let mut one = Trickle { out: Vec::new(), limit: usize::MAX, calls: 0 };
        write_frame(&mut one, Kind::Data, b"hello").unwrap();
        assert_eq!((one.out.as_slice(), one.calls), (&b"D\0\0\0\x05hello"[..], 1));

        let mut slow = Trickle { out: Vec::new(), limit: 3, calls: 0 };
        write_parts(&mut slow, &[b"", b"abcd", b"", b"efghij"]).unwrap();
        assert_eq!(slow.out, b"abcdefghij");
        assert_eq!(slow.calls, 4);
        let mut payload = Vec::new();
        let kind = read_frame(&mut &one.out[..], &mut payload).unwrap();
        assert_eq!((kind, payload.as_slice()), (Kind::Data, &b"hello"[..]));
    }

    #[test]
    fn read_asks_round_trip_and_bad_lengths_are_refused() {
        let ask = ReadAsk { want: 65536, all: true, ahead: 196_608 };
        assert_eq!(ReadAsk::decode(&ask.encode()), Some(ask));
        assert_eq!(ReadAsk::decode(&ask.encode()[..8]), None);
        assert_eq!(ReadAsk::decode(&[0; 10]), None);
    }

    #[test]
    fn request_frame_round_trips() {
        let mut frame = RequestFrame {
            secret: vec![7; SECRET_LEN],
            script: "/srv/app.wsgi".into(),
            mtime: 1_700_000_000_123_456,
            reload: true,
            header_only: false,
            keys: RequestKeys {
                url_scheme: "https".into(),
                multithread: true,
                process_group: "site".into(),
                listener_port: 8443,
                request_start: 1.5,
                apache_version: (2, 4, 71),
                ..RequestKeys::default()
            },
            cgi: CgiVars::default(),
        };
        frame.cgi.push("HTTP_HOST", b"example");
        frame.cgi.push("X", &[0xff, 0]);
        let decoded = RequestFrame::decode(&frame.encode()).unwrap();
        assert_eq!(decoded, frame);
        let pairs: Vec<_> = decoded.cgi.iter().collect();
        assert_eq!(pairs, [("HTTP_HOST", &b"example"[..]), ("X", &[0xff, 0][..])]);
        assert_eq!(decoded.cgi.get("X"), Some(&[0xff, 0][..]));
        assert_eq!(decoded.cgi.get("Y"), None);
    }

    #[test]
    fn a_cgi_name_not_utf8_is_refused() {
        let mut frame = RequestFrame::default();
        frame.cgi.push("GOOD", b"v");
        let mut bytes = frame.encode();
        let at = bytes.windows(4).position(|w| w == b"GOOD").unwrap();
        bytes[at] = 0xff;
        assert!(RequestFrame::decode(&bytes).is_err());
    }

    #[test]
    fn truncated_or_padded_payloads_are_refused() {
        let bytes = RequestFrame::default().encode();
        assert!(RequestFrame::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(RequestFrame::decode(&padded).is_err());
    }

    #[test]
    fn frames_round_trip_and_eof_is_an_error() {
        let mut wire = Vec::new();
        write_frame(&mut wire, Kind::Data, b"hello").unwrap();
        put_frame(&mut wire, Kind::End, b"");
        let mut r = &wire[..];
        let mut payload = Vec::new();
        assert_eq!(read_frame(&mut r, &mut payload).unwrap(), Kind::Data);
        assert_eq!(payload, b"hello");
        assert_eq!(read_frame(&mut r, &mut payload).unwrap(), Kind::End);
        assert!(payload.is_empty());
        let err = read_frame(&mut r, &mut payload).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "a missing End is an error");
        let mut cut = &wire[..7];
        assert!(read_frame(&mut cut, &mut payload).is_err(), "a frame cut short is an error");
    }

    #[test]
    fn oversized_and_unknown_frames_are_refused() {
        let mut wire = vec![b'D'];
        wire.extend_from_slice(&(MAX_FRAME as u32 + 1).to_be_bytes());
        assert!(read_frame(&mut &wire[..], &mut Vec::new()).is_err());
        assert!(read_frame(&mut &[b'?', 0, 0, 0, 0][..], &mut Vec::new()).is_err());
    }

    #[test]
    fn heads_round_trip() {
        let headers = vec![("Content-Type".to_string(), "text/plain".to_string())];
        let (status, back) = decode_head(&encode_head("404 Not Found", &headers)).unwrap();
        assert_eq!(status, "404 Not Found");
        assert_eq!(back, headers);
    }

    #[test]
    fn secret_comparison() {
        assert!(secrets_match(b"abc", b"abc"));
        assert!(!secrets_match(b"abc", b"abd"));
        assert!(!secrets_match(b"abc", b"ab"));
    }
}
