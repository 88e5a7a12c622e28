//! Alertmanager's webhook payload (version 4), read strictly: what each firing alert asks of
//! which service, and the identity that makes a re-delivery (Alertmanager re-sends a group every
//! `repeat_interval`, and after its own restarts) apply once.
//!
//! Alerts name their service with the label `hoist_service` and the direction with
//! `hoist_scale = up|down`; an optional `hoist_value` annotation carries the value of a
//! proportional policy (`[autoscale] target`). Resolved alerts ask nothing.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The payload, as far as Hoist reads it (other fields are ignored).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    pub version: String,
    pub group_key: String,
    #[serde(default)]
    pub receiver: String,
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub status: String,
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// What one firing alert asks.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertAsk {
    /// Its position in `alerts`, for answers.
    pub index: usize,
    pub service: String,
    pub up: bool,
    /// `hoist_value`, for a proportional policy.
    pub value: Option<f64>,
    /// `alertname`, or `alert` when it has none.
    pub name: String,
    /// Group key, fingerprint (or labels) and start: the same alert delivered again has the same.
    pub dedup: String,
}

/// A problem with the payload: the field at fault and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadError {
    pub field: String,
    pub message: String,
}

fn bad(field: String, message: impl Into<String>) -> PayloadError {
    PayloadError {
        field,
        message: message.into(),
    }
}

/// The asks of the firing alerts, in order; any malformed alert refuses the whole payload
/// (nothing is applied).
pub fn asks(p: &Payload) -> Result<Vec<AlertAsk>, PayloadError> {
    if p.version != "4" {
        return Err(bad(
            "version".into(),
            format!(
                "{:?} is not a webhook version Hoist reads (\"4\", Alertmanager ≥ 0.16)",
                p.version
            ),
        ));
    }
    if p.group_key.is_empty() {
        return Err(bad("groupKey".into(), "must not be empty"));
    }
    let mut out = vec![];
    for (i, a) in p.alerts.iter().enumerate() {
        let at = |f: &str| format!("alerts[{i}].{f}");
        match a.status.as_str() {
            "firing" => {}
            "resolved" => continue,
            other => {
                return Err(bad(
                    at("status"),
                    format!("{other:?} is not firing or resolved"),
                ))
            }
        }
        let service = a
            .labels
            .get("hoist_service")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                bad(
                    at("labels.hoist_service"),
                    "missing: name the service to scale",
                )
            })?;
        let up = match a.labels.get("hoist_scale").map(String::as_str) {
            Some("up") => true,
            Some("down") => false,
            Some(other) => {
                return Err(bad(
                    at("labels.hoist_scale"),
                    format!("{other:?} is not up or down"),
                ))
            }
            None => return Err(bad(at("labels.hoist_scale"), "missing: up or down")),
        };
        let value = match a.annotations.get("hoist_value") {
            None => None,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(x) if x.is_finite() && x >= 0.0 => Some(x),
                _ => {
                    return Err(bad(
                        at("annotations.hoist_value"),
                        format!("{v:?} is not a number ≥ 0"),
                    ))
                }
            },
        };
        if a.starts_at.is_empty() {
            return Err(bad(at("startsAt"), "must not be empty"));
        }
        out.push(AlertAsk {
            index: i,
            service: service.clone(),
            up,
            value,
            name: a
                .labels
                .get("alertname")
                .cloned()
                .unwrap_or_else(|| "alert".into()),
            dedup: dedup_key(&p.group_key, a),
        });
    }
    Ok(out)
}

/// SHA-256 of group key, fingerprint (its labels when it has none) and start, 32 hex digits.
fn dedup_key(group_key: &str, a: &Alert) -> String {
    let mut h = Sha256::new();
    h.update(group_key.as_bytes());
    h.update([0]);
    match &a.fingerprint {
        Some(f) if !f.is_empty() => h.update(f.as_bytes()),
        _ => {
            for (k, v) in &a.labels {
                h.update(k.as_bytes());
                h.update([1]);
                h.update(v.as_bytes());
                h.update([2]);
            }
        }
    }
    h.update([0]);
    h.update(a.starts_at.as_bytes());
    hex::encode(&h.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(alerts: &str) -> Payload {
        serde_json::from_str(&format!(
            r#"{{"version":"4","groupKey":"{{}}:{{alertname=\"HighLoad\"}}","status":"firing",
               "receiver":"hoist","groupLabels":{{}},"commonLabels":{{}},"commonAnnotations":{{}},
               "externalURL":"http://am:9093","truncatedAlerts":0,"alerts":[{alerts}]}}"#
        ))
        .unwrap()
    }

    const FIRING: &str = r#"{"status":"firing","labels":{"alertname":"HighLoad","hoist_service":"web","hoist_scale":"up"},
        "annotations":{},"startsAt":"2026-12-04T10:00:00Z","endsAt":"0001-01-01T00:00:00Z",
        "generatorURL":"http://prom/graph","fingerprint":"a1b2c3"}"#;

    #[test]
    fn a_firing_alert_asks_its_service_to_scale() {
        let a = asks(&payload(FIRING)).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].service.as_str(), a[0].up, a[0].name.as_str()),
            ("web", true, "HighLoad")
        );
        assert_eq!(a[0].dedup.len(), 32);
    }

    #[test]
    fn a_redelivery_has_the_same_identity_and_a_new_firing_another() {
        let first = asks(&payload(FIRING)).unwrap();
        let again = asks(&payload(FIRING)).unwrap();
        assert_eq!(first[0].dedup, again[0].dedup);
        let later = FIRING.replace("10:00:00Z", "10:30:00Z");
        assert_ne!(asks(&payload(&later)).unwrap()[0].dedup, first[0].dedup);
    }

    #[test]
    fn resolved_alerts_ask_nothing() {
        let resolved = FIRING.replace(r#""status":"firing""#, r#""status":"resolved""#);
        assert!(asks(&payload(&resolved)).unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_field() {
        let e = asks(&payload(
            &FIRING.replace("hoist_scale\":\"up", "hoist_scale\":\"sideways"),
        ))
        .unwrap_err();
        assert_eq!(e.field, "alerts[0].labels.hoist_scale");
        let e = asks(&payload(&FIRING.replace("hoist_service", "service"))).unwrap_err();
        assert_eq!(e.field, "alerts[0].labels.hoist_service");
        let mut p = payload(FIRING);
        p.version = "3".into();
        assert_eq!(asks(&p).unwrap_err().field, "version");
        let v = FIRING.replace(
            r#""annotations":{}"#,
            r#""annotations":{"hoist_value":"lots"}"#,
        );
        assert_eq!(
            asks(&payload(&v)).unwrap_err().field,
            "alerts[0].annotations.hoist_value"
        );
    }
}
