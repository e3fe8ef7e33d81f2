//! What the on-call and silences benches share: opening incidents and timing their loops'
//! starts, the step between an incident opening and its first call.

use chrono::{DateTime, Duration, TimeZone, Utc};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tocsin::store::Store;
use tocsin::store::escalation::Opened;
use tocsin::store::incidents::{Change, Observation};
use tocsin::store::seam::CallLoops;
use tocsin_domain::silence::Labels;

/// The bench's clock starts here.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

/// The value at fraction `p` of `sorted`.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// Opens `loops` incidents of the alert `alt_{roster}` (routed to `roster`), each with
/// `labels`, timing each loop's start; the milliseconds, sorted.
pub async fn loop_starts(store: &Store, roster: &str, loops: usize, labels: &Labels) -> Vec<f64> {
    let alert = format!("alt_{roster}");
    let report = serde_json::json!({});
    let mut times = Vec::with_capacity(loops);
    for i in 0..loops {
        let at = t0() + Duration::minutes(i as i64 * 37);
        // Each incident its own subject, across every call of this function.
        static SUBJECTS: AtomicUsize = AtomicUsize::new(0);
        let subject = format!("s{}", SUBJECTS.fetch_add(1, Ordering::Relaxed));
        let observation = Observation {
            alert_id: &alert,
            alert_version: 1,
            template_id: "cloud_alarm",
            valid_until: None,
            subject: &subject,
            breached: true,
            auto_resolvable: true,
            report: &report,
            summary: "bench",
            at,
        };
        let Change::Opened(incident) = store.apply_finding(&observation).await.unwrap() else {
            panic!("a breach opens");
        };
        let opened = [Opened {
            incident_id: &incident,
            alert_id: &alert,
            template_id: "cloud_alarm",
            owner_id: None,
            labels: labels.clone(),
            at,
        }];
        let started = Instant::now();
        let roster_id = store.start_loops(&opened, "twilio").await.unwrap();
        times.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(roster_id, [Some(roster.to_owned())]);
    }
    times.sort_by(f64::total_cmp);
    times
}
