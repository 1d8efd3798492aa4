//! `wsgi.input`: every read method, mixing them, large and chunked bodies
//! (PEP 3333 "Input and Error Streams"; mod_wsgi reference 2.2 and 2.10).
mod common;
use common::http::chunked;
use common::json::Json;
use common::*;
use std::io::Write;

const MIXED_BODY: &[u8] = b"line1\nABCDEFGH\nline3\nline4\nline5\nline6\nrest-without-newline";

/// `len` bytes counting up modulo `period` (a prime, so blocks do not line up with it).
fn patterned(len: u32, period: u32) -> Vec<u8> {
    (0..len).map(|i| (i % period) as u8).collect()
}

/// POSTs `body` to `path` with chunked transfer encoding, in chunks of `piece` bytes.
fn post_chunked(s: &Server, path: &str, body: &[u8], piece: usize) -> Response {
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n",
        s.port
    )
    .into_bytes();
    raw.extend(chunked(body, piece));
    s.request_raw(&raw)
}

fn strs(j: &Json) -> Vec<String> {
    j.arr().iter().map(|v| v.str().to_string()).collect()
}

both!(echo_small_body, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let r = s.post("/ks/echo", b"hello world", "application/octet-stream");
    assert_eq!(r.status, 200, "POST /ks/echo answers 200");
    assert_eq!(r.body, b"hello world", "read() returns the whole body");
});

both!(echo_empty_body, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let r = s.post("/ks/echo", b"", "application/octet-stream");
    assert_eq!(r.status, 200, "POST with an empty body answers 200");
    assert_eq!(r.body, b"", "read() of an empty body returns b''");
});

both!(echo_large_body_binary, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let body: Vec<u8> = (0..(3 << 20)).map(|i: u32| (i * 31 + (i >> 10)) as u8).collect();
    let r = s.post("/ks/echo", &body, "application/octet-stream");
    assert_eq!(r.status, 200, "3 MiB POST answers 200");
    assert_eq!(r.body.len(), body.len(), "read() returns all 3 MiB");
    assert!(r.body == body, "read() returns the body byte for byte");
});

both!(read_n_in_steps, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let body = patterned(100_003, 251);
    let r = s.post("/ks/echo-sized", &body, "application/octet-stream");
    assert_eq!(r.status, 200, "read(1000) loop answers 200");
    assert!(r.body == body, "read(1000) until b'' returns the body byte for byte");
});

both!(mixed_read_methods_lose_nothing, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let r = s.post("/ks/read-mixed", MIXED_BODY, "text/plain");
    assert_eq!(r.status, 200, "read-mixed answers 200: {}", r.text());
    let j = r.json();
    let steps = j.arr();
    let get = |i: usize| -> &Json { &steps[i].arr()[1] };
    assert_eq!(get(0).str(), "line1\n", "readline() keeps the newline");
    assert_eq!(get(1).str(), "ABCDE", "read(5) returns 5 bytes");
    assert_eq!(get(2).str(), "FGH", "readline(3) returns at most 3 bytes");
    assert_eq!(
        get(3).str(),
        "\n",
        "readline() after a sized readline returns the rest of that line"
    );
    let mut joined = String::new();
    for step in steps {
        match &step.arr()[1] {
            Json::Str(t) => joined.push_str(t),
            Json::Arr(a) => a.iter().for_each(|v| joined.push_str(v.str())),
            Json::Null => {}
            other => panic!("unexpected step value {other}"),
        }
    }
    assert_eq!(
        joined.as_bytes(),
        MIXED_BODY,
        "readline/read(n)/readlines/iteration/read() mixed lose no byte"
    );
    assert_eq!(get(7).str(), "", "read() at EOF returns b''");
    assert_eq!(get(8).str(), "", "readline() at EOF returns b''");
});

