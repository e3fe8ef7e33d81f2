//! The call loop as a pure state machine: `(loop, call, event) -> (loop, call, actions)`.
//!
//! Everything the loop decides is here: what 1, 2 and `*` do, what busy, a voicemail or
//! silence mean, when a loop wraps to the first member and when it is exhausted. No I/O and
//! no clock: the store loads a [`Loop`] and a [`Call`], asks this module, and persists the
//! new states and the [`Action`]s in one transaction; the driver and the webhooks execute
//! the rest (dial, hang up, answer with TwiML, POST the fallback).

use tocsin_twilio::CallStatus;

/// Where a loop stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LoopState {
    /// Calling.
    Active,
    /// A member accepted.
    Accepted,
    /// Every loop was spent.
    Exhausted,
    /// The incident closed first.
    Stopped,
    /// Held by a silence: no calls until no silence matches the incident.
    Silenced,
}

impl LoopState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Accepted => "ACCEPTED",
            Self::Exhausted => "EXHAUSTED",
            Self::Stopped => "STOPPED",
            Self::Silenced => "SILENCED",
        }
    }

    /// Reads a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "ACTIVE" => Self::Active,
            "ACCEPTED" => Self::Accepted,
            "EXHAUSTED" => Self::Exhausted,
            "STOPPED" => Self::Stopped,
            "SILENCED" => Self::Silenced,
            _ => return None,
        })
    }
}

/// An incident's call loop: `step` counts calls from 0 across all loops, so the member is
/// `step % members` and the loop `step / members`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loop {
    /// Where it stands.
    pub state: LoopState,
    /// The step being called (or, once over, the step after the last one called).
    pub step: u32,
    /// Members on the roster.
    pub members: u32,
    /// Times the roster is called through.
    pub loops: u32,
    /// Whether a member whose call is missed gets a text to reply to (the roster's
    /// `sms: on-miss`).
    pub text_misses: bool,
}

impl Loop {
    /// Calls the loop makes at most.
    pub fn calls(&self) -> u32 {
        self.members * self.loops
    }

    /// Whether the loop still wants an answer from the call for `step`.
    pub fn wants(&self, step: u32) -> bool {
        self.state == LoopState::Active && self.step == step
    }
}

/// How a call ended for its loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The member pressed 1.
    Accepted,
    /// The member pressed 2.
    Passed,
    /// The call was answered (by a person who pressed nothing, or by a voicemail) and
    /// ended without a key press.
    NoKeyPress,
    /// The line was busy.
    Busy,
    /// It rang out.
    NoAnswer,
    /// Twilio could not place it, or refused to.
    Failed,
    /// It ended before it was answered.
    Canceled,
    /// Nothing was ever heard of it.
    Lost,
    /// A silence cut it short; its step is dialed again when the loop resumes.
    Silenced,
}

impl Outcome {
    /// Whether the member never got to answer: not accepted, not passed on purpose, and
    /// not cut short by a silence.
    pub fn is_miss(self) -> bool {
        !matches!(self, Self::Accepted | Self::Passed | Self::Silenced)
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Passed => "passed",
            Self::NoKeyPress => "no-key-press",
            Self::Busy => "busy",
            Self::NoAnswer => "no-answer",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::Lost => "lost",
            Self::Silenced => "silenced",
        }
    }

    /// Reads a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "accepted" => Self::Accepted,
            "passed" => Self::Passed,
            "no-key-press" => Self::NoKeyPress,
            "busy" => Self::Busy,
            "no-answer" => Self::NoAnswer,
            "failed" => Self::Failed,
            "canceled" => Self::Canceled,
            "lost" => Self::Lost,
            "silenced" => Self::Silenced,
            _ => return None,
        })
    }

    /// What a final Twilio status means for the loop.
    fn of(status: CallStatus) -> Option<Self> {
        Some(match status {
            CallStatus::Completed => Self::NoKeyPress,
            CallStatus::Busy => Self::Busy,
            CallStatus::NoAnswer => Self::NoAnswer,
            CallStatus::Failed => Self::Failed,
            CallStatus::Canceled => Self::Canceled,
            CallStatus::Queued
            | CallStatus::Initiated
            | CallStatus::Ringing
            | CallStatus::InProgress => return None,
        })
    }
}

