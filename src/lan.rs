//! The addresses players on the local network can open, for the start-up banner and the
//! join page.

use std::net::{IpAddr, SocketAddr};

/// `http://ADDR:PORT` for each non-loopback IPv4 address of this machine when bound to all
/// interfaces; otherwise just the bound address.
pub fn lan_urls(bound: SocketAddr) -> Vec<String> {
    let port = bound.port();
    if !bound.ip().is_unspecified() {
        return vec![format!("http://{bound}")];
    }
    let mut urls: Vec<String> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_loopback())
        .filter_map(|i| match i.ip() {
            IpAddr::V4(v4) => Some(format!("http://{v4}:{port}")),
            IpAddr::V6(_) => None,
        })
        .collect();
    urls.sort();
    urls.dedup();
    if urls.is_empty() {
        urls.push(format!("http://localhost:{port}"));
    }
    urls
}
