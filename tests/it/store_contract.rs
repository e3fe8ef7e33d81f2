//! The store contract: what any implementation of the store seam (`tocsin::store::seam`)
//! must do, written once over the traits. Each check takes a fresh, empty store; the
//! `sqlite` test runs them all on a real SQLite file, and a second database runs the same
//! checks by adding its own test at the bottom.

use crate::pg::TestDatabase;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use std::future::Future;
use tocsin::store::data::{EntityUpsert, Event};
use tocsin::store::escalation::{Entry, Member, Opened, Roster, Route};
use tocsin::store::incidents::{Change, IncidentFilter, Observation};
use tocsin::store::ingest::Write;
use tocsin::store::oncall::{
    Operator, OverrideRecord, RotationRecord, RuleSpec, ScheduleRecord, Wanted,
};
use tocsin::store::seam::{CallLoops, Data, FollowUps, Incidents, OnCall, Rosters, Writes};
use tocsin::store::silences::{MatcherSpec, SilenceRecord, WindowRecord};
use tocsin::store::{Database, Store};
use tocsin_domain::call_loop::NotPlaced;
use tocsin_domain::oncall::{Override, Rotation, ShiftUnit};
use tocsin_twilio::{CallStatus, PhoneNumber};

/// Everything the contract checks.
trait Contract: CallLoops + Incidents + Data + Writes + Rosters + OnCall + FollowUps {}
impl<T: CallLoops + Incidents + Data + Writes + Rosters + OnCall + FollowUps> Contract for T {}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap()
}

fn finding<'a>(
    alert: &'a str,
    subject: &'a str,
    breached: bool,
    report: &'a serde_json::Value,
    at: DateTime<Utc>,
) -> Observation<'a> {
    Observation {
        alert_id: alert,
        alert_version: 1,
        template_id: "cloud_alarm",
        valid_until: None,
        subject,
        breached,
        auto_resolvable: true,
        report,
        summary: "disk full on db-1",
        at,
    }
}

async fn at_most_one_unclosed_incident_per_alert_and_subject<S: Contract>(store: S) {
    let report = json!({"free": "1%"});
    let first = store
        .apply_finding(&finding("alt_1", "db-1", true, &report, t0()))
        .await
        .unwrap();
    let Change::Opened(id) = first else {
        panic!("a first breach opens: {first:?}")
    };
    let again = store
        .apply_finding(&finding(
            "alt_1",
            "db-1",
            true,
            &report,
            t0() + Duration::minutes(1),
        ))
        .await
        .unwrap();
    assert_eq!(again, Change::None, "the same breach again opens nothing");
    // Writers racing on one (alert, subject) open one incident between them.
    let other = json!({"free": "0%"});
    let racing: Vec<_> = (0..8)
        .map(|i| {
            let o = finding("alt_1", "db-2", true, &other, t0() + Duration::seconds(i));
            store.apply_finding_owned(o)
        })
        .collect();
    let changes = futures::future::join_all(racing).await;
    let opened = changes
        .iter()
        .filter(|c| matches!(c, Change::Opened(_)))
        .count();
    assert_eq!(opened, 1, "{changes:?}");
    let filter = IncidentFilter {
        alert_id: Some("alt_1".into()),
        status: None,
        silenced: None,
    };
    assert_eq!(
        store.list_incidents(&filter, None, 50).await.unwrap().len(),
        2
    );
    // Resolved, the subject may open anew.
    let clear = store
        .apply_finding(&finding(
            "alt_1",
            "db-1",
            false,
            &report,
            t0() + Duration::minutes(2),
        ))
        .await
        .unwrap();
    assert_eq!(clear, Change::Resolved(id.clone()));
    let reopened = store
        .apply_finding(&finding(
            "alt_1",
            "db-1",
            true,
            &report,
            t0() + Duration::minutes(3),
        ))
        .await
        .unwrap();
    assert!(
        matches!(&reopened, Change::Opened(new) if *new != id),
        "{reopened:?}"
    );
    let kinds: Vec<String> = store
        .timeline(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["opened", "resolved"]);
}

/// Opens an incident routed to a two-member roster and starts its loop.
async fn a_ringing_loop<S: Contract>(store: &S) -> String {
    a_roster(store).await;
    a_loop(store, "db-1").await
}

/// A roster `ros_1` of `members`, one loop, no fallback, no texts.
fn roster(name: &str, members: Vec<Entry>) -> Roster<Entry> {
    Roster {
        id: "ros_1".into(),
        name: name.into(),
        members,
        loops: 1,
        ring_timeout_seconds: 30,
        fallback_url: None,
        sms: Default::default(),
        created_at: t0(),
        updated_at: t0(),
    }
}

/// Stores `roster` and a default route to it: every incident goes to it.
async fn route_everything_to<S: Contract>(store: &S, roster: Roster<Entry>) {
    store.insert_roster(&roster).await.unwrap();
    store
        .insert_route(&Route {
            id: "rte_1".into(),
            roster_id: roster.id.clone(),
            alert_id: None,
            template_id: None,
            owner_id: None,
            created_at: t0(),
        })
        .await
        .unwrap();
}

/// A two-member roster (Ada, then Grace) that every incident is routed to.
async fn a_roster<S: Contract>(store: &S) {
    let member = |name: &str, phone: &str| {
        Entry::Member(Member {
            name: name.into(),
            phone: PhoneNumber::parse(phone).unwrap(),
            operator_id: None,
            sms_phone: None,
        })
    };
    route_everything_to(
        store,
        roster(
            "db on-call",
            vec![
                member("Ada", "+15550100001"),
                member("Grace", "+15550100002"),
            ],
        ),
    )
    .await;
}

