//! Daemon mode: `WSGIDaemonProcess` groups of processes that Apache's parent forks and
//! supervises, and that Apache's children hand requests to over UNIX sockets.
//!
//! - The parent ([`supervisor`]) makes one listening socket per group, owned by Apache's
//!   user with mode 0600, forks the group's processes, and forks a process again when it
//!   dies. Apache's restarts and stops end the old generation through the configuration
//!   pool (SIGTERM, then SIGKILL after three seconds).
//! - A daemon process ([`process`]) closes Apache's listeners, drops to its `user=` and
//!   `group=` (never root), starts Python, and runs `threads=` workers that wait on the
//!   group's socket and the idle connections together ([`waiting`]) and serve one
//!   request at a time ([`worker`]).
//! - An Apache child ([`client`]) connects, sends the request facts with the
//!   generation's secret, answers the daemon's reads of the request body, and streams the
//!   framed response ([`protocol`]) into Apache's output filters.

pub mod client;
pub mod monitor;
pub mod process;
pub mod protocol;
mod reader;
pub mod state;
pub mod supervisor;
mod waiting;
pub mod worker;
