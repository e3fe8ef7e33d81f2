//! A template that tries to reach outside the sandbox; the host must refuse to load it.

use tocsin_sdk::prelude::*;

/// The template.
#[derive(Debug)]
pub struct Forbidden;

impl Template for Forbidden {
    type Params = serde_json::Value;
    type Report = serde_json::Value;

    const INFO: Info = Info {
        id: "forbidden_fs",
        version: "0.0.1",
        name: "Forbidden",
        description: "Reaches outside the sandbox.",
        entity_type: None,
        owner_type: None,
        auto_resolvable: false,
        default_interval_minutes: 1,
    };

    fn plan(_params: &serde_json::Value, _ctx: &Context) -> Result<Vec<Query>, String> {
        Ok(Vec::new())
    }

    fn evaluate(
        _params: &serde_json::Value,
        _ctx: &Context,
        _answers: &Answers,
    ) -> Evaluation<serde_json::Value> {
        let n = std::fs::read_to_string("/etc/passwd")
            .map(|s| s.len())
            .unwrap_or(0);
        // The wall clock, too: a template's time is the evaluation's, from the context.
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Evaluation::one(Finding::new(
            "subject",
            Verdict::Clear,
            serde_json::json!({"n": n, "since": since}),
            "reached out",
        ))
    }
}

tocsin_sdk::export_template!(Forbidden);
