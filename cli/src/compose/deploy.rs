//! `deploy` (Swarm's section) and the older service-level resource keys (`cpus`, `mem_limit`,
//! `mem_reservation`, `pids_limit`, `scale`) → replicas, resources and policies.

use super::convert::{string_map, Svc};
use super::value::{duration, entries, int, list, mapping, string};
use hoist_proto::quantity::Quantity;
use hoist_proto::service::{
    validate_constraint, EndpointMode, FailureAction, ResourceLimits, ResourceReservations,
    RestartCondition, ServiceMode, ServiceSpec, UpdateOrder,
};
use serde_yaml_ng::Value;

pub fn deploy(s: &mut Svc<'_, '_>, v: &Value, spec: &mut ServiceSpec) {
    let Some(m) = s.get("deploy", mapping(v)) else {
        return;
    };
    let Some(keys) = s.get("deploy", entries(m)) else {
        return;
    };
    let mut parallelism_zero = false;
    for (k, val) in keys {
        let key = format!("deploy.{k}");
        let r: Result<(), String> = (|| {
            match k {
                "mode" => {
                    spec.mode = match string(val)?.as_str() {
                        "replicated" => ServiceMode::Replicated,
                        "global" => ServiceMode::Global,
                        o @ ("replicated-job" | "global-job") => {
                            return Err(format!(
                                "Hoist cannot honour {o}: services run until removed"
                            ))
                        }
                        o => return Err(format!("{o:?} is not replicated or global")),
                    }
                }
                "replicas" => spec.replicas = int(val)?,
                "endpoint_mode" => {
                    spec.endpoint_mode = match string(val)?.as_str() {
                        "vip" => EndpointMode::Vip,
                        "dnsrr" => EndpointMode::Dnsrr,
                        o => return Err(format!("{o:?} is not vip or dnsrr")),
                    }
                }
                "labels" => {}
                "resources" => resources(val, spec)?,
                "restart_policy" => {
                    for (rk, rv) in entries(mapping(val)?)? {
                        let r = &mut spec.restart;
                        match rk {
                            "condition" => {
                                r.condition = match string(rv)?.as_str() {
                                    "any" => RestartCondition::Any,
                                    "on-failure" => RestartCondition::OnFailure,
                                    "none" => RestartCondition::None,
                                    o => {
                                        return Err(format!(
                                            "condition: {o:?} is not any, on-failure or none"
                                        ))
                                    }
                                }
                            }
                            "delay" => r.delay = duration(rv).map_err(|e| format!("delay: {e}"))?,
                            "window" => {
                                r.window = duration(rv).map_err(|e| format!("window: {e}"))?
                            }
                            "max_attempts" => {
                                r.max_attempts =
                                    int(rv).map_err(|e| format!("max_attempts: {e}"))?
                            }
                            o => return Err(format!("{o}: not a restart_policy key")),
                        }
                    }
                }
                "update_config" => {
                    for (uk, uv) in entries(mapping(val)?)? {
                        let u = &mut spec.update;
                        let at = |e: String| format!("{uk}: {e}");
                        match uk {
                            "parallelism" => {
                                u.parallelism = int(uv).map_err(at)?;
                                parallelism_zero = u.parallelism == 0;
                            }
                            "delay" => u.delay = duration(uv).map_err(at)?,
                            "monitor" => u.monitor = duration(uv).map_err(at)?,
                            "max_failure_ratio" => {
                                u.max_failure_ratio = Some(Quantity(string(uv).map_err(at)?))
                            }
                            "failure_action" => {
                                u.failure_action = match string(uv)?.as_str() {
                                    "pause" => FailureAction::Pause,
                                    "rollback" => FailureAction::Rollback,
                                    "continue" => FailureAction::Continue,
                                    o => {
                                        return Err(format!(
                                        "failure_action: {o:?} is not pause, rollback or continue"
                                    ))
                                    }
                                }
                            }
                            "order" => {
                                u.order = match string(uv)?.as_str() {
                                    "stop-first" => UpdateOrder::StopFirst,
                                    "start-first" => UpdateOrder::StartFirst,
                                    o => {
                                        return Err(format!(
                                            "order: {o:?} is not stop-first or start-first"
                                        ))
                                    }
                                }
                            }
                            o => return Err(format!("{o}: not an update_config key")),
                        }
                    }
                }
                "rollback_config" => {
                    mapping(val)?;
                    s.warn(
                        &key,
                        "ignored: Hoist rolls a service back to its previous version at once \
                         (a stack rolls back as a whole)",
                    );
                }
                "placement" => placement(val, spec)?,
                o => return Err(format!("{o}: not a deploy key")),
            }
            Ok(())
        })();
        if let Err(e) = r {
            s.err(&key, e);
        }
    }
    if let Some(labels) = m.get("labels") {
        if let Some(l) = string_map(s, "deploy.labels", labels) {
            if !l.is_empty() {
                s.warn(
                    "deploy.labels",
                    "Hoist has no service labels: these are put on the containers, as labels are",
                );
            }
            spec.labels.extend(l);
        }
    }
    // Swarm's 0 means every replica at once.
    if parallelism_zero {
        spec.update.parallelism = spec.replicas.max(1);
    }
}

