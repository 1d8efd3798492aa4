//! A few core requests under each MPM (event, worker, prefork), concurrent requests, and
//! a graceful restart (issue 2, point 6).
mod common;
use common::*;
use std::thread;

fn core_requests(s: &Server, mpm: Mpm) {
    let j = s.get("/ks/environ").json();
    let e = j.get("environ");
    if s.spec.module.is_daemon() {
        // One daemon process with threads=4, whatever the MPM.
        assert!(e.get("wsgi.multithread").bool(), "{mpm:?} + daemon: wsgi.multithread");
        assert!(!e.get("wsgi.multiprocess").bool(), "{mpm:?} + daemon: not wsgi.multiprocess");
    } else {
        assert_eq!(
            e.get("wsgi.multithread").bool(),
            mpm != Mpm::Prefork,
            "{mpm:?}: wsgi.multithread"
        );
        assert!(e.get("wsgi.multiprocess").bool(), "{mpm:?}: wsgi.multiprocess");
    }
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 199) as u8).collect();
    let r = s.post("/ks/echo", &body, "application/octet-stream");
    assert!(r.body == body, "{mpm:?}: POST body echoed byte for byte");
    let r = s.get("/ks/stream");
    assert_eq!(r.body.len(), 100 * 1024, "{mpm:?}: streamed response complete");
    let r = s.get("/ks/file-wrapper");
    assert!(r.body == static_file_bytes(), "{mpm:?}: file_wrapper response complete");
    let r = s.get("/ks/raise-before-start");
    assert_eq!(r.status, 500, "{mpm:?}: app exception gives 500");
    let r = s.get("/ks/status/200");
    assert_eq!(r.status, 200, "{mpm:?}: served after an app exception");
}

fn concurrent(s: &Server, mpm: Mpm) {
    let port = s.port;
    let handles: Vec<_> = (0..6)
        .map(|i| {
            thread::spawn(move || {
                let c = common::http::Client::new(port);
                let body = format!("concurrent-{i}-").repeat(1000);
                let r = c.post("/ks/echo", body.as_bytes(), "text/plain");
                (r.status, r.body == body.as_bytes())
            })
        })
        .collect();
    for h in handles {
        let (status, same) = h.join().unwrap();
        assert_eq!(status, 200, "{mpm:?}: concurrent request answered 200");
        assert!(same, "{mpm:?}: concurrent requests do not mix bodies");
    }
    let slow: Vec<_> = (0..4)
        .map(|_| thread::spawn(move || common::http::Client::new(port).get("/ks/slow?0.3").status))
        .collect();
    for h in slow {
        assert_eq!(h.join().unwrap(), 200, "{mpm:?}: parallel slow requests all answered");
    }
}

fn run(m: Module, mpm: Mpm) {
    let s = Server::start(ServerSpec::kitchensink(m).mpm(mpm));
    core_requests(&s, mpm);
    concurrent(&s, mpm);
}

both!(event_mpm, |m| {
    run(m, Mpm::Event);
});

both!(worker_mpm, |m| {
    run(m, Mpm::Worker);
});

both!(prefork_mpm, |m| {
    run(m, Mpm::Prefork);
});

both!(graceful_restart_keeps_serving, |m| {
    let s = Server::start(ServerSpec::kitchensink(m));
    assert_eq!(s.get("/ks/status/200").status, 200, "served before the restart");
    let before = s.log_count("resuming normal operations");
    let st = std::process::Command::new(APACHE2)
        .arg("-f")
        .arg(&s.conf)
        .arg("-k")
        .arg("graceful")
        .status()
        .unwrap();
    assert!(st.success(), "apache2 -k graceful succeeds");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while s.log_count("resuming normal operations") <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "Apache resumes after a graceful restart:\n{}",
            s.error_log()
        );
        thread::sleep(std::time::Duration::from_millis(100));
    }
    // The module was unloaded and loaded again: it must still serve.
    for _ in 0..5 {
        let r = s.get("/ks/environ");
        assert_eq!(r.status, 200, "served after a graceful restart: {}", r.text());
    }
    assert!(alive(s.pid()), "the Apache parent survives a graceful restart");
});
