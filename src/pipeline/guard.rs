//! Step 1, guard: who is asking (the client IP, believing X-Forwarded-For only
//! from trusted proxies), and may that IP ask now (blacklist, per-IP limit).

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

use crate::actors::blacklist::IpVerdict;
use crate::error::{GatewayError, LimitScope};
use crate::state::Live;

/// The client's IP: the socket peer, unless the peer is a trusted proxy, in
/// which case the right-most X-Forwarded-For address that is not itself a
/// trusted proxy.
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> IpAddr {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(*ip, trusted))
        .unwrap_or(peer)
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    trusted.iter().any(|net| net.contains(&ip))
}

/// Refuses blocked networks and banned IPs (403) and IPs over their request
/// limit (429).
pub async fn guard(live: &Live, ip: IpAddr) -> Result<(), GatewayError> {
    if is_trusted(ip, &live.config.limits.blocked_cidrs) {
        return Err(GatewayError::Forbidden {
            code: "ip_blocked",
            message: "Requests from this network are not accepted.".into(),
        });
    }
    match live.blacklist.check(ip).await? {
        IpVerdict::Allowed => Ok(()),
        IpVerdict::Banned { retry_after } => Err(GatewayError::Banned { retry_after }),
        IpVerdict::Limited { retry_after } => Err(GatewayError::RateLimited {
            scope: LimitScope::ClientIp,
            retry_after,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn request(peer: &str, xff: Option<&str>) -> HttpRequest {
        let mut req = TestRequest::default().peer_addr(peer.parse().unwrap());
        if let Some(xff) = xff {
            req = req.insert_header(("x-forwarded-for", xff));
        }
        req.to_http_request()
    }

    #[test]
    fn untrusted_peer_cannot_spoof() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let req = request("203.0.113.7:5000", Some("1.2.3.4"));
        assert_eq!(
            client_ip(&req, &trusted),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn trusted_proxy_forwards_client() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let req = request("10.0.0.2:5000", Some("198.51.100.9, 10.0.0.5"));
        assert_eq!(
            client_ip(&req, &trusted),
            "198.51.100.9".parse::<IpAddr>().unwrap()
        );
        let no_header = request("10.0.0.2:5000", None);
        assert_eq!(
            client_ip(&no_header, &trusted),
            "10.0.0.2".parse::<IpAddr>().unwrap()
        );
    }
}
