//! WSGIDaemonProcess options not covered by tests/daemon.rs, one test each, against our
//! module in daemon mode: supplementary-groups, python-home, graceful-timeout,
//! shutdown-timeout, deadlock-timeout, socket-timeout, listen-backlog,
//! send-buffer-size, receive-buffer-size, header-buffer-size, response-buffer-size,
//! response-flush-delay, memory-limit and cpu-time-limit, and connect-timeout against
//! a full listen backlog.

mod common;

use common::{daemon_server, json_ok, mount_conf, wait_until, Module, Server};
use std::process::Command;
use std::time::{Duration, Instant};

fn server(options: &str) -> Server {
    daemon_server(Module::OursDaemon, &mount_conf("/l", "limits.wsgi"), options)
}

/// `/l/facts` as JSON, asserting 200.
fn facts(s: &Server) -> common::json::Json {
    json_ok(&s.get("/l/facts"), "GET /l/facts")
}

fn pid(s: &Server) -> f64 {
    facts(s).get("pid").num()
}

/// Whether, within 10 s, a process other than `before` answers.
fn replaced_within_10s(s: &Server, before: f64) -> bool {
    wait_until(Duration::from_secs(10), || s.get("/l/facts").status == 200 && pid(s) != before)
}

#[test]
fn supplementary_groups_are_set() {
    let exists = Command::new("getent").args(["group", "wsgi-extra"]).output().unwrap();
    if !exists.status.success() {
        let made = Command::new("flock")
            .args(["/tmp/mod_wsgi_rs-useradd.lock", "groupadd", "--system", "wsgi-extra"])
            .status()
            .expect("run groupadd");
        assert!(made.success(), "groupadd wsgi-extra succeeds");
    }
    let out = Command::new("getent").args(["group", "wsgi-extra"]).output().unwrap();
    let gid: f64 = String::from_utf8_lossy(&out.stdout).split(':').nth(2).unwrap().parse().unwrap();
    let s = server("supplementary-groups=wsgi-extra");
    let groups = facts(&s).get("groups").arr().iter().map(|g| g.num()).collect::<Vec<_>>();
    assert!(
        groups.contains(&gid),
        "the daemon has wsgi-extra ({gid}) among its groups: {groups:?}"
    );
}

#[test]
fn python_home_selects_the_virtualenv() {
    let venv = common::test_venv();
    let s = server(&format!("python-home={}", venv.display()));
    let f = facts(&s);
    assert_eq!(f.get("prefix").str(), venv.to_str().unwrap(), "sys.prefix is the python-home venv");
    assert!(f.get("flask").bool(), "packages of the venv import");
}

#[test]
fn graceful_timeout_lets_a_recycled_process_finish_its_request() {
    // maximum-requests=1: the quick request recycles the process while the slow one
    // is still running; graceful-timeout gives the slow one time to finish.
    let s = server("threads=2 maximum-requests=1 graceful-timeout=10");
    let slow = {
        let client = s.client();
        std::thread::spawn(move || client.get("/l/sleep?2"))
    };
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(s.get("/l/facts").status, 200, "the quick request is served");
    let slow = slow.join().unwrap();
    assert_eq!(slow.status, 200, "the in-flight slow request completes during graceful-timeout");
    assert!(
        s.wait_log("maximum-requests=1 reached", Duration::from_secs(5)),
        "the recycle is logged"
    );
}

#[test]
fn shutdown_timeout_bounds_a_stuck_process() {
    let s = server("request-timeout=1 shutdown-timeout=1");
    let before = pid(&s);
    let r = s.get("/l/sleep?30");
    assert_eq!(r.status, 504, "the stuck request is answered 504");
    assert!(
        replaced_within_10s(&s, before),
        "a new process serves within a few seconds of shutdown-timeout=1"
    );
}

#[test]
fn deadlock_timeout_restarts_a_process_whose_gil_is_stuck() {
    let s = server("threads=2 deadlock-timeout=2");
    let before = pid(&s);
    let off = s.log_len();
    let r = s.get("/l/hold-gil?30");
    assert_eq!(r.status, 502, "the request of the stuck process gets 502");
    s.assert_log_since(off, "deadlock-timeout", "the log says why the process restarted");
    assert!(replaced_within_10s(&s, before), "a new process serves afterwards");
}

#[test]
fn socket_timeout_answers_504() {
    let s = server("socket-timeout=2");
    let off = s.log_len();
    let started = Instant::now();
    let r = s.get("/l/sleep?6");
    assert_eq!(r.status, 504, "a daemon silent for longer than socket-timeout gives 504");
    assert!(started.elapsed() < Duration::from_secs(6), "the answer does not wait for the app");
    s.assert_log_since(off, "did not answer within", "the timeout is logged");
}

#[test]
fn listen_backlog_is_accepted_and_serves() {
    let s = server("listen-backlog=5");
    assert_eq!(s.get("/l/facts").status, 200, "a group with listen-backlog=5 serves");
}