/// Opens an incident on `subject` and starts its loop.
async fn a_loop<S: Contract>(store: &S, subject: &str) -> String {
    let now = t0();
    let report = json!({});
    let Change::Opened(incident) = store
        .apply_finding(&finding("alt_1", subject, true, &report, now))
        .await
        .unwrap()
    else {
        panic!("a breach opens")
    };
    let opened = [Opened {
        incident_id: &incident,
        alert_id: "alt_1",
        template_id: "cloud_alarm",
        owner_id: None,
        labels: Default::default(),
        at: now,
    }];
    let started = store.start_loops(&opened, "twilio").await.unwrap();
    assert_eq!(started, [Some("ros_1".to_owned())]);
    incident
}

async fn a_call_step_is_recorded_once<S: Contract>(store: S) {
    let incident = a_ringing_loop(&store).await;
    let pending = store.next_call().await.unwrap().expect("a loop waits");
    assert_eq!(pending.incident_id, incident);
    assert_eq!(pending.member().name, "Ada");
    // Two dialers at once: one records the call, the other finds the step taken.
    let (a, b) = tokio::join!(
        store.begin_call(&pending, t0()),
        store.begin_call(&pending, t0())
    );
    let calls: Vec<String> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(store.next_call().await.unwrap().is_none());
    // Ada's call is refused: the loop moves to Grace, whose step is also recorded once.
    store
        .call_not_placed(&calls[0], NotPlaced::Refused, "busy signal", t0())
        .await
        .unwrap();
    let next = store.next_call().await.unwrap().expect("the loop moved on");
    assert_eq!(next.member().name, "Grace");
    let grace = store.begin_call(&next, t0()).await.unwrap().unwrap();
    assert_eq!(store.begin_call(&next, t0()).await.unwrap(), None);
    // Webhooks only move a call forward, and the same one twice changes nothing.
    assert!(
        store
            .call_placed(&grace, "CA1", CallStatus::Queued, t0())
            .await
            .unwrap()
    );
    assert!(
        store
            .call_status(&grace, "CA1", CallStatus::Ringing, t0())
            .await
            .unwrap()
    );
    assert!(
        !store
            .call_status(&grace, "CA1", CallStatus::Ringing, t0())
            .await
            .unwrap()
    );
    assert!(
        !store
            .call_status(&grace, "CA1", CallStatus::Queued, t0())
            .await
            .unwrap()
    );
    assert!(
        !store
            .call_status(&grace, "CA-other", CallStatus::Completed, t0())
            .await
            .unwrap()
    );
    let answer = store.key_pressed(&grace, "CA1", "1", t0()).await.unwrap();
    assert_eq!(answer.map(|a| a.member), Some("Grace".to_owned()));
    let incident = store.incident(&incident).await.unwrap().unwrap();
    assert_eq!(incident.acknowledged_by.as_deref(), Some("Grace"));
    assert!(store.next_call().await.unwrap().is_none());
}

async fn the_next_call_waits_for_a_free_number<S: Contract>(store: S) {
    a_roster(&store).await;
    let first = a_loop(&store, "db-1").await;
    let second = a_loop(&store, "db-2").await;
    // Both loops start with Ada: the first waited longest.
    let next = store.next_call().await.unwrap().unwrap();
    assert_eq!(
        (next.incident_id.as_str(), next.member().name.as_str()),
        (first.as_str(), "Ada")
    );
    let ada = store.begin_call(&next, t0()).await.unwrap().unwrap();
    // Ada is on a call: the second loop waits for her, and nobody else is due.
    assert!(store.next_call().await.unwrap().is_none());
    // She passes: the first loop moves on to Grace, who is free; the second loop, waiting
    // longer than the first's new place in the queue, gets Ada once she is off the phone.
    store
        .call_placed(&ada, "CA-ada", CallStatus::InProgress, t0())
        .await
        .unwrap();
    store.key_pressed(&ada, "CA-ada", "2", t0()).await.unwrap();
    let next = store.next_call().await.unwrap().unwrap();
    assert_eq!(
        (next.incident_id.as_str(), next.member().name.as_str()),
        (first.as_str(), "Grace")
    );
    store
        .call_status(&ada, "CA-ada", CallStatus::Completed, t0())
        .await
        .unwrap();
    let next = store.next_call().await.unwrap().unwrap();
    assert_eq!(
        (next.incident_id.as_str(), next.member().name.as_str()),
        (second.as_str(), "Ada")
    );
}

fn operator(id: &str, phone: &str) -> Operator {
    Operator {
        id: id.into(),
        name: format!("{id} (operator)"),
        phone: PhoneNumber::parse(phone).unwrap(),
        sms_phone: None,
        time_zone: None,
        created_at: t0(),
        updated_at: t0(),
    }
}

