//! Which subnets a lab may use: private unicast IPv4 only, so that no lab shadows addresses
//! the machine or the Internet uses, and every host can talk to the others.

use ipnet::Ipv4Net;

/// The ranges a lab's subnet must sit in: RFC 1918's private ranges, and RFC 6598's shared
/// address space, which AWS accepts as a VPC's CIDR (so a lab can mirror such a VPC). None of
/// them is routed on the Internet.
pub const PRIVATE_RANGES: [&str; 4] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
];

/// Checks that `subnet` is private unicast IPv4 with room for `hosts` hosts besides its
/// network and broadcast addresses.
pub fn check_subnet(subnet: Ipv4Net, hosts: usize) -> Result<(), String> {
    let net = subnet.trunc();
    let kind = |n: &str| -> bool { n.parse::<Ipv4Net>().is_ok_and(|r| r.contains(&net)) };
    let what = if net.prefix_len() == 0 {
        Some("every IPv4 address")
    } else if kind("127.0.0.0/8") {
        Some("loopback")
    } else if kind("169.254.0.0/16") {
        Some("link-local")
    } else if kind("224.0.0.0/4") {
        Some("multicast")
    } else if kind("240.0.0.0/4") {
        Some("reserved")
    } else if kind("0.0.0.0/8") {
        Some("\"this network\" (0.0.0.0/8)")
    } else {
        None
    };
    if !PRIVATE_RANGES.iter().any(|r| kind(r)) {
        let why = what.map_or("not a private range".to_string(), |w| {
            format!("{w}, not a private range")
        });
        return Err(format!(
            "{subnet} is {why}: use a subnet inside 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or 100.64.0.0/10, e.g. 10.0.0.0/24"
        ));
    }
    if subnet != net {
        // As AWS refuses such a CIDR: the address part is meant to be the network's.
        return Err(format!(
            "{subnet} has host bits set: write the network, {net}"
        ));
    }
    if net.prefix_len() > 30 {
        return Err(format!(
            "/{} leaves no room for hosts: use /30 or wider, e.g. 10.0.0.0/24",
            net.prefix_len()
        ));
    }
    // Every address but the network's and the broadcast one.
    let room = (1u64 << (32 - net.prefix_len())) - 2;
    if hosts as u64 > room {
        return Err(format!(
            "{net} holds {room} hosts, and there are {hosts}: widen the subnet, e.g. to /{}",
            widest_fit(hosts)
        ));
    }
    Ok(())
}

/// The longest prefix whose subnet holds `hosts` hosts (plus the 3 addresses AWS reserves).
fn widest_fit(hosts: usize) -> u8 {
    (1..=30u8)
        .rev()
        .find(|p| (1u64 << (32 - p)) >= hosts as u64 + 5)
        .unwrap_or(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(subnet: &str, hosts: usize) -> String {
        check_subnet(subnet.parse().unwrap(), hosts).unwrap_err()
    }

    #[test]
    fn private_ranges_are_accepted() {
        for ok in [
            "10.0.0.0/24",
            "172.31.255.0/24",
            "192.168.1.0/30",
            "100.64.0.0/16",
            "10.0.0.0/8",
        ] {
            assert_eq!(check_subnet(ok.parse().unwrap(), 2), Ok(()), "{ok}");
        }
    }

    #[test]
    fn others_are_refused_with_what_they_are() {
        assert!(err("0.0.0.0/0", 1).contains("every IPv4 address"));
        assert!(err("127.0.0.0/24", 1).contains("loopback"));
        assert!(err("169.254.0.0/24", 1).contains("link-local"));
        assert!(err("224.0.0.0/24", 1).contains("multicast"));
        assert!(err("8.8.8.0/24", 1).contains("not a private range"));
        assert!(err("172.32.0.0/24", 1).contains("not a private range"));
        // Straddles a private range and a public one.
        assert!(err("10.0.0.0/7", 1).contains("not a private range"));
    }

    #[test]
    fn subnet_must_hold_its_hosts() {
        assert!(err("10.0.0.0/31", 1).contains("no room"));
        assert!(err("10.0.0.0/32", 1).contains("no room"));
        let e = err("10.0.0.0/30", 3);
        assert!(e.contains("holds 2 hosts, and there are 3"), "{e}");
        assert!(check_subnet("10.0.0.0/30".parse().unwrap(), 2).is_ok());
    }

    #[test]
    fn host_bits_are_refused() {
        assert_eq!(
            err("10.0.0.5/24", 2),
            "10.0.0.5/24 has host bits set: write the network, 10.0.0.0/24"
        );
    }
}
