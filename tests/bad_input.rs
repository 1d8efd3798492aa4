//! Bad input from clients and applications (issue 2, point 8): malformed requests,
//! truncated bodies, clients that go away mid-response, apps that fail in every way.
//! Each gets the right status, the child keeps serving, and nothing leaks: RSS of the
//! Apache children stays bounded over a few thousand such requests.
mod common;
use common::*;
use std::io::Write;
use std::time::Duration;

fn assert_still_serving(s: &Server, after: &str) {
    let r = s.get("/ks/status/200");
    assert_eq!(r.status, 200, "the server keeps serving after {after}");
}

both!(malformed_requests_get_400, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let cases: &[(&[u8], &str)] = &[
        (b"GARBAGE\r\n\r\n", "a request line without method/URI/version"),
        (
            b"GET /ks/status/200 HTTP/1.1\r\nHost: x\r\nBadHeaderNoColon\r\n\r\n",
            "a header line without a colon",
        ),
        (b"GET /ks/status/200 HTTP/1.1\r\n\r\n", "HTTP/1.1 without Host"),
        (b"GET /ks/st\x01atus HTTP/1.1\r\nHost: x\r\n\r\n", "a control character in the URI"),
        (
            b"POST /ks/echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            "a non-numeric Content-Length",
        ),
        (
            b"POST /ks/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            "an unknown transfer coding",
        ),
    ];
    for (raw, what) in cases {
        let r = s.request_raw(raw);
        assert_eq!(r.status, 400, "{what} gets 400 Bad Request");
    }
    assert_still_serving(&s, "malformed requests");
});

both!(truncated_body_then_close, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let off = s.log_len();
    let r = s.client().request_raw_then_shutdown(
        b"POST /ks/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly-ten-b",
    );
    // The app's read() fails (mod_wsgi: OSError "request data read error") -> 500, or
    // nothing comes back at all if the server notices the client is gone first.
    assert!(
        r.status == 500 || r.status == 400 || r.status == 0,
        "a body shorter than Content-Length is an error, not a short success: got {}",
        r.status
    );
    assert!(r.status != 200, "a truncated body never yields 200");
    if r.status == 500 {
        s.assert_log_since(off, "Error", "the failed read is logged");
    }
    assert_still_serving(&s, "a truncated body");
});

both!(client_disconnect_mid_stream, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    for _ in 0..3 {
        let mut c = s.client().connect();
        c.write_all(b"GET /ks/big-stream HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = [0u8; 65536];
        let _ = common::http::read_retry(&mut c, &mut buf);
        // Drop: the client disappears with ~64 MiB still to come.
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_still_serving(&s, "clients disconnecting mid-response");
    let r = s.get("/ks/stream");
    assert_eq!(r.body.len(), 100 * 1024, "a full stream after disconnected ones is complete");
});

/// App error routes and the status each must get.
const ERROR_ROUTES: &[(&str, u16)] = &[
    ("/ks/str-body", 500),
    ("/ks/none-body", 500),
    ("/ks/no-start-response", 500),
    ("/ks/bad-status", 500),
    ("/ks/bad-status-bytes", 500),
    ("/ks/status-injection", 500),
    ("/ks/header-injection", 500),
    ("/ks/header-name-bad", 500),
    ("/ks/header-not-tuple", 500),
    ("/ks/non-latin1-header", 500),
    ("/ks/raise-before-start", 500),
    ("/ks/raise-after-start", 500),
    ("/ks/exc-info-before", 500),
    // Status already sent when these fail: 200 with a cut body.
    ("/ks/raise-in-iter", 200),
    ("/ks/exc-info-after-headers", 200),
];

both!(app_errors_get_right_status, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    for (path, want) in ERROR_ROUTES {
        let r = s.get(path);
        assert_eq!(r.status, *want, "{path} answers {want}");
        if *want == 200 && m.cuts_failed_responses() {
            assert!(!r.complete, "{path}: the failure shows as a cut response");
        }
    }
    assert_still_serving(&s, "every kind of app error");
});

both!(app_error_logs_one_exception_per_request, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let off = s.log_len();
    s.get("/ks/raise-before-start");
    s.assert_log_since(off, "raised before start_response", "the app's exception is logged");
    std::thread::sleep(Duration::from_millis(300));
    let new = s.log_since(off);
    let n =
        new.lines().filter(|l| l.contains("RuntimeError: raised before start_response")).count();
    assert_eq!(n, 1, "one request, one logged exception (not repeated):\n{new}");
});

/// Sum of VmRSS (KiB) over the Apache parent's children.
fn children_rss(s: &Server) -> u64 {
    s.child_pids().into_iter().map(rss_kib).sum()
}

fn one_bad_round(s: &Server, i: usize) {
    let (path, _) = ERROR_ROUTES[i % ERROR_ROUTES.len()];
    let _ = s.get(path);
    match i % 4 {
        0 => {
            let _ = s.request_raw(b"GARBAGE\r\n\r\n");
        }
        1 => {
            let _ = s.client().request_raw_then_shutdown(
                b"POST /ks/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort",
            );
        }
        2 => {
            let _ = s.post("/ks/echo", &[b'z'; 20_000], "application/octet-stream");
        }
        _ => {
            let _ = s.get("/ks/headers");
        }
    }
}

both!(no_leak_over_many_bad_requests, |m| {
    // One child process with 8 threads, so RSS is measured on a fixed set of processes.
    let s = Server::start(
        ServerSpec::kitchensink(m)
            .config("ServerLimit 1\nStartServers 1\nMaxRequestWorkers 8\nMinSpareThreads 1\nMaxSpareThreads 8")
            .log_level("crit"),
    );
    // Warm up: imports, caches, arenas, thread states of every thread.
    for i in 0..300 {
        one_bad_round(&s, i);
    }
    let before = children_rss(&s);
    let pids_before = s.child_pids();
    for i in 0..2000 {
        one_bad_round(&s, i);
    }
    let after = children_rss(&s);
    assert_eq!(
        s.child_pids(),
        pids_before,
        "the same child served everything (no crash, no respawn)"
    );
    let growth = after.saturating_sub(before);
    eprintln!("children RSS: {before} KiB -> {after} KiB over 2000 rounds");
    // ~4000 requests: a leak of even 4 KiB per request would show as 16 MiB.
    assert!(
        growth < 12 * 1024,
        "children RSS grew by {growth} KiB over 2000 bad-request rounds ({before} -> {after} KiB)"
    );
    assert_still_serving(&s, "2000 bad-request rounds");
});
