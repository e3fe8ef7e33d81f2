//! The on-call page: every rotation, schedule and roster as it stands now, the handoffs of
//! the coming week, the overrides, and whom a loop starting now would call (a dry run).

use super::{Refusal, Signed, render, when};
use crate::http::AppState;
use crate::store::oncall::{Directory, Wanted, expand};
use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::Duration;

/// How far ahead handoffs are shown.
const AHEAD: Duration = Duration::days(7);
/// Most rotations, schedules or rosters shown of each.
const SHOWN: i64 = 100;

struct RotationRow {
    name: String,
    holder: String,
    next_handoff: String,
}

struct ShiftRow {
    operator: String,
    start: String,
    end: String,
}

struct ScheduleRow {
    id: String,
    name: String,
    time_zone: String,
    on_call: String,
    shifts: Vec<ShiftRow>,
    overrides: Vec<ShiftRow>,
}

struct RosterRow {
    name: String,
    calls: String,
}

#[derive(Template)]
#[template(path = "console/on_call.html")]
struct OnCallPage {
    chrome: super::Chrome,
    now: String,
    rotations: Vec<RotationRow>,
    schedules: Vec<ScheduleRow>,
    rosters: Vec<RosterRow>,
}

fn name(directory: &Directory, operator: &str) -> String {
    directory
        .operators
        .get(operator)
        .map_or_else(|| operator.to_owned(), |o| o.name.clone())
}

fn names(directory: &Directory, operators: &[&str]) -> String {
    if operators.is_empty() {
        return "nobody".into();
    }
    operators
        .iter()
        .map(|o| name(directory, o))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn page(core: &AppState, signed: &Signed) -> Result<OnCallPage, Refusal> {
    let unavailable = |e: crate::store::Error| {
        tracing::error!(error = %e, "could not read who is on call");
        Refusal::unavailable()
    };
    let now = core.clock.now();
    let rotations = core
        .store
        .list_rotations(None, SHOWN)
        .await
        .map_err(unavailable)?;
    let schedules = core
        .store
        .list_schedules(None, SHOWN)
        .await
        .map_err(unavailable)?;
    let rosters = core
        .store
        .list_rosters(None, SHOWN)
        .await
        .map_err(unavailable)?;
    // One directory for all of them, over the coming week.
    let mut wanted = Wanted {
        rotations: rotations.iter().map(|r| r.id.clone()).collect(),
        schedules: schedules.iter().map(|s| s.id.clone()).collect(),
        ..Wanted::default()
    };
    for roster in &rosters {
        let named = Wanted::roster(roster);
        wanted.operators.extend(named.operators);
        wanted.rotations.extend(named.rotations);
        wanted.schedules.extend(named.schedules);
    }
    let directory = core
        .store
        .directory(&wanted, now, now + AHEAD)
        .await
        .map_err(unavailable)?;
    let rotations = rotations
        .iter()
        .map(|r| {
            let rotation = &r.rotation;
            RotationRow {
                name: r.name.clone(),
                holder: rotation
                    .holder(now)
                    .map_or_else(|| "nobody".into(), |h| name(&directory, h)),
                next_handoff: when(rotation.handoff(rotation.shift_index(now) + 1)),
            }
        })
        .collect();
    let schedules = schedules
        .iter()
        .filter_map(|s| {
            let schedule = directory.schedules.get(&s.id)?;
            let shift = |operator: &str, start, end| ShiftRow {
                operator: name(&directory, operator),
                start: when(start),
                end: when(end),
            };
            Some(ScheduleRow {
                id: s.id.clone(),
                name: s.name.clone(),
                time_zone: s.time_zone.name().to_owned(),
                on_call: names(&directory, &schedule.on_call(&directory.rotations, now)),
                shifts: schedule
                    .shifts(&directory.rotations, now, now + AHEAD)
                    .into_iter()
                    .map(|x| shift(x.operator, x.start, x.end))
                    .collect(),
                overrides: schedule
                    .overrides
                    .iter()
                    .filter(|o| o.end > now)
                    .map(|o| {
                        let who = match (&o.add, &o.remove) {
                            (Some(add), Some(remove)) => format!(
                                "{} for {}",
                                name(&directory, add),
                                name(&directory, remove)
                            ),
                            (Some(add), None) => format!("{} added", name(&directory, add)),
                            (None, Some(remove)) => {
                                format!("{} removed", name(&directory, remove))
                            }
                            (None, None) => "nobody".into(),
                        };
                        ShiftRow {
                            operator: who,
                            start: when(o.start),
                            end: when(o.end),
                        }
                    })
                    .collect(),
            })
        })
        .collect();
    let rosters = rosters
        .iter()
        .map(|roster| {
            let members = expand(roster, &directory, now).roster.members;
            RosterRow {
                name: roster.name.clone(),
                calls: if members.is_empty() {
                    "nobody: the loop would be exhausted at once".into()
                } else {
                    members
                        .iter()
                        .map(|m| m.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", then ")
                },
            }
        })
        .collect();
    Ok(OnCallPage {
        chrome: signed.chrome(),
        now: when(now),
        rotations,
        schedules,
        rosters,
    })
}

/// `GET /console/on-call`.
pub(super) async fn on_call(State(core): State<AppState>, signed: Signed) -> Response {
    match page(&core, &signed).await {
        Ok(page) => render(&page),
        Err(refusal) => refusal.into_response(),
    }
}