/// One call of a loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// The step it calls for.
    pub step: u32,
    /// Twilio's status; `None` while the request to place it is in flight.
    pub status: Option<CallStatus>,
    /// How it ended for the loop, once decided.
    pub outcome: Option<Outcome>,
}

/// The keys a member may press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keypad {
    /// 1: take the incident.
    Accept,
    /// 2: pass it to the next member.
    Pass,
    /// `*`: say the prompt again.
    Repeat,
    /// Anything else.
    Other,
}

impl Keypad {
    /// Reads Twilio's `Digits`.
    pub fn parse(digits: &str) -> Self {
        match digits {
            "1" => Self::Accept,
            "2" => Self::Pass,
            "*" => Self::Repeat,
            _ => Self::Other,
        }
    }
}

/// Why a call's placing request came to nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotPlaced {
    /// Twilio refused it, or surely never received it.
    Refused,
    /// No answer to the request and no callback, for longer than a call can ring.
    Lost,
}

/// What happened to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Twilio accepted the request to place it, with this status.
    Placed(CallStatus),
    /// The request to place it came to nothing.
    NotPlaced(NotPlaced),
    /// A status callback, or a status read back from Twilio.
    Status(CallStatus),
    /// The voice webhook: the call connected (`prompt` 1) or the first prompt met silence
    /// (`prompt` 2).
    Answered {
        /// Which prompt is asked for.
        prompt: u32,
    },
    /// A key pressed during the prompt.
    Key(Keypad),
}

/// What the voice and gather webhooks answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Speak the prompt (again).
    Prompt,
    /// Say the key is not an option, then the prompt again.
    NotAnOption,
    /// Thank the member: the incident is theirs.
    Accepted,
    /// Tell the member the next one is called.
    Passed,
    /// The loop no longer wants this call: say goodbye.
    NotNeeded,
}

/// A line for the incident's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// `call-started`: the step's call is about to be dialed.
    CallStarted,
    /// `call-placed`: Twilio took the request.
    CallPlaced(CallStatus),
    /// `call-failed`: the request came to nothing.
    CallFailed,
    /// `call-status`: the call moved on.
    CallStatus(CallStatus),
    /// `call-answered`.
    CallAnswered,
    /// `call-silence`: the first prompt got no key.
    Silence {
        /// The prompt asked for.
        prompt: u32,
    },
    /// `key-press`.
    KeyPress,
    /// `call-outcome`.
    Outcome(Outcome),
    /// `escalation-exhausted`.
    Exhausted {
        /// Calls made.
        calls: u32,
        /// Loops spent.
        loops: u32,
    },
    /// `escalation-stopped`.
    Stopped,
    /// `silenced`: a silence holds the loop.
    Silenced,
    /// `unsilenced`: no silence holds it any more; it calls again.
    Unsilenced,
}

/// What the store and the driver must do after a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Write a line on the incident's timeline.
    Note(Note),
    /// Hang up the call: the loop no longer wants it.
    EndCall,
    /// The member accepted: acknowledge the incident by them.
    Acknowledge,
    /// The loop moved on to its next step: queue it behind every loop already waiting.
    Requeue,
    /// Every loop is spent: POST the fallback.
    FireFallback,
    /// The member missed the call: text them the incident, to accept by replying 1.
    Text,
    /// Answer the webhook so.
    Reply(Reply),
}

/// A transition's result: the new states and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The loop after the event.
    pub state: Loop,
    /// The call after the event.
    pub call: Call,
    /// In order.
    pub actions: Vec<Action>,
}

impl Transition {
    /// Whether anything is to be persisted or done besides a reply.
    pub fn changed(&self) -> bool {
        self.actions.iter().any(|a| !matches!(a, Action::Reply(_)))
    }
}

/// Whether the loop may dial `step` now; if so, the line to write first.
pub fn dial(state: Loop, step: u32) -> Option<Note> {
    state.wants(step).then_some(Note::CallStarted)
}