/// Operators ann, bob and cy; a daily rotation of bob and cy handing over at 09:00 London
/// (bob holds it on t0, 2026-12-01 09:00); a schedule "primary" whose one rule is that
/// rotation, all day, with an override adding ann over t0's hour.
async fn an_on_call_schedule<S: Contract>(store: &S) {
    for (id, phone) in [
        ("ann", "+15550100011"),
        ("bob", "+15550100012"),
        ("cy", "+15550100013"),
    ] {
        store.insert_operator(&operator(id, phone)).await.unwrap();
    }
    store
        .insert_rotation(&RotationRecord {
            id: "rot_1".into(),
            name: "daily".into(),
            rotation: Rotation {
                time_zone: chrono_tz::Europe::London,
                unit: ShiftUnit::Daily,
                shift_length: 1,
                handoff_at: t0().naive_utc(),
                participants: vec!["bob".into(), "cy".into()],
            },
            created_at: t0(),
            updated_at: t0(),
        })
        .await
        .unwrap();
    store
        .insert_schedule(&ScheduleRecord {
            id: "sch_1".into(),
            name: "primary".into(),
            time_zone: chrono_tz::Europe::London,
            rules: vec![RuleSpec {
                rotation_id: Some("rot_1".into()),
                operator_id: None,
                days: ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
                    .map(String::from)
                    .to_vec(),
                start: "00:00".into(),
                end: "00:00".into(),
            }],
            created_at: t0(),
            updated_at: t0(),
        })
        .await
        .unwrap();
    let added = store
        .insert_override(&OverrideRecord {
            id: "ovr_1".into(),
            schedule_id: "sch_1".into(),
            rule: Override {
                add: Some("ann".into()),
                remove: None,
                start: t0(),
                end: t0() + Duration::hours(1),
            },
            created_by: "key_1".into(),
            created_at: t0(),
        })
        .await
        .unwrap();
    assert_eq!(added, Ok(()));
}

async fn a_roster_naming_a_schedule_expands_when_its_loop_starts<S: Contract>(store: S) {
    an_on_call_schedule(&store).await;
    route_everything_to(
        &store,
        roster(
            "db on-call",
            vec![
                Entry::Schedule {
                    schedule_id: "sch_1".into(),
                },
                // Already on the schedule: called once.
                Entry::Operator {
                    operator_id: "ann".into(),
                },
            ],
        ),
    )
    .await;
    let wanted = Wanted {
        schedules: vec!["sch_1".into()],
        ..Wanted::default()
    };
    let directory = store
        .directory(&wanted, t0(), t0() + Duration::hours(2))
        .await
        .unwrap();
    assert_eq!(
        directory.operators.len(),
        3,
        "rule, rotation and override operators"
    );
    let schedule = &directory.schedules["sch_1"];
    assert_eq!(schedule.on_call(&directory.rotations, t0()), ["bob", "ann"]);
    // The loop expands the roster as it opens: bob holds the rotation, ann is added.
    let incident = a_loop(&store, "db-1").await;
    let first = store.next_call().await.unwrap().expect("a loop waits");
    assert_eq!(first.incident_id, incident);
    let names: Vec<_> = first
        .roster
        .members
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(names, ["bob (operator)", "ann (operator)"]);
    assert_eq!(first.member().operator_id.as_deref(), Some("bob"));
    let timeline = store.timeline(&incident).await.unwrap();
    let resolved = timeline
        .iter()
        .find(|e| e.kind == "roster-resolved")
        .expect("the expansion is on the timeline");
    assert_eq!(resolved.detail["members"][0]["operatorId"], "bob");
    assert_eq!(
        resolved.detail["entries"][1]["operators"][0]["operatorId"],
        "ann"
    );
}

async fn a_roster_of_nobody_on_call_is_exhausted_at_once<S: Contract>(store: S) {
    an_on_call_schedule(&store).await;
    // A rotation since deleted names nobody.
    let members = vec![Entry::Rotation {
        rotation_id: "rot_gone".into(),
    }];
    route_everything_to(
        &store,
        Roster {
            loops: 2,
            fallback_url: Some("http://127.0.0.1:9/fallback".into()),
            ..roster("nobody", members)
        },
    )
    .await;
    let incident = a_loop(&store, "db-1").await;
    assert!(store.next_call().await.unwrap().is_none(), "nobody to call");
    let kinds: Vec<String> = store
        .timeline(&incident)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(
        kinds.ends_with(&[
            "roster-resolved".into(),
            "no-one-on-call".into(),
            "escalation-exhausted".into()
        ]),
        "{kinds:?}"
    );
    let fallbacks = store.pending_fallbacks().await.unwrap();
    assert_eq!(fallbacks.len(), 1);
    assert_eq!(fallbacks[0].incident_id, incident);
}

