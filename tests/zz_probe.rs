mod common;
use common::*;
#[test]
fn probe() {
    let s = Server::start(ServerSpec::kitchensink(Module::ModWsgi));
    for p in [
        "write-callable",
        "lazy-start",
        "exc-info-before",
        "exc-info-after-headers",
        "start-twice",
        "start-twice-after-body",
        "str-body",
        "none-body",
        "no-start-response",
        "bad-status",
        "bad-status-bytes",
        "status-injection",
        "header-injection",
        "header-name-bad",
        "header-not-tuple",
        "hop-by-hop",
        "non-latin1-header",
        "latin1-header",
        "raise-before-start",
        "raise-after-start",
        "raise-in-iter",
        "content-length-short",
        "close-called",
        "close-on-error",
        "close-log",
        "file-wrapper-offset",
        "file-wrapper-length",
        "file-wrapper-filelike",
        "headers",
        "empty-iter",
        "empty-strings",
        "generator",
        "status/204",
        "status/304",
        "status/418",
    ] {
        let r = s.get(&format!("/ks/{p}"));
        let b = r.text();
        let b: String = b.chars().take(120).collect();
        println!(
            "=== {p}: {} {:?} complete={} chunked={} len={}\n  {:?}\n  {b:?}",
            r.status,
            r.reason,
            r.complete,
            r.chunked,
            r.body.len(),
            r.headers.iter().filter(|(k, _)| k != "Date" && k != "Server").collect::<Vec<_>>()
        );
    }
    let r = s.client().head("/ks/head");
    println!("HEAD {} {:?} {:?}", r.status, r.headers, r.body);
    let r = s.get("/ks/file-wrapper");
    println!("fw {} {:?} ok={}", r.status, r.headers, r.body == static_file_bytes());
    std::thread::sleep(std::time::Duration::from_millis(500));
    println!("{}", s.error_log());
}
