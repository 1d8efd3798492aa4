//! `mod_wsgi_rs-express`: one command from a WSGI file to a running Apache.

fn main() {
    eprintln!("mod_wsgi_rs-express: not built yet");
    std::process::exit(2);
}
