//! The PROXY protocol (HAProxy's, versions 1 and 2), read before TLS on connections
//! from trusted proxies, so that the client's own address reaches the request log, the
//! audit log, lockout and rate limits.

use ppp::v2::Command;
use ppp::{v1, v2, HeaderResult, PartialResult};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// A version 2 header's 16 fixed bytes and the most its length field can add.
const MAX_HEADER_BYTES: usize = 16 + u16::MAX as usize;
/// How long to wait for the rest of a header that arrived in parts.
const PARTIAL_WAIT: Duration = Duration::from_millis(2);

/// Reads the PROXY header at the start of `stream`, and nothing after it: the TLS
/// handshake follows on the same stream. Answers the client's address, or `None` when
/// the proxy speaks for itself (a version 2 `LOCAL` header, as HAProxy's health checks
/// send, or an address family without an IP address): the connection is then served as
/// a direct one. A stream that does not start with a header is an error.
pub(super) async fn read_header(stream: &mut TcpStream) -> io::Result<Option<SocketAddr>> {
    let mut buffer = vec![0u8; 512];
    loop {
        let seen = stream.peek(&mut buffer).await?;
        if seen == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let parsed = HeaderResult::parse(&buffer[..seen]);
        if parsed.is_incomplete() {
            if seen == buffer.len() {
                if buffer.len() >= MAX_HEADER_BYTES {
                    return Err(invalid("a PROXY header longer than the protocol allows"));
                }
                buffer.resize((buffer.len() * 4).min(MAX_HEADER_BYTES), 0);
            } else {
                tokio::time::sleep(PARTIAL_WAIT).await;
            }
            continue;
        }
        let (length, source) = match parsed {
            HeaderResult::V1(Ok(header)) => (header.header.len(), v1_source(&header.addresses)),
            HeaderResult::V2(Ok(header)) => (header.len(), v2_source(&header)),
            HeaderResult::V1(Err(_)) | HeaderResult::V2(Err(_)) => {
                return Err(invalid("the connection does not start with a PROXY header"))
            }
        };
        let mut header = vec![0u8; length];
        stream.read_exact(&mut header).await?;
        return Ok(source);
    }
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn v1_source(addresses: &v1::Addresses) -> Option<SocketAddr> {
    match addresses {
        v1::Addresses::Tcp4(ip) => Some(SocketAddr::from((ip.source_address, ip.source_port))),
        v1::Addresses::Tcp6(ip) => Some(SocketAddr::from((ip.source_address, ip.source_port))),
        v1::Addresses::Unknown => None,
    }
}

fn v2_source(header: &v2::Header<'_>) -> Option<SocketAddr> {
    match (header.command, header.addresses) {
        (Command::Local, _) => None,
        (Command::Proxy, v2::Addresses::IPv4(ip)) => {
            Some(SocketAddr::from((ip.source_address, ip.source_port)))
        }
        (Command::Proxy, v2::Addresses::IPv6(ip)) => {
            Some(SocketAddr::from((ip.source_address, ip.source_port)))
        }
        (Command::Proxy, v2::Addresses::Unspecified | v2::Addresses::Unix(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// Sends `bytes` then "rest" over loopback, and reads the header on the other end;
    /// answers what it read and what is left after it.
    async fn read_from(bytes: Vec<u8>) -> (io::Result<Option<SocketAddr>>, Vec<u8>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let sender = tokio::spawn(async move {
            let mut out = TcpStream::connect(address).await.unwrap();
            // In two parts, so that a header split across segments is exercised.
            let (first, second) = bytes.split_at(bytes.len() / 2);
            out.write_all(first).await.unwrap();
            out.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            out.write_all(second).await.unwrap();
            out.write_all(b"rest").await.unwrap();
            out.shutdown().await.unwrap();
        });
        let (mut stream, _) = listener.accept().await.unwrap();
        let result = read_header(&mut stream).await;
        let mut rest = Vec::new();
        if result.is_ok() {
            stream.read_to_end(&mut rest).await.unwrap();
        }
        sender.await.unwrap();
        (result, rest)
    }

    fn v2_header(command: Command, source: &str) -> Vec<u8> {
        let source: SocketAddr = source.parse().unwrap();
        // Both addresses of one family, or the header carries none.
        let destination: SocketAddr = if source.is_ipv4() {
            "10.0.0.1:9443".parse().unwrap()
        } else {
            "[2001:db8::1]:9443".parse().unwrap()
        };
        let version_command = v2::Version::Two | command;
        v2::Builder::with_addresses(version_command, v2::Protocol::Stream, (source, destination))
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn a_version_1_header_gives_the_client_address_and_nothing_more() {
        let header = b"PROXY TCP4 203.0.113.7 10.0.0.1 51000 9443\r\n".to_vec();
        let (source, rest) = read_from(header).await;
        assert_eq!(source.unwrap(), Some("203.0.113.7:51000".parse().unwrap()));
        assert_eq!(rest, b"rest");
    }

    #[tokio::test]
    async fn a_version_2_header_gives_the_client_address_and_nothing_more() {
        let (source, rest) = read_from(v2_header(Command::Proxy, "[2001:db8::7]:51000")).await;
        assert_eq!(
            source.unwrap(),
            Some("[2001:db8::7]:51000".parse().unwrap())
        );
        assert_eq!(rest, b"rest");
    }

    #[tokio::test]
    async fn a_local_header_is_a_direct_connection() {
        let (source, rest) = read_from(v2_header(Command::Local, "127.0.0.1:1")).await;
        assert_eq!(source.unwrap(), None);
        assert_eq!(rest, b"rest");
    }

    #[tokio::test]
    async fn a_stream_without_a_header_is_refused() {
        // The start of a TLS ClientHello.
        let (source, _) = read_from(vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await;
        assert_eq!(source.unwrap_err().kind(), io::ErrorKind::InvalidData);
    }
}