#[test]
fn full_backlog_answers_503_after_connect_timeout() {
    // One thread, busy for 3 s; a backlog of one holds at most two more connections. The
    // rest cannot connect: after connect-timeout=1 they get 503, well before the thread
    // is free (a blocking connect would wait for it, with no time limit).
    let s = server("threads=1 listen-backlog=1 connect-timeout=1");
    let off = s.log_len();
    let started = Instant::now();
    let requests: Vec<_> = (0..6)
        .map(|_| {
            let client = s.client();
            std::thread::spawn(move || (client.get("/l/sleep?3").status, started.elapsed()))
        })
        .collect();
    let answers: Vec<_> = requests.into_iter().map(|r| r.join().unwrap()).collect();
    let refused: Vec<_> = answers.iter().filter(|(status, _)| *status == 503).collect();
    assert!(refused.len() >= 2, "requests beyond the backlog get 503: {answers:?}");
    assert!(
        refused.iter().all(|(_, at)| *at < Duration::from_millis(2900)),
        "the 503s come after connect-timeout, before the busy thread is free: {answers:?}"
    );
    assert!(
        answers.iter().all(|(status, _)| *status == 200 || *status == 503),
        "the others are served: {answers:?}"
    );
    s.assert_log_since(off, "Unable to connect to WSGI daemon process group", "the 503 is logged");
}

/// The daemon's (SO_SNDBUF, SO_RCVBUF) pairs on its connections from Apache children.
fn connection_buffers(s: &Server) -> Vec<(f64, f64)> {
    let pairs = facts(s).get("unix_connection_buffers").arr().to_vec();
    pairs.iter().map(|p| (p.arr()[0].num(), p.arr()[1].num())).collect()
}

#[test]
fn send_and_receive_buffer_sizes_apply_to_connections() {
    let default = connection_buffers(&server(""));
    assert!(!default.is_empty(), "the request's own connection is listed");
    // Linux doubles what setsockopt asks for, to allow for its bookkeeping.
    let ours = (2.0 * 65536.0, 2.0 * 98304.0);
    assert!(!default.contains(&ours), "defaults differ from the sizes asked for: {default:?}");
    let sized = connection_buffers(&server("send-buffer-size=65536 receive-buffer-size=98304"));
    assert!(sized.contains(&ours), "connection buffers {sized:?} should include {ours:?}");
}

#[test]
fn header_buffer_size_limits_response_headers() {
    let s = server("header-buffer-size=8192");
    let off = s.log_len();
    assert_eq!(
        s.get("/l/big-header?20000").status,
        500,
        "a 20 KB header over an 8 KB limit is 500"
    );
    s.assert_log_since(off, "header-buffer-size", "the log names the option");
    assert_eq!(s.get("/l/big-header?1000").status, 200, "a small header passes");
}

#[test]
fn response_buffer_size_keeps_large_streams_whole() {
    let s = server("response-buffer-size=65536");
    let r = s.get("/l/stream?64");
    assert_eq!(r.status, 200, "the stream is served");
    assert_eq!(r.body.len(), 64 * 16 * 1024, "every byte of a 1 MiB stream arrives");
}

#[test]
fn response_flush_delay_joins_close_blocks_and_holds_none() {
    use std::io::{Read, Write};
    // 20 ms against blocks 1 ms apart: a loaded test machine that delays a block a few
    // milliseconds still sees them joined.
    let s = server("response-flush-delay=20");
    let mut c = s.client().connect();
    let started = Instant::now();
    c.write_all(b"GET /l/trickle?30,0.001,1.5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let mut before_pause = None;
    loop {
        let n = c.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if before_pause.is_none() && raw.windows(9).any(|w| w == b"block029;") {
            before_pause = Some(started.elapsed());
        }
    }
    let before_pause = before_pause.expect("the blocks before the pause arrive");
    assert!(
        before_pause < Duration::from_millis(1000),
        "the blocks yielded before a 1.5 s pause reach the client before it ends ({before_pause:?})"
    );
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(
        String::from_utf8_lossy(&raw[..head_end]).contains("Transfer-Encoding: chunked"),
        "the streamed response is chunked"
    );
    let chunks = common::http::chunks_of(&raw[head_end..]);
    let body: Vec<u8> = chunks.concat();
    let expected: Vec<u8> =
        (0..30).flat_map(|i| format!("block{i:03};").into_bytes()).chain(*b"last").collect();
    assert_eq!(body, expected, "every block arrives, in order");
    assert!(
        chunks.len() <= 15,
        "30 blocks yielded 1 ms apart go out a few at a time, not one write each: {} chunks",
        chunks.len()
    );
}

#[test]
fn memory_limit_sets_rlimit_data() {
    let s = server("memory-limit=1000000000");
    let limit = facts(&s).get("rlimit_data").arr().iter().map(|v| v.num()).collect::<Vec<_>>();
    assert_eq!(limit, vec![1e9, 1e9], "RLIMIT_DATA is the memory-limit");
}

#[test]
fn cpu_time_limit_recycles_the_process() {
    let s = server("cpu-time-limit=2");
    let before = pid(&s);
    let cpu = facts(&s).get("rlimit_cpu").arr()[0].num();
    assert_eq!(cpu, 2.0, "RLIMIT_CPU soft limit is the cpu-time-limit");
    let off = s.log_len();
    assert_eq!(s.get("/l/burn?3").status, 200, "the request that crosses the limit completes");
    assert!(
        s.wait_log("cpu-time-limit (2s) reached", Duration::from_secs(10)),
        "the graceful restart is logged: {}",
        s.log_since(off)
    );
    assert!(replaced_within_10s(&s, before), "a new process serves afterwards");
}