/// Whether the loop is not over: calling, or held by a silence.
fn running(state: Loop) -> bool {
    matches!(state.state, LoopState::Active | LoopState::Silenced)
}

/// The incident closed or resolved: a running loop stops, and its live calls are ended.
/// `None` when the loop was already over.
pub fn stop(state: Loop) -> Option<(Loop, [Action; 2])> {
    running(state).then_some((
        Loop {
            state: LoopState::Stopped,
            ..state
        },
        [Action::Note(Note::Stopped), Action::EndCall],
    ))
}

/// A member accepted outside a call (a reply to a text): a running loop is over, its live
/// call ended. `None` when the loop was already over (the incident is still theirs).
pub fn accepted_elsewhere(state: Loop) -> Option<(Loop, Action)> {
    running(state).then_some((
        Loop {
            state: LoopState::Accepted,
            ..state
        },
        Action::EndCall,
    ))
}

/// A silence matches the incident: an active loop waits, SILENCED, and the call of its
/// current step, if one is under way, is cut short: settled as [`Outcome::Silenced`] (see
/// [`cut`]) and ended. The loop keeps its step, to dial it again when it resumes. `None`
/// when the loop is not calling.
pub fn silence(state: Loop) -> Option<(Loop, [Action; 2])> {
    (state.state == LoopState::Active).then_some((
        Loop {
            state: LoopState::Silenced,
            ..state
        },
        [Action::Note(Note::Silenced), Action::EndCall],
    ))
}

/// What silencing its loop does to the call of the loop's current step: a call not yet
/// settled is settled as [`Outcome::Silenced`], so that nothing it reports later (a key,
/// its end) moves the loop.
pub fn cut(call: Call) -> Call {
    Call {
        outcome: call.outcome.or(Some(Outcome::Silenced)),
        ..call
    }
}

/// No silence matches the incident any more: a silenced loop calls again from the step it
/// stopped at. `None` when the loop is not silenced (the incident closed meanwhile: its
/// loop stopped and never rings).
pub fn unsilence(state: Loop) -> Option<(Loop, Action)> {
    (state.state == LoopState::Silenced).then_some((
        Loop {
            state: LoopState::Active,
            ..state
        },
        Action::Note(Note::Unsilenced),
    ))
}

/// The transition for `event` on `call`, a call of `state`'s loop.
pub fn on(state: Loop, call: Call, event: Event) -> Transition {
    let mut t = Transition {
        state,
        call,
        actions: Vec::new(),
    };
    match event {
        Event::Placed(status) => {
            // A callback may have come first and moved the call further: keep that.
            if t.call.status.is_none() {
                t.call.status = Some(status);
            }
            t.actions.push(Action::Note(Note::CallPlaced(status)));
            // The loop moved on, stopped, or a silence cut this call while it was placed.
            if !state.wants(call.step) || call.outcome.is_some() {
                t.actions.push(Action::EndCall);
            }
        }
        Event::NotPlaced(why) => {
            if t.call.status.is_none() {
                t.call.status = Some(CallStatus::Failed);
            }
            t.actions.push(Action::Note(Note::CallFailed));
            let outcome = match why {
                NotPlaced::Refused => Outcome::Failed,
                NotPlaced::Lost => Outcome::Lost,
            };
            decide(&mut t, outcome);
        }
        Event::Status(status) => {
            let known = call.status.map_or(0, CallStatus::rank);
            if call.status.is_some() && status.rank() <= known {
                return t; // a duplicate, or older than what is known
            }
            t.call.status = Some(status);
            t.actions.push(Action::Note(Note::CallStatus(status)));
            if let Some(outcome) = Outcome::of(status) {
                decide(&mut t, outcome);
            }
        }
        Event::Answered { prompt } => {
            if call
                .status
                .is_none_or(|s| s.rank() < CallStatus::InProgress.rank())
            {
                t.call.status = Some(CallStatus::InProgress);
                t.actions.push(Action::Note(Note::CallAnswered));
            }
            if prompt > 1 && call.outcome.is_none() {
                t.actions.push(Action::Note(Note::Silence { prompt }));
            }
            let live = state.wants(call.step) && call.outcome.is_none();
            t.actions.push(Action::Reply(if live {
                Reply::Prompt
            } else {
                Reply::NotNeeded
            }));
        }
        Event::Key(key) => {
            if !state.wants(call.step) || call.outcome.is_some() {
                t.actions.push(Action::Reply(Reply::NotNeeded));
                return t;
            }
            t.actions.push(Action::Note(Note::KeyPress));
            let reply = match key {
                Keypad::Accept => {
                    decide(&mut t, Outcome::Accepted);
                    Reply::Accepted
                }
                Keypad::Pass => {
                    decide(&mut t, Outcome::Passed);
                    Reply::Passed
                }
                Keypad::Repeat => Reply::Prompt,
                Keypad::Other => Reply::NotAnOption,
            };
            t.actions.push(Action::Reply(reply));
        }
    }
    t
}

