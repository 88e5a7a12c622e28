//! Autoscaling in the replicated state (format 2): the leader's decisions applied with their
//! reasons, each service's decision history, the alerts already applied, and the hook tokens.
//!
//! The leader decides (`crate::autoscale`); `apply` only checks that the decision still holds
//! (the service has the count it was made from, the target is within its bounds, its alert is
//! new) so that two leaders, or two deliveries of one alert, can never scale twice.

use super::services::no_service;
use super::{invalid, not_found, State};
use hoist_proto::cluster::{
    AutoscaleDecision, AutoscaleLog, AutoscaleOutcome, AutoscaleSource, HookToken,
};
use hoist_proto::raft::{CommandError, ErrorCode, Response};
use hoist_proto::service::ServiceSpec;
use std::sync::Arc;

impl State {
    pub(super) fn apply_autoscale(
        &mut self,
        decision: &AutoscaleDecision,
        now: u64,
    ) -> Result<Response, CommandError> {
        let name = &decision.service;
        let record = self.services.get(name).ok_or_else(|| no_service(name))?;
        let spec = &record.current().spec;
        let Some(bounds) = &spec.autoscale else {
            return Err(invalid(
                "service",
                format!("service {name:?} has no [autoscale] bounds"),
            ));
        };
        let log = self.autoscale.get(name);
        if let (Some(key), Some(log)) = (&decision.dedup, log) {
            if log.seen.contains(key) {
                let recorded = log
                    .decisions
                    .iter()
                    .rev()
                    .find(|d| d.dedup.as_ref() == Some(key))
                    .map_or_else(|| decision.clone(), |d| (**d).clone());
                return Ok(Response::Autoscale(Box::new(AutoscaleOutcome {
                    decision: recorded,
                    applied: false,
                })));
            }
        }
        if spec.replicas != decision.from {
            return Err(CommandError {
                code: ErrorCode::Conflict,
                message: format!(
                    "service {name:?} has {} replicas, not {}: decide again",
                    spec.replicas, decision.from
                ),
                field: None,
            });
        }
        if decision.to != decision.from && !(bounds.min..=bounds.max).contains(&decision.to) {
            return Err(invalid(
                "to",
                format!(
                    "{} is outside autoscale bounds {}..={}",
                    decision.to, bounds.min, bounds.max
                ),
            ));
        }
        if decision.to != decision.from {
            self.set_replicas(name, decision.to);
        }
        let recorded = self.record_decision(decision.clone(), now);
        Ok(Response::Autoscale(Box::new(AutoscaleOutcome {
            decision: AutoscaleDecision::clone(&recorded),
            applied: true,
        })))
    }

    /// `hoist service scale` at format 2: in the same history as the autoscaler's decisions.
    pub(super) fn record_operator_scale(&mut self, name: &str, from: i64, to: i64, now: u64) {
        self.record_decision(
            AutoscaleDecision {
                service: name.to_string(),
                source: AutoscaleSource::Operator,
                from,
                to,
                reason: "hoist service scale".into(),
                detail: String::new(),
                dedup: None,
                index: 0,
                time_ms: 0,
            },
            now,
        );
    }

    fn record_decision(
        &mut self,
        mut decision: AutoscaleDecision,
        now: u64,
    ) -> Arc<AutoscaleDecision> {
        decision.index = self.index;
        decision.time_ms = now;
        if !self.autoscale.contains_key(&decision.service) {
            self.autoscale
                .insert(decision.service.clone(), AutoscaleLog::default());
        }
        let log = self
            .autoscale
            .get_mut(&decision.service)
            .expect("inserted above");
        if let Some(key) = &decision.dedup {
            log.seen.push_back(key.clone());
            if log.seen.len() > AutoscaleLog::KEEP_KEYS {
                log.seen.pop_front();
            }
        }
        log.total += 1;
        if decision.to != decision.from {
            log.scaled += 1;
        }
        let decision = Arc::new(decision);
        log.decisions.push_back(decision.clone());
        if log.decisions.len() > AutoscaleLog::KEEP {
            log.decisions.pop_front();
        }
        decision
    }

