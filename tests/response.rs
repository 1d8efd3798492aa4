//! The response side: `start_response` (status and header validation, `exc_info`, the
//! `write` callable, lazy start), the body iterable (bytes only, `close()` on every path,
//! Content-Length truncation), HEAD, `wsgi.file_wrapper`, `wsgi.errors`/`print()`
//! (PEP 3333 "The start_response() Callable", "Buffering and Streaming", "Optional
//! Platform-Specific File Handling"; mod_wsgi reference 2.2, 2.3, 2.12).
mod common;
use common::*;
use std::io::Write;
use std::time::{Duration, Instant};

fn ks(m: Module) -> Server {
    Server::start(ServerSpec::kitchensink(m))
}

both!(write_callable_output_precedes_iterable, |m| {
    let s = ks(m);
    let r = s.get("/ks/write-callable");
    assert_eq!(r.status, 200, "write() route answers 200");
    assert_eq!(
        r.body, b"written-1;written-2;returned",
        "write() data comes first, in order, then the iterable"
    );
    assert!(r.complete, "write() route response is complete");
});

both!(lazy_start_response_sets_status, |m| {
    let s = ks(m);
    let r = s.get("/ks/lazy-start");
    assert_eq!(
        r.status, 201,
        "start_response called during the first iteration still sets the status"
    );
    assert_eq!(r.header("X-Lazy"), Some("yes"), "headers from a lazy start_response are sent");
    assert_eq!(r.body, b"lazy-body", "lazy start body");
});

both!(exc_info_before_output_replaces_headers, |m| {
    let s = ks(m);
    let r = s.get("/ks/exc-info-before");
    assert_eq!(r.status, 500, "start_response(exc_info) before output replaces the status");
    assert_eq!(r.header("X-Second"), Some("1"), "headers of the second start_response are sent");
    assert_eq!(r.header("X-First"), None, "headers of the first start_response are discarded");
    assert_eq!(r.body, b"error page", "the body after exc_info is sent");
});

both!(exc_info_after_headers_reraises_and_truncates, |m| {
    let s = ks(m);
    let off = s.log_len();
    let r = s.get("/ks/exc-info-after-headers");
    assert_eq!(r.status, 200, "the status already sent stays");
    assert!(r.body.starts_with(b"first chunk;"), "the chunk sent before the error arrives");
    assert!(!r.text().contains("must-not-be-sent"), "nothing after the re-raised exc_info is sent");
    if m.cuts_failed_responses() {
        assert!(!r.complete, "the response is cut (no final chunk) so the client sees the failure");
    }
    s.assert_log_since(off, "boom after headers", "the re-raised exception is logged");
});

both!(start_response_twice_after_body_is_error, |m| {
    let s = ks(m);
    let off = s.log_len();
    let r = s.get("/ks/start-twice-after-body");
    assert_eq!(r.status, 200, "status already sent");
    if m.cuts_failed_responses() {
        assert!(!r.complete, "second start_response after output fails the response (cut)");
    }
    assert!(!r.text().contains("after"), "no body after the failing start_response");
    s.assert_log_since(off, "Error", "a second start_response after output is logged as an error");
});

both!(start_response_twice_without_exc_info, |m| {
    let s = ks(m);
    let off = s.log_len();
    let r = s.get("/ks/start-twice");
    if m.is_ours() {
        // PEP 3333: "it is a fatal error to call start_response without the exc_info
        // argument if start_response has already been called". mod_wsgi 4.9.4 tolerates it
        // while nothing was sent (and answers 202); we follow the PEP.
        assert_eq!(r.status, 500, "second start_response without exc_info is an error (PEP 3333)");
        s.assert_log_since(off, "Error", "the second start_response error is logged");
    } else {
        assert_eq!(r.status, 202, "mod_wsgi 4.9.4 lets the second start_response win");
    }
});