/// Settles the call's outcome, once, and moves the loop on: an acceptance ends it; anything
/// else calls the next member, wrapping to the first, until the loops are spent.
fn decide(t: &mut Transition, outcome: Outcome) {
    if t.call.outcome.is_some() {
        return;
    }
    t.call.outcome = Some(outcome);
    t.actions.push(Action::Note(Note::Outcome(outcome)));
    if !t.state.wants(t.call.step) {
        return; // the loop already moved past this call, or stopped
    }
    if outcome == Outcome::Accepted {
        t.state.state = LoopState::Accepted;
        t.actions.push(Action::Acknowledge);
        return;
    }
    if outcome.is_miss() && t.state.text_misses {
        t.actions.push(Action::Text);
    }
    t.state.step += 1;
    if t.state.step >= t.state.calls() {
        t.state.state = LoopState::Exhausted;
        t.actions.push(Action::Note(Note::Exhausted {
            calls: t.state.calls(),
            loops: t.state.loops,
        }));
        t.actions.push(Action::FireFallback);
    } else {
        t.actions.push(Action::Requeue);
    }
}

/// One test per row of the transition table, named after the row.
#[cfg(test)]
mod tests {
    use super::*;
    use Action::{Acknowledge, EndCall, FireFallback, Requeue};
    use CallStatus as S;

    /// Two members, two loops: steps 0..4.
    fn active(step: u32) -> Loop {
        Loop {
            text_misses: false,
            state: LoopState::Active,
            step,
            members: 2,
            loops: 2,
        }
    }

    fn call(step: u32, status: Option<CallStatus>) -> Call {
        Call {
            step,
            status,
            outcome: None,
        }
    }

    fn note(n: Note) -> Action {
        Action::Note(n)
    }

    fn reply(r: Reply) -> Action {
        Action::Reply(r)
    }

    fn outcome(o: Outcome) -> Action {
        Action::Note(Note::Outcome(o))
    }

    #[test]
    fn dial_the_loops_current_step() {
        assert_eq!(dial(active(1), 1), Some(Note::CallStarted));
    }

    #[test]
    fn dial_refused_for_a_step_the_loop_left() {
        assert_eq!(dial(active(2), 1), None);
    }

    #[test]
    fn dial_refused_once_the_loop_is_over() {
        for state in [
            LoopState::Accepted,
            LoopState::Exhausted,
            LoopState::Stopped,
        ] {
            assert_eq!(dial(Loop { state, ..active(0) }, 0), None, "{state:?}");
        }
    }

    #[test]
    fn placed_records_twilios_status() {
        let t = on(active(0), call(0, None), Event::Placed(S::Queued));
        assert_eq!(t.call.status, Some(S::Queued));
        assert_eq!(t.state, active(0));
        assert_eq!(t.actions, [note(Note::CallPlaced(S::Queued))]);
    }

    #[test]
    fn placed_after_a_callback_keeps_the_callbacks_status() {
        let t = on(
            active(0),
            call(0, Some(S::Ringing)),
            Event::Placed(S::Queued),
        );
        assert_eq!(t.call.status, Some(S::Ringing));
    }

    #[test]
    fn placed_after_the_loop_stopped_ends_the_call() {
        let stopped = Loop {
            state: LoopState::Stopped,
            ..active(0)
        };
        let t = on(stopped, call(0, None), Event::Placed(S::Queued));
        assert_eq!(t.actions, [note(Note::CallPlaced(S::Queued)), EndCall]);
        assert_eq!(t.state, stopped);
    }