    /// The replica count an autoscaled service keeps when `spec` (which autoscales too)
    /// replaces its current spec: the current count within `spec`'s bounds. `None` when either
    /// does not autoscale or the service is new.
    pub(super) fn autoscaled_replicas(&self, spec: &ServiceSpec) -> Option<i64> {
        let bounds = spec.autoscale.as_ref()?;
        let current = &self.services.get(&spec.name)?.current().spec;
        current.autoscale.as_ref()?;
        Some(current.replicas.clamp(bounds.min, bounds.max))
    }

    pub(super) fn create_hook_token(
        &mut self,
        token: &HookToken,
    ) -> Result<Response, CommandError> {
        if token.id.is_empty()
            || token.id.len() > 64
            || !token.id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(invalid("id", "must be 1 to 64 letters or digits"));
        }
        if token.secret_sha256.len() != 64
            || !token.secret_sha256.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(invalid("secret_sha256", "must be 64 hex digits"));
        }
        if self.hook_tokens.contains_key(&token.id) {
            return Err(CommandError {
                code: ErrorCode::Conflict,
                message: format!("hook token {:?} exists", token.id),
                field: Some("id".into()),
            });
        }
        self.hook_tokens.insert(token.id.clone(), token.clone());
        Ok(Response::Ok)
    }

    pub(super) fn remove_hook_token(&mut self, id: &str) -> Result<Response, CommandError> {
        self.hook_tokens
            .remove(id)
            .map(|_| Response::Ok)
            .ok_or_else(|| not_found(format!("hook token {id:?} not found")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::req;
    use hoist_proto::raft::Command;
    use hoist_proto::service::Autoscale;

    /// A format-2 cluster with `web` at 2 replicas, autoscaled within 1..=5.
    fn cluster() -> State {
        let mut st = State {
            cluster_format: 2,
            ..State::default()
        };
        let mut s = ServiceSpec::new("web", "busybox");
        s.replicas = 2;
        s.autoscale = Some(Autoscale {
            min: 1,
            max: 5,
            ..Autoscale::default()
        });
        st.apply(&req(10, Command::ApplyService(Box::new(s))));
        st
    }

    fn decision(from: i64, to: i64, dedup: Option<&str>) -> Command {
        Command::Autoscale(Box::new(AutoscaleDecision {
            service: "web".into(),
            source: AutoscaleSource::Alertmanager,
            from,
            to,
            reason: "alert HighLoad firing (hoist_scale=up)".into(),
            detail: String::new(),
            dedup: dedup.map(String::from),
            index: 0,
            time_ms: 0,
        }))
    }

    fn replicas_and_version(st: &State) -> (i64, u64) {
        let cur = st.services["web"].current();
        (cur.spec.replicas, cur.version)
    }

    #[test]
    fn a_decision_scales_in_place_and_is_recorded_with_its_index_and_time() {
        let mut st = cluster();
        st.index = 7;
        let r = st.apply(&req(20, decision(2, 4, Some("k1"))));
        let Response::Autoscale(o) = r else {
            panic!("{r:?}")
        };
        assert!(o.applied);
        assert_eq!((o.decision.index, o.decision.time_ms), (7, 20));
        assert_eq!(replicas_and_version(&st), (4, 1), "no new version");
        let log = &st.autoscale["web"];
        assert_eq!((log.total, log.scaled, log.decisions.len()), (1, 1, 1));
    }

    #[test]
    fn the_same_alert_applies_once() {
        let mut st = cluster();
        st.apply(&req(20, decision(2, 3, Some("k1"))));
        let r = st.apply(&req(30, decision(3, 4, Some("k1"))));
        let Response::Autoscale(o) = r else {
            panic!("{r:?}")
        };
        assert!(!o.applied);
        assert_eq!(
            o.decision.to, 3,
            "answers the decision recorded the first time"
        );
        assert_eq!(replicas_and_version(&st).0, 3);
        assert_eq!(st.autoscale["web"].total, 1);
    }

    #[test]
    fn a_stale_or_out_of_bounds_decision_is_refused_and_changes_nothing() {
        let mut st = cluster();
        let before = st.clone();
        let r = st.apply(&req(20, decision(3, 4, None)));
        assert!(
            matches!(r, Response::Error(ref e) if e.code == ErrorCode::Conflict),
            "{r:?}"
        );
        let r = st.apply(&req(20, decision(2, 9, None)));
        assert!(
            matches!(r, Response::Error(ref e) if e.code == ErrorCode::Invalid),
            "{r:?}"
        );
        assert_eq!(st, before);
    }

    #[test]
    fn scaling_makes_no_version_so_rollback_skips_it_and_apply_keeps_the_count() {
        let mut st = cluster();
        let mut v2 = st.services["web"].current().spec.as_ref().clone();
        v2.image = "busybox:2".into();
        st.apply(&req(20, Command::ApplyService(Box::new(v2.clone()))));
        st.apply(&req(
            30,
            Command::ScaleService {
                name: "web".into(),
                replicas: 5,
            },
        ));
        st.apply(&req(40, decision(5, 4, None)));
        assert_eq!(replicas_and_version(&st), (4, 2));
        // Applying the file again (replicas = 2 in it) keeps the autoscaled count.
        let r = st.apply(&req(50, Command::ApplyService(Box::new(v2))));
        assert!(matches!(r, Response::Service(ref c) if !c.changed), "{r:?}");
        // Rollback goes to version 1's image, with the current count.
        st.apply(&req(
            60,
            Command::RollbackService {
                name: "web".into(),
                version: None,
            },
        ));
        let cur = st.services["web"].current();
        assert_eq!((cur.spec.image.as_str(), cur.spec.replicas), ("busybox", 4));
        let sources: Vec<_> = st.autoscale["web"]
            .decisions
            .iter()
            .map(|d| d.source)
            .collect();
        assert_eq!(
            sources,
            [AutoscaleSource::Operator, AutoscaleSource::Alertmanager]
        );
    }

    #[test]
    fn before_format_2_a_scale_is_still_a_version() {
        let mut st = cluster();
        st.cluster_format = 1;
        st.apply(&req(
            30,
            Command::ScaleService {
                name: "web".into(),
                replicas: 3,
            },
        ));
        assert_eq!(replicas_and_version(&st), (3, 2));
        assert!(!st.autoscale.contains_key("web"));
    }

    #[test]
    fn the_history_and_alert_keys_are_bounded_and_go_with_the_service() {
        let mut st = cluster();
        for i in 0..(AutoscaleLog::KEEP_KEYS + 10) {
            let from = st.services["web"].current().spec.replicas;
            let to = if from == 5 { 1 } else { from + 1 };
            st.apply(&req(
                20 + i as u64,
                decision(from, to, Some(&format!("k{i}"))),
            ));
        }
        let log = &st.autoscale["web"];
        assert_eq!(log.decisions.len(), AutoscaleLog::KEEP);
        assert_eq!(log.seen.len(), AutoscaleLog::KEEP_KEYS);
        assert_eq!(log.total as usize, AutoscaleLog::KEEP_KEYS + 10);
        st.apply(&req(9_999, Command::DeleteService { name: "web".into() }));
        assert!(st.autoscale.is_empty());
    }

    #[test]
    fn hook_tokens_are_created_once_and_removed() {
        let mut st = cluster();
        let token = HookToken {
            id: "0f1e2d3c".into(),
            service: None,
            secret_sha256: "ab".repeat(32),
            created_ms: 1,
        };
        assert_eq!(
            st.apply(&req(1, Command::CreateHookToken(token.clone()))),
            Response::Ok
        );
        assert!(matches!(
            st.apply(&req(2, Command::CreateHookToken(token))),
            Response::Error(ref e) if e.code == ErrorCode::Conflict
        ));
        let id = "0f1e2d3c".to_string();
        assert_eq!(
            st.apply(&req(3, Command::RemoveHookToken { id: id.clone() })),
            Response::Ok
        );
        assert!(matches!(
            st.apply(&req(4, Command::RemoveHookToken { id })),
            Response::Error(ref e) if e.code == ErrorCode::NotFound
        ));
    }
}
