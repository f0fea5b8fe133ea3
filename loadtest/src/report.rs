//! Results: the human summary, the `--json` object and the HdrHistogram percentile
//! distribution file (`--hist-file`, the `.hgrm` text format HdrHistogram's plotters read).

use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// What a run measured, plus how it was run.
pub struct Summary {
    pub workload: String,
    pub url: String,
    pub baseline: bool,
    pub conns: usize,
    pub inflight: usize,
    pub threads: usize,
    pub elapsed_s: f64,
    pub ops: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub per_kind: Vec<(&'static str, u64)>,
    pub hist: Histogram<u64>,
}

/// Nanoseconds → microseconds.
fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

impl Summary {
    /// Operations per second.
    pub fn rate(&self) -> f64 {
        if self.elapsed_s > 0.0 {
            self.ops as f64 / self.elapsed_s
        } else {
            0.0
        }
    }

    fn q(&self, q: f64) -> f64 {
        us(self.hist.value_at_quantile(q))
    }

    /// The report for people.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let what = match self.baseline {
            true => "baseline (in-tool echo peer)",
            false => "server",
        };
        let _ = writeln!(
            s,
            "{} {}: {} conns x {} in flight, {} threads, {:.2} s{}",
            what,
            self.url,
            self.conns,
            self.inflight,
            self.threads,
            self.elapsed_s,
            format_args!(", workload {}", self.workload),
        );
        let _ = writeln!(
            s,
            "  ops {}  ops/s {:.0}  errors {}",
            self.ops,
            self.rate(),
            self.errors
        );
        let _ = writeln!(
            s,
            "  latency us: p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  mean {:.1}",
            self.q(0.5),
            self.q(0.9),
            self.q(0.99),
            self.q(0.999),
            us(self.hist.max()),
            self.hist.mean() / 1000.0
        );
        if self.per_kind.len() > 1 {
            let parts: Vec<String> = self
                .per_kind
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            let _ = writeln!(s, "  ops by kind: {}", parts.join(", "));
        }
        if let Some(e) = &self.first_error {
            let _ = writeln!(s, "  first error: {e}");
        }
        s
    }

    /// One JSON object (one line).
    pub fn json(&self) -> String {
        let kinds: Vec<String> = self
            .per_kind
            .iter()
            .map(|(k, n)| format!("\"{k}\":{n}"))
            .collect();
        format!(
            "{{\"workload\":{},\"url\":{},\"baseline\":{},\"conns\":{},\"inflight\":{},\
             \"threads\":{},\"elapsed_s\":{:.4},\"ops\":{},\"ops_per_s\":{:.1},\"errors\":{},\
             \"first_error\":{},\"ops_by_kind\":{{{}}},\"latency_us\":{{\"p50\":{:.2},\
             \"p90\":{:.2},\"p99\":{:.2},\"p999\":{:.2},\"max\":{:.2},\"mean\":{:.2}}}}}",
            json_str(&self.workload),
            json_str(&self.url),
            self.baseline,
            self.conns,
            self.inflight,
            self.threads,
            self.elapsed_s,
            self.ops,
            self.rate(),
            self.errors,
            self.first_error.as_deref().map_or("null".into(), json_str),
            kinds.join(","),
            self.q(0.5),
            self.q(0.9),
            self.q(0.99),
            self.q(0.999),
            us(self.hist.max()),
            self.hist.mean() / 1000.0,
        )
    }

    /// The percentile distribution in HdrHistogram's text format, values in microseconds.
    pub fn hgrm(&self) -> String {
        let h = &self.hist;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:>12} {:>14} {:>10} {:>14}\n",
            "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
        );
        let mut total = 0u64;
        for v in h.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let q = v.quantile_iterated_to();
            let value = us(v.value_iterated_to());
            if q < 1.0 {
                let inv = 1.0 / (1.0 - q);
                let _ = writeln!(s, "{value:>12.3} {q:>14.12} {total:>10} {inv:>14.2}");
            } else {
                let _ = writeln!(s, "{value:>12.3} {q:>14.12} {total:>10}");
            }
        }
        let _ = writeln!(
            s,
            "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
            h.mean() / 1000.0,
            h.stdev() / 1000.0
        );
        let _ = writeln!(
            s,
            "#[Max     = {:>12.3}, Total count    = {:>12}]",
            us(h.max()),
            h.len()
        );
        let _ = writeln!(
            s,
            "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
            h.buckets(),
            h.distinct_values()
        );
        s
    }
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_hgrm_are_well_formed() {
        let mut hist = Histogram::new_with_bounds(1, 1_000_000_000, 3).unwrap();
        for v in [1000, 2000, 3000, 50_000] {
            hist.record(v).unwrap();
        }
        let s = Summary {
            workload: "getpid".into(),
            url: "unix:///tmp/\"x\"".into(),
            baseline: false,
            conns: 1,
            inflight: 1,
            threads: 1,
            elapsed_s: 2.0,
            ops: 4,
            errors: 0,
            first_error: None,
            per_kind: vec![("getpid", 4)],
            hist,
        };
        let j = s.json();
        assert!(j.starts_with('{') && j.ends_with('}'));
        assert!(j.contains("\"ops_per_s\":2.0"));
        assert!(j.contains("unix:///tmp/\\\"x\\\""));
        let h = s.hgrm();
        assert!(h.contains("Percentile"));
        assert!(h.contains("Total count    =            4"));
    }
}