    #[test]
    fn refused_call_moves_to_the_next_member() {
        let t = on(
            active(0),
            call(0, None),
            Event::NotPlaced(NotPlaced::Refused),
        );
        assert_eq!(t.call.status, Some(S::Failed));
        assert_eq!(t.call.outcome, Some(Outcome::Failed));
        assert_eq!(t.state, active(1));
        assert_eq!(
            t.actions,
            [note(Note::CallFailed), outcome(Outcome::Failed), Requeue]
        );
    }

    #[test]
    fn lost_call_moves_to_the_next_member() {
        let t = on(active(1), call(1, None), Event::NotPlaced(NotPlaced::Lost));
        assert_eq!(t.call.outcome, Some(Outcome::Lost));
        assert_eq!(t.state, active(2));
    }

    #[test]
    fn status_moves_the_call_forward() {
        let t = on(
            active(0),
            call(0, Some(S::Queued)),
            Event::Status(S::Ringing),
        );
        assert_eq!(t.call.status, Some(S::Ringing));
        assert_eq!(t.actions, [note(Note::CallStatus(S::Ringing))]);
        assert_eq!(t.state, active(0));
    }

    #[test]
    fn status_older_than_the_known_one_changes_nothing() {
        let t = on(
            active(0),
            call(0, Some(S::InProgress)),
            Event::Status(S::Ringing),
        );
        assert!(!t.changed());
        assert_eq!(t.call.status, Some(S::InProgress));
    }

    #[test]
    fn duplicate_status_changes_nothing() {
        let t = on(
            active(0),
            call(0, Some(S::Ringing)),
            Event::Status(S::Ringing),
        );
        assert!(!t.changed());
    }

    #[test]
    fn status_while_placing_is_taken() {
        let t = on(active(0), call(0, None), Event::Status(S::Queued));
        assert_eq!(t.call.status, Some(S::Queued));
    }

    #[test]
    fn completed_without_a_key_press_is_no_answer() {
        let t = on(
            active(0),
            call(0, Some(S::InProgress)),
            Event::Status(S::Completed),
        );
        assert_eq!(t.call.outcome, Some(Outcome::NoKeyPress));
        assert_eq!(t.state, active(1));
        assert_eq!(
            t.actions,
            [
                note(Note::CallStatus(S::Completed)),
                outcome(Outcome::NoKeyPress),
                Requeue
            ]
        );
    }

    #[test]
    fn voicemail_pickup_then_hangup_is_no_answer_never_an_acceptance() {
        // A voicemail answers: the prompt plays to it, nobody presses, the call completes.
        let answered = on(
            active(0),
            call(0, Some(S::Ringing)),
            Event::Answered { prompt: 1 },
        );
        let silence = on(answered.state, answered.call, Event::Answered { prompt: 2 });
        let ended = on(silence.state, silence.call, Event::Status(S::Completed));
        assert_eq!(ended.call.outcome, Some(Outcome::NoKeyPress));
        assert_eq!(ended.state, active(1));
        assert!(!ended.actions.contains(&Acknowledge));
    }

    #[test]
    fn busy_no_answer_failed_and_canceled_move_to_the_next_member() {
        for (status, expected) in [
            (S::Busy, Outcome::Busy),
            (S::NoAnswer, Outcome::NoAnswer),
            (S::Failed, Outcome::Failed),
            (S::Canceled, Outcome::Canceled),
        ] {
            let t = on(active(0), call(0, Some(S::Ringing)), Event::Status(status));
            assert_eq!(t.call.outcome, Some(expected), "{status:?}");
            assert_eq!(t.state, active(1), "{status:?}");
            assert!(t.actions.contains(&Requeue), "{status:?}");
        }
    }

    #[test]
    fn last_member_of_a_loop_wraps_to_the_first_of_the_next() {
        let t = on(
            active(1),
            call(1, Some(S::Ringing)),
            Event::Status(S::NoAnswer),
        );
        assert_eq!(t.state, active(2));
        assert_eq!(t.state.step % t.state.members, 0);
        assert!(t.actions.contains(&Requeue));
    }