both!(readline_honours_size, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let body = b"abcdefghijklmnopqrstuvwxyz\nxy\n\nlast";
    let r = s.post("/ks/readline-size", body, "text/plain");
    assert_eq!(r.status, 200, "readline-size answers 200: {}", r.text());
    let pieces = strs(&r.json());
    let mut n = 1;
    for p in &pieces {
        assert!(p.len() <= n, "readline({n}) returned {} bytes: {p:?}", p.len());
        if let Some(i) = p.find('\n') {
            assert_eq!(i, p.len() - 1, "readline() stops right after a newline: {p:?}");
        }
        n = (n * 2).min(16);
    }
    assert_eq!(pieces.concat().as_bytes(), body, "readline(n) pieces add up to the body");
});

both!(readlines_returns_every_line, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let r = s.post("/ks/readlines", b"a\nbb\n\nccc", "text/plain");
    assert_eq!(r.status, 200, "readlines answers 200");
    assert_eq!(
        strs(&r.json()),
        ["a\n", "bb\n", "\n", "ccc"],
        "readlines() keeps newlines and the last partial line"
    );
});

both!(iteration_yields_lines, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let r = s.post("/ks/iter-input", b"one\ntwo\nthree", "text/plain");
    assert_eq!(r.status, 200, "iter-input answers 200");
    assert_eq!(strs(&r.json()), ["one\n", "two\n", "three"], "iterating wsgi.input yields lines");
});

both!(body_sent_in_slow_pieces, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let body = patterned(200_000, 253);
    let mut c = s.client().connect();
    let head = format!(
        "POST /ks/echo HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        s.port,
        body.len()
    );
    c.write_all(head.as_bytes()).unwrap();
    for piece in body.chunks(50_000) {
        std::thread::sleep(std::time::Duration::from_millis(100));
        c.write_all(piece).unwrap();
    }
    let r = common::http::read_response(&mut c, false);
    assert_eq!(r.status, 200, "a body arriving in pieces answers 200");
    assert!(r.body == body, "read() waits for every piece of the body");
});

both!(chunked_request_refused_by_default, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    let r = post_chunked(&s, "/ks/echo", b"hello chunked", 4);
    assert_eq!(
        r.status, 411,
        "a chunked request body is refused with 411 unless WSGIChunkedRequest On"
    );
});

both!(chunked_request_read_with_directive, |m| {
    let s = Server::start(ServerSpec::kitchensink(m).config("WSGIChunkedRequest On"));
    let body = patterned(70_000, 249);
    // In 7000-byte chunks, and in 3-byte ones (the de-chunked body then comes in
    // thousands of small pieces).
    for piece in [7000, 3] {
        let r = post_chunked(&s, "/ks/echo", &body, piece);
        assert_eq!(r.status, 200, "a body in {piece}-byte chunks answers 200\n{}", r.text());
        assert!(r.body == body, "read() returns the body sent in {piece}-byte chunks, whole");
    }
});

both!(chunked_request_read_n_until_empty, |m| {
    let s = Server::start(ServerSpec::kitchensink(m).config("WSGIChunkedRequest On"));
    let body = patterned(20_000, 241);
    let r = post_chunked(&s, "/ks/echo-sized", &body, 333);
    assert_eq!(r.status, 200, "chunked read(n) loop answers 200");
    assert!(r.body == body, "read(n) on a chunked body ends with b'' after every byte");
});

both!(read_n_returns_once_n_bytes_arrived, |m| {
    // The client sends the first 100 of 1000 announced bytes and waits for the answer:
    // read(100) must not wait for bytes the application did not ask for (daemon mode
    // reads ahead only what has already arrived).
    if m == Module::ModWsgiDaemon {
        return; // mod_wsgi 4.9.4 daemon mode sends the whole body before any response.
    }
    let s = Server::start(ServerSpec::kitchensink(m));
    let mut c = s.client().connect();
    c.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let head = format!(
        "POST /ks/read-first?100 HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: 1000\r\n\r\n",
        s.port
    );
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(&[b'a'; 100]).unwrap();
    let r = common::http::read_response(&mut c, false);
    assert_eq!(r.status, 200, "read(100) answers while 900 bytes are still to come");
    assert_eq!(r.body, [b'a'; 100], "the first 100 bytes are echoed");
});

