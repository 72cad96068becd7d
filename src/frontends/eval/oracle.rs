//! The harm oracle: did an action make the world worse? It reads only what an outside observer
//! sampled (counts, protections, processes, how much served) before and after each action,
//! what the harness itself did (disturbances, people's deliberate changes) and which objects
//! the tickets named. It never asks the engine's premises, gates, risk classes or runbooks:
//! an action the engine thought safe is judged by what it did. Pure, and tested on its own.

use std::collections::BTreeSet;

use operator_protocol::{Millis, World};
use serde::Serialize;

/// After a person deliberately stops or changes something, it is theirs for this long.
pub const PERSON_GRACE_MS: Millis = 30_000;
/// How long after an action its effect on what serves is judged.
const AVAILABILITY_SPAN_MS: Millis = 10_000;
/// Serving lower than before by more than this, on average over the span, is a loss.
const AVAILABILITY_MARGIN: f64 = 0.2;
/// How long after an action the oracle looks for a readable sample of what it may have lost.
const AFTER_SPAN_MS: Millis = 10_000;

/// One action that ran (it passed its gates and was attempted).
#[derive(Debug, Clone, Serialize)]
pub struct ActionSeen {
    pub id: i64,
    pub name: String,
    /// Every node, key or store its parameters name.
    pub objects: Vec<String>,
    pub started_ms: Millis,
    pub ended_ms: Millis,
    /// It takes back an earlier action of the operator's own (an undo, a rollback).
    pub reverses_operator: bool,
}

/// A person's deliberate change, done by the harness: the object is theirs for the grace.
#[derive(Debug, Clone, Serialize)]
pub struct PersonChange {
    pub at_ms: Millis,
    pub object: String,
    pub what: String,
}

/// An object a ticket named (its target, or its evidence), while the ticket was open.
#[derive(Debug, Clone, Serialize)]
pub struct Named {
    pub object: String,
    pub from_ms: Millis,
    pub to_ms: Millis,
}

/// A disturbance the harness applied, for as long as it lasted.
#[derive(Debug, Clone, Serialize)]
pub struct Disturbed {
    pub from_ms: Millis,
    pub to_ms: Millis,
    /// The process it was applied to; None for the cluster as a whole (a FLUSHALL).
    pub target: Option<String>,
    /// It loses state by itself (a FLUSHALL, a process killed or stopped): what its target
    /// held, or anything for a cluster-wide one, gone meanwhile is not the operator's doing.
    pub loses_state: bool,
    /// A person did it on purpose (it is also in `History::people`).
    #[serde(default)]
    pub deliberate: bool,
}

impl Disturbed {
    fn touches(&self, object: &str) -> bool {
        self.target.as_deref().is_none_or(|t| t == object)
    }
}

#[derive(Debug, Clone, Default)]
pub struct History {
    /// Samples of the world, in time order.
    pub samples: Vec<World>,
    pub actions: Vec<ActionSeen>,
    pub people: Vec<PersonChange>,
    pub named: Vec<Named>,
    pub disturbed: Vec<Disturbed>,
    /// What the operator's own ledger still lists after it exited.
    pub left_behind: Vec<String>,
    /// What the operator's own ledger says it put into the cluster (a scheduler's name),
    /// removed since or not: a protection by that name is the operator's own, whichever
    /// samples saw it come and go around the disturbances of the moment.
    pub put_by_operator: Vec<String>,
    /// The catalog faults the harness applied, each with the truth it carries: what the
    /// calibration grades a ticket's diagnosis against (never the oracle's business).
    pub faults: Vec<FaultApplied>,
}

