//! Measures for `kefu bot eval`: accuracy and macro-F1 for classification, hit@k and MRR
//! for retrieval, latency percentiles for both.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// Accuracy and macro-averaged F1 over the classes that occur as gold or prediction.
pub fn classification(pairs: &[(String, String)]) -> (f64, f64) {
    if pairs.is_empty() {
        return (0.0, 0.0);
    }
    let correct = pairs.iter().filter(|(gold, got)| gold == got).count();
    let mut per_class: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new(); // tp, fp, fn
    for (gold, got) in pairs {
        if gold == got {
            per_class.entry(gold).or_default().0 += 1;
        } else {
            per_class.entry(got).or_default().1 += 1;
            per_class.entry(gold).or_default().2 += 1;
        }
    }
    let f1_sum: f64 = per_class
        .values()
        .map(|&(tp, fp, fne)| {
            if tp == 0 {
                0.0
            } else {
                2.0 * tp as f64 / (2 * tp + fp + fne) as f64
            }
        })
        .sum();
    (
        correct as f64 / pairs.len() as f64,
        f1_sum / per_class.len() as f64,
    )
}

/// hit@1, hit@5 and mean reciprocal rank of ranked answers against gold ids (any gold id
/// counts as a hit).
pub fn retrieval(results: &[(Vec<String>, Vec<String>)]) -> (f64, f64, f64) {
    if results.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let (mut hit1, mut hit5, mut rr) = (0.0, 0.0, 0.0);
    for (gold, ranked) in results {
        if let Some(rank) = ranked.iter().position(|id| gold.contains(id)) {
            if rank == 0 {
                hit1 += 1.0;
            }
            if rank < 5 {
                hit5 += 1.0;
            }
            rr += 1.0 / (rank + 1) as f64;
        }
    }
    let n = results.len() as f64;
    (hit1 / n, hit5 / n, rr / n)
}

/// The p-th percentile (nearest rank) of latencies, in milliseconds.
pub fn percentile_ms(latencies: &mut [Duration], p: f64) -> f64 {
    if latencies.is_empty() {
        return 0.0;
    }
    latencies.sort_unstable();
    let rank = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
    latencies[rank.clamp(1, latencies.len()) - 1].as_secs_f64() * 1000.0
}

/// What `kefu bot eval` prints, as text or as one JSON object.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub task: String,
    pub examples: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub macro_f1: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hit_at_1: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hit_at_5: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mrr: Option<f64>,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Lines of the input that could not be used, with why (line numbers from 1).
    pub skipped: Vec<String>,
    /// The examples the model got wrong (only when asked for: `--errors`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Miss>,
}

/// One example a classifier got wrong.
#[derive(Debug, Clone, Serialize)]
pub struct Miss {
    pub text: String,
    pub expected: String,
    pub got: String,
}

impl Report {
    pub fn text(&self) -> String {
        let mut out = format!("task      {}\nexamples  {}\n", self.task, self.examples);
        let mut line = |name: &str, value: Option<f64>| {
            if let Some(v) = value {
                out.push_str(&format!("{name:<9} {v:.4}\n"));
            }
        };
        line("accuracy", self.accuracy);
        line("macro_f1", self.macro_f1);
        line("hit@1", self.hit_at_1);
        line("hit@5", self.hit_at_5);
        line("mrr", self.mrr);
        out.push_str(&format!(
            "p50_ms    {:.3}\np99_ms    {:.3}\n",
            self.p50_ms, self.p99_ms
        ));
        if !self.skipped.is_empty() {
            out.push_str(&format!("skipped   {} lines\n", self.skipped.len()));
            for reason in self.skipped.iter().take(10) {
                out.push_str(&format!("  {reason}\n"));
            }
        }
        if !self.errors.is_empty() {
            out.push_str(&format!("errors    {}\n", self.errors.len()));
            for miss in &self.errors {
                out.push_str(&format!(
                    "  expected {} got {}: {}\n",
                    miss.expected, miss.got, miss.text
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn accuracy_and_macro_f1() {
        let (acc, f1) = classification(&pairs(&[
            ("pos", "pos"),
            ("pos", "neg"),
            ("neg", "neg"),
            ("neg", "neg"),
        ]));
        assert!((acc - 0.75).abs() < 1e-9);
        // pos: tp1 fp0 fn1 → 2/3; neg: tp2 fp1 fn0 → 4/5.
        assert!((f1 - (2.0 / 3.0 + 0.8) / 2.0).abs() < 1e-9);
        assert_eq!(classification(&[]), (0.0, 0.0));
    }

    #[test]
    fn hits_and_reciprocal_rank() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let (h1, h5, mrr) = retrieval(&[
            (s(&["a"]), s(&["a", "b"])),
            (s(&["c"]), s(&["a", "b", "c"])),
            (s(&["z"]), s(&["a", "b", "c", "d", "e", "z"])),
            (s(&["q"]), s(&[])),
        ]);
        assert!((h1 - 0.25).abs() < 1e-9);
        assert!((h5 - 0.5).abs() < 1e-9);
        assert!((mrr - (1.0 + 1.0 / 3.0 + 1.0 / 6.0) / 4.0).abs() < 1e-9);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut l: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert!((percentile_ms(&mut l, 50.0) - 50.0).abs() < 1e-9);
        assert!((percentile_ms(&mut l, 99.0) - 99.0).abs() < 1e-9);
        assert_eq!(percentile_ms(&mut [], 99.0), 0.0);
    }
}
