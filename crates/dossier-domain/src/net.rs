//! Which addresses a user-supplied tenant URL must not reach.
//!
//! The rule follows the IANA special-purpose address registries: an address whose entry says
//! it is not globally reachable is refused.
//! - IPv4: <https://www.iana.org/assignments/iana-ipv4-special-registry/> (RFC 6890), plus
//!   multicast (224.0.0.0/4, RFC 5771), which is not unicast at all.
//! - IPv6: <https://www.iana.org/assignments/iana-ipv6-special-registry/> (RFC 6890), and
//!   everything outside global unicast `2000::/3` (RFC 4291 §2.4; the IPv6 address space
//!   registry), so the deprecated site-local, IPv4-compatible and IPv4-translated forms are
//!   refused with the rest.
//!
//! An IPv6 address that stands for an IPv4 address (mapped, NAT64 `64:ff9b::/96`, 6to4
//! `2002::/16`) is judged by that IPv4 address. Link-local addresses and the cloud metadata
//! services are refused even when a deployment allows private tenants: no tenant lives there,
//! and a secret sent there is a credential handed to whoever runs the host.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What the address guard makes of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Globally reachable: a tenant may live there.
    Global,
    /// Not globally reachable (loopback, private, shared, documentation, reserved…): refused
    /// unless the deployment allows private tenants.
    Internal,
    /// Link-local or a cloud metadata service: always refused.
    LinkLocal,
}

/// Returns how the guard classes an address.
#[must_use]
pub fn reach(ip: IpAddr) -> Reach {
    match ip {
        IpAddr::V4(v4) => reach_v4(v4),
        IpAddr::V6(v6) => reach_v6(v6),
    }
}

/// Returns whether an address is refused: anything not globally reachable, unless
/// `allow_private`, and link-local and metadata addresses whatever `allow_private` says.
#[must_use]
pub fn is_refused(ip: IpAddr, allow_private: bool) -> bool {
    match reach(ip) {
        Reach::Global => false,
        Reach::Internal => !allow_private,
        Reach::LinkLocal => true,
    }
}

/// Returns whether an address is not globally reachable (see the module's rule).
#[must_use]
pub fn is_internal(ip: IpAddr) -> bool {
    reach(ip) != Reach::Global
}

/// An IPv4 block: network address and prefix length.
type V4Block = ([u8; 4], u8);

/// The IPv4 special-purpose blocks whose "Globally Reachable" is False (or that are not
/// unicast), link-local aside.
const V4_NOT_GLOBAL: [V4Block; 15] = [
    ([0, 0, 0, 0], 8),          // "this network" (RFC 791)
    ([10, 0, 0, 0], 8),         // private use (RFC 1918)
    ([100, 64, 0, 0], 10),      // shared address space, CGNAT (RFC 6598)
    ([127, 0, 0, 0], 8),        // loopback (RFC 1122)
    ([172, 16, 0, 0], 12),      // private use (RFC 1918)
    ([192, 0, 0, 0], 24), // IETF protocol assignments (RFC 6890), its two anycast /32s included
    ([192, 0, 2, 0], 24), // documentation TEST-NET-1 (RFC 5737)
    ([192, 88, 99, 0], 24), // deprecated 6to4 relay anycast (RFC 7526)
    ([192, 168, 0, 0], 16), // private use (RFC 1918)
    ([198, 18, 0, 0], 15), // benchmarking (RFC 2544)
    ([198, 51, 100, 0], 24), // documentation TEST-NET-2 (RFC 5737)
    ([203, 0, 113, 0], 24), // documentation TEST-NET-3 (RFC 5737)
    ([224, 0, 0, 0], 4),  // multicast (RFC 5771)
    ([240, 0, 0, 0], 4),  // reserved (RFC 1112), the limited broadcast included
    ([255, 255, 255, 255], 32), // limited broadcast (RFC 919)
];

/// Metadata services outside the link-local block, refused like it: Alibaba Cloud's, inside
/// 100.64.0.0/10.
const V4_METADATA: [Ipv4Addr; 1] = [Ipv4Addr::new(100, 100, 100, 200)];

fn in_v4(ip: Ipv4Addr, (net, len): V4Block) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn reach_v4(v4: Ipv4Addr) -> Reach {
    // 169.254.0.0/16: link-local (RFC 3927), where the cloud metadata services answer.
    if in_v4(v4, ([169, 254, 0, 0], 16)) || V4_METADATA.contains(&v4) {
        return Reach::LinkLocal;
    }
    if V4_NOT_GLOBAL.iter().any(|b| in_v4(v4, *b)) {
        return Reach::Internal;
    }
    Reach::Global
}

/// An IPv6 block: network address as segments and prefix length.
type V6Block = ([u16; 8], u8);

/// The blocks inside global unicast `2000::/3` whose "Globally Reachable" is False. Dossier
/// refuses the whole of `2001::/23` rather than carving out its few globally reachable
/// sub-blocks (anycast services, `ORCHIDv2`, DRIP): no tenant console is served from them.
const V6_NOT_GLOBAL: [V6Block; 3] = [
    ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), // IETF protocol assignments (RFC 2928), Teredo included
    ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation (RFC 3849)
    ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), // documentation (RFC 9637)
];

fn in_v6(ip: Ipv6Addr, (net, len): V6Block) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    };
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

