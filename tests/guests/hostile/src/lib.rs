//! A template that misbehaves on request, to prove the sandbox's limits. `mode` picks the
//! misbehaviour; `ok` behaves.

use tocsin_sdk::prelude::*;

/// The template.
#[derive(Debug)]
pub struct Hostile;

/// What to do in `evaluate`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    /// Return one clear finding.
    Ok,
    /// Loop forever.
    Spin,
    /// Allocate and touch memory without end.
    Allocate,
    /// Panic with a message.
    Panic,
    /// Return a finding whose summary is `bytes` long.
    Output,
    /// Keep a count of its calls in a static, and report it breached: state that would show
    /// if an instance ever served two alerts.
    Count,
    /// Judge every `GADGET` entity clear, each under its own id, but fail when asked to
    /// judge one alone: a template whose narrowed runs break.
    FailAlone,
    /// Read the monotonic clock through its WASI import, which the sandbox links (Rust's
    /// standard library imports it) but never answers.
    Clock,
}

static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Parameters.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Params {
    /// The misbehaviour.
    pub mode: Mode,
    /// Output size for `output`.
    #[serde(default)]
    pub bytes: usize,
}

impl Template for Hostile {
    type Params = Params;
    type Report = serde_json::Value;

    const INFO: Info = Info {
        id: "hostile",
        version: "0.0.1",
        name: "Hostile",
        description: "Misbehaves on request.",
        entity_type: Some("GADGET"),
        owner_type: None,
        auto_resolvable: false,
        default_interval_minutes: 1,
    };

    fn plan(params: &Params, ctx: &Context) -> Result<Vec<Query>, String> {
        Ok(match params.mode {
            Mode::FailAlone => {
                vec![Query::entities("GADGET").entity_id(ctx.entity_id.as_deref())]
            }
            _ => Vec::new(),
        })
    }

    fn evaluate(
        params: &Params,
        ctx: &Context,
        answers: &Answers,
    ) -> Evaluation<serde_json::Value> {
        let summary = match params.mode {
            Mode::FailAlone => {
                if let Some(alone) = &ctx.entity_id {
                    panic!("cannot judge {alone} alone");
                }
                let gadgets = answers.entities(0).unwrap_or_default();
                return Evaluation::Findings(
                    gadgets
                        .iter()
                        .map(|g| {
                            Finding::new(
                                g.entity_id.clone(),
                                Verdict::Clear,
                                serde_json::json!({}),
                                "fine",
                            )
                        })
                        .collect(),
                );
            }
            Mode::Ok => "fine".to_owned(),
            Mode::Spin => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Mode::Allocate => {
                // Reserving is enough to grow linear memory; not writing keeps it fast.
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(Vec::with_capacity(1 << 20));
                    std::hint::black_box(&hoard);
                }
            }
            Mode::Panic => panic!("boom: the hostile template panicked on purpose"),
            Mode::Output => "x".repeat(params.bytes),
            Mode::Clock => clock(),
            Mode::Count => {
                let calls = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                return Evaluation::one(Finding::new(
                    "subject",
                    Verdict::Breached,
                    serde_json::json!({ "calls": calls }),
                    format!("call {calls} of this instance"),
                ));
            }
        };
        Evaluation::one(Finding::new(
            "subject",
            Verdict::Clear,
            serde_json::json!({}),
            summary,
        ))
    }
}

/// The monotonic clock's reading, from the import itself: Rust 1.95's `Instant::now` would
/// import the wall clock as well, which the sandbox refuses at load.
#[cfg(target_arch = "wasm32")]
fn clock() -> String {
    wasip2::clocks::monotonic_clock::now().to_string()
}

#[cfg(not(target_arch = "wasm32"))]
fn clock() -> String {
    "no clock import outside wasm".to_owned()
}

tocsin_sdk::export_template!(Hostile);