fn assert_500_logged(s: &Server, path: &str, needle: &str, what: &str) {
    let off = s.log_len();
    let r = s.get(path);
    assert_eq!(r.status, 500, "{what}: {path} must answer 500, got {} {:?}", r.status, r.text());
    s.assert_log_since(off, needle, what);
    // The child keeps serving.
    let ok = s.get("/ks/status/200");
    assert_eq!(ok.status, 200, "{what}: the next request after {path} is served");
}

both!(str_body_is_500_and_logged, |m| {
    let s = ks(m);
    assert_500_logged(&s, "/ks/str-body", "TypeError", "an iterable yielding str is a TypeError");
});

both!(none_body_is_500_and_logged, |m| {
    let s = ks(m);
    assert_500_logged(&s, "/ks/none-body", "TypeError", "returning None is a TypeError");
});

both!(no_start_response_is_500_and_logged, |m| {
    let s = ks(m);
    assert_500_logged(
        &s,
        "/ks/no-start-response",
        "Error",
        "a body without start_response is an error",
    );
});

both!(raise_before_start_is_500_with_traceback, |m| {
    let s = ks(m);
    assert_500_logged(
        &s,
        "/ks/raise-before-start",
        "raised before start_response",
        "the exception is logged",
    );
    s.assert_log_contains("Traceback (most recent call last)", "the traceback is logged");
});

both!(raise_after_start_before_body_is_500, |m| {
    let s = ks(m);
    assert_500_logged(
        &s,
        "/ks/raise-after-start",
        "raised after start_response",
        "exception before any body",
    );
});

both!(raise_in_iteration_cuts_response, |m| {
    let s = ks(m);
    let off = s.log_len();
    let r = s.get("/ks/raise-in-iter");
    assert_eq!(r.status, 200, "status already sent when the iterable raises");
    assert_eq!(r.body, b"first chunk;", "data before the exception is delivered");
    if m.cuts_failed_responses() {
        assert!(
            !r.complete,
            "the chunked response has no final chunk, so the client knows it failed"
        );
    }
    s.assert_log_since(off, "raised in iteration", "the exception in iteration is logged");
});

both!(bad_status_is_500, |m| {
    let s = ks(m);
    assert_500_logged(&s, "/ks/bad-status", "Error", "status 'abc' is rejected");
});

both!(bytes_status_is_500, |m| {
    let s = ks(m);
    assert_500_logged(
        &s,
        "/ks/bad-status-bytes",
        "Error",
        "a bytes status is rejected (must be str)",
    );
});

both!(status_with_crlf_not_injected, |m| {
    let s = ks(m);
    let off = s.log_len();
    let r = s.get("/ks/status-injection");
    assert_eq!(r.status, 500, "a status with CR/LF is rejected");
    assert!(r.header("X-Injected").is_none(), "nothing is injected through the status");
    s.assert_log_since(off, "Error", "status with CR/LF is logged");
});

both!(header_value_with_crlf_not_injected, |m| {
    let s = ks(m);
    let off = s.log_len();
    let r = s.get("/ks/header-injection");
    assert_eq!(r.status, 500, "a header value with CR/LF is rejected");
    assert!(r.header("X-Injected").is_none(), "no header injected through a header value");
    assert!(r.header("X-Evil").is_none(), "the bad header is not sent");
    s.assert_log_since(off, "Error", "header value with CR/LF is logged");
});

both!(header_name_with_space_is_500, |m| {
    let s = ks(m);
    assert_500_logged(&s, "/ks/header-name-bad", "Error", "a header name with spaces is rejected");
});

both!(headers_not_tuples_is_500, |m| {
    let s = ks(m);
    assert_500_logged(
        &s,
        "/ks/header-not-tuple",
        "Error",
        "a header that is not a 2-tuple is rejected",
    );
});

