//! The engine's one entry point for decisions: an input goes to the part it concerns, and
//! after every input the idempotent parts (agent, executor, verification) take another look.

use operator_protocol::Millis;

use super::effect::{Effect, Input, Write};
use super::state::EngineState;
use super::{agent, commands, executor, monitor, rollback, verify};
use crate::events::EngineEvent;

/// What one input means. `jitter` (0..1) is the only randomness, and it comes from outside.
pub fn decide(state: &EngineState, input: Input, now: Millis, jitter: f64) -> Vec<Effect> {
    match input {
        Input::Tick => vec![],
        Input::Observed(Ok((_, violations))) => {
            let mut effects = monitor::observed(state, &violations, now);
            effects.extend(rollback::regressions(state, now));
            effects
        }
        Input::Observed(Err(error)) => monitor::observation_failed(state, &error, now),
        Input::Diagnosed {
            ticket,
            brain,
            reasoning,
            result,
        } => agent::diagnosed(state, ticket, &brain, &reasoning, result, now),
        Input::CleanedUp(writes) => writes.into_iter().map(Effect::Write).collect(),
        Input::ActionFinished { id, result, undo } => {
            executor::finished(state, id, result, undo, now, jitter)
        }
        Input::ChaosFinished {
            request,
            at_ms,
            result,
        } => match result {
            Ok(outcome) => {
                let spec = state.chaos_catalog.iter().find(|c| c.name == request.name);
                let record = crate::store::ChaosRecord {
                    at_ms: outcome.effective_ms.unwrap_or(at_ms),
                    name: request.name.clone(),
                    target: outcome.target.clone(),
                    root_cause: spec.map(|s| s.root_cause.clone()).unwrap_or_default(),
                    expected_invariant: spec
                        .map(|s| s.expected_invariant.clone())
                        .unwrap_or_default(),
                };
                vec![
                    Effect::Write(Write::Chaos {
                        subject: state.subject.clone(),
                        record,
                        summary: outcome.summary.clone(),
                    }),
                    Effect::Emit(EngineEvent::ChaosInjected {
                        name: request.name,
                        target: outcome.target,
                        summary: outcome.summary,
                    }),
                ]
            }
            Err(error) => vec![Effect::Emit(EngineEvent::ChaosFailed {
                name: request.name,
                error,
            })],
        },
        Input::Command(command) => commands::command(state, command),
    }
}

/// The parts that advance on every wake-up; each is idempotent over the state it is given.
pub fn advance(state: &EngineState, now: Millis) -> Vec<Effect> {
    let mut effects = agent::outlasted_aftermath(state, now);
    effects.extend(agent::follow_cause_to_a_person(state));
    effects.extend(agent::start_diagnoses(state, now));
    effects.extend(executor::advance(state, now));
    effects.extend(verify::timeouts(state, now));
    effects
}
