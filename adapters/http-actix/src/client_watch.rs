//! Noticing that a client has gone while its request waits for a hash.
//!
//! actix-web keeps polling a handler's future after an HTTP/1 client has
//! closed its connection: a login whose client gave up would still wait for
//! a hashing slot, and then hash, for nobody. [`on_connect`] keeps a
//! duplicate of each TCP connection's socket with the connection; the
//! handlers that hash race their use case against a watcher that peeks at
//! that socket every [`WATCH_INTERVAL`], and drop the use case (which leaves
//! the hashing queue, its hash never computed) once the peer has closed or
//! reset the connection.
//!
//! Without [`on_connect`] on the server (a host's own `HttpServer` that does
//! not install it), or behind TLS terminated by actix itself (the connection
//! is then no plain `TcpStream`), nothing is detected and every request runs
//! to its end, as before. A client that half-closes its side after sending
//! the request (`shutdown(SHUT_WR)`, rare for HTTP clients) looks gone too.

use std::any::Any;
use std::future::Future;
use std::io::ErrorKind;
use std::os::fd::AsFd as _;
use std::pin::pin;
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::dev::Extensions;
use futures_util::future::{Either, select};

use crate::error::ApiError;

/// How often a waiting request looks whether its client is still there.
pub(crate) const WATCH_INTERVAL: Duration = Duration::from_millis(25);

/// A duplicate of a connection's TCP socket, kept with the connection by
/// [`on_connect`]; closed when the connection ends.
#[derive(Debug)]
struct ClientSocket(std::net::TcpStream);

impl ClientSocket {
    /// Whether the peer has closed (end of stream) or reset the connection.
    /// Peeking reads nothing: actix still finds every byte there.
    fn is_gone(&self) -> bool {
        let mut byte = [0u8; 1];
        match self.0.peek(&mut byte) {
            Ok(0) => true,
            // A pipelined request, or the rest of a body: still there.
            Ok(_) => false,
            Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted),
        }
    }

    /// Ends when the client has gone; never otherwise.
    async fn gone(&self) {
        loop {
            actix_web::rt::time::sleep(WATCH_INTERVAL).await;
            if self.is_gone() {
                return;
            }
        }
    }
}

/// The connection callback that lets Portcullis notice clients that leave
/// while their request waits for a password hash: install it on your
/// server with [`HttpServer::on_connect`](actix_web::HttpServer::on_connect).
/// `portcullis serve` does.
///
/// It keeps a duplicate of each plain TCP connection's socket (one more
/// file descriptor per open connection); other connections (TLS, Unix
/// sockets) are left alone and simply not watched.
///
/// ```no_run
/// use actix_web::{App, HttpServer};
/// use portcullis_http_actix::{mount, on_connect};
///
/// # async fn run(service: portcullis_application::UserService) -> std::io::Result<()> {
/// HttpServer::new(move || App::new().configure(mount(service.clone(), "/api")))
///     .on_connect(on_connect)
///     .bind(("127.0.0.1", 8000))?
///     .run()
///     .await
/// # }
/// ```
pub fn on_connect(connection: &dyn Any, data: &mut Extensions) {
    let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() else {
        return;
    };
    // A duplicate descriptor of the same socket (no unsafe): non-blocking
    // like the original, as they share their file status flags.
    let Ok(fd) = stream.as_fd().try_clone_to_owned() else {
        return;
    };
    let socket = std::net::TcpStream::from(fd);
    if socket.set_nonblocking(true).is_ok() {
        data.insert(ClientSocket(socket));
    }
}

/// Runs `work` unless the client of `req` goes away first: then `work` is
/// dropped (a wait for a hashing slot ends there, and nothing is hashed) and
/// the answer, which nobody reads, is [`ApiError::ClientGone`], counted in
/// `portcullis_requests_shed_total{reason="client_gone"}`. Without
/// [`on_connect`] on the server, just `work`.
pub(crate) async fn while_connected<T, E>(
    req: &HttpRequest,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, ApiError>
where
    E: Into<ApiError>,
{
    let Some(socket) = req.conn_data::<ClientSocket>() else {
        return work.await.map_err(Into::into);
    };
    match select(pin!(work), pin!(socket.gone())).await {
        Either::Left((outcome, _)) => outcome.map_err(Into::into),
        Either::Right(((), _)) => {
            tracing::debug!(path = %req.path(), "client gone: request dropped before its answer");
            metrics::counter!("portcullis_requests_shed_total", "reason" => "client_gone")
                .increment(1);
            Err(ApiError::ClientGone)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::net::{Shutdown, TcpListener, TcpStream};

    /// A connected pair: (the server's duplicate, the client).
    fn pair() -> (ClientSocket, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        let dup = TcpStream::from(server.as_fd().try_clone_to_owned().expect("dup"));
        dup.set_nonblocking(true).expect("non-blocking");
        drop(server); // the duplicate alone keeps the socket open
        (ClientSocket(dup), client)
    }

    /// Polls `condition` for up to 5 s.
    fn eventually(condition: impl Fn() -> bool) -> bool {
        for _ in 0..500 {
            if condition() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        condition()
    }

    #[test]
    fn a_connected_client_is_there_with_or_without_pending_bytes() {
        let (socket, mut client) = pair();
        assert!(!socket.is_gone());
        client.write_all(b"GET / HTTP/1.1\r\n").expect("write");
        assert!(!socket.is_gone());
        assert!(
            eventually(|| socket.0.peek(&mut [0u8; 1]).is_ok()),
            "bytes never arrived"
        );
        assert!(!socket.is_gone(), "peeking consumed nothing: still there");
    }

    #[test]
    fn a_closed_client_is_gone() {
        let (socket, client) = pair();
        drop(client);
        assert!(eventually(|| socket.is_gone()), "a close was not seen");
    }

    #[test]
    fn a_client_that_closed_after_sending_is_gone() {
        let (socket, mut client) = pair();
        client.write_all(b"POST /login").expect("write");
        client.shutdown(Shutdown::Both).expect("shutdown");
        drop(client);
        // Unread bytes come first: the end of stream is seen once the
        // reader (actix, here nobody) has taken them, or as a reset.
        let mut sink = [0u8; 64];
        let _ = std::io::Read::read(&mut &socket.0, &mut sink);
        assert!(eventually(|| socket.is_gone()), "a close was not seen");
    }
}
