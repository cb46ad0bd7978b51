//! Listen addresses with Go's rules: `host:port`, an empty host means every interface, port 0 or empty picks one.

use std::io;
use std::net::SocketAddr;

use tokio::net::{lookup_host, TcpListener};

/// Splits `host:port` like Go's `net.SplitHostPort` (brackets around IPv6 hosts are removed).
fn split(address: &str) -> Result<(&str, &str), String> {
    if address.is_empty() {
        return Ok(("", ""));
    }
    let missing = || format!("address {address}: missing port in address");
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(missing)?;
        (host, after.strip_prefix(':').ok_or_else(missing)?)
    } else {
        let (host, port) = address.rsplit_once(':').ok_or_else(missing)?;
        if host.contains(':') {
            return Err(format!("address {address}: too many colons in address"));
        }
        (host, port)
    };
    Ok((host, port))
}

/// The candidate socket addresses for `address`, IPv4 first as Go prefers.
async fn candidates(address: &str) -> Result<Vec<SocketAddr>, String> {
    let (host, port) = split(address)?;
    let port: u16 = if port.is_empty() {
        0
    } else {
        port.parse()
            .map_err(|_| format!("lookup tcp/{port}: unknown port"))?
    };
    if host.is_empty() {
        return Ok(vec![
            SocketAddr::from(([0u16; 8], port)),
            SocketAddr::from(([0u8; 4], port)),
        ]);
    }
    let mut addrs: Vec<SocketAddr> = lookup_host((host, port))
        .await
        .map_err(|e| format!("lookup {host}: {e}"))?
        .collect();
    addrs.sort_by_key(|a| a.is_ipv6());
    addrs.dedup();
    if addrs.is_empty() {
        return Err(format!("lookup {host}: no such host"));
    }
    Ok(addrs)
}

/// Go's `net.ResolveTCPAddr(...).String()`: the form proxies are compared by.
pub(crate) async fn resolve(address: &str) -> Result<String, String> {
    let (host, _) = split(address)?;
    let first = candidates(address).await?.into_iter().next();
    match first {
        Some(addr) if host.is_empty() => Ok(format!(":{}", addr.port())),
        Some(addr) => Ok(addr.to_string()),
        None => Err(format!("address {address}: no address")),
    }
}

/// Binds a listener for `address`; the error reads like Go's (`listen tcp 127.0.0.1:1: bind: address already in use`).
pub(crate) async fn bind(address: &str) -> Result<TcpListener, String> {
    let addrs = candidates(address)
        .await
        .map_err(|e| format!("listen tcp {address}: {e}"))?;
    let mut last = None;
    for addr in addrs {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(error) => last = Some((addr, error)),
        }
    }
    Err(match last {
        Some((addr, error)) => format!("listen tcp {addr}: bind: {}", describe(&error)),
        None => format!("listen tcp {address}: no address"),
    })
}

fn describe(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::AddrInUse => "address already in use".to_owned(),
        io::ErrorKind::AddrNotAvailable => "cannot assign requested address".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_like_go() {
        assert_eq!(resolve("127.0.0.1:80").await.unwrap(), "127.0.0.1:80");
        assert_eq!(resolve("localhost:80").await.unwrap(), "127.0.0.1:80");
        assert_eq!(resolve(":80").await.unwrap(), ":80");
        assert_eq!(resolve("").await.unwrap(), ":0");
        assert_eq!(resolve("[::1]:5").await.unwrap(), "[::1]:5");
        assert_eq!(
            resolve("nope").await.unwrap_err(),
            "address nope: missing port in address"
        );
    }

    #[tokio::test]
    async fn bind_conflict_reads_like_go() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let err = bind(&addr.to_string()).await.unwrap_err();
        assert_eq!(err, format!("listen tcp {addr}: bind: address already in use"));
    }
}
