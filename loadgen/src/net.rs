//! Address rules. This tool only ever talks to `127.0.0.0/8`: the machines it runs on
//! have no other network, and a load generator pointed at a real address by mistake is a
//! denial of service. Targets, source addresses and the admin URL are all checked here,
//! before anything is sent.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// Not in 127.0.0.0/8.
    #[error(
        "{what} {addr} is not a loopback address: loadgen only talks to 127.0.0.0/8 \
         (this machine has no other network, and load tests must stay on it)"
    )]
    NotLoopback {
        /// Which option.
        what: &'static str,
        /// The address as given.
        addr: String,
    },
    /// Unparsable.
    #[error("{what} {input:?}: {reason}")]
    Invalid {
        /// Which option.
        what: &'static str,
        /// The text as given.
        input: String,
        /// Why.
        reason: String,
    },
}

/// True for 127.0.0.0/8.
pub fn is_allowed(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[0] == 127,
        IpAddr::V6(_) => false,
    }
}

/// Checks a target socket address.
pub fn check_target(addr: SocketAddr) -> Result<SocketAddr, AddrError> {
    if is_allowed(addr.ip()) {
        Ok(addr)
    } else {
        Err(AddrError::NotLoopback { what: "target", addr: addr.to_string() })
    }
}

/// Parses `IP:PORT` or `localhost:PORT` (the only host name accepted, as 127.0.0.1).
pub fn parse_target(s: &str, what: &'static str) -> Result<SocketAddr, AddrError> {
    let invalid = |reason: &str| AddrError::Invalid { what, input: s.to_owned(), reason: reason.to_owned() };
    let addr = if let Ok(a) = s.parse::<SocketAddr>() {
        a
    } else {
        let (host, port) = s.rsplit_once(':').ok_or_else(|| invalid("expected IP:PORT, e.g. 127.0.0.1:7777"))?;
        let port: u16 = port.parse().map_err(|_| invalid("bad port"))?;
        if host.eq_ignore_ascii_case("localhost") {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
        } else {
            return Err(AddrError::NotLoopback { what, addr: s.to_owned() });
        }
    };
    if is_allowed(addr.ip()) { Ok(addr) } else { Err(AddrError::NotLoopback { what, addr: s.to_owned() }) }
}

/// Most source addresses accepted in one list (a /16 of loopback is already 65 536).
pub const MAX_SOURCES: usize = 65_536;

/// Parses `--source-ips`: comma-separated addresses and inclusive ranges
/// (`127.0.0.1-127.0.0.20`), all in 127.0.0.0/8.
pub fn parse_sources(s: &str) -> Result<Vec<Ipv4Addr>, AddrError> {
    let what = "source address";
    let invalid =
        |input: &str, reason: &str| AddrError::Invalid { what, input: input.to_owned(), reason: reason.to_owned() };
    let parse_one = |t: &str| -> Result<Ipv4Addr, AddrError> {
        let ip: Ipv4Addr = t.trim().parse().map_err(|_| invalid(t, "expected an IPv4 address such as 127.0.0.2"))?;
        if ip.octets()[0] == 127 { Ok(ip) } else { Err(AddrError::NotLoopback { what, addr: ip.to_string() }) }
    };
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once('-') {
            let (a, b) = (u32::from(parse_one(a)?), u32::from(parse_one(b)?));
            if b < a {
                return Err(invalid(part, "range ends before it starts"));
            }
            if (b - a) as usize + out.len() >= MAX_SOURCES {
                return Err(invalid(part, "more than 65536 source addresses"));
            }
            out.extend((a..=b).map(Ipv4Addr::from));
        } else {
            out.push(parse_one(part)?);
        }
        if out.len() > MAX_SOURCES {
            return Err(invalid(part, "more than 65536 source addresses"));
        }
    }
    if out.is_empty() {
        return Err(invalid(s, "no address given"));
    }
    Ok(out)
}

/// Checks an `http://host:port` admin URL: the host must be loopback (or `localhost`).
pub fn check_admin_url(url: &str) -> Result<reqwest::Url, AddrError> {
    let what = "admin URL";
    let u = reqwest::Url::parse(url).map_err(|e| AddrError::Invalid {
        what,
        input: url.to_owned(),
        reason: e.to_string(),
    })?;
    let ok = match u.host_str() {
        Some(h) if h.eq_ignore_ascii_case("localhost") => true,
        Some(h) => h.parse::<Ipv4Addr>().is_ok_and(|ip| ip.octets()[0] == 127),
        None => false,
    };
    if ok { Ok(u) } else { Err(AddrError::NotLoopback { what, addr: url.to_owned() }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert!(parse_target("127.0.0.1:7777", "target").is_ok());
        assert!(parse_target("127.5.6.7:1", "target").is_ok());
        assert_eq!(parse_target("localhost:7778", "target").ok(), Some("127.0.0.1:7778".parse().expect("addr")));
        for bad in ["10.0.0.1:7777", "8.8.8.8:53", "[::1]:7777", "example.com:80"] {
            let e = parse_target(bad, "target").expect_err(bad);
            assert!(matches!(e, AddrError::NotLoopback { .. }), "{bad}: {e}");
            assert!(e.to_string().contains("127.0.0.0/8"));
        }
        assert!(matches!(parse_target("127.0.0.1", "target"), Err(AddrError::Invalid { .. })));
    }

    #[test]
    fn sources() {
        let v = parse_sources("127.0.0.1-127.0.0.20").expect("range");
        assert_eq!(v.len(), 20);
        assert_eq!(v[19], Ipv4Addr::new(127, 0, 0, 20));
        let v = parse_sources("127.0.0.2, 127.0.1.255-127.0.2.1").expect("list");
        assert_eq!(v.len(), 4);
        assert!(matches!(parse_sources("192.168.1.1"), Err(AddrError::NotLoopback { .. })));
        assert!(parse_sources("127.0.0.5-127.0.0.1").is_err());
        assert!(parse_sources("127.0.0.0-127.255.255.255").is_err());
    }

    #[test]
    fn admin_urls() {
        assert!(check_admin_url("http://127.0.0.1:8080").is_ok());
        assert!(check_admin_url("http://localhost:8080/").is_ok());
        assert!(check_admin_url("http://10.1.1.1:8080").is_err());
        assert!(check_admin_url("http://admin.example:8080").is_err());
    }
}
