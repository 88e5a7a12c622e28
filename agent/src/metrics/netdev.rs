//! A container's network bytes from `/proc/PID/net/dev`: the kernel's per-interface counters of
//! the network namespace PID lives in, so one read of a procfs file per container, no netlink
//! socket and no `setns`. Loopback is left out (as `docker stats` does): it is traffic of the
//! container with itself. The parser is pure.

/// Bytes received and sent by every interface but `lo`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetBytes {
    pub rx: u64,
    pub tx: u64,
}

/// Sums the receive (first column) and transmit (ninth column) bytes of the text of
/// `/proc/net/dev`, loopback excepted. Lines that do not parse are skipped.
pub fn parse(text: &str) -> NetBytes {
    let mut total = NetBytes::default();
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let mut fields = counters.split_ascii_whitespace();
        let rx = fields.next().and_then(|f| f.parse::<u64>().ok());
        let tx = fields.nth(7).and_then(|f| f.parse::<u64>().ok());
        if let (Some(rx), Some(tx)) = (rx, tx) {
            total.rx = total.rx.saturating_add(rx);
            total.tx = total.tx.saturating_add(tx);
        }
    }
    total
}

/// The network bytes of the namespace process `pid` is in; `None` when it is gone.
pub fn of_process(pid: i32) -> Option<NetBytes> {
    std::fs::read_to_string(format!("/proc/{pid}/net/dev"))
        .ok()
        .map(|t| parse(&t))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  335260     483    0    0    0     0          0         0   335260     483    0    0    0     0       0          0
  eth0:    1296      16    0    0    0     0          0         0      796      10    0    0    0     0       0          0
  eth1:10000000000 16    0    0    0     0          0         0        4      10    0    0    0     0       0          0
";

    #[test]
    fn sums_every_interface_but_loopback() {
        assert_eq!(
            parse(SAMPLE),
            NetBytes {
                rx: 10_000_001_296,
                tx: 800
            }
        );
    }

    #[test]
    fn only_loopback_or_garbage_is_zero() {
        let lo_only: String = SAMPLE.lines().take(3).collect::<Vec<_>>().join("\n");
        assert_eq!(parse(&lo_only), NetBytes::default());
        assert_eq!(parse(""), NetBytes::default());
        assert_eq!(
            parse("h1\nh2\n  eth0: 12 x\n  eth1 no colon\n"),
            NetBytes::default()
        );
    }

    #[test]
    fn this_process_has_a_network_namespace() {
        // Whatever its interfaces, the file of a live process is there and parses.
        assert!(of_process(std::process::id() as i32).is_some());
        assert_eq!(of_process(i32::MAX), None);
    }
}