both!(non_latin1_header_is_500, |m| {
    let s = ks(m);
    assert_500_logged(
        &s,
        "/ks/non-latin1-header",
        "Error",
        "a header value that is not Latin-1 is rejected",
    );
});

both!(latin1_header_sent_as_one_byte, |m| {
    let s = ks(m);
    let r = s.get("/ks/latin1-header");
    assert_eq!(r.status, 200, "a Latin-1 header value is accepted");
    assert_eq!(r.header("X-Latin1"), Some("caf\u{e9}"), "U+00E9 goes out as the single byte 0xE9");
});

both!(hop_by_hop_header_refused, |m| {
    let s = ks(m);
    let off = s.log_len();
    // A keep-alive request, so an app-supplied "Connection: close" would be visible.
    let raw = format!("GET /ks/hop-by-hop HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", s.port);
    let mut c = s.client().connect();
    std::io::Write::write_all(&mut c, raw.as_bytes()).unwrap();
    let r = common::http::read_response(&mut c, false);
    if m.is_ours() {
        // PEP 3333: applications must not use hop-by-hop headers; the server refuses them.
        // mod_wsgi 4.9.4 passes "Connection" through unchecked.
        assert_eq!(
            r.status, 500,
            "an app-supplied Connection header is refused (PEP 3333 hop-by-hop)"
        );
        s.assert_log_since(off, "onnection", "the refused hop-by-hop header is named in the log");
    } else {
        assert_eq!(r.status, 200, "mod_wsgi 4.9.4 accepts a Connection header from the app");
    }
});

both!(repeated_headers_kept, |m| {
    let s = ks(m);
    let r = s.get("/ks/headers");
    assert_eq!(r.status, 200, "headers route answers 200");
    if m == Module::ModWsgiDaemon {
        // Reference behaviour: mod_wsgi 4.9.4's Apache child reads the daemon's headers
        // into a merging table, so repeated headers other than Set-Cookie arrive joined.
        assert_eq!(r.header_all("X-Multi"), ["a, b"], "mod_wsgi 4.9.4 daemon joins X-Multi");
    } else {
        assert_eq!(r.header_all("X-Multi"), ["a", "b"], "repeated headers are all sent, in order");
    }
    assert_eq!(r.header_all("Set-Cookie"), ["a=1", "b=2"], "every Set-Cookie is sent");
    assert_eq!(r.header("X-Empty"), Some(""), "a header with an empty value is sent");
});

both!(content_length_truncates_output, |m| {
    let s = ks(m);
    let r = s.get("/ks/content-length-short");
    assert_eq!(r.status, 200, "content-length-short answers 200");
    assert_eq!(r.header("Content-Length"), Some("5"), "declared Content-Length is sent");
    assert_eq!(r.body, b"01234", "only the declared 5 bytes are sent");
    // The connection must not carry the surplus into a following response.
    let r2 = s.get("/ks/status/200");
    assert_eq!(r2.status, 200, "next request fine after a truncated body");
});

both!(close_called_on_success, |m| {
    let s = ks(m);
    let r = s.get("/ks/close-called?success-tag");
    assert_eq!(r.body, b"close-test", "close-called body");
    let log = s.get("/ks/close-log").text();
    // Each process has its own list; with one child process (StartServers 1) it is here.
    assert!(log.contains("success-tag"), "close() is called after a successful response: {log}");
});

both!(close_called_on_exception, |m| {
    let s = ks(m);
    let r = s.get("/ks/close-on-error?error-tag");
    if m.cuts_failed_responses() {
        assert!(!r.complete, "the response failing in iteration is cut");
    }
    let log = s.get("/ks/close-log").text();
    assert!(log.contains("error-tag"), "close() is called when iteration raises: {log}");
});

