//! The `/metrics` exposition shared by the controller and the agent: which format a scraper asked
//! for, encoding a `prometheus-client` registry in it, and small helpers for collectors that
//! compute their values at scrape time from a snapshot (rows of labels and values).
//!
//! Prometheus' text format (0.0.4) is the default; a scraper that sends
//! `Accept: application/openmetrics-text` gets OpenMetrics 1.0 (Prometheus itself asks for it
//! first). Both come from `prometheus-client`'s own encoders, so names, `_total` suffixes, units
//! and escaping follow the specifications without code of ours.

use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of an OpenMetrics answer.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The two text formats a scraper may get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposition {
    /// Prometheus text format 0.0.4: the default.
    Prometheus,
    /// OpenMetrics 1.0 text, when the `Accept` header names `application/openmetrics-text`.
    OpenMetrics,
}

impl Exposition {
    /// The format an `Accept` header asks for: OpenMetrics when it lists
    /// `application/openmetrics-text` with a quality above 0, else Prometheus text.
    pub fn from_accept(accept: Option<&str>) -> Exposition {
        let wants_openmetrics = accept.is_some_and(|a| {
            a.split(',').any(|item| {
                let mut parts = item.split(';').map(str::trim);
                let media = parts.next().unwrap_or_default();
                let q = parts
                    .filter_map(|p| p.strip_prefix("q="))
                    .find_map(|q| q.parse::<f64>().ok())
                    .unwrap_or(1.0);
                media.eq_ignore_ascii_case("application/openmetrics-text") && q > 0.0
            })
        });
        if wants_openmetrics {
            Exposition::OpenMetrics
        } else {
            Exposition::Prometheus
        }
    }

    /// The answer's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Exposition::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Exposition::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }

    /// `registry` in this format (OpenMetrics ends with `# EOF`).
    pub fn encode(self, registry: &Registry) -> String {
        let mut out = String::with_capacity(64 * 1024);
        // Writing to a String cannot fail; a collector's own error would leave a partial body,
        // which a scraper refuses as a whole, so it is not hidden either.
        let written = match self {
            Exposition::Prometheus => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, registry)
            }
            Exposition::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut out, registry)
            }
        };
        if written.is_err() {
            out.push_str("# encoding failed\n");
        }
        out
    }
}

/// Writes a gauge family computed at scrape time: `name` (plus the unit's suffix) with one sample
/// per row. Nothing at all when there are no rows.
pub fn gauges<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    rows: &[(L, f64)],
) -> std::fmt::Result {
    family(encoder, name, help, unit, MetricType::Gauge, rows)
}

/// Writes a counter family computed at scrape time (each sample named `..._total`), as
/// [`gauges`] does.
pub fn counters<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    rows: &[(L, f64)],
) -> std::fmt::Result {
    family(encoder, name, help, unit, MetricType::Counter, rows)
}

fn family<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    kind: MetricType,
    rows: &[(L, f64)],
) -> std::fmt::Result {
    if rows.is_empty() {
        return Ok(());
    }
    let mut family = encoder.encode_descriptor(name, help, unit, kind)?;
    for (labels, value) in rows {
        let sample = family.encode_family(labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(*value).encode(sample)?,
            _ => ConstGauge::new(*value).encode(sample)?,
        }
    }
    Ok(())
}

/// The value of the sample written exactly as `series` (`name{labels}`) in a text exposition:
/// for tests and tools that read an answer back.
pub fn value_of(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Latency buckets in seconds for requests and probes: 1 ms to 10 s.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::collector::Collector;
    use prometheus_client::metrics::counter::Counter;

    #[test]
    fn accept_headers_choose_the_format() {
        let om = Some("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1");
        assert_eq!(Exposition::from_accept(om), Exposition::OpenMetrics);
        assert_eq!(
            Exposition::from_accept(Some("Application/OpenMetrics-Text")),
            Exposition::OpenMetrics
        );
        for prom in [
            None,
            Some(""),
            Some("*/*"),
            Some("text/plain; version=0.0.4"),
            Some("application/openmetrics-text; q=0, text/plain"),
            Some("application/json"),
        ] {
            assert_eq!(
                Exposition::from_accept(prom),
                Exposition::Prometheus,
                "{prom:?}"
            );
        }
    }

    #[derive(Debug)]
    struct Rows(Vec<(Vec<(&'static str, String)>, f64)>);

    impl Collector for Rows {
        fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
            gauges(
                &mut e,
                "test_memory",
                "Memory.",
                Some(&Unit::Bytes),
                &self.0,
            )?;
            counters(
                &mut e,
                "test_cpu",
                "CPU time.",
                Some(&Unit::Seconds),
                &self.0,
            )?;
            gauges::<Vec<(&str, String)>>(&mut e, "test_none", "Never written.", None, &[])
        }
    }

    fn registry() -> Registry {
        let mut r = Registry::default();
        let c: Counter = Counter::default();
        c.inc_by(3);
        r.register("test_requests", "Requests", c);
        r.register_collector(Box::new(Rows(vec![(
            vec![("service", "web".into()), ("slot", "a\"b\\c\nd".into())],
            1.5,
        )])));
        r
    }

    #[test]
    fn prometheus_text_names_counters_with_total_and_units_as_suffixes() {
        let text = Exposition::Prometheus.encode(&registry());
        let expected = "# HELP test_requests_total Requests.\n\
            # TYPE test_requests_total counter\n\
            test_requests_total 3\n\
            # HELP test_memory_bytes Memory.\n\
            # TYPE test_memory_bytes gauge\n\
            test_memory_bytes{service=\"web\",slot=\"a\\\"b\\\\c\\nd\"} 1.5\n\
            # HELP test_cpu_seconds_total CPU time.\n\
            # TYPE test_cpu_seconds_total counter\n\
            test_cpu_seconds_total{service=\"web\",slot=\"a\\\"b\\\\c\\nd\"} 1.5\n";
        assert_eq!(text, expected);
        assert!(!text.contains("test_none"));
    }

    #[test]
    fn openmetrics_has_units_and_ends_with_eof() {
        let text = Exposition::OpenMetrics.encode(&registry());
        assert!(text.contains("# UNIT test_memory_bytes bytes\n"), "{text}");
        assert!(text.contains("# TYPE test_cpu_seconds counter\n"), "{text}");
        assert!(text.contains("\ntest_cpu_seconds_total{"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
