//! A Wing–Gong linearizability checker for registers, with P-compositionality (each key checked on
//! its own) and memoisation of (linearised set, value) states, as in Lowe's and Porcupine's
//! refinements. Writes whose outcome is unknown (timeouts, lost answers) may take effect at any time
//! after their call, or never.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// What an operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpKind {
    Write(i64),
    /// A read that returned this value.
    Read(i64),
}

/// One recorded operation. `ret` is `None` when the outcome is unknown (only for writes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub client: usize,
    pub key: String,
    pub kind: OpKind,
    /// Invocation time, ns since the history began.
    pub call: u64,
    /// Completion time; `None` if unknown.
    pub ret: Option<u64>,
}

/// The result of checking one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    Violation,
    /// The search exceeded its state budget.
    Inconclusive,
}

/// Checks every key's sub-history; answers the keys that are not linearizable (or inconclusive).
/// Write values must be unique per key (the pruning of unobserved unknown writes relies on it).
pub fn check(history: &[Op], initial: i64, budget: usize) -> BTreeMap<String, Verdict> {
    // Values are unique per write, so an unknown write whose value no read returned may be taken
    // as never having happened: dropping it loses no possible linearization.
    let read_values: HashSet<(&str, i64)> = history
        .iter()
        .filter_map(|o| match o.kind {
            OpKind::Read(v) if o.ret.is_some() => Some((o.key.as_str(), v)),
            _ => None,
        })
        .collect();
    let mut by_key: BTreeMap<String, Vec<Op>> = BTreeMap::new();
    for op in history {
        let keep = match op.kind {
            // An unknown read is meaningless.
            OpKind::Read(_) => op.ret.is_some(),
            OpKind::Write(v) => op.ret.is_some() || read_values.contains(&(op.key.as_str(), v)),
        };
        if keep {
            by_key.entry(op.key.clone()).or_default().push(op.clone());
        }
    }
    by_key
        .into_iter()
        .map(|(k, ops)| {
            let v = check_key(&ops, initial, budget);
            (k, v)
        })
        .filter(|(_, v)| *v != Verdict::Linearizable)
        .collect()
}

/// Wing–Gong search over one key's operations.
pub fn check_key(ops: &[Op], initial: i64, budget: usize) -> Verdict {
    let n = ops.len();
    let words = n.div_ceil(64).max(1);
    let ret: Vec<u64> = ops.iter().map(|o| o.ret.unwrap_or(u64::MAX)).collect();
    let definite = ops.iter().filter(|o| o.ret.is_some()).count();
    // Iterative DFS; each frame: (done set, value, number of definite ops done).
    let mut seen: HashSet<(Vec<u64>, i64)> = HashSet::new();
    let mut stack: Vec<(Vec<u64>, i64, usize)> = vec![(vec![0; words], initial, 0)];
    while let Some((done, value, ndef)) = stack.pop() {
        if ndef == definite {
            return Verdict::Linearizable;
        }
        if seen.len() > budget {
            return Verdict::Inconclusive;
        }
        let is_done = |i: usize| done[i / 64] >> (i % 64) & 1 == 1;
        let min_ret = (0..n)
            .filter(|&i| !is_done(i))
            .map(|i| ret[i])
            .min()
            .unwrap_or(u64::MAX);
        for i in 0..n {
            if is_done(i) || ops[i].call > min_ret {
                continue;
            }
            let new_value = match ops[i].kind {
                OpKind::Read(v) if v != value => continue,
                OpKind::Read(_) => value,
                OpKind::Write(v) => v,
            };
            let mut next = done.clone();
            next[i / 64] |= 1 << (i % 64);
            if seen.insert((next.clone(), new_value)) {
                let nd = ndef + usize::from(ops[i].ret.is_some());
                stack.push((next, new_value, nd));
            }
        }
    }
    Verdict::Violation
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: usize, kind: OpKind, call: u64, ret: Option<u64>) -> Op {
        Op {
            client,
            key: "k".into(),
            kind,
            call,
            ret,
        }
    }

    #[test]
    fn sequential_and_concurrent_histories() {
        use OpKind::*;
        // w1 then r1: fine.
        let h = [op(0, Write(1), 0, Some(10)), op(1, Read(1), 11, Some(20))];
        assert_eq!(check_key(&h, 0, 1000), Verdict::Linearizable);
        // A stale read after a completed write: violation.
        let h = [op(0, Write(1), 0, Some(10)), op(1, Read(0), 11, Some(20))];
        assert_eq!(check_key(&h, 0, 1000), Verdict::Violation);
        // Concurrent write: a read may see either value.
        let h = [
            op(0, Write(1), 0, Some(10)),
            op(1, Read(0), 5, Some(8)),
            op(2, Read(1), 6, Some(9)),
        ];
        assert_eq!(check_key(&h, 0, 1000), Verdict::Linearizable);
        // Reads see 1 then 0 while only w1 is concurrent: violation (no going back).
        let h = [
            op(0, Write(1), 0, Some(100)),
            op(1, Read(1), 5, Some(8)),
            op(1, Read(0), 9, Some(12)),
        ];
        assert_eq!(check_key(&h, 0, 1000), Verdict::Violation);
    }

    #[test]
    fn unknown_writes_may_or_may_not_happen() {
        use OpKind::*;
        let h = [
            op(0, Write(7), 0, None),
            op(1, Read(0), 50, Some(60)),
            op(1, Read(7), 70, Some(80)),
        ];
        assert_eq!(check_key(&h, 0, 1000), Verdict::Linearizable);
        let h = [op(0, Write(7), 0, None), op(1, Read(0), 50, Some(60))];
        assert_eq!(check_key(&h, 0, 1000), Verdict::Linearizable);
        // It cannot take effect before it was called.
        let h = [op(1, Read(7), 0, Some(10)), op(0, Write(7), 20, None)];
        assert_eq!(check_key(&h, 0, 1000), Verdict::Violation);
    }

    #[test]
    fn per_key_report() {
        use OpKind::*;
        let mut a = op(0, Write(1), 0, Some(10));
        a.key = "a".into();
        let mut b = op(1, Read(5), 0, Some(10));
        b.key = "b".into();
        let bad = check(&[a, b], 0, 1000);
        assert_eq!(
            bad.into_iter().collect::<Vec<_>>(),
            vec![("b".to_string(), Verdict::Violation)]
        );
    }
}