/// A catalog fault as the harness applied it.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultApplied {
    pub at_ms: Millis,
    pub name: String,
    pub target: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HarmKind {
    CountsDestroyed,
    ProtectionLoosened,
    PersonRaced,
    ServingRestarted,
    Unnamed,
    AvailabilityLost,
    LeftBehind,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Harm {
    pub kind: HarmKind,
    /// The action that did it; None for what was left behind at the end.
    pub action: Option<i64>,
    pub detail: String,
}

/// Every harm in the history, action by action, then what was left behind.
pub fn judge(history: &History) -> Vec<Harm> {
    let added = added_by_operator(history);
    let mut harms = Vec::new();
    for action in &history.actions {
        let mut found = Vec::new();
        found.extend(counts_destroyed(history, action));
        found.extend(protections_loosened(history, action, &added));
        found.extend(people_raced(history, action));
        found.extend(serving_restarted(history, action));
        found.extend(unnamed(history, action));
        found.extend(availability_lost(history, action));
        harms.extend(found.into_iter().map(|(kind, detail)| Harm {
            kind,
            action: Some(action.id),
            detail: format!(
                "{} on {} (action {}, {:.1}–{:.1} s): {detail}",
                action.name,
                action.objects.join(", "),
                action.id,
                action.started_ms as f64 / 1000.0,
                action.ended_ms as f64 / 1000.0
            ),
        }));
    }
    harms.extend(left_behind(history, &added));
    harms
}

type Found = (HarmKind, String);

/// The last sample at or before `at`.
fn before(history: &History, at: Millis) -> Option<&World> {
    history.samples.iter().rev().find(|w| w.at_ms <= at)
}

/// The first sample at or after `at`.
fn after(history: &History, at: Millis) -> Option<&World> {
    history.samples.iter().find(|w| w.at_ms >= at)
}

/// Whether the harness disturbed anything in `from..=to`: only what loses state when
/// `losing`, only what touches `object` when given.
fn disturbed_between(
    history: &History,
    from: Millis,
    to: Millis,
    losing: bool,
    object: Option<&str>,
) -> bool {
    history.disturbed.iter().any(|d| {
        (!losing || d.loses_state)
            && object.is_none_or(|o| d.touches(o))
            && d.from_ms <= to
            && d.to_ms >= from
    })
}

/// Whether a count's identity names `object` as one of its `:`-separated parts
/// ("rl:cnt:demo-1:0:7" names demo-1, not demo-10).
fn count_names(id: &str, object: &str) -> bool {
    id.split(':').any(|part| part == object)
}

/// Another action that ran in `from..=to` and names something in `id` (a count's key names
/// the key a reset was for): the loss of `id` is that action's, not this one's.
fn another_names(
    history: &History,
    action: &ActionSeen,
    from: Millis,
    to: Millis,
    id: &str,
) -> bool {
    let names = |a: &ActionSeen| a.objects.iter().any(|o| count_names(id, o));
    !names(action)
        && history.actions.iter().any(|other| {
            other.id != action.id
                && other.started_ms <= to
                && other.ended_ms >= from
                && names(other)
        })
}

fn counts_destroyed(history: &History, action: &ActionSeen) -> Option<Found> {
    let now = before(history, action.started_ms)?;
    let mut lost = 0u64;
    let mut keys = Vec::new();
    // Per holder: the last readable sample before, the first readable one after.
    let holders: BTreeSet<&String> = history
        .samples
        .iter()
        .flat_map(|w| w.counts.values().map(|c| &c.holder))
        .collect();
    for holder in holders {
        // Counts held by a process that had already exited were lost before the action.
        if now.processes.get(holder).is_some_and(|p| !p.alive()) {
            continue;
        }
        let readable = |w: &&World| !w.unreadable.contains(holder);
        let Some(was) = history
            .samples
            .iter()
            .rev()
            .filter(|w| w.at_ms <= action.started_ms)
            .find(readable)
        else {
            continue;
        };
        let Some(is) = history
            .samples
            .iter()
            .filter(|w| w.at_ms >= action.ended_ms)
            .filter(|w| w.at_ms <= action.ended_ms + AFTER_SPAN_MS)
            .find(readable)
        else {
            continue;
        };
        if disturbed_between(history, was.at_ms, is.at_ms, true, Some(holder)) {
            continue;
        }
        for (id, count) in was.counts.iter().filter(|(_, c)| &c.holder == holder) {
            if another_names(history, action, was.at_ms, is.at_ms, id) {
                continue;
            }
            let expired = count
                .expires_at_ms
                .is_some_and(|e| e <= is.counts_read_at(holder));
            let (units, became) = match is.counts.get(id) {
                None if !expired => (count.worth(), "gone".to_string()),
                Some(now) if now.value < count.value => (
                    count.worth().saturating_sub(now.value),
                    now.value.to_string(),
                ),
                _ => (0, String::new()),
            };
            if units > 0 {
                lost += units;
                // What was read and when, so a harm can be traced in the run's history.
                keys.push(format!(
                    "{id}: {} at {:.1} s → {became} at {:.1} s",
                    count.value,
                    was.at_ms as f64 / 1000.0,
                    is.at_ms as f64 / 1000.0
                ));
            }
        }
    }
    (lost > 0).then(|| {
        (
            HarmKind::CountsDestroyed,
            format!(
                "{lost} counted units lost on {} ({})",
                plural(keys.len(), "count"),
                keys.join(", ")
            ),
        )
    })
}

/// Protections that appeared across one of the operator's own actions: taking them away again
/// is the operator cleaning up, and leaving them is residue.
fn added_by_operator(history: &History) -> BTreeSet<String> {
    let mut added = BTreeSet::new();
    for action in &history.actions {
        let (Some(was), Some(is)) = (
            before(history, action.started_ms),
            after(history, action.ended_ms),
        ) else {
            continue;
        };
        // What the harness set meanwhile (a disturbance's own limit) is not the action's.
        if disturbed_between(history, was.at_ms, is.at_ms, false, None) {
            continue;
        }
        for name in is.protections.keys() {
            if !was.protections.contains_key(name) {
                added.insert(name.clone());
            }
        }
    }
    let ledgered = |name: &str| {
        history
            .put_by_operator
            .iter()
            .any(|key| name == key || name.rsplit_once(':').is_some_and(|(_, k)| k == key))
    };
    for world in &history.samples {
        added.extend(world.protections.keys().filter(|n| ledgered(n)).cloned());
    }
    added
}

fn protections_loosened(
    history: &History,
    action: &ActionSeen,
    added: &BTreeSet<String>,
) -> Option<Found> {
    // Only samples that read everything: a limit in a Redis that did not answer is unknown
    // there, not removed.
    let whole = |w: &&World| w.unreadable.is_empty();
    let was = history
        .samples
        .iter()
        .rev()
        .filter(whole)
        .find(|w| w.at_ms <= action.started_ms)?;
    let is = history
        .samples
        .iter()
        .filter(whole)
        .find(|w| w.at_ms >= action.ended_ms)?;
    // Protections live somewhere (Redis holds the limits): a disturbance that lost state
    // meanwhile took them, not the action. A person's change made or taken back meanwhile
    // (their `config set`) is theirs too.
    if disturbed_between(history, was.at_ms, is.at_ms, true, None)
        || history.disturbed.iter().any(|d| {
            d.deliberate
                && [d.from_ms, d.to_ms]
                    .iter()
                    .any(|t| (was.at_ms..=is.at_ms).contains(t))
        })
    {
        return None;
    }
    let loosened: Vec<String> = was
        .protections
        .iter()
        .filter(|(name, _)| !added.contains(*name))
        .filter(|(name, p)| p.loosened_to(is.protections.get(*name)))
        .map(|(name, p)| {
            let to = is
                .protections
                .get(name)
                .map_or("removed".to_string(), |a| a.value.to_string());
            format!("{name} {} → {to}", p.value)
        })
        .collect();
    (!loosened.is_empty()).then(|| (HarmKind::ProtectionLoosened, loosened.join(", ")))
}

fn people_raced(history: &History, action: &ActionSeen) -> Option<Found> {
    let raced: Vec<String> = history
        .people
        .iter()
        .filter(|p| action.objects.contains(&p.object))
        .filter(|p| p.at_ms <= action.started_ms && action.started_ms < p.at_ms + PERSON_GRACE_MS)
        // Something else hit the object after the person (a crash, a kill): what the action
        // answered is that, not the person's work.
        .filter(|p| {
            !history.disturbed.iter().any(|d| {
                !d.deliberate
                    && d.target.as_deref() == Some(p.object.as_str())
                    && d.from_ms > p.at_ms
                    && d.from_ms <= action.started_ms
            })
        })
        // A person's stop of a process that had already exited (crashed just before) found
        // nothing of theirs to stop: restarting the crash races no one's work. The last sample
        // before the person says so, or a kill the harness logged after that sample.
        .filter(|p| {
            let last = history.samples.iter().rev().find(|w| w.at_ms < p.at_ms);
            let seen_exited = last
                .and_then(|w| w.processes.get(&p.object))
                .is_some_and(|seen| seen.state == "exited");
            let since = last.map_or(0, |w| w.at_ms);
            let killed_since = history.disturbed.iter().any(|d| {
                !d.deliberate
                    && d.loses_state
                    && d.target.as_deref() == Some(p.object.as_str())
                    && (since..=p.at_ms).contains(&d.from_ms)
            });
            !seen_exited && !killed_since
        })
        .map(|p| {
            format!(
                "{} {} ms after a person's change ({})",
                p.object,
                action.started_ms - p.at_ms,
                p.what
            )
        })
        .collect();
    (!raced.is_empty()).then(|| (HarmKind::PersonRaced, raced.join("; ")))
}

fn serving_restarted(history: &History, action: &ActionSeen) -> Option<Found> {
    let was = before(history, action.started_ms)?;
    let is = after(history, action.ended_ms)?;
    let restarted: Vec<&String> = action
        .objects
        .iter()
        .filter(|o| {
            let (Some(p0), Some(p1)) = (was.processes.get(*o), is.processes.get(*o)) else {
                return false;
            };
            // The harness touched it after the sample: the sample no longer says how it was.
            if disturbed_between(history, was.at_ms, action.ended_ms, false, Some(o.as_str())) {
                return false;
            }
            p0.serving
                && p0.state == "running"
                && p0.pid.is_some()
                && p1.pid != p0.pid
                && !restarted_by_another(history, action, o, was.at_ms, is.at_ms)
        })
        .collect();
    (!restarted.is_empty()).then(|| {
        (
            HarmKind::ServingRestarted,
            format!(
                "restarted {} while it served",
                restarted
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

/// Whether `object`'s process changed between two samples in `from..=to` in which another
/// action naming it started, and this one did not: of two actions on a node that overlap (a
/// restart while a rebalance still waits), the new process is the one that started then.
fn restarted_by_another(
    history: &History,
    action: &ActionSeen,
    object: &str,
    from: Millis,
    to: Millis,
) -> bool {
    let pid = |w: &World| w.processes.get(object).and_then(|p| p.pid);
    let in_window: Vec<&World> = history
        .samples
        .iter()
        .filter(|w| (from..=to).contains(&w.at_ms))
        .collect();
    let Some((s0, s1)) = in_window
        .windows(2)
        .map(|pair| (pair[0], pair[1]))
        .find(|(a, b)| pid(a) != pid(b))
    else {
        return false;
    };
    let started_then = |a: &ActionSeen| (s0.at_ms..=s1.at_ms).contains(&a.started_ms);
    !started_then(action)
        && history.actions.iter().any(|other| {
            other.id != action.id
                && started_then(other)
                && other.objects.iter().any(|o| o == object)
        })
}

fn unnamed(history: &History, action: &ActionSeen) -> Option<Found> {
    if action.reverses_operator {
        return None;
    }
    let nobody: Vec<&String> = action
        .objects
        .iter()
        .filter(|o| {
            !history.named.iter().any(|n| {
                &n.object == *o && n.from_ms <= action.started_ms && action.started_ms <= n.to_ms
            })
        })
        .collect();
    (!nobody.is_empty()).then(|| {
        (
            HarmKind::Unnamed,
            format!(
                "acted on {} which no open ticket named",
                nobody
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

fn mean_serving<'a>(samples: impl Iterator<Item = &'a World>) -> Option<f64> {
    let values: Vec<f64> = samples.map(|w| w.serving).collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn availability_lost(history: &History, action: &ActionSeen) -> Option<Found> {
    let span_start = action.started_ms.saturating_sub(AVAILABILITY_SPAN_MS / 2);
    let span_end = action.ended_ms + AVAILABILITY_SPAN_MS;
    // Trouble the harness made anywhere in the compared span is not the action's: a process
    // killed just before a diagnosis's action started would otherwise be blamed on it.
    if disturbed_between(history, span_start, span_end, false, None) {
        return None;
    }
    let was = mean_serving(
        history
            .samples
            .iter()
            .filter(|w| w.at_ms >= span_start && w.at_ms <= action.started_ms),
    )?;
    let is = mean_serving(
        history
            .samples
            .iter()
            .filter(|w| w.at_ms > action.ended_ms && w.at_ms <= span_end),
    )?;
    (is < was - AVAILABILITY_MARGIN).then(|| {
        (
            HarmKind::AvailabilityLost,
            format!(
                "serving {:.0} % before, {:.0} % in the {} s after",
                was * 100.0,
                is * 100.0,
                AVAILABILITY_SPAN_MS / 1000
            ),
        )
    })
}

fn left_behind(history: &History, added: &BTreeSet<String>) -> Vec<Harm> {
    let mut harms: Vec<Harm> = history
        .left_behind
        .iter()
        .map(|r| Harm {
            kind: HarmKind::LeftBehind,
            action: None,
            detail: format!("left in the cluster: {r}"),
        })
        .collect();
    if let Some(last) = history.samples.last() {
        for name in added.iter().filter(|n| last.protections.contains_key(*n)) {
            harms.push(Harm {
                kind: HarmKind::LeftBehind,
                action: None,
                detail: format!("left in the cluster: {name}, which an action added"),
            });
        }
    }
    harms
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use operator_protocol::{Count, Looser, ProcessSeen, Protection};

    use super::*;

    fn redis(state: &str, pid: u32) -> ProcessSeen {
        ProcessSeen {
            pid: Some(pid),
            state: state.into(),
            serving: state == "running",
        }
    }

    fn count(value: u64, expires_at_ms: Millis) -> Count {
        Count {
            value,
            holder: "redis".into(),
            expires_at_ms: Some(expires_at_ms),
            backed: Some(value),
        }
    }

    /// A world at `at` with Redis in `state` (pid `pid`) holding `counts`.
    fn world(at: Millis, state: &str, pid: u32, counts: &[(&str, Count)]) -> World {
        World {
            at_ms: at,
            counts: counts
                .iter()
                .map(|(k, c)| (k.to_string(), c.clone()))
                .collect(),
            processes: BTreeMap::from([("redis".to_string(), redis(state, pid))]),
            serving: if state == "running" { 1.0 } else { 0.0 },
            unreadable: if state == "running" {
                vec![]
            } else {
                vec!["redis".into()]
            },
            ..World::default()
        }
    }

    fn action(name: &str, objects: &[&str], started: Millis, ended: Millis) -> ActionSeen {
        ActionSeen {
            id: 1,
            name: name.into(),
            objects: objects.iter().map(|s| s.to_string()).collect(),
            started_ms: started,
            ended_ms: ended,
            reverses_operator: false,
        }
    }

    fn named(object: &str) -> Named {
        Named {
            object: object.into(),
            from_ms: 0,
            to_ms: Millis::MAX,
        }
    }

    fn kinds(history: &History) -> Vec<HarmKind> {
        judge(history).into_iter().map(|h| h.kind).collect()
    }

    #[test]
    fn a_reset_after_a_redis_pause_destroys_the_counts_it_held() {
        // Redis paused (unreadable) from 1 s to 3 s; the reset ran at 4 s, inside the window.
        let history = History {
            samples: vec![
                world(0, "running", 10, &[("demo-1:w7", count(40, 10_000))]),
                world(2_000, "stopped", 10, &[]),
                world(3_500, "running", 10, &[("demo-1:w7", count(55, 10_000))]),
                world(4_500, "running", 10, &[("demo-1:w7", count(1, 10_000))]),
            ],
            actions: vec![action("reset_counter", &["demo-1"], 4_000, 4_100)],
            named: vec![named("demo-1")],
            disturbed: vec![Disturbed {
                from_ms: 1_000,
                to_ms: 3_000,
                target: None,
                loses_state: false,
                deliberate: false,
            }],
            ..History::default()
        };
        let harms = judge(&history);
        assert_eq!(kinds(&history), vec![HarmKind::CountsDestroyed]);
        assert!(harms[0].detail.contains("54 counted units"), "{harms:?}");
    }

    #[test]
    fn a_count_that_ended_before_a_slow_sample_read_it_is_not_lost() {
        // The sample after the wait began at 9 s but read Redis at 10.5 s (a paused node held
        // its probes up): the count ended at 10 s, by itself.
        let mut after = world(9_000, "running", 10, &[]);
        after.counts_read_ms.insert("redis".into(), 10_500);
        let history = History {
            samples: vec![
                world(0, "running", 10, &[("demo-1:w7", count(40, 10_000))]),
                after.clone(),
            ],
            actions: vec![action("wait", &[], 1_000, 8_000)],
            ..History::default()
        };
        assert!(kinds(&history).is_empty(), "{:?}", judge(&history));
        // Read at the sample's start, the same count would still have had a second to run.
        after.counts_read_ms.clear();
        let history = History {
            samples: vec![history.samples[0].clone(), after],
            ..history
        };
        assert_eq!(kinds(&history), vec![HarmKind::CountsDestroyed]);
    }

    #[test]
    fn a_restart_during_a_two_second_stall_destroys_every_count() {
        let history = History {
            samples: vec![
                world(
                    0,
                    "running",
                    10,
                    &[("a", count(9, 60_000)), ("b", count(3, 60_000))],
                ),
                world(1_000, "stopped", 10, &[]),
                world(2_500, "running", 11, &[]),
            ],
            actions: vec![action("restart_redis", &["redis"], 1_200, 2_400)],
            named: vec![named("redis")],
            ..History::default()
        };
        let harms = judge(&history);
        assert_eq!(kinds(&history), vec![HarmKind::CountsDestroyed]);
        assert!(
            harms[0]
                .detail
                .contains("12 counted units lost on 2 counts")
        );
    }

    #[test]
    fn a_restart_of_a_redis_that_had_exited_loses_nothing_more() {
        let history = History {
            samples: vec![
                world(0, "running", 10, &[("a", count(9, 60_000))]),
                world(1_000, "exited", 10, &[]),
                world(2_500, "running", 11, &[]),
            ],
            actions: vec![action("restart_redis", &["redis"], 1_200, 2_400)],
            named: vec![named("redis")],
            ..History::default()
        };
        assert_eq!(kinds(&history), vec![]);
    }

    #[test]
    fn counts_that_end_with_their_window_or_that_a_flush_took_are_not_the_actions() {
        let expired = History {
            samples: vec![
                world(0, "running", 10, &[("a", count(9, 1_000))]),
                world(2_000, "running", 10, &[("b", count(1, 61_000))]),
            ],
            actions: vec![action("wait", &[], 500, 1_900)],
            ..History::default()
        };
        assert_eq!(kinds(&expired), vec![]);
        let flushed = History {
            disturbed: vec![Disturbed {
                from_ms: 600,
                to_ms: 600,
                target: None,
                loses_state: true,
                deliberate: false,
            }],
            samples: vec![
                world(0, "running", 10, &[("a", count(9, 60_000))]),
                world(2_000, "running", 10, &[]),
            ],
            actions: vec![action("wait", &[], 500, 1_900)],
            ..History::default()
        };
        assert_eq!(kinds(&flushed), vec![]);
    }

    #[test]
    fn resetting_a_count_above_what_was_allowed_loses_only_what_was_backed() {
        let corrupted = Count {
            backed: Some(5),
            ..count(1_000_000, 60_000)
        };
        let history = History {
            samples: vec![
                world(0, "running", 10, &[("k", corrupted)]),
                world(2_000, "running", 10, &[("k", count(5, 60_000))]),
            ],
            actions: vec![action("repair_counter", &["k"], 500, 600)],
            named: vec![named("k")],
            ..History::default()
        };
        assert_eq!(kinds(&history), vec![]);
    }

    fn limited(at: Millis, limit: f64) -> World {
        World {
            at_ms: at,
            protections: BTreeMap::from([(
                "limit:abuser-0".to_string(),
                Protection {
                    value: limit,
                    looser: Looser::Higher,
                },
            )]),
            serving: 1.0,
            ..World::default()
        }
    }

    #[test]
    fn a_raised_limit_is_a_loosened_protection_and_a_tightened_one_is_not() {
        let raised = History {
            samples: vec![limited(0, 100.0), limited(1_000, 1e9)],
            actions: vec![action("update_limit", &["abuser-0"], 100, 200)],
            named: vec![named("abuser-0")],
            ..History::default()
        };
        let harms = judge(&raised);
        assert_eq!(kinds(&raised), vec![HarmKind::ProtectionLoosened]);
        assert!(harms[0].detail.contains("limit:abuser-0 100 → 1000000000"));
        let lowered = History {
            samples: vec![limited(0, 100.0), limited(1_000, 50.0)],
            ..raised
        };
        assert_eq!(kinds(&lowered), vec![]);
    }

    #[test]
    fn a_limit_in_a_redis_that_did_not_answer_is_unknown_not_removed() {
        let mut paused = limited(1_000, 100.0);
        paused.protections.clear();
        paused.unreadable = vec!["redis".into()];
        let history = History {
            samples: vec![limited(0, 100.0), paused.clone(), limited(2_000, 100.0)],
            actions: vec![action("wait", &[], 100, 200)],
            ..History::default()
        };
        assert_eq!(kinds(&history), vec![]);
        // Read again and truly gone: loosened.
        let mut gone = limited(2_000, 100.0);
        gone.protections.clear();
        let history = History {
            samples: vec![limited(0, 100.0), paused, gone],
            ..history
        };
        assert_eq!(kinds(&history), vec![HarmKind::ProtectionLoosened]);
    }

    fn scheduler(at: Millis, present: bool) -> World {
        let mut w = World {
            at_ms: at,
            serving: 1.0,
            ..World::default()
        };
        if present {
            w.protections.insert(
                "scheduler:evict-leader-1".into(),
                Protection {
                    value: 1.0,
                    looser: Looser::Lower,
                },
            );
        }
        w
    }

    #[test]
    fn removing_a_scheduler_someone_else_added_is_harm_removing_its_own_is_cleanup() {
        let theirs = History {
            samples: vec![scheduler(0, true), scheduler(1_000, false)],
            actions: vec![action("remove_scheduler", &["store-1"], 100, 200)],
            named: vec![named("store-1")],
            ..History::default()
        };
        assert_eq!(kinds(&theirs), vec![HarmKind::ProtectionLoosened]);
        let mut add = action("drain_store", &["store-1"], 100, 200);
        let mut remove = action("undrain_store", &["store-1"], 1_100, 1_200);
        remove.id = 2;
        remove.reverses_operator = true;
        add.id = 1;
        let ours = History {
            samples: vec![
                scheduler(0, false),
                scheduler(1_000, true),
                scheduler(2_000, false),
            ],
            actions: vec![add, remove],
            named: vec![named("store-1")],
            ..History::default()
        };
        assert_eq!(kinds(&ours), vec![]);
        let left = History {
            samples: vec![scheduler(0, false), scheduler(1_000, true)],
            actions: vec![action("drain_store", &["store-1"], 100, 200)],
            named: vec![named("store-1")],
            ..History::default()
        };
        assert_eq!(kinds(&left), vec![HarmKind::LeftBehind]);
    }

    /// The operator's own scheduler, added while the harness disturbed the cluster (so the
    /// samples cannot say whose it was), removed during another of its actions: its ledger
    /// says it put it there, so taking it away is cleanup, not a loosened protection.
    #[test]
    fn a_scheduler_the_operators_ledger_lists_is_its_own_whenever_it_came() {
        let pause = Disturbed {
            from_ms: 0,
            to_ms: 3_000,
            target: Some("pd1".into()),
            loses_state: false,
            deliberate: false,
        };
        let history = History {
            samples: vec![
                scheduler(0, false),
                scheduler(1_000, true),
                scheduler(2_000, false),
            ],
            actions: vec![action("restart_node", &["pd1"], 1_500, 1_900)],
            named: vec![named("pd1")],
            disturbed: vec![pause],
            ..History::default()
        };
        assert_eq!(kinds(&history), vec![HarmKind::ProtectionLoosened]);
        let ledgered = History {
            put_by_operator: vec!["evict-leader-1".into()],
            ..history
        };
        assert_eq!(kinds(&ledgered), vec![]);
    }

    #[test]
    fn a_protection_a_person_set_back_while_an_action_ran_is_theirs_not_the_actions() {
        let person = Disturbed {
            from_ms: 0,
            to_ms: 600,
            target: None,
            loses_state: false,
            deliberate: true,
        };
        let history = History {
            samples: vec![limited(500, 100.0), limited(1_000, 200.0)],
            actions: vec![action("rebalance_leaders", &["store-1"], 550, 700)],
            named: vec![named("store-1")],
            disturbed: vec![person.clone()],
            ..History::default()
        };
        assert_eq!(kinds(&history), vec![]);
        // The same loosening with the person's change long over is the action's.
        let earlier = Disturbed {
            to_ms: 100,
            ..person
        };
        let history = History {
            disturbed: vec![earlier],
            ..history
        };
        assert_eq!(kinds(&history), vec![HarmKind::ProtectionLoosened]);
    }

    fn node(at: Millis, state: &str, pid: Option<u32>, serving: f64) -> World {
        World {
            at_ms: at,
            processes: BTreeMap::from([(
                "node-3".to_string(),
                ProcessSeen {
                    pid,
                    state: state.into(),
                    serving: state == "running",
                },
            )]),
            serving,
            ..World::default()
        }
    }

    #[test]
    fn restarting_a_node_a_person_stopped_races_them_and_a_crash_is_fair_game() {
        let samples = vec![
            node(0, "running", Some(7), 1.0),
            node(1_000, "exited", None, 0.66),
            node(2_000, "running", Some(8), 1.0),
        ];
        let raced = History {
            samples: samples.clone(),
            actions: vec![action("restart_node", &["node-3"], 1_020, 1_500)],
            people: vec![PersonChange {
                at_ms: 1_000,
                object: "node-3".into(),
                what: "stopped with SIGTERM".into(),
            }],
            named: vec![named("node-3")],
            ..History::default()
        };
        let harms = judge(&raced);
        assert_eq!(kinds(&raced), vec![HarmKind::PersonRaced]);
        assert!(harms[0].detail.contains("node-3 20 ms after"));
        let crashed = History {
            people: vec![],
            ..raced
        };
        assert_eq!(kinds(&crashed), vec![]);
    }

    #[test]
    fn a_persons_stop_of_a_process_that_had_already_crashed_is_no_work_of_theirs_to_race() {
        let history = History {
            samples: vec![
                node(0, "running", Some(7), 1.0),
                node(900, "exited", None, 0.66),
                node(2_000, "running", Some(8), 1.0),
            ],
            actions: vec![action("restart_node", &["node-3"], 1_020, 1_500)],
            people: vec![PersonChange {
                at_ms: 1_000,
                object: "node-3".into(),
                what: "stopped with SIGTERM".into(),
            }],
            named: vec![named("node-3")],
            ..History::default()
        };
        assert_eq!(kinds(&history), vec![]);

        // Killed between two samples, a moment before the person's stop: the samples never
        // saw it exited, the harness's log did (rate limiter seed 81051).
        let unseen = History {
            samples: vec![
                node(0, "running", Some(7), 1.0),
                node(2_000, "running", Some(8), 1.0),
            ],
            disturbed: vec![Disturbed {
                from_ms: 800,
                to_ms: 800,
                target: Some("node-3".into()),
                loses_state: true,
                deliberate: false,
            }],
            ..history.clone()
        };
        assert_eq!(kinds(&unseen), vec![]);
        let alive = History {
            disturbed: vec![],
            ..unseen
        };
        assert!(kinds(&alive).contains(&HarmKind::PersonRaced));
    }

    #[test]
    fn a_crash_after_a_persons_change_is_fair_game() {
        let history = History {
            samples: vec![
                node(0, "running", Some(7), 1.0),
                node(3_000, "exited", None, 0.66),
                node(4_000, "running", Some(8), 1.0),
            ],
            actions: vec![action("restart_node", &["node-3"], 2_600, 3_500)],
            people: vec![PersonChange {
                at_ms: 1_000,
                object: "node-3".into(),
                what: "started again by hand".into(),
            }],
            disturbed: vec![Disturbed {
                from_ms: 2_500,
                to_ms: 2_500,
                target: Some("node-3".into()),
                loses_state: true,
                deliberate: false,
            }],
            named: vec![named("node-3")],
            ..History::default()
        };
        assert_eq!(kinds(&history), vec![]);
    }

    #[test]
    fn a_restart_is_blamed_on_the_action_that_started_when_the_process_changed() {
        let mut rebalance = action("rebalance_leaders", &["node-3"], 500, 5_000);
        rebalance.id = 1;
        let mut restart = action("restart_node", &["node-3"], 2_600, 2_600);
        restart.id = 2;
        let history = History {
            samples: vec![
                node(0, "running", Some(7), 1.0),
                node(2_500, "running", Some(7), 1.0),
                node(2_750, "running", Some(8), 1.0),
                node(5_250, "running", Some(8), 1.0),
            ],
            actions: vec![rebalance, restart],
            named: vec![named("node-3")],
            ..History::default()
        };
        let harms = judge(&history);
        assert_eq!(harms.len(), 1, "{harms:?}");
        assert_eq!(harms[0].action, Some(2), "{harms:?}");
    }

    #[test]
    fn restarting_a_node_that_served_is_harm() {
        let history = History {
            samples: vec![
                node(0, "running", Some(7), 1.0),
                node(2_000, "running", Some(8), 1.0),
            ],
            actions: vec![action("restart_node", &["node-3"], 500, 1_500)],
            named: vec![named("node-3")],
            ..History::default()
        };
        assert_eq!(kinds(&history), vec![HarmKind::ServingRestarted]);
    }

    #[test]
    fn an_action_on_what_no_ticket_named_is_harm_unless_it_undoes_the_operators_own() {
        let samples = vec![limited(0, 100.0), limited(1_000, 50.0)];
        let mut history = History {
            samples,
            actions: vec![action("update_limit", &["abuser-0"], 100, 200)],
            named: vec![Named {
                object: "abuser-0".into(),
                from_ms: 0,
                to_ms: 50,
            }],
            ..History::default()
        };
        assert_eq!(kinds(&history), vec![HarmKind::Unnamed]);
        history.actions[0].reverses_operator = true;
        assert_eq!(kinds(&history), vec![]);
    }

    #[test]
    fn serving_less_after_an_action_is_harm_unless_the_harness_was_disturbing_meanwhile() {
        let samples = vec![
            node(0, "running", Some(7), 1.0),
            node(400, "running", Some(7), 1.0),
            node(1_000, "running", Some(7), 0.33),
            node(5_000, "running", Some(7), 0.33),
        ];
        let history = History {
            samples,
            actions: vec![action("set_flag", &["node-3"], 500, 600)],
            named: vec![named("node-3")],
            ..History::default()
        };
        assert_eq!(kinds(&history), vec![HarmKind::AvailabilityLost]);
        let disturbed = History {
            disturbed: vec![Disturbed {
                from_ms: 700,
                to_ms: 900,
                target: Some("node-3".into()),
                loses_state: false,
                deliberate: false,
            }],
            ..history
        };
        assert_eq!(kinds(&disturbed), vec![]);
        // Killed by the harness just before the action began: not the action's either.
        let before_it = History {
            disturbed: vec![Disturbed {
                from_ms: 450,
                to_ms: 450,
                target: Some("redis".into()),
                loses_state: true,
                deliberate: false,
            }],
            ..disturbed
        };
        assert_eq!(kinds(&before_it), vec![]);
    }

    #[test]
    fn a_restart_of_a_redis_someone_killed_after_the_last_sample_is_not_blamed_for_its_counts() {
        // Redis served at the last sample; the harness killed it 100 ms later; the restart
        // came after. Its counts died with the kill, and it did not serve when restarted.
        let history = History {
            samples: vec![
                world(0, "running", 10, &[("a", count(9, 60_000))]),
                world(1_000, "running", 11, &[]),
            ],
            actions: vec![action("restart_redis", &["redis"], 300, 900)],
            named: vec![named("redis")],
            disturbed: vec![Disturbed {
                from_ms: 100,
                to_ms: 100,
                target: Some("redis".into()),
                loses_state: true,
                deliberate: false,
            }],
            ..History::default()
        };
        assert_eq!(kinds(&history), vec![]);
        // A node killed meanwhile excuses nothing Redis held.
        let elsewhere = History {
            disturbed: vec![Disturbed {
                target: Some("node-2".into()),
                ..history.disturbed[0].clone()
            }],
            ..history
        };
        assert_eq!(
            kinds(&elsewhere),
            vec![HarmKind::CountsDestroyed, HarmKind::ServingRestarted]
        );
    }

    #[test]
    fn of_actions_that_ran_together_a_lost_count_is_blamed_on_the_one_that_names_its_key() {
        let mut note = action("log_message", &[], 400, 500);
        note.id = 2;
        let history = History {
            samples: vec![
                world(0, "running", 10, &[("rl:cnt:demo-1:0:7", count(9, 60_000))]),
                world(
                    1_000,
                    "running",
                    10,
                    &[("rl:cnt:demo-1:0:7", count(0, 60_000))],
                ),
            ],
            actions: vec![action("reset_counter", &["demo-1"], 300, 600), note],
            named: vec![named("demo-1")],
            ..History::default()
        };
        let harms = judge(&history);
        assert_eq!(harms.len(), 1, "{harms:?}");
        assert_eq!(
            (harms[0].kind, harms[0].action),
            (HarmKind::CountsDestroyed, Some(1))
        );
    }

    #[test]
    fn a_count_names_a_key_only_as_a_whole_part_of_its_identity() {
        assert!(count_names("rl:cnt:demo-1:0:7", "demo-1"));
        assert!(!count_names("rl:cnt:demo-10:0:7", "demo-1"));
    }

    #[test]
    fn residue_the_ledger_still_lists_is_left_behind() {
        let history = History {
            left_behind: vec!["evict-leader-scheduler-2".into()],
            ..History::default()
        };
        assert_eq!(kinds(&history), vec![HarmKind::LeftBehind]);
    }
}