fn resources(v: &Value, spec: &mut ServiceSpec) -> Result<(), String> {
    for (k, val) in entries(mapping(v)?)? {
        match k {
            "limits" => {
                let mut l = ResourceLimits::default();
                for (lk, lv) in entries(mapping(val)?)? {
                    let at = |e: String| format!("limits.{lk}: {e}");
                    match lk {
                        "cpus" => l.cpu = Some(Quantity(string(lv).map_err(at)?)),
                        "memory" => l.memory = Some(Quantity(string(lv).map_err(at)?)),
                        "pids" => l.pids = Some(int(lv).map_err(at)?),
                        o => return Err(format!("limits.{o}: Hoist cannot honour it")),
                    }
                }
                spec.resources.limits = Some(l);
            }
            "reservations" => {
                let mut r = ResourceReservations::default();
                for (rk, rv) in entries(mapping(val)?)? {
                    let at = |e: String| format!("reservations.{rk}: {e}");
                    match rk {
                        "cpus" => r.cpu = Some(Quantity(string(rv).map_err(at)?)),
                        "memory" => r.memory = Some(Quantity(string(rv).map_err(at)?)),
                        o => return Err(format!("reservations.{o}: Hoist cannot honour it (no devices or generic resources)")),
                    }
                }
                spec.resources.reservations = Some(r);
            }
            o => return Err(format!("{o}: not a resources key")),
        }
    }
    Ok(())
}

fn placement(v: &Value, spec: &mut ServiceSpec) -> Result<(), String> {
    for (k, val) in entries(mapping(v)?)? {
        match k {
            "constraints" => {
                for (i, c) in list(val)?.iter().enumerate() {
                    let c = tidy_constraint(&string(c)?);
                    validate_constraint(&c).map_err(|e| {
                        format!("constraints[{i}]: {e} (Hoist places by node.id, node.hostname and node.labels)")
                    })?;
                    if !spec.placement.constraints.contains(&c) {
                        spec.placement.constraints.push(c);
                    }
                }
            }
            "max_replicas_per_node" => spec.placement.max_per_node = int(val)?,
            "preferences" => {
                let prefs = list(val)?;
                if prefs.len() > 1 {
                    return Err("preferences: Hoist spreads over one node label only".into());
                }
                for p in prefs {
                    let m = mapping(p)?;
                    let spread = m
                        .get("spread")
                        .ok_or("preferences: each must be { spread: node.labels.KEY }")?;
                    let spread = string(spread)?;
                    if !spread.starts_with("node.labels.") {
                        return Err(format!("preferences: spread over {spread:?}: Hoist spreads over node.labels.KEY only"));
                    }
                    spec.placement.spread = Some(spread);
                }
            }
            o => return Err(format!("{o}: not a placement key")),
        }
    }
    Ok(())
}

/// `node.labels.zone == a` → `node.labels.zone==a`.
fn tidy_constraint(c: &str) -> String {
    for op in ["==", "!="] {
        if let Some((l, r)) = c.split_once(op) {
            return format!("{}{op}{}", l.trim(), r.trim());
        }
    }
    c.trim().to_string()
}

/// The service-level keys of Compose's older formats: taken where `deploy` says nothing, an error
/// where it says something else (as `docker compose` does).
pub fn legacy(s: &mut Svc<'_, '_>, keys: &[(&str, &Value)], spec: &mut ServiceSpec) {
    for (k, v) in keys {
        let r: Result<(), String> = (|| {
            let conflict = |deploy: &str| {
                format!("says something else than deploy.{deploy}: keep one of them")
            };
            match *k {
                "scale" => {
                    let n = int(v)?;
                    if spec.replicas != 1 && spec.replicas != n {
                        return Err(conflict("replicas"));
                    }
                    spec.replicas = n;
                }
                "pids_limit" => {
                    let n = int(v)?;
                    let l = spec.resources.limits.get_or_insert_with(Default::default);
                    match l.pids {
                        Some(p) if p != n => return Err(conflict("resources.limits.pids")),
                        _ => l.pids = Some(n),
                    }
                }
                "cpus" | "mem_limit" => {
                    let q = Quantity(string(v)?);
                    let l = spec.resources.limits.get_or_insert_with(Default::default);
                    let (slot, name) = if *k == "cpus" {
                        (&mut l.cpu, "resources.limits.cpus")
                    } else {
                        (&mut l.memory, "resources.limits.memory")
                    };
                    match slot {
                        Some(x) if *x != q => return Err(conflict(name)),
                        _ => *slot = Some(q),
                    }
                }
                _ => {
                    let q = Quantity(string(v)?);
                    let r = spec
                        .resources
                        .reservations
                        .get_or_insert_with(Default::default);
                    match &r.memory {
                        Some(x) if *x != q => {
                            return Err(conflict("resources.reservations.memory"))
                        }
                        _ => r.memory = Some(q),
                    }
                }
            }
            Ok(())
        })();
        if let Err(e) = r {
            s.err(k, e);
        }
    }
}
