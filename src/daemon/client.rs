//! The Apache child's side of daemon mode: hand a request to the group's daemon and
//! stream the answer into Apache's output filters.
//!
//! Everything the daemon says is checked again here (status line, headers, framing), so
//! a broken or hostile daemon cannot inject headers or pass off a truncated response as
//! complete.

use std::io::ErrorKind;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::protocol::{self, Kind, RequestFrame};
use super::supervisor::Group;
use crate::apache::brigade::{Body, Output};
use crate::apache::log::{self, Level};
use crate::apache::request::Request;
use crate::ffi;
use crate::io::{BodySource, ResponseSink};
use crate::response::Response;

/// Connects to the group's socket, retrying while the daemon starts up or its queue is
/// full, for up to `connect-timeout`.
fn connect(group: &Group) -> std::io::Result<UnixStream> {
    let deadline = Instant::now() + group.def.connect_timeout.max(Duration::from_millis(100));
    let mut pause = Duration::from_millis(10);
    loop {
        match UnixStream::connect(&group.socket_path) {
            Ok(stream) => return Ok(stream),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionRefused | ErrorKind::NotFound | ErrorKind::WouldBlock
                ) && Instant::now() + pause < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Serves `request` through `group`. Returns an Apache status (`OK` once a response
/// went out).
pub fn handle(request: Request, group: &Group, frame: &RequestFrame) -> i32 {
    let name = &group.def.name;
    let uri = String::from_utf8_lossy(request.uri()).into_owned();
    let r = request.as_ptr();
    let mut stream = match connect(group) {
        Ok(s) => s,
        Err(e) => {
            log::request(r, Level::Error, &format!("Unable to connect to WSGI daemon process group '{name}' on '{}' within {:?}: {e}", group.socket_path, group.def.connect_timeout));
            return ffi::HTTP_SERVICE_UNAVAILABLE as i32;
        }
    };
    let timeout = if group.def.socket_timeout.is_zero() {
        // SAFETY: the request's server lives for the generation; `timeout` is Apache's
        // `Timeout` in microseconds.
        Duration::from_micros(unsafe { (*request.server()).timeout }.max(1_000_000) as u64)
    } else {
        group.def.socket_timeout
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    if let Err(e) = protocol::write_frame(&mut stream, Kind::Request, &frame.encode()) {
        log::request(
            r,
            Level::Error,
            &format!(
                "Unable to send the request for '{uri}' to WSGI daemon process group '{name}': {e}"
            ),
        );
        return ffi::HTTP_BAD_GATEWAY as i32;
    }

    let mut output = Output::new(request);
    let mut body = Body(request);
    let mut response = Response::default();
    let mut pid = None;
    let mut payload = Vec::new();
    let mut block = Vec::new();
    let daemon = |pid: Option<u32>| {
        pid.map_or_else(|| format!("of group '{name}'"), |p| format!("{p} of group '{name}'"))
    };
    loop {
        let kind = match protocol::read_frame(&mut stream, &mut payload) {
            Ok(kind) => kind,
            Err(e) => {
                let timed_out = matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
                let what = if timed_out {
                    format!("did not answer within {timeout:?}")
                } else {
                    format!("closed the connection ({e})")
                };
                log::request(
                    r,
                    Level::Error,
                    &format!(
                        "WSGI daemon process {} {what} before the response of '{uri}' was complete",
                        daemon(pid)
                    ),
                );
                if response.head_sent() {
                    output.broken();
                    let _ = output.pass();
                    return ffi::OK as i32;
                }
                return if timed_out { ffi::HTTP_GATEWAY_TIME_OUT } else { ffi::HTTP_BAD_GATEWAY }
                    as i32;
            }
        };
        match kind {
            Kind::Accepted if payload.len() == 4 => {
                pid = Some(u32::from_be_bytes(payload[..4].try_into().expect("4 bytes")))
            }
            Kind::Read if payload.len() == 4 => {
                let want = u32::from_be_bytes(payload[..4].try_into().expect("4 bytes")) as usize;
                block.resize(want.clamp(1, 64 * 1024), 0);
                let sent = match body.read(&mut block) {
                    Ok(n) => protocol::write_frame(&mut stream, Kind::Body, &block[..n]),
                    Err(_) => protocol::write_frame(&mut stream, Kind::BodyError, b""),
                };
                if sent.is_err() {
                    continue; // The read below reports what happened to the daemon.
                }
            }
            Kind::Head if !response.head_sent() => {
                let checked = protocol::decode_head(&payload).map_err(|e| e.to_string()).and_then(
                    |(status, headers)| {
                        response.start(&status, headers, false).map_err(|e| format!("{e:?}"))
                    },
                );
                if let Err(e) = checked {
                    log::request(
                        r,
                        Level::Error,
                        &format!(
                            "WSGI daemon process {} sent an invalid response head for '{uri}': {e}",
                            daemon(pid)
                        ),
                    );
                    return ffi::HTTP_BAD_GATEWAY as i32;
                }
                let _ = response.write(0);
                output.head(response.head().expect("just started"));
            }
            Kind::Data if response.head_sent() => {
                output.data(&payload);
                if output.pass().is_err() {
                    return ffi::OK as i32; // The client is gone; closing tells the daemon.
                }
            }
            Kind::Flush if response.head_sent() => {
                output.flush();
                if output.pass().is_err() {
                    return ffi::OK as i32;
                }
            }
            Kind::End if response.head_sent() => {
                output.end();
                let _ = output.pass();
                return ffi::OK as i32;
            }
            Kind::Broken if response.head_sent() => {
                output.broken();
                let _ = output.pass();
                return ffi::OK as i32;
            }
            Kind::Fail if payload.len() == 2 => {
                let status = u16::from_be_bytes([payload[0], payload[1]]);
                if response.head_sent() {
                    output.broken();
                    let _ = output.pass();
                    return ffi::OK as i32;
                }
                return if (400..600).contains(&status) {
                    i32::from(status)
                } else {
                    ffi::HTTP_INTERNAL_SERVER_ERROR as i32
                };
            }
            other => {
                log::request(r, Level::Error, &format!("WSGI daemon process {} broke the protocol for '{uri}' (unexpected {other:?} frame)", daemon(pid)));
                if response.head_sent() {
                    output.broken();
                    let _ = output.pass();
                    return ffi::OK as i32;
                }
                return ffi::HTTP_BAD_GATEWAY as i32;
            }
        }
    }
}
