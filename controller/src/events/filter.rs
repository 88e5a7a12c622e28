//! Which events a stream wants: `?type=`, `?service=`, `?node=`, each a comma list.

use hoist_proto::events::{Event, TYPES};

/// A stream's filter. Within a key any value matches (or); across keys all must (and). An
/// empty key matches everything. `events.lost` always passes: a reader must know its gaps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Exact types (`task.state`) or groups (`service`, for every `service.*`).
    types: Vec<String>,
    services: Vec<String>,
    nodes: Vec<String>,
}

impl Filter {
    /// Reads the query's values; an unknown type or group, or an empty item, is refused with
    /// the field named.
    pub fn parse(
        types: Option<&str>,
        services: Option<&str>,
        nodes: Option<&str>,
    ) -> Result<Filter, (&'static str, String)> {
        let types = list("type", types)?;
        for t in &types {
            let known = TYPES
                .iter()
                .any(|k| k == t || k.split_once('.').is_some_and(|(group, _)| group == t));
            if !known {
                return Err((
                    "type",
                    format!(
                        "{t:?} is not an event type or group; types: {}",
                        TYPES.join(", ")
                    ),
                ));
            }
        }
        Ok(Filter {
            types,
            services: list("service", services)?,
            nodes: list("node", nodes)?,
        })
    }

    pub fn matches(&self, e: &Event) -> bool {
        if e.is_meta() {
            return true;
        }
        let kind_ok = self.types.is_empty()
            || self.types.iter().any(|t| {
                e.kind == *t
                    || e.kind
                        .strip_prefix(t.as_str())
                        .is_some_and(|rest| rest.starts_with('.'))
            });
        let service_ok = self.services.is_empty()
            || e.service
                .as_ref()
                .is_some_and(|s| self.services.contains(s));
        let node_ok =
            self.nodes.is_empty() || e.node.as_ref().is_some_and(|n| self.nodes.contains(n));
        kind_ok && service_ok && node_ok
    }
}

fn list(field: &'static str, value: Option<&str>) -> Result<Vec<String>, (&'static str, String)> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    value
        .split(',')
        .map(|v| {
            let v = v.trim();
            if v.is_empty() {
                Err((field, format!("{value:?} has an empty item")))
            } else {
                Ok(v.to_string())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::events as ev;

    fn event(kind: &str, service: Option<&str>, node: Option<&str>) -> Event {
        let mut e = Event::new(kind, 0, "");
        e.service = service.map(str::to_string);
        e.node = node.map(str::to_string);
        e
    }

    #[test]
    fn groups_exact_types_services_and_nodes() {
        let f = Filter::parse(Some("service,task.state"), Some("web"), None).unwrap();
        assert!(f.matches(&event(ev::SERVICE_SCALED, Some("web"), None)));
        assert!(f.matches(&event(ev::TASK_STATE, Some("web"), Some("n1"))));
        assert!(!f.matches(&event(ev::TASK_HEALTH, Some("web"), Some("n1"))));
        assert!(!f.matches(&event(ev::SERVICE_SCALED, Some("api"), None)));
        // A node event names no service: a service filter leaves it out.
        assert!(!f.matches(&event(ev::NODE_DOWN, None, Some("n1"))));
        let f = Filter::parse(None, None, Some("n1,n2")).unwrap();
        assert!(f.matches(&event(ev::NODE_DOWN, None, Some("n2"))));
        assert!(f.matches(&event(ev::TASK_STATE, Some("web"), Some("n1"))));
        assert!(!f.matches(&event(ev::TASK_STATE, Some("web"), Some("n3"))));
        assert!(!f.matches(&event(ev::SERVICE_CREATED, Some("web"), None)));
        // No filter: everything.
        assert!(Filter::default().matches(&event(ev::CLUSTER_FORMAT, None, None)));
        // A group is a whole word: `serv` is none.
        assert!(Filter::parse(Some("serv"), None, None).is_err());
        let f = Filter::parse(Some("node"), None, None).unwrap();
        assert!(!f.matches(&event("nodes.x", None, None)));
    }

    #[test]
    fn gaps_always_pass() {
        let f = Filter::parse(Some("task.state"), Some("web"), Some("n9")).unwrap();
        assert!(f.matches(&event(ev::EVENTS_LOST, None, None)));
    }

    #[test]
    fn bad_filters_name_the_field() {
        let (field, message) = Filter::parse(Some("servce"), None, None).unwrap_err();
        assert_eq!(field, "type");
        assert!(
            message.contains("\"servce\" is not an event type"),
            "{message}"
        );
        assert!(message.contains("service.scaled"), "{message}");
        assert_eq!(
            Filter::parse(None, Some("web,"), None).unwrap_err().0,
            "service"
        );
        assert_eq!(Filter::parse(None, None, Some("")).unwrap_err().0, "node");
    }
}