async fn a_missed_call_is_texted_once_and_a_reply_of_1_accepts<S: Contract>(store: S) {
    an_on_call_schedule(&store).await;
    route_everything_to(
        &store,
        Roster {
            sms: tocsin::store::escalation::Sms::OnMiss,
            ..roster(
                "texting",
                vec![
                    Entry::Operator {
                        operator_id: "ann".into(),
                    },
                    Entry::Operator {
                        operator_id: "cy".into(),
                    },
                ],
            )
        },
    )
    .await;
    let incident = a_loop(&store, "db-1").await;
    // Ann's call rings out: she is to be texted, once.
    let pending = store.next_call().await.unwrap().unwrap();
    let call = store.begin_call(&pending, t0()).await.unwrap().unwrap();
    store
        .call_placed(&call, "CA-ann", CallStatus::Ringing, t0())
        .await
        .unwrap();
    assert!(store.texts_to_send().await.unwrap().is_empty());
    store
        .call_status(
            &call,
            "CA-ann",
            CallStatus::NoAnswer,
            t0() + Duration::seconds(30),
        )
        .await
        .unwrap();
    let texts = store.texts_to_send().await.unwrap();
    assert_eq!(texts.len(), 1, "{texts:?}");
    let text = &texts[0];
    assert_eq!(
        (text.member.as_str(), text.phone.as_str()),
        ("ann (operator)", "+15550100011")
    );
    assert_eq!(text.body, "disk full on db-1 Reply 1 to accept");
    let (a, b) = tokio::join!(
        store.text_sending(&text.id, t0()),
        store.text_sending(&text.id, t0())
    );
    assert!(a.unwrap() ^ b.unwrap(), "one sender claims it");
    store.text_done(text, Ok("SM-1"), t0()).await.unwrap();
    assert!(store.texts_to_send().await.unwrap().is_empty());
    // Cy's call is ringing when the replies come.
    let next = store.next_call().await.unwrap().unwrap();
    assert_eq!(next.member().operator_id.as_deref(), Some("cy"));
    let cy = store.begin_call(&next, t0()).await.unwrap().unwrap();
    store
        .call_placed(&cy, "CA-cy", CallStatus::Ringing, t0())
        .await
        .unwrap();
    let later = t0() + Duration::seconds(90);
    for (from, body) in [("+15550100013", "1"), ("+15550100011", "2")] {
        assert_eq!(
            store.text_reply(from, body, "SM-r", later).await.unwrap(),
            None,
            "{from} {body}"
        );
    }
    let accepted = store
        .text_reply("+15550100011", "1", "SM-r", later)
        .await
        .unwrap()
        .expect("ann accepts");
    assert_eq!(accepted.incident_id, incident);
    assert_eq!(
        store
            .text_reply("+15550100011", "1", "SM-r", later)
            .await
            .unwrap(),
        None
    );
    let seen = store.incident(&incident).await.unwrap().unwrap();
    assert_eq!(seen.acknowledged_by.as_deref(), Some("ann (operator)"));
    let to_end: Vec<String> = store
        .calls_to_end()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(to_end, [cy], "the call still ringing is ended");
    let kinds: Vec<String> = store
        .timeline(&incident)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(
        kinds.contains(&"sms-sent".to_owned()) && kinds.contains(&"sms-accepted".to_owned()),
        "{kinds:?}"
    );
    // Ann's one call, missed, in her statistics.
    let calls = store
        .operator_calls("ann", t0(), t0() + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].outcome.map(|o| o.as_str()), Some("no-answer"));
    assert_eq!(calls[0].decided_at, Some(t0() + Duration::seconds(30)));
    assert_eq!(calls[0].answered_at, None);
}

/// A roster naming rotation rot_1 (bob, then cy), every incident routed to it.
async fn a_rotation_roster(store: &Store) {
    an_on_call_schedule(store).await;
    route_everything_to(
        store,
        roster(
            "rotation",
            vec![Entry::Rotation {
                rotation_id: "rot_1".into(),
            }],
        ),
    )
    .await;
}

/// Who a loop calls: its first pending call's operator.
async fn first_called(store: &Store, subject: &str) -> Option<String> {
    let incident = a_loop(store, subject).await;
    let roster: Vec<_> = store
        .timeline(&incident)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "roster-resolved")
        .collect();
    roster[0].detail["members"][0]["operatorId"]
        .as_str()
        .map(str::to_owned)
}

/// Loops' starts read who is on call from memory while nothing changed: a change (here
/// through `writer`, which may be another node's handle on the same database) is seen by
/// the next loop `reader` starts.
async fn a_change_to_who_is_on_call_reaches_the_next_loop(writer: &Store, reader: &Store) {
    a_rotation_roster(writer).await;
    assert_eq!(first_called(reader, "db-1").await.as_deref(), Some("bob"));
    assert_eq!(first_called(reader, "db-2").await.as_deref(), Some("bob"));
    let mut rotation = writer.rotation("rot_1").await.unwrap().unwrap();
    rotation.rotation.participants = vec!["cy".into()];
    assert!(writer.update_rotation(&rotation).await.unwrap());
    assert_eq!(first_called(reader, "db-3").await.as_deref(), Some("cy"));
    let mut cy = writer.operator("cy").await.unwrap().unwrap();
    cy.phone = PhoneNumber::parse("+15550100077").unwrap();
    assert!(writer.update_operator(&cy).await.unwrap());
    let incident = a_loop(reader, "db-4").await;
    let next = loop {
        let pending = reader.next_call().await.unwrap().expect("loops wait");
        if pending.incident_id == incident {
            break pending;
        }
        // Earlier loops' first calls: placed and refused, so this one comes up.
        let call = reader.begin_call(&pending, t0()).await.unwrap().unwrap();
        reader
            .call_not_placed(&call, NotPlaced::Refused, "test", t0())
            .await
            .unwrap();
    };
    assert_eq!(next.member().phone.as_str(), "+15550100077");
}

async fn on_call_changes_reach_the_next_loop(store: Store) {
    a_change_to_who_is_on_call_reaches_the_next_loop(&store, &store).await;
}