both!(close_called_on_client_disconnect, |m| {
    let s = ks(m);
    {
        let mut c = s.client().connect();
        let raw = format!(
            "GET /ks/close-on-disconnect?gone-tag HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
            s.port
        );
        std::io::Write::write_all(&mut c, raw.as_bytes()).unwrap();
        let mut buf = [0u8; 4096];
        let _ = common::http::read_retry(&mut c, &mut buf);
        // Dropping the socket closes it while the app is still producing.
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let log = s.get("/ks/close-log").text();
        if log.contains("gone-tag") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "close() is called after the client went away: {log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
});

both!(empty_and_generator_bodies, |m| {
    let s = ks(m);
    let r = s.get("/ks/empty-iter");
    assert_eq!((r.status, r.body.len()), (200, 0), "an empty list gives an empty 200 response");
    let r = s.get("/ks/empty-strings");
    assert_eq!(r.body, b"after-empty", "empty byte strings in the iterable are skipped");
    let r = s.get("/ks/generator");
    assert_eq!(r.body, b"gen-0;gen-1;gen-2;gen-3;gen-4;", "a generator body is sent in order");
});

both!(stream_of_many_yields, |m| {
    let s = ks(m);
    let r = s.get("/ks/stream");
    assert_eq!(r.status, 200, "stream answers 200");
    assert_eq!(r.body.len(), 100 * 1024, "100 yields of 1 KiB arrive");
    assert!(r.complete, "the streamed response is complete");
    for i in 0..100 {
        assert_eq!(
            &r.body[i * 1024..i * 1024 + 3],
            format!("{i:03}").as_bytes(),
            "block {i} in order"
        );
    }
});

both!(status_codes_pass_through, |m| {
    let s = ks(m);
    for code in [201u16, 404, 418, 503] {
        let r = s.get(&format!("/ks/status/{code}"));
        assert_eq!(r.status, code, "status {code} from the app reaches the client");
    }
    let r = s.get("/ks/status/204");
    assert_eq!((r.status, r.body.len()), (204, 0), "204 has no body");
    let r = s.get("/ks/status/304");
    assert_eq!((r.status, r.body.len()), (304, 0), "304 has no body");
});

both!(head_request_has_no_body, |m| {
    let s = ks(m);
    let r = s.client().head("/ks/head");
    assert_eq!(r.status, 200, "HEAD answers 200");
    assert!(r.header("X-Method").is_some(), "HEAD response carries the app's headers");
    // Reading on: a HEAD response must carry no body bytes at all.
    let raw = format!(
        "HEAD /ks/head HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
        s.port
    );
    let mut c = s.client().connect();
    std::io::Write::write_all(&mut c, raw.as_bytes()).unwrap();
    let mut all = Vec::new();
    let _ = std::io::Read::read_to_end(&mut c, &mut all);
    let text = String::from_utf8_lossy(&all);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    assert_eq!(body, "", "no body bytes follow a HEAD response");
});

both!(file_wrapper_sends_whole_file, |m| {
    let s = ks(m);
    let r = s.get("/ks/file-wrapper");
    assert_eq!(r.status, 200, "file-wrapper answers 200");
    assert!(r.body == static_file_bytes(), "wsgi.file_wrapper sends the file byte for byte");
    assert_eq!(
        r.header("Content-Length"),
        Some("100000"),
        "Content-Length is added for a real file"
    );
});

both!(file_wrapper_from_current_position, |m| {
    let s = ks(m);
    let r = s.get("/ks/file-wrapper-offset");
    assert!(
        r.body == static_file_bytes()[1000..],
        "wsgi.file_wrapper sends from the file's current position"
    );
});

both!(file_wrapper_honours_content_length, |m| {
    let s = ks(m);
    let r = s.get("/ks/file-wrapper-length");
    assert!(
        r.body == static_file_bytes()[..100],
        "wsgi.file_wrapper sends only the declared Content-Length"
    );
});

both!(file_wrapper_filelike_fallback, |m| {
    let s = ks(m);
    let r = s.get("/ks/file-wrapper-filelike");
    let want: Vec<u8> = (0..40).flat_map(|_| 0u8..=255).collect();
    assert_eq!(r.status, 200, "file_wrapper over BytesIO answers 200");
    assert!(r.body == want, "a file-like without fileno() is read block by block, byte for byte");
});

both!(wsgi_errors_and_print_reach_error_log, |m| {
    let s = ks(m);
    let r = s.get("/ks/errors?m7x");
    assert_eq!(r.status, 200, "errors route answers 200");
    s.assert_log_contains("wsgi-errors-m7x", "wsgi.errors.write reaches the error log");
    s.assert_log_contains("print-stdout-m7x", "print() to sys.stdout reaches the error log");
    s.assert_log_contains("print-stderr-m7x", "print() to sys.stderr reaches the error log");
    s.assert_log_contains("writelines-m7x", "wsgi.errors.writelines reaches the error log");
});

both!(threading_local_survives_between_requests, |m| {
    let s = ks(m);
    // Max 16 threads, 40 requests: some thread serves several. Its counter must keep
    // growing: one thread state per thread for its whole life, not one per request.
    let mut seen: std::collections::HashMap<(i64, i64), Vec<i64>> = Default::default();
    for _ in 0..40 {
        let j = s.get("/ks/threadlocal").json();
        let key = (j.get("pid").num() as i64, j.get("thread").num() as i64);
        seen.entry(key).or_default().push(j.get("count").num() as i64);
    }
    let repeated = seen.values().filter(|v| v.len() > 1).count();
    assert!(repeated > 0, "some thread served more than one request: {seen:?}");
    for (k, counts) in &seen {
        for w in counts.windows(2) {
            assert!(
                w[1] > w[0],
                "threading.local on thread {k:?} was reset between requests: {counts:?}"
            );
        }
    }
});

/// Sends `GET path` and reads the raw response to its end, noting when `marker` first
/// arrived (time since the request was sent).
fn raw_with_arrival(s: &Server, path: &str, marker: &[u8]) -> (Vec<u8>, Option<Duration>) {
    use std::io::Read;
    let mut c = s.client().connect();
    let sent = Instant::now();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    c.write_all(req.as_bytes()).unwrap();
    let (mut raw, mut seen, mut buf) = (Vec::new(), None, [0u8; 65536]);
    loop {
        let n = c.read(&mut buf).unwrap();
        if n == 0 {
            return (raw, seen);
        }
        raw.extend_from_slice(&buf[..n]);
        if seen.is_none() && raw.windows(marker.len()).any(|w| w == marker) {
            seen = Some(sent.elapsed());
        }
    }
}

both!(streamed_blocks_arrive_before_a_pause_and_close_ones_share_writes, |m| {
    let s = ks(m);
    let (raw, before_pause) = raw_with_arrival(&s, "/ks/trickle?30,1.5", b"block029;");
    let before_pause = before_pause.expect("the blocks yielded before the pause arrive");
    assert!(
        before_pause < Duration::from_millis(1000),
        "blocks yielded before a 1.5 s pause reach the client during it ({before_pause:?})"
    );
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let chunks = common::http::chunks_of(&raw[head_end..]);
    let expected: Vec<u8> =
        (0..30).flat_map(|i| format!("block{i:03};").into_bytes()).chain(*b"last").collect();
    assert_eq!(chunks.concat(), expected, "every block arrives, in order");
    if m.is_ours() {
        assert!(
            chunks.len() <= 15,
            "30 blocks yielded back to back go out in a few writes: {} chunks",
            chunks.len()
        );
    } else if !m.is_daemon() {
        // Reference: mod_wsgi 4.9.4 embedded passes and flushes every block on its own
        // (its daemon mode relays what has arrived together).
        assert_eq!(chunks.len(), 31, "mod_wsgi 4.9.4 sends one chunk per block");
    }
});

both!(streamed_answers_to_a_request_body_arriving_line_by_line, |m| {
    // The client sends each line only after the answer to the one before: what the
    // application yields must not wait behind its next read of the body.
    if m == Module::ModWsgiDaemon {
        return; // mod_wsgi 4.9.4 daemon mode sends the whole body before any response.
    }
    use std::io::Read;
    let s = ks(m);
    let mut c = s.client().connect();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let head =
        "POST /ks/duplex HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 10\r\n\r\n";
    c.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    for line in ["one\n", "two\n", "x\n"] {
        c.write_all(line.as_bytes()).unwrap();
        let want = format!("got:{line}").into_bytes();
        while !raw.windows(want.len()).any(|w| w == want.as_slice()) {
            let n = c.read(&mut buf).unwrap_or_else(|e| {
                panic!("the answer to {line:?} arrives before the next line is sent: {e}")
            });
            assert!(n > 0, "the connection stays open while lines remain");
            raw.extend_from_slice(&buf[..n]);
        }
    }
});

both_embedded!(streams_with_uneven_pauses_stay_whole_under_load, |m| {
    // Eight clients at once, each streaming responses whose blocks come with short,
    // uneven pauses: the handler threads and the thread that flushes held blocks take
    // turns on each response many times over.
    let s = ks(m);
    let expected: Vec<u8> = (0..200).flat_map(|i| format!("{i:05},").into_bytes()).collect();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..15 {
                    let r = s.get("/ks/jitter?200");
                    assert_eq!(r.status, 200, "a jittery stream answers 200");
                    assert!(r.complete, "a jittery stream ends properly");
                    assert!(
                        r.body == expected,
                        "every block of a jittery stream arrives, in order"
                    );
                }
            });
        }
    });
    let log = s.error_log();
    assert!(!log.contains("exit signal"), "no Apache child died:\n{log}");
    assert_eq!(s.log_count("jitter block 199"), 8 * 15, "every stream's log lines arrive");
});

