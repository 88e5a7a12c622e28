//! Reading a `/metrics` answer in tests: the samples of the Prometheus text format as
//! (name, labels, value), and `promtool check metrics` (Debian's `prometheus` package) as the
//! independent judge of the format and of Prometheus' naming rules.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The samples of a text exposition (comments and `# EOF` skipped). Label values are unescaped.
pub fn parse(text: &str) -> Result<Vec<Sample>> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line
            .rsplit_once(' ')
            .with_context(|| format!("no value: {line:?}"))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().with_context(|| format!("value of {line:?}"))?,
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .with_context(|| format!("labels of {line:?}"))?;
                (name.to_string(), labels_of(body)?)
            }
        };
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    Ok(out)
}

/// `a="x",b="y\"z"` → map.
fn labels_of(body: &str) -> Result<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    let mut chars = body.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('"') {
            bail!("label {key} of {{{body}}} is not quoted");
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => bail!("{{{body}}} ends in an escape"),
                },
                Some('"') => break,
                Some(c) => value.push(c),
                None => bail!("{{{body}}} ends inside a value"),
            }
        }
        m.insert(key.trim_start_matches(',').to_string(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    Ok(m)
}

/// The samples named `name` whose labels include every pair of `labels`.
pub fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

/// The one sample named `name` with `labels`; an error naming what was there otherwise.
pub fn one(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Result<f64> {
    match find(samples, name, labels).as_slice() {
        [s] => Ok(s.value),
        found => bail!(
            "{} samples of {name} with {labels:?} (want 1): {found:?}; names there: {:?}",
            found.len(),
            samples
                .iter()
                .map(|s| s.name.as_str())
                .collect::<std::collections::BTreeSet<_>>()
        ),
    }
}

/// Pipes `text` through `promtool check metrics`; an error with promtool's words when it
/// objects (a format error, or a lint such as a counter without `_total`).
pub fn promtool_check(text: &str) -> Result<()> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("run promtool (apt-get install prometheus)")?;
    child
        .stdin
        .take()
        .context("promtool's stdin")?
        .write_all(text.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "promtool check metrics failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_labels_and_values() {
        let text = "# HELP x_total X.\n# TYPE x_total counter\nx_total{a=\"1\",b=\"q\\\"\\\\\\n\"} 3\ny 2.5\nz_bucket{le=\"+Inf\"} +Inf\n# EOF\n";
        let s = parse(text).expect("parse");
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].name, "x_total");
        assert_eq!(s[0].labels["a"], "1");
        assert_eq!(s[0].labels["b"], "q\"\\\n");
        assert_eq!(s[0].value, 3.0);
        assert_eq!(one(&s, "y", &[]).expect("y"), 2.5);
        assert!(one(&s, "x_total", &[("a", "2")]).is_err());
        assert_eq!(s[2].value, f64::INFINITY);
    }
}