    #[test]
    fn last_member_of_the_last_loop_exhausts_and_fires_the_fallback() {
        let t = on(active(3), call(3, Some(S::Ringing)), Event::Status(S::Busy));
        assert_eq!(t.state.state, LoopState::Exhausted);
        assert_eq!(t.state.step, 4);
        assert_eq!(
            t.actions,
            [
                note(Note::CallStatus(S::Busy)),
                outcome(Outcome::Busy),
                note(Note::Exhausted { calls: 4, loops: 2 }),
                FireFallback
            ]
        );
    }

    #[test]
    fn final_status_after_an_acceptance_changes_only_the_status() {
        let accepted = Loop {
            state: LoopState::Accepted,
            ..active(0)
        };
        let c = Call {
            outcome: Some(Outcome::Accepted),
            ..call(0, Some(S::InProgress))
        };
        let t = on(accepted, c, Event::Status(S::Completed));
        assert_eq!(t.call.outcome, Some(Outcome::Accepted));
        assert_eq!(t.state, accepted);
        assert_eq!(t.actions, [note(Note::CallStatus(S::Completed))]);
    }

    #[test]
    fn final_status_of_a_call_the_loop_left_decides_it_without_moving_the_loop() {
        let t = on(
            active(2),
            call(1, Some(S::Ringing)),
            Event::Status(S::NoAnswer),
        );
        assert_eq!(t.call.outcome, Some(Outcome::NoAnswer));
        assert_eq!(t.state, active(2));
        assert!(!t.actions.contains(&Requeue));
    }

    #[test]
    fn answered_speaks_the_prompt() {
        let t = on(
            active(0),
            call(0, Some(S::Ringing)),
            Event::Answered { prompt: 1 },
        );
        assert_eq!(t.call.status, Some(S::InProgress));
        assert_eq!(t.actions, [note(Note::CallAnswered), reply(Reply::Prompt)]);
    }

    #[test]
    fn answered_again_is_not_a_second_answer() {
        let t = on(
            active(0),
            call(0, Some(S::InProgress)),
            Event::Answered { prompt: 1 },
        );
        assert_eq!(t.actions, [reply(Reply::Prompt)]);
    }

    #[test]
    fn silence_reprompts_once() {
        let t = on(
            active(0),
            call(0, Some(S::InProgress)),
            Event::Answered { prompt: 2 },
        );
        assert_eq!(
            t.actions,
            [note(Note::Silence { prompt: 2 }), reply(Reply::Prompt)]
        );
        assert_eq!(t.state, active(0));
    }

    #[test]
    fn answered_after_the_loop_moved_on_is_not_needed() {
        let t = on(
            active(1),
            call(0, Some(S::Ringing)),
            Event::Answered { prompt: 1 },
        );
        assert_eq!(t.actions.last(), Some(&reply(Reply::NotNeeded)));
    }

    #[test]
    fn key_1_accepts_and_acknowledges() {
        let t = on(
            active(2),
            call(2, Some(S::InProgress)),
            Event::Key(Keypad::Accept),
        );
        assert_eq!(t.state.state, LoopState::Accepted);
        assert_eq!(t.call.outcome, Some(Outcome::Accepted));
        assert_eq!(
            t.actions,
            [
                note(Note::KeyPress),
                outcome(Outcome::Accepted),
                Acknowledge,
                reply(Reply::Accepted)
            ]
        );
    }

    #[test]
    fn key_2_passes_to_the_next_member() {
        let t = on(
            active(0),
            call(0, Some(S::InProgress)),
            Event::Key(Keypad::Pass),
        );
        assert_eq!(t.state, active(1));
        assert_eq!(
            t.actions,
            [
                note(Note::KeyPress),
                outcome(Outcome::Passed),
                Requeue,
                reply(Reply::Passed)
            ]
        );
    }

    #[test]
    fn key_2_on_the_last_call_exhausts() {
        let t = on(
            active(3),
            call(3, Some(S::InProgress)),
            Event::Key(Keypad::Pass),
        );
        assert_eq!(t.state.state, LoopState::Exhausted);
        assert!(t.actions.contains(&FireFallback));
    }