fn reach_v6(v6: Ipv6Addr) -> Reach {
    if let Some(v4) = embedded_v4(v6) {
        return reach_v4(v4);
    }
    // fe80::/10 link-local (RFC 4291); fd00:ec2::/32 holds AWS's IPv6 metadata service
    // (fd00:ec2::254) and its DNS and time servers.
    if in_v6(v6, ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10))
        || in_v6(v6, ([0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0], 32))
    {
        return Reach::LinkLocal;
    }
    // Outside 2000::/3 nothing is global unicast: ::, ::1, the IPv4-compatible ::/96 and
    // translated ::ffff:0:0:0/96 forms, 64:ff9b:1::/48 (local-use NAT64, RFC 8215),
    // 100::/64 (discard, RFC 6666), fc00::/7 (unique local), fec0::/10 (deprecated
    // site-local), ff00::/8 (multicast).
    if !in_v6(v6, ([0x2000, 0, 0, 0, 0, 0, 0, 0], 3)) {
        return Reach::Internal;
    }
    if V6_NOT_GLOBAL.iter().any(|b| in_v6(v6, *b)) {
        return Reach::Internal;
    }
    Reach::Global
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped (`::ffff:0:0/96`), NAT64's
/// well-known prefix (`64:ff9b::/96`, RFC 6052) or 6to4 (`2002::/16`, RFC 3056). The
/// IPv4-compatible (`::a.b.c.d`) and local-use NAT64 (`64:ff9b:1::/48`) forms are refused
/// whole, so they need no reading here.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let from = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return Some(from(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return Some(from(s[1], s[2]));
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// One address at each edge of every refused block, and the first address past it.
    #[test]
    fn refuses_every_ipv4_block_the_registry_marks_not_globally_reachable() {
        for s in [
            "0.0.0.0",
            "0.255.255.255",
            "10.0.0.0",
            "10.255.255.255",
            "100.64.0.0",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.255",
            "172.16.0.0",
            "172.31.255.255",
            "192.0.0.0",
            "192.0.0.9",
            "192.0.0.255",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.0.0",
            "192.168.255.255",
            "198.18.0.0",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.200",
            "224.0.0.1",
            "239.255.255.255",
            "240.0.0.1",
            "255.255.255.254",
            "255.255.255.255",
        ] {
            assert_eq!(reach(ip(s)), Reach::Internal, "{s}");
            assert!(is_refused(ip(s), false), "{s}");
        }
        for s in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.0.3.0",
            "192.88.98.255",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "198.51.99.255",
            "203.0.112.255",
            "223.255.255.255",
        ] {
            assert_eq!(reach(ip(s)), Reach::Global, "{s}");
            assert!(!is_refused(ip(s), false), "{s}");
        }
    }

    #[test]
    fn refuses_every_ipv6_block_the_registry_marks_not_globally_reachable() {
        for s in [
            "::",
            "::1",
            "::2",
            "64:ff9b:1::808:808",
            "100::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:1ff:ffff::1",
            "2001:db8::1",
            "2001:db8:ffff::1",
            "3fff::1",
            "3fff:fff:ffff::1",
            "fc00::1",
            "fdff:ffff::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
            "1fff:ffff::1",
            "4000::1",
            "5f00::1",
        ] {
            assert_eq!(reach(ip(s)), Reach::Internal, "{s}");
            assert!(is_refused(ip(s), false), "{s}");
        }
        for s in [
            "2606:4700::1111",
            "2a00:1450:4001::1",
            "2000::1",
            "2001:200::1",
            "2001:db7:ffff::1",
            "2001:db9::1",
            "3ffe:ffff::1",
            "3fff:1000::1",
        ] {
            assert_eq!(reach(ip(s)), Reach::Global, "{s}");
        }
    }

    /// `[::127.0.0.1]`, `[::ffff:127.0.0.1]`, NAT64 and 6to4 carrying a refused IPv4
    /// address are refused; carrying a public one, the three translating forms are not.
    #[test]
    fn refuses_every_ipv6_form_of_a_refused_ipv4_address() {
        for v4 in [
            "127.0.0.1",
            "10.1.2.3",
            "198.18.0.1",
            "100.64.0.1",
            "192.0.2.1",
        ] {
            let o = v4.parse::<Ipv4Addr>().unwrap().octets();
            let hi = u16::from_be_bytes([o[0], o[1]]);
            let lo = u16::from_be_bytes([o[2], o[3]]);
            for s in [
                format!("::{v4}"),
                format!("::ffff:{v4}"),
                format!("::ffff:0:{v4}"),
                format!("64:ff9b::{v4}"),
                format!("64:ff9b:1::{v4}"),
                format!("2002:{hi:x}:{lo:x}::1"),
            ] {
                assert!(is_refused(ip(&s), false), "{s}");
            }
        }
        for s in ["::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "2002:808:808::1"] {
            assert!(!is_refused(ip(s), false), "{s}");
        }
        // The IPv4-compatible form is deprecated (RFC 4291 §2.5.5.1): refused whatever it holds.
        assert!(is_refused(ip("::8.8.8.8"), false));
    }

    #[test]
    fn link_local_and_metadata_are_refused_even_when_private_tenants_are_allowed() {
        for s in [
            "169.254.169.254",
            "169.254.0.1",
            "169.254.255.255",
            "100.100.100.200",
            "fe80::1",
            "febf:ffff::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "64:ff9b::169.254.169.254",
            "2002:a9fe:a9fe::1",
        ] {
            assert_eq!(reach(ip(s)), Reach::LinkLocal, "{s}");
            assert!(is_refused(ip(s), true), "{s}");
        }
        // What a lab needs stays allowed with the switch: loopback, private, unique local.
        for s in [
            "127.0.0.1",
            "10.0.0.5",
            "192.168.1.1",
            "::1",
            "fd12:3456::1",
        ] {
            assert!(is_refused(ip(s), false), "{s}");
            assert!(!is_refused(ip(s), true), "{s}");
        }
    }
}
