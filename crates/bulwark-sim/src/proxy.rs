//! A TCP proxy for tests, between a client and a real server (PostgreSQL,
//! Redis, a provider), that can make the network misbehave the ways that
//! matter: `pause` (connections stay open and nothing moves, as with a
//! frozen server or a black-holed link) and `cut` (every connection is
//! closed at once, as with a restart or a broken link). New connections
//! are accepted while paused and wait, as the kernel would queue them.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Runs until dropped.
#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

#[derive(Debug)]
struct State {
    paused: watch::Sender<bool>,
    /// Bumped by each `cut`: a connection older than the current value ends.
    cuts: watch::Sender<u64>,
}

impl TcpProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<TcpProxy> {
        TcpProxy::start_on(std::net::Ipv4Addr::LOCALHOST.into(), upstream).await
    }

    /// Listens on a free port of `listen` (a network namespace bridge's
    /// address, say) and forwards to `upstream`.
    pub async fn start_on(
        listen: std::net::IpAddr,
        upstream: SocketAddr,
    ) -> std::io::Result<TcpProxy> {
        let listener = TcpListener::bind((listen, 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            paused: watch::Sender::new(false),
            cuts: watch::Sender::new(0),
        });
        let accept = tokio::spawn(accept(listener, upstream, state.clone()));
        Ok(TcpProxy {
            addr,
            state,
            accept,
        })
    }

    /// Where clients connect instead of the upstream.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops moving bytes either way; connections stay open.
    pub fn pause(&self) {
        self.state.paused.send_replace(true);
    }

    pub fn resume(&self) {
        self.state.paused.send_replace(false);
    }

    /// Closes every connection open now; later ones are forwarded.
    pub fn cut(&self) {
        self.state.cuts.send_modify(|n| *n += 1);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Ends the connections too: they watch for a cut.
        self.cut();
    }
}

async fn accept(listener: TcpListener, upstream: SocketAddr, state: Arc<State>) {
    while let Ok((client, _)) = listener.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            let mut cut = state.cuts.subscribe();
            cut.mark_unchanged();
            tokio::select! {
                () = forward(client, upstream, &state) => {}
                _ = cut.changed() => {}
            }
        });
    }
}

async fn forward(client: TcpStream, upstream: SocketAddr, state: &State) {
    let mut paused = state.paused.subscribe();
    if paused.wait_for(|p| !p).await.is_err() {
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        () = pipe(client_read, server_write, state.paused.subscribe()) => {}
        () = pipe(server_read, client_write, state.paused.subscribe()) => {}
    }
}

/// Copies one way, holding still while paused: nothing is read either, so
/// the sender's buffers fill as they would against a frozen peer.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut paused: watch::Receiver<bool>,
) {
    let mut buffer = vec![0; 16 * 1024];
    loop {
        if paused.wait_for(|p| !p).await.is_err() {
            return;
        }
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Read before a pause began: held until it ends.
        if paused.wait_for(|p| !p).await.is_err() {
            return;
        }
        let Some(bytes) = buffer.get(..n) else {
            return;
        };
        if to.write_all(bytes).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// An echo server, and a proxy in front of it.
    async fn echo() -> std::io::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = socket.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        TcpProxy::start(addr).await
    }

    async fn round_trip(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
        stream.write_all(b"ping").await.ok()?;
        let mut got = [0; 4];
        tokio::time::timeout(within, stream.read_exact(&mut got))
            .await
            .ok()?
            .ok()?;
        Some(got.to_vec())
    }

    #[tokio::test]
    async fn forwards_holds_while_paused_and_cuts() -> std::io::Result<()> {
        let proxy = echo().await?;
        let mut stream = TcpStream::connect(proxy.addr()).await?;
        let second = Duration::from_secs(1);
        assert_eq!(
            round_trip(&mut stream, second).await.as_deref(),
            Some(&b"ping"[..])
        );

        proxy.pause();
        let held = round_trip(&mut stream, Duration::from_millis(200)).await;
        assert_eq!(held, None, "nothing moves while paused");
        proxy.resume();
        let mut late = [0; 4];
        tokio::time::timeout(second, stream.read_exact(&mut late)).await??;
        assert_eq!(&late, b"ping", "held bytes arrive after the pause");

        proxy.cut();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(second, stream.read_to_end(&mut rest)).await;
        assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
        let mut again = TcpStream::connect(proxy.addr()).await?;
        assert_eq!(
            round_trip(&mut again, second).await.as_deref(),
            Some(&b"ping"[..])
        );
        Ok(())
    }
}
