//! The reading side of the raw HTTP/1.1 upstreams some tests script by hand.

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Reads one request (head and `content-length` body) and returns what was
/// read, or `None` when the peer closed before the head was complete.
pub async fn read_request(socket: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut read = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        read.extend_from_slice(&buf[..n]);
        if let Some(at) = read.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&read[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while read.len() < head_end + length {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        read.extend_from_slice(&buf[..n]);
    }
    Ok(Some(read))
}
