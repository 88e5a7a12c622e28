//! The arithmetic of the measurements, kept apart from the I/O so that it can be tested on its
//! own: percentiles of latencies, when a sampled count first reached a level, the placement rate
//! per tenth of the fill, how replicas are split over services, and a process's CPU share from
//! two readings of `/proc/PID/stat`.
//!
//! The fill is observed from the simulated agents' side (how many tasks they have reported
//! Running and had acknowledged), sampled at a fixed period: a placement counts once the
//! controller committed it, the agent saw it in its long poll and its report was committed too.
//! That is what an operator waits for, and it needs no help from the controller.

/// The `p`-th percentile (0–100) of `values` by the nearest-rank method; `None` when empty.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The first time (seconds) at which the sampled count reached `level`, interpolated linearly
/// between the two samples around it. `samples` are `(seconds, count)` in time order; `None` if
/// the count never got there.
pub fn time_to_reach(samples: &[(f64, u64)], level: u64) -> Option<f64> {
    let mut prev: Option<(f64, u64)> = None;
    for &(t, n) in samples {
        if n >= level {
            return Some(match prev {
                Some((pt, pn)) if n > pn && level > pn => {
                    pt + (t - pt) * (level - pn) as f64 / (n - pn) as f64
                }
                _ => t,
            });
        }
        prev = Some((t, n));
    }
    None
}

/// The rate (per second) at which the count went through each tenth of `total`: entry `d` is
/// the rate from `d/10` to `(d+1)/10` of the total, `None` for a tenth not (fully) reached or
/// too thin to time (fewer than one task, or no time between the two levels).
pub fn decile_rates(samples: &[(f64, u64)], total: u64) -> Vec<Option<f64>> {
    let level = |d: u64| (total * d).div_ceil(10);
    (0..10)
        .map(|d| {
            let (lo, hi) = (level(d), level(d + 1));
            let t0 = if lo == 0 {
                samples.first()?.0
            } else {
                time_to_reach(samples, lo)?
            };
            let t1 = time_to_reach(samples, hi)?;
            (hi > lo && t1 > t0).then(|| (hi - lo) as f64 / (t1 - t0))
        })
        .collect()
}

/// The lowest over the highest of the rates that are known: 1.0 is perfectly flat.
pub fn flatness(rates: &[Option<f64>]) -> Option<f64> {
    let known: Vec<f64> = rates.iter().flatten().copied().collect();
    let max = known.iter().copied().fold(f64::NAN, f64::max);
    let min = known.iter().copied().fold(f64::NAN, f64::min);
    (max > 0.0).then(|| min / max)
}

/// `total` replicas over `services` services, as evenly as possible (the first ones get the
/// remainder); no service gets zero when `total >= services`.
pub fn split(total: u64, services: u64) -> Vec<u64> {
    let services = services.max(1);
    (0..services)
        .map(|i| total / services + u64::from(i < total % services))
        .collect()
}

/// How many services carry `total` replicas so that none has more than `per_service`.
pub fn services_for(total: u64, per_service: u64) -> u64 {
    total.div_ceil(per_service.max(1)).max(1)
}

/// Whether a task fails instead of running, for a failure share of `percent`: decided by a hash
/// of its id, so that every run fails the same tasks and a replacement (a new id) draws again.
pub fn fails(task_id: &str, percent: u8) -> bool {
    // FNV-1a: stable across runs and builds, unlike the std hasher.
    let h = task_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    h % 100 < u64::from(percent)
}

/// A delay in `[min_ms, max_ms]` chosen by a hash of `key`: how long a simulated container takes
/// to start, different per task but the same from run to run.
pub fn start_delay_ms(key: &str, min_ms: u64, max_ms: u64) -> u64 {
    let h = key.bytes().fold(0x811c_9dc5u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0193)
    });
    min_ms + h % (max_ms.saturating_sub(min_ms) + 1)
}

/// User plus system CPU time (clock ticks) from the text of `/proc/PID/stat`: fields 14 and 15.
/// The command name (field 2) is in parentheses and may hold spaces or parentheses itself, so
/// the fields are counted from the last `)`.
pub fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state (field 3) is the first; utime and stime are fields 14 and 15.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The socket inodes of the established connections in a `/proc/net/tcp` (or `tcp6`) table:
/// state `01`, the inode in the tenth column.
pub fn established_inodes(table: &str) -> impl Iterator<Item = u64> + '_ {
    table.lines().skip(1).filter_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(3) == Some(&"01")).then(|| f.get(9)?.parse().ok())?
    })
}

