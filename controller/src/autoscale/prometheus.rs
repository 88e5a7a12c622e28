//! Pull mode's one read: an instant PromQL query against Prometheus' HTTP API
//! (`GET /api/v1/query`), answered as one number or a reason why not.

use serde::Deserialize;
use std::time::Duration;

/// Prometheus' answer envelope.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    result: serde_json::Value,
}

/// The one number of an answer body: a scalar, or a vector of exactly one sample.
pub fn parse(body: &[u8]) -> Result<f64, String> {
    let a: Answer =
        serde_json::from_slice(body).map_err(|e| format!("not a Prometheus answer: {e}"))?;
    if a.status != "success" {
        return Err(format!(
            "prometheus: {}: {}",
            a.error_type.as_deref().unwrap_or("error"),
            a.error.as_deref().unwrap_or("no message")
        ));
    }
    let data = a.data.ok_or("prometheus answered no data")?;
    let sample = match data.result_type.as_str() {
        "scalar" => data.result,
        "vector" => {
            let series = data
                .result
                .as_array()
                .ok_or("vector result is not a list")?;
            match series.len() {
                0 => return Err("empty result: the query matched no series".into()),
                1 => series[0]["value"].clone(),
                n => {
                    return Err(format!(
                        "{n} series: the query must answer one number (wrap it in sum() or avg())"
                    ))
                }
            }
        }
        other => {
            return Err(format!(
                "a {other} result: the query must answer one number"
            ))
        }
    };
    let text = sample
        .get(1)
        .and_then(|v| v.as_str())
        .ok_or("a sample without a value")?;
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if !value.is_finite() {
        return Err(format!("the query answered {text}"));
    }
    Ok(value)
}

/// Runs `query` against the Prometheus at `base` (`http://host:9090`).
pub async fn query(http: &reqwest::Client, base: &str, query: &str) -> Result<f64, String> {
    let url = format!("{}/api/v1/query", base.trim_end_matches('/'));
    let url = reqwest::Url::parse_with_params(&url, &[("query", query)])
        .map_err(|e| format!("--prometheus {base:?}: {e}"))?;
    let resp = http
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| format!("prometheus at {base} unreachable: {e}"))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("prometheus at {base}: {e}"))?;
    // Prometheus answers errors (400 bad_data, 422 execution) with the same envelope.
    parse(&body).map_err(|e| {
        if status.is_success() || e.starts_with("prometheus:") {
            e
        } else {
            format!("prometheus at {base} answered {status}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_is_the_value() {
        let v = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1733300000.1,"12.5"]}]}}"#;
        assert_eq!(parse(v), Ok(12.5));
        let s =
            br#"{"status":"success","data":{"resultType":"scalar","result":[1733300000.1,"3"]}}"#;
        assert_eq!(parse(s), Ok(3.0));
    }

    #[test]
    fn anything_else_is_a_reason() {
        let empty = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(parse(empty).unwrap_err().starts_with("empty result"));
        let two = br#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"1"]},{"value":[1,"2"]}]}}"#;
        assert!(parse(two).unwrap_err().starts_with("2 series"));
        let err =
            br#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected"}"#;
        assert_eq!(
            parse(err).unwrap_err(),
            "prometheus: bad_data: 1:5: parse error: unexpected"
        );
        let nan = br#"{"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}}"#;
        assert_eq!(parse(nan).unwrap_err(), "the query answered NaN");
    }
}