both!(keepalive_requests_do_not_share_input, |m| {
    // Two POSTs on one connection: the second app must see only its own body.
    let s = Server::start(ServerSpec::kitchensink(m));
    let mut c = s.client().connect();
    let req = |body: &str| {
        format!(
            "POST /ks/echo HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n\r\n{body}",
            s.port,
            body.len()
        )
    };
    c.write_all(req("first-body").as_bytes()).unwrap();
    let r1 = common::http::read_response(&mut c, false);
    c.write_all(req("second").as_bytes()).unwrap();
    let r2 = common::http::read_response(&mut c, false);
    assert_eq!(r1.body, b"first-body", "first keep-alive request reads its body");
    assert_eq!(r2.body, b"second", "second keep-alive request reads only its own body");
});

both!(read_n_past_the_end_returns_what_there_is, |m| {
    // A large read(n) (which goes straight into the returned bytes) on a shorter body.
    let s = Server::start(ServerSpec::kitchensink(m));
    let body = patterned(20_000, 251);
    let r = s.post("/ks/read-first?65536", &body, "application/octet-stream");
    assert_eq!(r.status, 200, "read(65536) on a 20,000-byte body answers 200");
    assert!(r.body == body, "read(65536) returns the 20,000 bytes there are");
});

both!(expect_100_continue_is_answered_before_the_body_is_sent, |m| {
    // The client holds the body back until the server says 100 Continue, which Apache
    // sends when the application first reads.
    let s = Server::start(ServerSpec::kitchensink(m));
    let body = patterned(30_000, 239);
    let mut c = s.client().connect();
    c.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /ks/echo HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        s.port,
        body.len()
    );
    c.write_all(head.as_bytes()).unwrap();
    let mut interim = Vec::new();
    while !interim.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = common::http::read_retry(&mut c, &mut byte).expect("an interim response");
        assert_eq!(n, 1, "the server answers before the body is sent: {interim:?}");
        interim.push(byte[0]);
    }
    assert!(
        interim.starts_with(b"HTTP/1.1 100 Continue\r\n"),
        "the interim answer is 100 Continue: {}",
        String::from_utf8_lossy(&interim)
    );
    c.write_all(&body).unwrap();
    let r = common::http::read_response(&mut c, false);
    assert_eq!(r.status, 200, "the request then answers 200");
    assert!(r.body == body, "and the body sent after 100 Continue is read whole");
});

both!(body_over_limit_request_body_is_413, |m| {
    let s = Server::start(
        ServerSpec::kitchensink(m).config("LimitRequestBody 66000\nWSGIChunkedRequest On"),
    );
    let r = s.post("/ks/echo", &[b'x'; 66_001], "application/octet-stream");
    assert_eq!(r.status, 413, "a body over LimitRequestBody answers 413: {}", r.text());
    // Chunked, the size is only found out while the body is read: here at the chunk
    // right after the application's first 64 KiB, which daemon mode reads ahead of it.
    // The application must not see the end of a body that was cut off.
    let r = post_chunked(&s, "/ks/read-log", &[b'w'; 50_000], 1000);
    assert_eq!(r.status, 200, "a chunked body under the limit is read: {}", r.text());
    assert!(s.wait_log("read-log: 50000 bytes, to the end", std::time::Duration::from_secs(5)));
    let off = s.log_len();
    let r = post_chunked(&s, "/ks/read-log", &[b'w'; 300_000], 1024);
    assert_eq!(r.status, 413, "a long chunked body over the limit answers 413: {}", r.text());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        !s.log_since(off).contains("to the end"),
        "the application does not read a cut-off body as complete:\n{}",
        s.log_since(off)
    );
    let r = s.post("/ks/echo", &[b'y'; 66_000], "application/octet-stream");
    assert_eq!(r.status, 200, "a body at the limit is read");
    assert!(r.body == [b'y'; 66_000], "whole");
});