/// Every on-call record reads back as written, updates and deletes: the SQL of each
/// database behind the API's endpoints.
async fn on_call_records_read_back_updated_and_deleted(store: Store) {
    an_on_call_schedule(&store).await;
    let ann = store.operator("ann").await.unwrap().unwrap();
    assert_eq!(ann, operator("ann", "+15550100011"));
    let changed = Operator {
        name: "Ann B.".into(),
        sms_phone: Some(PhoneNumber::parse("+15550100099").unwrap()),
        time_zone: Some("Europe/Paris".into()),
        updated_at: t0() + Duration::hours(1),
        ..ann
    };
    assert!(store.update_operator(&changed).await.unwrap());
    assert_eq!(store.operator("ann").await.unwrap(), Some(changed));
    let page: Vec<String> = store
        .list_operators(Some("ann"), 1)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(page, ["bob"]);

    let mut rotation = store.rotation("rot_1").await.unwrap().unwrap();
    assert_eq!(rotation.rotation.participants, ["bob", "cy"]);
    rotation.rotation.unit = ShiftUnit::Hourly;
    rotation.rotation.participants.push("ann".into());
    rotation.name = "hourly".into();
    assert!(store.update_rotation(&rotation).await.unwrap());
    assert_eq!(
        store.rotation("rot_1").await.unwrap(),
        Some(rotation.clone())
    );
    assert_eq!(store.list_rotations(None, 10).await.unwrap(), [rotation]);

    let mut schedule = store.schedule("sch_1").await.unwrap().unwrap();
    schedule.time_zone = chrono_tz::America::New_York;
    schedule.rules[0].days = vec!["SAT".into()];
    assert!(store.update_schedule(&schedule).await.unwrap());
    assert_eq!(
        store.schedule("sch_1").await.unwrap(),
        Some(schedule.clone())
    );
    assert_eq!(store.list_schedules(None, 10).await.unwrap(), [schedule]);

    let overrides = store
        .overrides("sch_1", t0() - Duration::days(1), t0() + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(overrides.len(), 1);
    assert_eq!(overrides[0].rule.add.as_deref(), Some("ann"));
    let later = store
        .overrides("sch_1", t0() + Duration::hours(1), t0() + Duration::days(1))
        .await
        .unwrap();
    assert!(
        later.is_empty(),
        "an override ending at the range's start is not in it"
    );
    assert!(!store.delete_override("sch_other", "ovr_1").await.unwrap());
    assert!(store.delete_override("sch_1", "ovr_1").await.unwrap());

    // The schedule names the rotation: the rotation stays until the schedule goes.
    assert_eq!(
        store.delete_rotation("rot_1").await.unwrap(),
        Err(vec!["schedules/sch_1".to_owned()])
    );
    assert_eq!(store.delete_schedule("sch_1").await.unwrap(), Ok(true));
    assert_eq!(store.delete_rotation("rot_1").await.unwrap(), Ok(true));
    assert_eq!(store.schedule("sch_1").await.unwrap(), None);
    assert_eq!(store.rotation("rot_1").await.unwrap(), None);
}

async fn overrides_of_one_operator_never_overlap<S: Contract>(store: S) {
    an_on_call_schedule(&store).await;
    let attempt =
        |id: &str, add: Option<&str>, remove: Option<&str>, from: i64, to: i64| OverrideRecord {
            id: id.into(),
            schedule_id: "sch_1".into(),
            rule: Override {
                add: add.map(String::from),
                remove: remove.map(String::from),
                start: t0() + Duration::minutes(from),
                end: t0() + Duration::minutes(to),
            },
            created_by: "key_1".into(),
            created_at: t0(),
        };
    // ovr_1 adds ann over [0, 60) minutes.
    let cases = [
        (
            attempt("o2", None, Some("ann"), 30, 90),
            Err("ovr_1".to_owned()),
        ),
        (
            attempt("o3", Some("cy"), Some("ann"), 59, 61),
            Err("ovr_1".to_owned()),
        ),
        (attempt("o4", None, Some("ann"), 60, 90), Ok(())),
        (attempt("o5", Some("cy"), Some("bob"), 0, 60), Ok(())),
        (
            attempt("o6", Some("bob"), None, 10, 20),
            Err("o5".to_owned()),
        ),
    ];
    for (o, expected) in cases {
        assert_eq!(
            store.insert_override(&o).await.unwrap(),
            expected,
            "{}",
            o.id
        );
    }
}

async fn an_operator_in_use_is_not_deleted<S: Contract>(store: S) {
    an_on_call_schedule(&store).await;
    // ann is named by the schedule's override; bob by the rotation; nobody names cy...
    let uses = store.delete_operator("ann").await.unwrap();
    assert_eq!(uses, Err(vec!["schedules/sch_1".to_owned()]));
    let uses = store.delete_operator("bob").await.unwrap();
    assert_eq!(uses, Err(vec!["rotations/rot_1".to_owned()]));
    store
        .insert_operator(&operator("dee", "+15550100014"))
        .await
        .unwrap();
    assert_eq!(store.delete_operator("dee").await.unwrap(), Ok(true));
    assert_eq!(store.delete_operator("dee").await.unwrap(), Ok(false));
    // ...and one number is one operator.
    let again = store
        .insert_operator(&operator("eve", "+15550100011"))
        .await;
    assert_eq!(
        again.unwrap_err().violation(),
        Some(tocsin::store::Violation::Unique)
    );
}

fn event(id: &str, value: &str) -> Event {
    Event {
        id: id.into(),
        event_type: Some("usage".into()),
        owner_type: Some("ACCOUNT".into()),
        owner_id: Some("acc1".into()),
        entity_type: None,
        entity_id: None,
        timestamp: t0(),
        value: Some(value.parse().unwrap()),
        attributes: Default::default(),
    }
}

async fn events_are_idempotent_by_id<S: Contract>(store: S) {
    let first = Write::Events(vec![event("evt_1", "5"), event("evt_2", "7")]);
    let again = Write::Events(vec![event("evt_1", "6")]);
    assert_eq!(
        store.commit_writes(&[(&first, t0())]).await.unwrap(),
        [true]
    );
    assert_eq!(
        store.commit_writes(&[(&again, t0())]).await.unwrap(),
        [true]
    );
    let events = store.list_events(Some("acc1"), None, 50).await.unwrap();
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["evt_1", "evt_2"], "one event per id");
    let replaced = store.event("evt_1").await.unwrap().unwrap();
    assert_eq!(replaced.value.map(|v| v.to_string()).as_deref(), Some("6"));
}

