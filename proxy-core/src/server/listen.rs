//! Binding listening sockets.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Binds a TCP listener on `addr` with `SO_REUSEADDR` (and `IPV6_V6ONLY` for IPv6, so
/// `[::]:80` and `0.0.0.0:80` can both be listed), listening with `backlog`.
///
/// # Errors
///
/// The socket, bind or listen failure.
pub fn bind_tcp(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}