    #[test]
    fn key_star_repeats_the_prompt() {
        let t = on(
            active(0),
            call(0, Some(S::InProgress)),
            Event::Key(Keypad::Repeat),
        );
        assert_eq!(t.state, active(0));
        assert_eq!(t.call.outcome, None);
        assert_eq!(t.actions, [note(Note::KeyPress), reply(Reply::Prompt)]);
    }

    #[test]
    fn other_key_is_not_an_option() {
        let t = on(
            active(0),
            call(0, Some(S::InProgress)),
            Event::Key(Keypad::parse("9")),
        );
        assert_eq!(t.state, active(0));
        assert_eq!(t.actions, [note(Note::KeyPress), reply(Reply::NotAnOption)]);
    }

    #[test]
    fn key_on_a_decided_call_changes_nothing() {
        let c = Call {
            outcome: Some(Outcome::Passed),
            ..call(0, Some(S::InProgress))
        };
        let t = on(active(1), c, Event::Key(Keypad::Accept));
        assert_eq!(t.actions, [reply(Reply::NotNeeded)]);
        assert_eq!(t.state, active(1));
    }

    #[test]
    fn key_after_the_loop_stopped_changes_nothing() {
        let stopped = Loop {
            state: LoopState::Stopped,
            ..active(0)
        };
        let t = on(
            stopped,
            call(0, Some(S::InProgress)),
            Event::Key(Keypad::Accept),
        );
        assert_eq!(t.actions, [reply(Reply::NotNeeded)]);
        assert_eq!(t.state, stopped);
    }

    #[test]
    fn close_stops_an_active_loop_and_ends_its_call() {
        let (state, actions) = stop(active(1)).expect("an active loop stops");
        assert_eq!(state.state, LoopState::Stopped);
        assert_eq!(state.step, 1);
        assert_eq!(actions, [note(Note::Stopped), EndCall]);
    }

    #[test]
    fn close_after_the_loop_is_over_changes_nothing() {
        for state in [
            LoopState::Accepted,
            LoopState::Exhausted,
            LoopState::Stopped,
        ] {
            assert_eq!(stop(Loop { state, ..active(0) }), None, "{state:?}");
        }
    }

    #[test]
    fn keypad_reads_twilios_digits() {
        assert_eq!(Keypad::parse("1"), Keypad::Accept);
        assert_eq!(Keypad::parse("2"), Keypad::Pass);
        assert_eq!(Keypad::parse("*"), Keypad::Repeat);
        assert_eq!(Keypad::parse("12"), Keypad::Other);
        assert_eq!(Keypad::parse(""), Keypad::Other);
    }