fn alarm(id: &str) -> EntityUpsert {
    EntityUpsert {
        entity_type: "ALARM".into(),
        entity_id: id.into(),
        owner_type: Some("INTEGRATION".into()),
        owner_id: Some("int_1".into()),
        attributes: json!({"status": "FIRING"}).to_string(),
    }
}

async fn a_delivery_is_taken_once_with_its_alarms<S: Contract>(store: S) {
    let delivery = |alarms: Vec<EntityUpsert>| Write::Delivery {
        integration_id: "int_1".into(),
        digest: "sha256:abc".into(),
        entities: alarms,
    };
    let first = delivery(vec![alarm("a1")]);
    let replay = delivery(vec![alarm("a2")]);
    assert_eq!(
        store.commit_writes(&[(&first, t0())]).await.unwrap(),
        [true]
    );
    // The replay, even in the same group as new data, writes nothing of its own.
    let other = Write::Entities(vec![alarm("a3")]);
    assert_eq!(
        store
            .commit_writes(&[(&replay, t0()), (&other, t0())])
            .await
            .unwrap(),
        [false, true]
    );
    let ids: Vec<String> = store
        .list_entities("ALARM", Some("int_1"), None, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.entity_id)
        .collect();
    assert_eq!(ids, ["a1", "a3"]);
}

async fn lists_page_in_id_order_without_gaps_or_repeats<S: Contract>(store: S) {
    let report = json!({});
    let subjects = ["s1", "s2", "s3", "s4", "s5"];
    for (i, subject) in subjects.iter().enumerate() {
        let at = t0() + Duration::seconds(i as i64);
        store
            .apply_finding(&finding("alt_p", subject, true, &report, at))
            .await
            .unwrap();
    }
    let filter = IncidentFilter::default();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list_incidents(&filter, after.as_deref(), 2)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        after = page.last().map(|i| i.id.clone());
        seen.extend(page.into_iter().map(|i| (i.id, i.subject)));
    }
    let ids: Vec<&String> = seen.iter().map(|(id, _)| id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "id order, no repeats");
    let order: Vec<&str> = seen.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(order, subjects, "oldest first: ids sort by time");

    let events: Vec<Event> = (0..5).map(|i| event(&format!("e{i}"), "1")).collect();
    let write = Write::Events(events);
    store.commit_writes(&[(&write, t0())]).await.unwrap();
    let first = store.list_events(None, None, 3).await.unwrap();
    let rest = store
        .list_events(None, Some(&first[2].id), 3)
        .await
        .unwrap();
    let ids: Vec<String> = first.iter().chain(&rest).map(|e| e.id.clone()).collect();
    assert_eq!(ids, ["e0", "e1", "e2", "e3", "e4"]);
}

