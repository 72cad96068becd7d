//! Which process serves a TCP port, read from /proc (the kernel's socket table, then each
//! process's descriptors). A readiness probe that answers says that the port serves, not that
//! the process we started does: a second copy that lost the race for the port exits, while
//! the first copy keeps answering its probe.

use procfs::net::TcpState;
use procfs::process::FDTarget;

/// The pid of the process listening on `port` (any local address), if there is one.
pub fn listener_of(port: u16) -> Option<u32> {
    let sockets: Vec<u64> = procfs::net::tcp()
        .into_iter()
        .chain(procfs::net::tcp6())
        .flatten()
        .filter(|e| e.state == TcpState::Listen && e.local_address.port() == port)
        .map(|e| e.inode)
        .collect();
    if sockets.is_empty() {
        return None;
    }
    procfs::process::all_processes()
        .ok()?
        .flatten()
        .find(|process| {
            process.fd().is_ok_and(|fds| {
                fds.flatten()
                    .any(|fd| matches!(fd.target, FDTarget::Socket(i) if sockets.contains(&i)))
            })
        })
        .map(|process| process.pid as u32)
}

/// The executable a process runs, to tell one of our nodes from anything else on a port.
pub fn executable_of(pid: u32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listener_of_a_port_is_the_process_that_bound_it() {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        assert_eq!(listener_of(port), Some(std::process::id()));
        drop(socket);
        assert_eq!(listener_of(port), None);
    }
}