    #[test]
    fn stored_names_read_back() {
        for s in [
            LoopState::Active,
            LoopState::Accepted,
            LoopState::Exhausted,
            LoopState::Stopped,
        ] {
            assert_eq!(LoopState::parse(s.as_str()), Some(s));
        }
        for o in [
            Outcome::Accepted,
            Outcome::Passed,
            Outcome::NoKeyPress,
            Outcome::Busy,
            Outcome::NoAnswer,
            Outcome::Failed,
            Outcome::Canceled,
            Outcome::Lost,
        ] {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
    }

    #[test]
    fn a_missed_call_is_texted_when_the_roster_says_so_and_a_pass_is_not() {
        let texting = Loop {
            text_misses: true,
            ..active(0)
        };
        let ringing = call(0, Some(S::Ringing));
        for status in [S::NoAnswer, S::Busy, S::Failed, S::Canceled, S::Completed] {
            let t = on(texting, ringing, Event::Status(status));
            assert!(t.actions.contains(&Action::Text), "{status:?}: {t:?}");
            let t = on(active(0), ringing, Event::Status(status));
            assert!(!t.actions.contains(&Action::Text), "{status:?}: {t:?}");
        }
        let answered = call(0, Some(S::InProgress));
        for key in [Keypad::Accept, Keypad::Pass] {
            let t = on(texting, answered, Event::Key(key));
            assert!(!t.actions.contains(&Action::Text), "{key:?}: {t:?}");
        }
        // A call that ends after its loop moved on is not texted.
        let moved_on = Loop { step: 1, ..texting };
        let t = on(moved_on, ringing, Event::Status(S::NoAnswer));
        assert!(!t.actions.contains(&Action::Text), "{t:?}");
    }

    #[test]
    fn accepting_by_text_ends_an_active_loop_and_its_live_call() {
        let (after, action) = accepted_elsewhere(active(1)).expect("active");
        assert_eq!(after.state, LoopState::Accepted);
        assert_eq!(action, EndCall);
        for state in [
            LoopState::Accepted,
            LoopState::Exhausted,
            LoopState::Stopped,
        ] {
            assert_eq!(accepted_elsewhere(Loop { state, ..active(0) }), None);
        }
    }

    fn silenced(step: u32) -> Loop {
        Loop {
            state: LoopState::Silenced,
            ..active(step)
        }
    }

    #[test]
    fn silence_holds_an_active_loop_at_its_step_and_ends_its_call() {
        let (after, actions) = silence(active(1)).expect("active");
        assert_eq!(after, silenced(1));
        assert_eq!(actions, [note(Note::Silenced), EndCall]);
        for state in [
            LoopState::Accepted,
            LoopState::Exhausted,
            LoopState::Stopped,
            LoopState::Silenced,
        ] {
            assert_eq!(silence(Loop { state, ..active(0) }), None, "{state:?}");
        }
    }

    #[test]
    fn silenced_loop_dials_nothing() {
        assert_eq!(dial(silenced(1), 1), None);
    }

    #[test]
    fn a_cut_call_reports_change_nothing_after_the_loop_resumes() {
        let ringing = cut(call(1, Some(S::Ringing)));
        assert_eq!(ringing.outcome, Some(Outcome::Silenced));
        let (resumed, action) = unsilence(silenced(1)).expect("silenced");
        assert_eq!(resumed, active(1));
        assert_eq!(action, note(Note::Unsilenced));
        // Its end neither moves the loop nor texts, and its keys are not wanted.
        let texting = Loop {
            text_misses: true,
            ..resumed
        };
        let t = on(texting, ringing, Event::Status(S::Canceled));
        assert_eq!(t.state, texting);
        assert_eq!(t.actions, [note(Note::CallStatus(S::Canceled))]);
        let t = on(resumed, ringing, Event::Key(Keypad::Accept));
        assert_eq!(t.actions, [reply(Reply::NotNeeded)]);
        let t = on(resumed, ringing, Event::Answered { prompt: 1 });
        assert!(t.actions.contains(&reply(Reply::NotNeeded)), "{t:?}");
    }

    #[test]
    fn a_call_cut_while_it_was_being_placed_is_ended_once_placed() {
        let placing = cut(call(1, None));
        let t = on(active(1), placing, Event::Placed(S::Queued));
        assert_eq!(t.actions, [note(Note::CallPlaced(S::Queued)), EndCall]);
    }

    #[test]
    fn a_settled_call_keeps_its_outcome_when_cut() {
        let passed = Call {
            outcome: Some(Outcome::Passed),
            ..call(0, Some(S::Completed))
        };
        assert_eq!(cut(passed), passed);
    }

    #[test]
    fn unsilence_only_resumes_a_silenced_loop() {
        for state in [
            LoopState::Active,
            LoopState::Accepted,
            LoopState::Exhausted,
            LoopState::Stopped,
        ] {
            assert_eq!(unsilence(Loop { state, ..active(0) }), None, "{state:?}");
        }
    }

    #[test]
    fn a_silenced_loop_stops_when_its_incident_closes_and_never_rings() {
        let (after, _) = stop(silenced(1)).expect("running");
        assert_eq!(after.state, LoopState::Stopped);
        assert_eq!(unsilence(after), None);
    }

    #[test]
    fn a_cut_call_is_not_a_miss() {
        assert!(!Outcome::Silenced.is_miss());
        assert_eq!(Outcome::parse("silenced"), Some(Outcome::Silenced));
        assert_eq!(LoopState::parse("SILENCED"), Some(LoopState::Silenced));
    }
}
