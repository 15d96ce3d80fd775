//! CIDR blocks (`10.0.0.0/8`, `2001:db8::/32`, or a bare address) and
//! matching an address against them. IPv4 blocks also match IPv4-mapped IPv6
//! addresses (`::ffff:10.1.2.3`), as a dual-stack listener reports them.

use std::net::IpAddr;

/// Why a CIDR block does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CidrError {
    /// The part before the `/` is not an address.
    #[error("`{0}` is not an IP address or CIDR block")]
    Address(String),
    /// The prefix length is not a number up to the address's bit count.
    #[error("bad prefix length in `{text}` (0..={max})")]
    PrefixLength {
        /// The block as written.
        text: String,
        /// 32 or 128.
        max: u8,
    },
}

/// One address block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cidr {
    /// An IPv4 network address (host bits cleared) and prefix length (0..=32).
    V4(u32, u8),
    /// An IPv6 network address (host bits cleared) and prefix length (0..=128).
    V6(u128, u8),
}

fn mask32(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

fn mask128(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

impl Cidr {
    /// Parses `address/len` or a bare address (a single host).
    pub(crate) fn parse(text: &str) -> Result<Self, CidrError> {
        let text = text.trim();
        let (addr, len) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| CidrError::Address(text.to_string()))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max).ok_or_else(|| {
                CidrError::PrefixLength {
                    text: text.to_string(),
                    max,
                }
            })?,
        };
        Ok(match ip {
            IpAddr::V4(a) => Cidr::V4(u32::from(a) & mask32(len), len),
            IpAddr::V6(a) => Cidr::V6(u128::from(a) & mask128(len), len),
        })
    }

    /// Whether `ip` is inside the block.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (*self, ip) {
            (Cidr::V4(net, len), IpAddr::V4(a)) => u32::from(a) & mask32(len) == net,
            (Cidr::V6(net, len), IpAddr::V6(a)) => u128::from(a) & mask128(len) == net,
            (Cidr::V6(net, len), IpAddr::V4(a)) => {
                // An IPv6 block written over the mapped range (`::ffff:0:0/96`) covers IPv4.
                u128::from(a.to_ipv6_mapped()) & mask128(len) == net
            }
            (Cidr::V4(..), IpAddr::V6(_)) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_blocks() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains(ip("10.1.200.3")));
        assert!(!c.contains(ip("10.2.0.1")));
        assert!(c.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped IPv6");
        assert!(!c.contains(ip("2001:db8::1")));
        assert_eq!(
            Cidr::parse("10.1.2.3/16").unwrap(),
            c,
            "host bits are cleared"
        );
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("255.255.255.255")));
        let host = Cidr::parse("127.0.0.1").unwrap();
        assert!(host.contains(ip("127.0.0.1")) && !host.contains(ip("127.0.0.2")));
    }

    #[test]
    fn ipv6_blocks() {
        let c = Cidr::parse("2001:db8::/32").unwrap();
        assert!(c.contains(ip("2001:db8:ffff::1")));
        assert!(!c.contains(ip("2001:db9::1")));
        assert!(!c.contains(ip("10.0.0.1")));
        assert!(Cidr::parse("::1").unwrap().contains(ip("::1")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("fe80::1")));
        assert!(
            Cidr::parse("::ffff:0:0/96")
                .unwrap()
                .contains(ip("192.0.2.1"))
        );
    }

    #[test]
    fn bad_blocks() {
        for bad in ["10.0.0.0/33", "::/129", "10.0.0/8", "abc", "10.0.0.0/x", ""] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }
}