/// The CPU a process used between two readings, in percent of one core: `ticks` of CPU time at
/// `hz` ticks per second over `seconds` of wall time. `None` for no time or a counter that went
/// back (another process with the same pid).
pub fn cpu_percent(before: u64, after: u64, hz: u64, seconds: f64) -> Option<f64> {
    (after >= before && seconds > 0.0 && hz > 0)
        .then(|| (after - before) as f64 / hz as f64 / seconds * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_of_proc_stat() {
        // A name with a space and a parenthesis; utime 1234, stime 56.
        let s = "4242 (hoist (x) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 56 0 0 20 0 9 0 \
                 100 2000000 500 18446744073709551615";
        assert_eq!(stat_cpu_ticks(s), Some(1290));
        assert_eq!(stat_cpu_ticks("1 (x) S 1 2"), None);
        assert_eq!(stat_cpu_ticks("garbage"), None);
        // Our own process has one.
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(stat_cpu_ticks(&own).is_some());
    }

    #[test]
    fn established_connections_of_proc_net_tcp() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
            0: 0100007F:6D61 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0 100 0 0 10 0\n\
            1: 0100007F:6D61 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 1002 1 0 20 4 30 10 -1\n\
            2: 0100007F:D2F0 0100007F:6D61 01 00000000:00000000 00:00000000 00000000     0        0 1003 1 0 20 4 30 10 -1\n\
            3: 0100007F:D2F2 0100007F:6D61 06 00000000:00000000 03:00000A4B 00000000     0        0 0 3 0\n";
        // The listener (0A) and the one in TIME_WAIT (06) are not established.
        assert_eq!(established_inodes(table).collect::<Vec<_>>(), [1002, 1003]);
        assert_eq!(established_inodes("").count(), 0);
    }

    #[test]
    fn cpu_percent_of_two_readings() {
        // 50 ticks at 100 Hz over 2 s: a quarter of a core.
        assert_eq!(cpu_percent(100, 150, 100, 2.0), Some(25.0));
        // Two cores busy for the whole second.
        assert_eq!(cpu_percent(0, 200, 100, 1.0), Some(200.0));
        assert_eq!(cpu_percent(150, 100, 100, 2.0), None);
        assert_eq!(cpu_percent(0, 10, 100, 0.0), None);
        assert_eq!(cpu_percent(0, 10, 0, 1.0), None);
    }

    #[test]
    fn percentile_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn reaching_a_level_is_interpolated() {
        let s = [(0.0, 0), (1.0, 100), (2.0, 300)];
        assert_eq!(time_to_reach(&s, 0), Some(0.0));
        assert_eq!(time_to_reach(&s, 50), Some(0.5));
        assert_eq!(time_to_reach(&s, 200), Some(1.5));
        assert_eq!(time_to_reach(&s, 300), Some(2.0));
        assert_eq!(time_to_reach(&s, 301), None);
        // A count that falls back (nodes killed) is reached at its first passage.
        assert_eq!(
            time_to_reach(&[(0.0, 10), (1.0, 5), (2.0, 10)], 10),
            Some(0.0)
        );
    }

    #[test]
    fn a_steady_fill_has_flat_deciles() {
        // 100 tasks per second for 10 seconds.
        let s: Vec<(f64, u64)> = (0..=10).map(|t| (f64::from(t), t as u64 * 100)).collect();
        let r = decile_rates(&s, 1000);
        assert_eq!(r.len(), 10);
        for rate in &r {
            assert!((rate.unwrap() - 100.0).abs() < 1e-9, "{r:?}");
        }
        assert!((flatness(&r).unwrap() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_slowing_fill_shows_in_the_last_deciles() {
        // Half in the first second, the other half over the next nine.
        let s = [(0.0, 0), (1.0, 500), (10.0, 1000)];
        let r = decile_rates(&s, 1000);
        assert!((r[0].unwrap() - 500.0).abs() < 1e-9);
        assert!((r[9].unwrap() - 1000.0 / 18.0).abs() < 1e-9);
        assert!((flatness(&r).unwrap() - 1.0 / 9.0).abs() < 1e-9);
    }

    #[test]
    fn an_unfinished_fill_leaves_its_last_deciles_unknown() {
        let r = decile_rates(&[(0.0, 0), (1.0, 50)], 100);
        assert!(r[..5].iter().all(Option::is_some));
        assert!(r[5..].iter().all(Option::is_none));
        assert_eq!(decile_rates(&[], 100), vec![None; 10]);
        // Fewer tasks than tenths: the empty tenths are not timed.
        let r = decile_rates(&[(0.0, 0), (1.0, 5)], 5);
        assert_eq!(r.iter().flatten().count(), 5);
    }

    #[test]
    fn replicas_split_evenly() {
        assert_eq!(split(10, 3), vec![4, 3, 3]);
        assert_eq!(split(200, 1), vec![200]);
        assert_eq!(split(5, 0), vec![5]);
        assert_eq!(split(50_000, 50).iter().sum::<u64>(), 50_000);
        assert_eq!(services_for(50_000, 1000), 50);
        assert_eq!(services_for(200, 1000), 1);
        assert_eq!(services_for(1001, 1000), 2);
        assert_eq!(services_for(0, 1000), 1);
    }

    #[test]
    fn failures_follow_the_share_and_are_stable() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("task-{i}")).collect();
        let failed = ids.iter().filter(|id| fails(id, 10)).count();
        assert!((800..1200).contains(&failed), "{failed}");
        assert!(ids.iter().all(|id| !fails(id, 0)));
        assert!(ids.iter().all(|id| fails(id, 100)));
        assert_eq!(fails("x", 50), fails("x", 50));
    }

    #[test]
    fn start_delays_stay_in_bounds() {
        for i in 0..1000 {
            let d = start_delay_ms(&format!("t{i}"), 50, 500);
            assert!((50..=500).contains(&d));
        }
        assert_eq!(start_delay_ms("a", 7, 7), 7);
    }
}
