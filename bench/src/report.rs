//! Figures: latency percentiles from raw samples, and the report printed as a table and
//! written as JSON.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

/// Latency samples in microseconds.
#[derive(Default)]
pub struct Latencies {
    samples: Vec<u32>,
}

impl Latencies {
    pub fn record(&mut self, micros: u64) {
        self.samples.push(micros.min(u64::from(u32::MAX)) as u32);
    }

    pub fn merge(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
    }

    /// p50, p90, p99 and max in milliseconds (all 0 without samples).
    pub fn summary(mut self) -> LatencySummary {
        self.samples.sort_unstable();
        let at = |q: f64| -> f64 {
            if self.samples.is_empty() {
                return 0.0;
            }
            let index = ((self.samples.len() as f64 * q).ceil() as usize).clamp(1, self.samples.len()) - 1;
            f64::from(self.samples[index]) / 1000.0
        };
        LatencySummary { p50: at(0.50), p90: at(0.90), p99: at(0.99), max: at(1.0) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySummary {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// One figure: a name, a value and its unit.
pub struct Figure {
    pub name: std::borrow::Cow<'static, str>,
    pub value: f64,
    pub unit: &'static str,
}

/// What a run reports.
pub struct Report {
    pub scenario: String,
    pub parameters: Map<String, Value>,
    pub figures: Vec<Figure>,
    pub notes: Vec<String>,
    /// False when the run hit `--duration` (or lost messages) before finishing.
    pub complete: bool,
}

impl Report {
    pub fn new(scenario: impl Into<String>) -> Report {
        Report {
            scenario: scenario.into(),
            parameters: Map::new(),
            figures: Vec::new(),
            notes: Vec::new(),
            complete: true,
        }
    }

    pub fn parameter(&mut self, name: &str, value: impl Into<Value>) {
        self.parameters.insert(name.to_owned(), value.into());
    }

    pub fn figure(&mut self, name: impl Into<std::borrow::Cow<'static, str>>, value: f64, unit: &'static str) {
        self.figures.push(Figure { name: name.into(), value, unit });
    }

    /// Sets a figure, replacing one of the same name.
    pub fn set_figure(&mut self, name: &'static str, value: f64, unit: &'static str) {
        self.figures.retain(|f| f.name != name);
        self.figure(name, value, unit);
    }

    pub fn latencies(&mut self, summary: LatencySummary) {
        self.figure("latency_p50", summary.p50, "ms");
        self.figure("latency_p90", summary.p90, "ms");
        self.figure("latency_p99", summary.p99, "ms");
        self.figure("latency_max", summary.max, "ms");
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub fn value(&self, name: &str) -> Option<f64> {
        self.figures.iter().find(|f| f.name == name).map(|f| f.value)
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        let params: Vec<String> = self.parameters.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "scenario: {} ({})", self.scenario, params.join(", "));
        for f in &self.figures {
            let value = if f.value.fract() == 0.0 && f.value.abs() < 1e15 {
                format!("{}", f.value as i64)
            } else if f.value.abs() >= 100.0 {
                format!("{:.0}", f.value)
            } else {
                format!("{:.3}", f.value)
            };
            let _ = writeln!(out, "  {:<28} {:>14} {}", f.name, value, f.unit);
        }
        if !self.complete {
            let _ = writeln!(out, "  INCOMPLETE: the run ended before every message was delivered");
        }
        for note in &self.notes {
            let _ = writeln!(out, "  note: {note}");
        }
        out
    }

    pub fn to_json(&self) -> Value {
        let figures: Map<String, Value> =
            self.figures.iter().map(|f| (f.name.to_string(), json!({ "value": f.value, "unit": f.unit }))).collect();
        json!({
            "scenario": self.scenario,
            "parameters": self.parameters,
            "figures": figures,
            "complete": self.complete,
            "notes": self.notes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut l = Latencies::default();
        for micros in 1..=100u64 {
            l.record(micros * 1000);
        }
        assert_eq!(l.summary(), LatencySummary { p50: 50.0, p90: 90.0, p99: 99.0, max: 100.0 });
        assert_eq!(Latencies::default().summary().p99, 0.0);
    }

    #[test]
    fn the_report_renders_as_table_and_json() {
        let mut r = Report::new("pairs");
        r.parameter("pairs", 2);
        r.figure("messages_per_second", 1234.5, "msg/s");
        r.complete = false;
        r.note("a note");
        let table = r.table();
        assert!(table.contains("scenario: pairs (pairs=2)"), "{table}");
        assert!(table.contains("messages_per_second") && table.contains("1234") && table.contains("INCOMPLETE"));
        let json = r.to_json();
        assert_eq!(json["figures"]["messages_per_second"]["value"], 1234.5);
        assert_eq!((json["complete"].clone(), json["notes"][0].clone()), (json!(false), json!("a note")));
    }
}
