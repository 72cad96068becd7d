//! Instant queries against a Prometheus server (`GET /api/v1/query`), for clusters whose
//! status addresses only resolve inside their own network (compose/tikv.yml's `tikv1:20180`),
//! where Prometheus, which runs in that network, scrapes them for us.
//!
//! Wire format: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{..},
//! "value":[<unix seconds>,"<value as a string>"]}]}}`; failures are `{"status":"error",
//! "errorType":"bad_data","error":"..."}` with 400 (bad query), 422 (cannot execute) or 503.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::metrics::MetricSample;

pub struct PrometheusClient {
    url: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Value,
}

#[derive(Deserialize)]
struct Series {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

/// Prometheus writes sample values as strings, including "NaN" and "+Inf".
fn number(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        other => other
            .parse()
            .map_err(|_| format!("Prometheus sent the sample value {other:?}")),
    }
}

impl PrometheusClient {
    pub fn new(url: &str, http: reqwest::Client) -> Self {
        Self {
            url: url.trim_end_matches('/').to_string(),
            http,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// One instant query: a vector's series, or a scalar as one series without labels.
    pub async fn query(&self, promql: &str) -> Result<Vec<MetricSample>, String> {
        let failed = |e: &dyn std::fmt::Display| format!("Prometheus at {}: {e}", self.url);
        let response = self
            .http
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", promql)])
            .send()
            .await
            .map_err(|e| failed(&e))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| failed(&e))?;
        let answer: Answer = serde_json::from_str(&body).map_err(|_| {
            failed(&format!(
                "HTTP {status} with a body that is not the query API's JSON: {:.120}",
                body.trim()
            ))
        })?;
        if answer.status != "success" {
            return Err(failed(&format!(
                "{} ({}) for {promql:?}",
                answer.error.unwrap_or_else(|| "no error message".into()),
                answer.error_type.unwrap_or_else(|| status.to_string()),
            )));
        }
        let data = answer
            .data
            .ok_or_else(|| failed(&"a success without data"))?;
        match data.result_type.as_str() {
            "vector" => {
                let series: Vec<Series> = serde_json::from_value(data.result)
                    .map_err(|e| failed(&format!("an odd vector: {e}")))?;
                series
                    .into_iter()
                    .map(|s| {
                        Ok(MetricSample {
                            name: s.metric.get("__name__").cloned().unwrap_or_default(),
                            value: number(&s.value.1)?,
                            labels: s
                                .metric
                                .into_iter()
                                .filter(|(k, _)| k != "__name__")
                                .collect(),
                        })
                    })
                    .collect()
            }
            "scalar" => {
                let (_, value): (f64, String) = serde_json::from_value(data.result)
                    .map_err(|e| failed(&format!("an odd scalar: {e}")))?;
                Ok(vec![MetricSample {
                    name: String::new(),
                    labels: BTreeMap::new(),
                    value: number(&value)?,
                }])
            }
            other => Err(failed(&format!(
                "a {other} result; ask for an instant vector or scalar (no range selector)"
            ))),
        }
    }
}
