//! The probe's outcome and its two renderings: one line per step for people, one JSON
//! document for machines.

use serde_json::{Value, json};

/// One browser step (or guard check) and its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// e.g. `initialize preflight`, `tools/list`, `guard: foreign Host`.
    pub name: String,
    /// Whether the browser (or the guard) would be satisfied.
    pub ok: bool,
    /// What happened; on a failure, what the browser would report, in its words.
    pub detail: String,
}

/// Everything the probe found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The endpoint probed.
    pub url: String,
    /// The page origin the probe acted as.
    pub origin: String,
    /// The steps in the order they ran.
    pub steps: Vec<Step>,
    /// Things that work today but are fragile or browser-dependent.
    pub warnings: Vec<String>,
}

impl Report {
    /// Records a step.
    pub fn step(&mut self, name: &str, ok: bool, detail: impl Into<String>) {
        self.steps.push(Step {
            name: name.to_owned(),
            ok,
            detail: detail.into(),
        });
    }

    /// Records a warning once.
    pub fn warn(&mut self, warning: impl Into<String>) {
        let warning = warning.into();
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }

    /// Whether every step passed.
    pub fn ok(&self) -> bool {
        self.steps.iter().all(|s| s.ok)
    }

    /// The first failing step.
    pub fn first_failure(&self) -> Option<&Step> {
        self.steps.iter().find(|s| !s.ok)
    }

    /// The `--json` document.
    pub fn to_json(&self) -> Value {
        json!({
            "ok": self.ok(),
            "url": self.url,
            "origin": self.origin,
            "steps": self.steps.iter().map(|s| json!({
                "name": s.name,
                "ok": s.ok,
                "detail": s.detail,
            })).collect::<Vec<_>>(),
            "warnings": self.warnings,
        })
    }

    /// One line per step (✔ or ✘, coloured when `colour`), then the warnings.
    pub fn to_text(&self, colour: bool) -> String {
        let paint = |code: &str, text: &str| {
            if colour {
                format!("\x1b[{code}m{text}\x1b[0m")
            } else {
                text.to_owned()
            }
        };
        let mut out = format!("probe {} as a page at {}\n", self.url, self.origin);
        for step in &self.steps {
            let mark = if step.ok {
                paint("32", "✔")
            } else {
                paint("31", "✘")
            };
            out.push_str(&format!("{mark} {}: {}\n", step.name, step.detail));
        }
        for warning in &self.warnings {
            out.push_str(&format!("{} {warning}\n", paint("33", "warning:")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut report = Report {
            url: "http://localhost:8080/mcp".into(),
            origin: "http://localhost:5173".into(),
            ..Report::default()
        };
        report.step("initialize preflight", true, "204");
        report.step(
            "initialize",
            false,
            "No 'Access-Control-Allow-Origin' header",
        );
        report.warn("w");
        report.warn("w");
        report
    }

    #[test]
    fn json_has_the_documented_shape() {
        let v = sample().to_json();
        assert_eq!(v["ok"], false);
        assert_eq!(v["url"], "http://localhost:8080/mcp");
        assert_eq!(v["origin"], "http://localhost:5173");
        assert_eq!(v["steps"][1]["name"], "initialize");
        assert_eq!(v["steps"][1]["ok"], false);
        assert_eq!(v["warnings"], json!(["w"]));
    }

    #[test]
    fn text_marks_each_step_and_colours_only_when_asked() {
        let plain = sample().to_text(false);
        assert!(plain.contains("✔ initialize preflight: 204\n"), "{plain}");
        assert!(plain.contains("✘ initialize: No"), "{plain}");
        assert!(!plain.contains('\x1b'), "{plain}");
        assert!(sample().to_text(true).contains("\x1b[31m✘\x1b[0m"));
    }
}
