//! Test support: route messages captured from the kernel by
//! `tests/fixtures/routes/capture.sh` (hex, one netlink message or datagram a line).

macro_rules! fixtures {
    ($($name:literal),* $(,)?) => {
        /// The hex text of a fixture file.
        fn text(name: &str) -> &'static str {
            match name {
                $($name => include_str!(concat!("../../../tests/fixtures/routes/", $name, ".hex")),)*
                other => panic!("no fixture {other}"),
            }
        }
    };
}

fixtures!(
    "dump-datagrams",
    "ipv4-blackhole",
    "ipv4-broadcast",
    "ipv4-default",
    "ipv4-gateway",
    "ipv4-local",
    "ipv4-multipath",
    "ipv4-table-1000",
    "ipv4-table-200",
    "ipv4-unicast-in-local-table",
    "ipv4-via-inet6",
    "ipv6-gateway",
    "ipv6-local",
    "ipv6-multicast",
    "ipv6-multipath",
);

/// Every single-message fixture.
pub(crate) const MESSAGES: [&str; 14] = [
    "ipv4-blackhole",
    "ipv4-broadcast",
    "ipv4-default",
    "ipv4-gateway",
    "ipv4-local",
    "ipv4-multipath",
    "ipv4-table-1000",
    "ipv4-table-200",
    "ipv4-unicast-in-local-table",
    "ipv4-via-inet6",
    "ipv6-gateway",
    "ipv6-local",
    "ipv6-multicast",
    "ipv6-multipath",
];

pub(crate) fn unhex(line: &str) -> Vec<u8> {
    (0..line.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&line[i..i + 2], 16).expect("fixture is hex"))
        .collect()
}

/// The lines of a fixture as bytes.
pub(crate) fn lines(name: &str) -> Vec<Vec<u8>> {
    text(name).lines().map(unhex).collect()
}

/// A whole netlink message (16-byte header included).
pub(crate) fn message(name: &str) -> Vec<u8> {
    lines(name).remove(0)
}

/// The route message of a fixture, without the netlink header.
pub(crate) fn payload(name: &str) -> Vec<u8> {
    message(name)[16..].to_vec()
}