/// Owned findings, so racing writers can each hold one.
trait ApplyOwned {
    fn apply_finding_owned(&self, o: Observation<'_>) -> impl Future<Output = Change>;
}

impl<S: Incidents> ApplyOwned for S {
    async fn apply_finding_owned(&self, o: Observation<'_>) -> Change {
        self.apply_finding(&o).await.unwrap()
    }
}

/// Opens an incident on `subject` whose loop starts with the labels silences match.
async fn a_labelled_loop(store: &Store, subject: &str, at: DateTime<Utc>) -> String {
    let report = json!({"severity": "CRITICAL"});
    let Change::Opened(incident) = store
        .apply_finding(&finding("alt_1", subject, true, &report, at))
        .await
        .unwrap()
    else {
        panic!("a breach opens")
    };
    let labels = tocsin::store::silences::labels(
        &incident,
        "alt_1",
        "usage_breach",
        Some("acc1"),
        subject,
        &report,
    );
    let opened = [Opened {
        incident_id: &incident,
        alert_id: "alt_1",
        template_id: "usage_breach",
        owner_id: Some("acc1"),
        labels,
        at,
    }];
    store.start_loops(&opened, "twilio").await.unwrap();
    incident
}

fn a_silence(id: &str, subject: &str, from: DateTime<Utc>, minutes: i64) -> SilenceRecord {
    SilenceRecord {
        id: id.into(),
        matchers: vec![MatcherSpec {
            name: "subject".into(),
            op: "=".into(),
            value: subject.into(),
        }],
        starts_at: from,
        ends_at: from + Duration::minutes(minutes),
        comment: "reboot".into(),
        created_by: "ops".into(),
        created_at: from,
        updated_at: from,
    }
}

async fn a_silence_holds_a_loop_cuts_its_call_and_the_step_is_dialed_again(store: Store) {
    a_roster(&store).await;
    let ringing = a_labelled_loop(&store, "db-1", t0()).await;
    let pending = store.next_call().await.unwrap().unwrap();
    let first = store.begin_call(&pending, t0()).await.unwrap().unwrap();
    store
        .call_placed(&first, "CA-1", CallStatus::Ringing, t0())
        .await
        .unwrap();

    // A silence starts: the loop waits, its ringing call is to be ended.
    store
        .insert_silence(&a_silence("sil_1", "db-1", t0(), 60))
        .await
        .unwrap();
    let pass = store.silence_loops(t0()).await.unwrap();
    assert_eq!((pass.silenced, pass.resumed), (1, 0));
    assert_eq!(pass.next_change, Some(t0() + Duration::minutes(60)));
    let to_end = store.calls_to_end().await.unwrap();
    assert_eq!(to_end.iter().map(|c| &c.id).collect::<Vec<_>>(), [&first]);
    assert!(store.next_call().await.unwrap().is_none());
    assert_eq!(
        store.silence_loops(t0()).await.unwrap().silenced,
        0,
        "a held loop is held once"
    );

    // A loop opening under a silence starts held.
    store
        .insert_silence(&a_silence("sil_2", "db-2", t0(), 120))
        .await
        .unwrap();
    let held = a_labelled_loop(&store, "db-2", t0()).await;
    assert!(store.next_call().await.unwrap().is_none());
    let filter = IncidentFilter {
        alert_id: None,
        status: None,
        silenced: Some(true),
    };
    let silenced = store.list_incidents(&filter, None, 50).await.unwrap();
    assert_eq!(silenced.len(), 2);

    // The cut call's end moves nothing; when its silence ends, the same step (Ada) is
    // dialed again, as a call of its own.
    store
        .call_status(&first, "CA-1", CallStatus::Canceled, t0())
        .await
        .unwrap();
    assert!(store.next_call().await.unwrap().is_none());
    let later = t0() + Duration::minutes(60);
    let pass = store.silence_loops(later).await.unwrap();
    assert_eq!((pass.silenced, pass.resumed), (0, 1));
    let again = store.next_call().await.unwrap().unwrap();
    assert_eq!(
        (
            again.incident_id.as_str(),
            again.step,
            again.member().name.as_str()
        ),
        (ringing.as_str(), 0, "Ada")
    );
    let second = store.begin_call(&again, later).await.unwrap().unwrap();
    assert_ne!(second, first);
    assert_eq!(store.begin_call(&again, later).await.unwrap(), None);
    let kinds: Vec<String> = store
        .timeline(&ringing)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    let at = |kind: &str| kinds.iter().position(|k| k == kind).unwrap();
    assert!(at("silenced") < at("unsilenced"), "{kinds:?}");

    // The held one closes meanwhile: it never rings.
    store
        .close_incident(&held, later, "key_1", "closed")
        .await
        .unwrap();
    let pass = store
        .silence_loops(t0() + Duration::minutes(120))
        .await
        .unwrap();
    assert_eq!((pass.silenced, pass.resumed), (0, 0));
    assert_eq!(pass.next_change, None);

    // Expired silences are forgotten five days on.
    assert_eq!(store.list_silences(t0()).await.unwrap().len(), 2);
    store.silence_loops(t0() + Duration::days(6)).await.unwrap();
    assert!(store.silence("sil_1").await.unwrap().is_none());
}

async fn a_cloud_alarms_loop_is_silenced_by_its_platforms_labels(store: Store) {
    a_roster(&store).await;
    let labelled = EntityUpsert {
        attributes: json!({"state": "FIRING", "name": "CPU",
            "labels": {"team": "storage", "instance": "node-1:9100"}})
        .to_string(),
        ..alarm("int_1:f1")
    };
    store
        .commit_writes(&[(&Write::Entities(vec![labelled]), t0())])
        .await
        .unwrap();
    let report = json!({"name": "CPU", "state": "FIRING"});
    let Change::Opened(incident) = store
        .apply_finding(&finding("alt_1", "int_1:f1", true, &report, t0()))
        .await
        .unwrap()
    else {
        panic!("a breach opens")
    };
    let labels = tocsin::store::silences::labels(
        &incident,
        "alt_1",
        "cloud_alarm",
        Some("int_1"),
        "int_1:f1",
        &report,
    );
    store
        .insert_silence(&SilenceRecord {
            matchers: vec![MatcherSpec {
                name: "team".into(),
                op: "=".into(),
                value: "storage".into(),
            }],
            ..a_silence("sil_1", "", t0(), 60)
        })
        .await
        .unwrap();
    let opened = [Opened {
        incident_id: &incident,
        alert_id: "alt_1",
        template_id: "cloud_alarm",
        owner_id: Some("int_1"),
        labels,
        at: t0(),
    }];
    store.start_loops(&opened, "twilio").await.unwrap();
    assert!(
        store.next_call().await.unwrap().is_none(),
        "held by the platform's label"
    );
    let kinds: Vec<String> = store
        .timeline(&incident)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(kinds.contains(&"silenced".to_owned()), "{kinds:?}");
}

async fn maintenance_windows_read_back_updated_and_deleted(store: Store) {
    let window = WindowRecord {
        id: "mw_1".into(),
        name: "reboot".into(),
        matchers: vec![MatcherSpec {
            name: "severity".into(),
            op: "=~".into(),
            value: "CRIT.*".into(),
        }],
        time_zone: "Europe/Berlin".parse().unwrap(),
        days: vec!["SUN".into()],
        start: "02:00".into(),
        end: "04:00".into(),
        comment: String::new(),
        created_by: "ops".into(),
        created_at: t0(),
        updated_at: t0(),
    };
    store.insert_window(&window).await.unwrap();
    assert_eq!(store.window("mw_1").await.unwrap(), Some(window.clone()));
    let moved = WindowRecord {
        end: "05:00".into(),
        ..window
    };
    assert!(store.update_window(&moved).await.unwrap());
    assert_eq!(store.list_windows().await.unwrap(), [moved]);
    assert!(store.delete_window("mw_1").await.unwrap());
    assert!(!store.delete_window("mw_1").await.unwrap());
}

/// The incidents whose loops silences hold, by id.
async fn held(store: &Store) -> Vec<String> {
    let filter = IncidentFilter {
        alert_id: None,
        status: None,
        silenced: Some(true),
    };
    let held = store.list_incidents(&filter, None, 50).await.unwrap();
    held.into_iter().map(|i| i.id).collect()
}

/// Loops' starts and silencing passes read silences and windows from memory while nothing
/// changed: each change (here through `writer`, which may be another node's handle on the
/// same database) is seen by the next loop or pass of `reader`.
async fn a_change_to_silences_reaches_the_next_loop(writer: &Store, reader: &Store) {
    a_roster(writer).await;
    let free = a_labelled_loop(reader, "db-1", t0()).await;
    assert!(held(reader).await.is_empty(), "nothing silences yet");
    writer
        .insert_silence(&a_silence("sil_1", "db-2", t0(), 60))
        .await
        .unwrap();
    let silenced = a_labelled_loop(reader, "db-2", t0()).await;
    assert_eq!(held(reader).await, [silenced], "a new silence holds");

    // Its end moved closer: the pass then lets the loop call.
    let mut moved = writer.silence("sil_1").await.unwrap().unwrap();
    moved.ends_at = t0() + Duration::minutes(10);
    assert!(writer.update_silence(&moved).await.unwrap());
    let pass = reader
        .silence_loops(t0() + Duration::minutes(10))
        .await
        .unwrap();
    assert_eq!((pass.silenced, pass.resumed), (0, 1), "the moved end holds");

    // A window (Tuesdays 08:00 to 12:00 in Berlin; t0 is Tuesday 10:00 there) made, then
    // deleted.
    let window = WindowRecord {
        id: "mw_1".into(),
        name: "patching".into(),
        matchers: vec![MatcherSpec {
            name: "subject".into(),
            op: "=~".into(),
            value: "db-[13]".into(),
        }],
        time_zone: "Europe/Berlin".parse().unwrap(),
        days: vec!["TUE".into()],
        start: "08:00".into(),
        end: "12:00".into(),
        comment: String::new(),
        created_by: "ops".into(),
        created_at: t0(),
        updated_at: t0(),
    };
    writer.insert_window(&window).await.unwrap();
    let at = t0() + Duration::minutes(11);
    let pass = reader.silence_loops(at).await.unwrap();
    assert_eq!(
        (pass.silenced, pass.resumed),
        (1, 0),
        "the window holds db-1"
    );
    let opened = a_labelled_loop(reader, "db-3", at).await;
    let mut now_held = held(reader).await;
    now_held.sort();
    let mut expected = vec![free, opened];
    expected.sort();
    assert_eq!(now_held, expected);
    assert!(writer.delete_window("mw_1").await.unwrap());
    let pass = reader
        .silence_loops(t0() + Duration::minutes(12))
        .await
        .unwrap();
    assert_eq!((pass.silenced, pass.resumed), (0, 2), "the window is gone");
}

async fn silence_changes_reach_the_next_loop(store: Store) {
    a_change_to_silences_reaches_the_next_loop(&store, &store).await;
}

/// A fresh SQLite store in a file of its own; the directory lives as long as the store.
async fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("contract.db").into())
        .await
        .unwrap();
    (store, dir)
}

