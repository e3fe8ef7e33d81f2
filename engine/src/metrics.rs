//! Prometheus metrics.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The counters and histograms the server exports at `/metrics`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Evaluations run.
    pub evaluations: Counter,
    /// Evaluations that failed (trap, timeout, bad answer).
    pub evaluation_failures: Counter,
    /// Evaluations narrowed to the one entity that changed (also counted in `evaluations`).
    pub narrowed_evaluations: Counter,
    /// Incidents opened.
    pub incidents_opened: Counter,
    /// Incidents closed, by any path.
    pub incidents_closed: Counter,
    /// Seconds from dequeue to recorded result.
    pub evaluation_seconds: Histogram,
    /// 1 when calls are placed (through Twilio or the demo's simulator), 0 when no Twilio
    /// account is configured and nobody can be phoned.
    pub escalation_available: Gauge,
    /// 1 when the calls placed are the demo's simulated ones.
    pub escalation_simulated: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tocsin");
        let evaluations = Counter::default();
        let evaluation_failures = Counter::default();
        let narrowed_evaluations = Counter::default();
        let incidents_opened = Counter::default();
        let incidents_closed = Counter::default();
        // 50 µs to ~3 s.
        let evaluation_seconds = Histogram::new(exponential_buckets(0.000_05, 3.0, 11));
        registry.register("evaluations", "Alert evaluations run", evaluations.clone());
        registry.register(
            "evaluation_failures",
            "Alert evaluations that failed",
            evaluation_failures.clone(),
        );
        registry.register(
            "narrowed_evaluations",
            "Alert evaluations narrowed to the one entity that changed",
            narrowed_evaluations.clone(),
        );
        registry.register(
            "incidents_opened",
            "Incidents opened",
            incidents_opened.clone(),
        );
        registry.register(
            "incidents_closed",
            "Incidents closed",
            incidents_closed.clone(),
        );
        registry.register(
            "evaluation_duration_seconds",
            "Time to evaluate an alert and record the result",
            evaluation_seconds.clone(),
        );
        let escalation_available = Gauge::default();
        let escalation_simulated = Gauge::default();
        registry.register(
            "escalation_available",
            "1 when operators are phoned, 0 when no Twilio account is configured",
            escalation_available.clone(),
        );
        registry.register(
            "escalation_simulated",
            "1 when calls go to the demo's Twilio simulator, not to phones",
            escalation_simulated.clone(),
        );
        Self {
            registry,
            escalation_available,
            escalation_simulated,
            evaluations,
            evaluation_failures,
            narrowed_evaluations,
            incidents_opened,
            incidents_closed,
            evaluation_seconds,
        }
    }
}

/// What the call loops decide, counted where it is decided (the store's transitions):
/// `tocsin_calls_total{outcome}` and `tocsin_time_to_acknowledge_seconds`.
#[derive(Debug, Clone)]
pub struct CallMetrics {
    /// Calls by how they ended for their loop.
    pub calls: Family<Vec<(&'static str, &'static str)>, Counter>,
    /// Seconds from an incident opening to an operator accepting it (by key or by text).
    pub time_to_acknowledge: Histogram,
}

impl Default for CallMetrics {
    fn default() -> Self {
        Self {
            calls: Family::default(),
            // 5 s to about 3 hours.
            time_to_acknowledge: Histogram::new(exponential_buckets(5.0, 2.0, 12)),
        }
    }
}

impl CallMetrics {
    /// A call's outcome was settled.
    pub fn decided(&self, outcome: tocsin_domain::call_loop::Outcome) {
        self.calls
            .get_or_create(&vec![("outcome", outcome.as_str())])
            .inc();
    }

    /// An incident opened at `opened` was accepted at `at`.
    pub fn acknowledged(
        &self,
        opened: chrono::DateTime<chrono::Utc>,
        at: chrono::DateTime<chrono::Utc>,
    ) {
        let seconds = (at - opened).num_milliseconds().max(0) as f64 / 1000.0;
        self.time_to_acknowledge.observe(seconds);
    }
}

impl Metrics {
    /// Exports the call loops' metrics, which the store counts.
    pub fn register_calls(&mut self, calls: &CallMetrics) {
        self.registry.register(
            "calls",
            "Calls placed, by how they ended for their loop",
            calls.calls.clone(),
        );
        self.registry.register(
            "time_to_acknowledge_seconds",
            "Time from an incident opening to an operator accepting it",
            calls.time_to_acknowledge.clone(),
        );
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
