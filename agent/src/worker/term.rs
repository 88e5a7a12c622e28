//! The newest Raft term the agent has seen. Every controller answer carries the term it was produced
//! in; one stamped with an older term comes from a deposed leader and is ignored, so a leader that
//! has not yet noticed it lost cannot start or stop replicas.

/// How an answer's term compares with the newest seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// From a deposed leader: ignore the answer.
    Stale,
    /// The term we knew.
    Current,
    /// A newer term: a new leader, which gets a full status report.
    Newer,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TermGuard {
    newest: u64,
}

impl TermGuard {
    /// Starts from a term remembered across restarts.
    pub fn new(newest: u64) -> Self {
        TermGuard { newest }
    }

    pub fn newest(&self) -> u64 {
        self.newest
    }

    /// Judges an answer stamped with `term`, and remembers it when newer.
    pub fn check(&mut self, term: u64) -> Verdict {
        match term.cmp(&self.newest) {
            std::cmp::Ordering::Less => Verdict::Stale,
            std::cmp::Ordering::Equal => Verdict::Current,
            std::cmp::Ordering::Greater => {
                self.newest = term;
                Verdict::Newer
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_terms_are_rejected_newer_ones_kept() {
        let mut g = TermGuard::new(0);
        assert_eq!(g.check(3), Verdict::Newer);
        assert_eq!(g.check(3), Verdict::Current);
        assert_eq!(g.check(2), Verdict::Stale);
        assert_eq!(g.newest(), 3, "a stale answer does not move the term back");
        assert_eq!(g.check(5), Verdict::Newer);
        assert_eq!(g.check(4), Verdict::Stale);
        assert_eq!(TermGuard::new(7).check(6), Verdict::Stale);
    }
}
