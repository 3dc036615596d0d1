//! The local environment listens on this machine alone (docs/local-environment.md, "Loopback only"): every
//! listening TCP socket of LocalStack's process tree (its gateway, the DynamoDB Local it starts, anything
//! else it runs) is bound to a loopback address, so nobody on the same network reaches the local tables,
//! queues and topics. Read from /proc, as `ss -ltnp` reads it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Every process and its parent.
fn parents() -> BTreeMap<u32, u32> {
    let mut parents = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // `pid (comm) state ppid …`: the command may hold spaces and parentheses, so read after the last ')'.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        if let Some(ppid) = after.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
            parents.insert(pid, ppid);
        }
    }
    parents
}

/// `root` and every process under it.
fn tree(root: u32) -> BTreeSet<u32> {
    let parents = parents();
    let mut tree = BTreeSet::from([root]);
    loop {
        let grown: BTreeSet<u32> =
            parents.iter().filter(|(_, parent)| tree.contains(parent)).map(|(pid, _)| *pid).collect();
        if grown.is_subset(&tree) {
            return tree;
        }
        tree.extend(grown);
    }
}

/// The socket inodes a process holds open.
fn socket_inodes(pid: u32) -> BTreeSet<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return BTreeSet::new() };
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            target.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// An address of /proc/net/tcp{,6}: hex, each 32-bit word in the host's (little-endian) order.
fn address(hex: &str) -> IpAddr {
    let words: Vec<u32> =
        (0..hex.len() / 8).map(|i| u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16).expect("hex")).collect();
    match words.as_slice() {
        [v4] => IpAddr::V4(Ipv4Addr::from(v4.swap_bytes())),
        words => {
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).expect("16 bytes")))
        }
    }
}

/// Listening TCP sockets: inode → (address, port).
fn listening() -> BTreeMap<u64, (IpAddr, u16)> {
    let mut sockets = BTreeMap::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is field 1, st is field 3 (0A: LISTEN), inode is field 9.
            if fields.len() > 9 && fields[3] == "0A" {
                let (host, port) = fields[1].split_once(':').expect("address:port");
                let inode: u64 = fields[9].parse().expect("inode");
                sockets.insert(inode, (address(host), u16::from_str_radix(port, 16).expect("port")));
            }
        }
    }
    sockets
}

fn loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

#[test]
fn the_addresses_are_read_as_ss_reads_them() {
    assert_eq!(address("0100007F"), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(address("00000000"), IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert!(loopback(address("0000000000000000FFFF00000100007F")));
    assert!(loopback(address("00000000000000000000000001000000")));
    assert!(!loopback(address("00000000000000000000000000000000")));
}

#[test]
fn localstack_and_dynamodb_local_listen_on_loopback_only() {
    let root: u32 = std::env::var("NEXUS_LOCALSTACK_PID")
        .expect("NEXUS_LOCALSTACK_PID: the test scripts set it to the pid of the LocalStack they started")
        .parse()
        .expect("a pid");
    let inodes: BTreeSet<u64> = tree(root).into_iter().flat_map(socket_inodes).collect();
    let sockets: Vec<(IpAddr, u16)> =
        listening().into_iter().filter(|(inode, _)| inodes.contains(inode)).map(|(_, socket)| socket).collect();
    // The gateway and DynamoDB Local at least: a test that found nothing would prove nothing.
    assert!(sockets.len() >= 2, "LocalStack's tree listens on {sockets:?}");
    let open: Vec<_> = sockets.iter().filter(|(ip, _)| !loopback(*ip)).collect();
    assert!(open.is_empty(), "listening beyond this machine: {open:?} (all: {sockets:?})");
}
