//! Prometheus text exposition (format 0.0.4, and the OpenMetrics text the rate limiter's
//! nodes serve) read the same way for every subject: every sample flat, histograms as their
//! `_bucket`, `_sum` and `_count` series with `le` as written, as PromQL would show them.
//! Behind the `prometheus` feature, so the contract itself stays serde-only for a subject
//! that exposes no metrics.
//!
//! Written here rather than taken from a crate: `prometheus-parse`, the one maintained text
//! parser, splits label values on every `,` and `=` (so `path="/a,b"` reads as two broken
//! labels) and runs three regexes per line, which was a fifth of all the time the TiKV
//! observation spent (BENCHMARKS.md). The format is one line per sample and small enough to
//! read exactly: a name, labels with `\\`, `\"` and `\n` escapes, a value, a timestamp.

use std::collections::BTreeMap;

use serde::Serialize;

/// One sample as a brain sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricSample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of an exposition, with `extra` labels (the instance it came from) added.
/// A line that is not a comment, blank or a sample fails the whole read, as it fails
/// Prometheus's scrape: half a reading would look like a store with no leaders.
pub fn samples(
    text: &str,
    what: &str,
    extra: &[(&str, &str)],
) -> Result<Vec<MetricSample>, String> {
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut sample = sample(line)
            .map_err(|e| format!("{what} does not parse at line {}: {e}", number + 1))?;
        for (k, v) in extra {
            sample.labels.insert(k.to_string(), v.to_string());
        }
        out.push(sample);
    }
    Ok(out)
}

/// `name{label="value",...} value [timestamp]`
fn sample(line: &str) -> Result<MetricSample, String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!("no metric name in {line:?}"));
    }
    let mut rest = line[name_end..].trim_start();
    let mut labels = BTreeMap::new();
    if let Some(inside) = rest.strip_prefix('{') {
        rest = read_labels(inside, &mut labels).map_err(|e| format!("{name}: {e}"))?;
    }
    let mut fields = rest.split_whitespace();
    let value = fields
        .next()
        .ok_or_else(|| format!("{name} has no value"))?;
    let value = value
        .parse::<f64>()
        .map_err(|_| format!("{name}'s value {value:?} is not a number"))?;
    match fields.next() {
        // A timestamp (ms) is allowed and not used: samples are read as of their scrape.
        Some(t) if t.parse::<i64>().is_err() && !t.starts_with('#') => {
            return Err(format!("{name}'s timestamp {t:?} is not an integer"));
        }
        _ => {}
    }
    Ok(MetricSample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Reads `label="value",...}` into `labels`; returns what follows the closing brace.
fn read_labels<'a>(
    mut rest: &'a str,
    labels: &mut BTreeMap<String, String>,
) -> Result<&'a str, String> {
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let (label, after) = rest
            .split_once('=')
            .ok_or("a label without '=' or an unclosed '{'")?;
        let label = label.trim();
        if label.is_empty() || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("{label:?} is not a label name"));
        }
        let quoted = after
            .trim_start()
            .strip_prefix('"')
            .ok_or_else(|| format!("label {label}'s value is not quoted"))?;
        let (value, after) =
            read_quoted(quoted).ok_or_else(|| format!("label {label}'s value never ends"))?;
        labels.insert(label.to_string(), value);
        rest = after.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// The value up to its closing quote, unescaped, and what follows the quote.
fn read_quoted(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> MetricSample {
        let mut all = samples(line, "test", &[]).unwrap();
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }

    #[test]
    fn a_histogram_reads_as_its_flat_series() {
        let text = "# HELP d Latency.\n# TYPE d histogram\n\
                    d_bucket{le=\"0.005\"} 3\nd_bucket{le=\"+Inf\"} 4\nd_sum 0.25\nd_count 4\n";
        let all = samples(text, "test", &[("instance", "s1")]).unwrap();
        let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["d_bucket", "d_bucket", "d_sum", "d_count"]);
        assert_eq!(all[1].labels["le"], "+Inf");
        assert_eq!(all[1].labels["instance"], "s1");
        assert_eq!(all[2].value, 0.25);
    }

    #[test]
    fn label_values_keep_commas_equals_braces_and_escapes() {
        let s = one(r#"http_requests_total{path="/a,b=c}",note="say \"hi\"\nback\\slash"} 7"#);
        assert_eq!(s.labels["path"], "/a,b=c}");
        assert_eq!(s.labels["note"], "say \"hi\"\nback\\slash");
        assert_eq!(s.value, 7.0);
    }

    #[test]
    fn spacing_a_trailing_comma_and_a_timestamp_are_accepted() {
        let s = one("m { a = \"1\" , b=\"2\", } 1.5e3 1700000000000");
        assert_eq!(s.labels.len(), 2);
        assert_eq!(s.value, 1500.0);
    }

    #[test]
    fn special_values_parse() {
        assert!(one("m NaN").value.is_nan());
        assert_eq!(one("m +Inf").value, f64::INFINITY);
        assert_eq!(one("m -Inf").value, f64::NEG_INFINITY);
    }

    #[test]
    fn openmetrics_text_reads_too() {
        let text = "# TYPE rl_checks counter\nrl_checks_total{decision=\"allow\"} 5 # {trace=\"x\"} 1\n# EOF\n";
        assert_eq!(samples(text, "test", &[]).unwrap()[0].value, 5.0);
    }

    #[test]
    fn what_is_not_a_sample_fails_with_its_line() {
        for (text, says) in [
            ("ok 1\n<html><body>", "line 2: no metric name"),
            ("m{a=\"1 1", "never ends"),
            ("m{a=\"1\" 1", "unclosed"),
            ("m{a=1} 1", "not quoted"),
            ("m", "has no value"),
            ("m one", "not a number"),
            ("m 1 soon", "not an integer"),
            ("m{a\"b\"} 1", "without '='"),
        ] {
            let e = samples(text, "PD's /metrics", &[]).unwrap_err();
            assert!(e.starts_with("PD's /metrics does not parse"), "{e}");
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }
}