both!(a_client_leaving_a_slow_stream_stops_it, |m| {
    // A tick every 50 ms for 20 s: once the client has gone, the next ticks fail and the
    // application's generator is closed, well before it would end by itself.
    use std::io::Read;
    let s = ks(m);
    let off = s.log_len();
    let mut c = s.client().connect();
    c.write_all(b"GET /ks/slow-stream?400 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while !raw.windows(5).any(|w| w == b"tick\n") {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "the first tick arrives");
        raw.extend_from_slice(&buf[..n]);
    }
    drop(c);
    assert!(
        s.wait_log("slow-stream stopped after", Duration::from_secs(8)),
        "the stream stops soon after the client leaves:\n{}",
        s.log_since(off)
    );
});

both!(blocks_of_every_size_arrive_whole, |m| {
    // Blocks just under, at and over the 8 KB buffers small copies share.
    let s = Server::start(ServerSpec::kitchensink(m));
    let cycle = [1usize, 1000, 7999, 8000, 8001, 20000];
    let want: Vec<u8> =
        (0..60usize).flat_map(|i| std::iter::repeat_n((i % 251) as u8, cycle[i % 6])).collect();
    let r = s.get("/ks/sizes?60");
    assert_eq!(r.status, 200, "a stream of mixed block sizes answers 200");
    assert_eq!(r.body.len(), want.len(), "every byte arrives");
    assert!(r.body == want, "every block arrives whole and in order");
});

both!(a_block_larger_than_a_frame_arrives_whole, |m| {
    // 20 MiB in one block: more than one daemon protocol frame may carry.
    let s = Server::start(ServerSpec::kitchensink(m));
    let n = 20 << 20;
    let r = s.get(&format!("/ks/one-block?{n}"));
    assert_eq!(r.status, 200, "a 20 MiB block answers 200");
    assert_eq!(r.body.len(), n, "every byte arrives");
    assert!(r.body.iter().enumerate().all(|(i, &b)| b == i as u8), "in order");
});
