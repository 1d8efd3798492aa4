//! `WSGITrustedProxies` entries: an address or subnet whose proxy headers are believed.
//!
//! Accepts what mod_wsgi accepts through `apr_ipsubnet_create`: a full address, a partial IPv4
//! network (`10.1` is `10.1.0.0/16`), `address/bits`, and IPv4 `address/netmask`. Like mod_wsgi,
//! IPv6 hex digits must be lower case.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One trusted proxy network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrustedProxy {
    /// Network address with the host bits cleared.
    pub network: IpAddr,
    /// Number of leading bits that must match (32 for one IPv4 address, 128 for IPv6).
    pub prefix_len: u8,
}

/// The characters mod_wsgi lets through before handing the text to APR.
fn looks_like_ip(text: &str) -> bool {
    let allowed = if text.contains(':') { "0123456789abcdef:/" } else { "0123456789./" };
    !text.is_empty() && text.chars().all(|c| allowed.contains(c))
}

fn mask(bits: u8, width: u8) -> u128 {
    if bits == 0 {
        0
    } else {
        (u128::MAX << (width - bits)) & (u128::MAX >> (128 - width))
    }
}

fn to_bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u32::from(v4) as u128, 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

fn from_bits(bits: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(bits as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(bits))
    }
}

/// Parses `10`, `10.1`, `10.1.2` (networks of 8, 16, 24 bits) or a full dotted address.
fn parse_v4_prefix(text: &str) -> Option<(Ipv4Addr, u8)> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (slot, part) in octets.iter_mut().zip(&parts) {
        if part.is_empty() || part.len() > 3 {
            return None;
        }
        *slot = part.parse().ok()?;
    }
    Some((Ipv4Addr::from(octets), 8 * parts.len() as u8))
}

/// Turns a contiguous dotted netmask such as `255.255.240.0` into its prefix length.
fn netmask_len(text: &str) -> Option<u8> {
    let m = u32::from(text.parse::<Ipv4Addr>().ok()?);
    let len = m.leading_ones();
    (m.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
}

impl TrustedProxy {
    /// Parses one `WSGITrustedProxies` word.
    pub fn parse(text: &str) -> Result<Self, String> {
        let invalid = || format!("'{text}' is not an IP address or subnet");
        if !looks_like_ip(text) {
            return Err(invalid());
        }
        let (addr, mask_text) = match text.split_once('/') {
            Some((addr, m)) => (addr, Some(m)),
            None => (text, None),
        };
        let (network, width, implied) = if addr.contains(':') {
            let v6: Ipv6Addr = addr.parse().map_err(|_| invalid())?;
            (IpAddr::V6(v6), 128, 128)
        } else {
            let (v4, implied) = parse_v4_prefix(addr).ok_or_else(invalid)?;
            (IpAddr::V4(v4), 32, implied)
        };
        let prefix_len = match mask_text {
            None => implied,
            Some(m) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()) => {
                m.parse::<u8>().ok().filter(|&n| n <= width).ok_or_else(invalid)?
            }
            Some(m) if width == 32 => netmask_len(m).ok_or_else(invalid)?,
            Some(_) => return Err(invalid()),
        };
        let (bits, _) = to_bits(network);
        let network = from_bits(bits & mask(prefix_len, width), width == 32);
        Ok(Self { network, prefix_len })
    }

    /// Whether `ip` is inside this network. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`)
    /// matches an IPv4 network, since that is how a dual-stack listener reports IPv4 clients.
    #[allow(dead_code)] // Parsed and tested; the feature that reads it is not built yet.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.network, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            _ => ip,
        };
        let ((want, width), (have, other)) = (to_bits(self.network), to_bits(ip));
        width == other && (have & mask(self.prefix_len, width)) == want
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn single_addresses() {
        let p = TrustedProxy::parse("127.0.0.1").unwrap();
        assert_eq!(p, TrustedProxy { network: ip("127.0.0.1"), prefix_len: 32 });
        assert!(p.contains(ip("127.0.0.1")));
        assert!(!p.contains(ip("127.0.0.2")));
        let p = TrustedProxy::parse("::1").unwrap();
        assert_eq!(p.prefix_len, 128);
        assert!(p.contains(ip("::1")));
    }

    #[test]
    fn cidr_netmask_and_partial_networks() {
        let p = TrustedProxy::parse("10.1.2.3/16").unwrap();
        assert_eq!(p.network, ip("10.1.0.0"));
        assert!(p.contains(ip("10.1.255.1")) && !p.contains(ip("10.2.0.1")));
        assert_eq!(TrustedProxy::parse("10.0.0.0/255.255.240.0").unwrap().prefix_len, 20);
        assert_eq!(
            TrustedProxy::parse("10.1").unwrap(),
            TrustedProxy::parse("10.1.0.0/16").unwrap()
        );
        let p = TrustedProxy::parse("fd00::/8").unwrap();
        assert!(p.contains(ip("fd12::1")) && !p.contains(ip("fe80::1")));
        assert!(TrustedProxy::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
    }

    #[test]
    fn ipv4_network_matches_mapped_ipv6_client() {
        let p = TrustedProxy::parse("192.168.0.0/24").unwrap();
        assert!(p.contains(ip("::ffff:192.168.0.9")));
        assert!(!p.contains(ip("::1")));
    }

    #[test]
    fn rejects_what_mod_wsgi_rejects() {
        for bad in ["", "proxy.example.com", "FD00::1", "10.0.0.0/33", "::1/129", "1.2.3.4.5"] {
            let err = TrustedProxy::parse(bad).unwrap_err();
            assert!(err.contains("not an IP address"), "{bad}: {err}");
        }
        assert!(TrustedProxy::parse("10.0.0.0/255.0.255.0").is_err());
        assert!(TrustedProxy::parse("256.1.1.1").is_err());
    }
}