/// Every check, each on a fresh store that `store` opens.
macro_rules! check_all {
    ($store:expr) => {
        check_all!(
            $store;
            at_most_one_unclosed_incident_per_alert_and_subject,
            a_call_step_is_recorded_once,
            the_next_call_waits_for_a_free_number,
            events_are_idempotent_by_id,
            a_delivery_is_taken_once_with_its_alarms,
            lists_page_in_id_order_without_gaps_or_repeats,
            a_roster_naming_a_schedule_expands_when_its_loop_starts,
            a_roster_of_nobody_on_call_is_exhausted_at_once,
            overrides_of_one_operator_never_overlap,
            a_missed_call_is_texted_once_and_a_reply_of_1_accepts,
            on_call_records_read_back_updated_and_deleted,
            on_call_changes_reach_the_next_loop,
            an_operator_in_use_is_not_deleted,
            a_silence_holds_a_loop_cuts_its_call_and_the_step_is_dialed_again,
            maintenance_windows_read_back_updated_and_deleted,
            a_cloud_alarms_loop_is_silenced_by_its_platforms_labels,
            silence_changes_reach_the_next_loop,
        )
    };
    ($store:expr; $($check:ident),* $(,)?) => {$({
        let (store, _held) = $store;
        $check(store).await;
    })*};
}

#[tokio::test]
async fn sqlite_keeps_the_store_contract() {
    check_all!(sqlite().await);
}

/// A fresh PostgreSQL database of its own, migrated; dropped with the second value.
async fn postgres(test: &str) -> Option<(Store, TestDatabase)> {
    let db = TestDatabase::create(test).await?;
    let store = Store::open(&Database::parse(&db.url)).await.unwrap();
    assert_eq!(store.kind(), "postgres");
    Some((store, db))
}

#[tokio::test]
async fn postgres_keeps_the_store_contract() {
    if postgres("probe").await.is_none() {
        return;
    }
    check_all!(postgres("contract").await.unwrap());
}

#[tokio::test]
async fn postgres_nodes_see_each_others_on_call_changes() {
    let Some((first, db)) = postgres("oncall_nodes").await else {
        return;
    };
    let second = Store::open(&Database::parse(&db.url)).await.unwrap();
    a_change_to_who_is_on_call_reaches_the_next_loop(&first, &second).await;
}

#[tokio::test]
async fn postgres_nodes_see_each_others_silences() {
    let Some((first, db)) = postgres("silence_nodes").await else {
        return;
    };
    let second = Store::open(&Database::parse(&db.url)).await.unwrap();
    a_change_to_silences_reaches_the_next_loop(&first, &second).await;
}
