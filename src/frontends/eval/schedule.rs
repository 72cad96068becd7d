//! The generated eval's grammar: a seed draws a schedule of disturbances, each from a family
//! (signals to a process, a command on a shared dependency, a person's restart, a traffic
//! shape, a fault from the chaos catalog), on a drawn target, at a drawn moment, held for a
//! drawn time, with drawn intensities, overlapping as they fall. The same seed draws the same
//! schedule, so a failing one is replayed by its seed alone. Pure.

use operator_protocol::{
    ChaosSpec, DisturbanceSpec, DrawnDisturbance, DrawnRange, Family, Loses, ParamKind, ParamSpec,
    Params,
};
use serde::Serialize;

/// Every schedule's disturbances start within this span.
pub const SPAN_MS: u64 = 30_000;
/// A held disturbance lasts between these.
const HOLD_MS: (i64, i64) = (1_000, 30_000);
/// How many disturbances one schedule holds.
const STEPS: (usize, usize) = (1, 4);

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub at_ms: u64,
    pub family: Family,
    pub disturbance: DrawnDisturbance,
    /// How long it is held before the harness undoes it; None for a moment.
    pub hold_ms: Option<u64>,
    /// How long a moment lasts by itself (a pause of 2 s); 0 for an instant.
    pub lasts_ms: u64,
    /// In words, as the person who did it would say.
    pub description: String,
    pub loses: Loses,
    pub deliberate: bool,
}

impl Step {
    /// When it stops disturbing.
    pub fn ends_ms(&self) -> u64 {
        self.at_ms + self.hold_ms.unwrap_or(self.lasts_ms)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Schedule {
    pub seed: u64,
    pub steps: Vec<Step>,
}

impl Schedule {
    /// When the last disturbance has ended.
    pub fn ends_ms(&self) -> u64 {
        self.steps.iter().map(Step::ends_ms).max().unwrap_or(0)
    }

    /// The families it draws from, for the figures by family ("dependency+person").
    pub fn families(&self) -> String {
        let mut names: Vec<&str> = self.steps.iter().map(|s| s.family.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names.join("+")
    }
}

/// What any target can do to any of its processes: the eval's own, for every subject.
pub fn process_specs(nodes: &[String]) -> Vec<DisturbanceSpec> {
    let on_nodes =
        |name: &str, family, description: &str, params, held, deliberate| DisturbanceSpec {
            name: name.into(),
            family,
            description: description.into(),
            targets: nodes.to_vec(),
            params,
            held,
            loses: Loses::Nothing,
            deliberate,
            lasts_ms_param: None,
            needs: vec![],
        };
    vec![
        on_nodes(
            "stop_cont_cycle",
            Family::Process,
            "{target} paused {duty} % of every {period_ms} ms (SIGSTOP/SIGCONT, or the target's own pause)",
            vec![
                DrawnRange::log("period_ms", 100, 4_000),
                DrawnRange::new("duty", 10, 95),
            ],
            true,
            false,
        ),
        on_nodes(
            "stop_once",
            Family::Process,
            "{target} paused (SIGSTOP, or the target's own pause) until the hold ends",
            vec![],
            true,
            false,
        ),
        on_nodes(
            "kill",
            Family::Process,
            "SIGKILL to {target}",
            vec![],
            false,
            false,
        ),
        on_nodes(
            "terminate",
            Family::Process,
            "SIGTERM to {target} (nobody starts it again)",
            vec![],
            false,
            false,
        ),
        on_nodes(
            "person_restart",
            Family::Person,
            "a person stops {target} (SIGTERM) and starts it again by hand when the hold ends",
            vec![],
            true,
            true,
        ),
    ]
}

/// The parameter of a fault that names the node it hits: a node, or a choice among nodes.
pub fn node_param<'a>(chaos: &'a ChaosSpec, nodes: &[String]) -> Option<&'a ParamSpec> {
    chaos.params.iter().find(|p| match &p.kind {
        ParamKind::Node => true,
        ParamKind::Enum { values } => {
            !values.is_empty() && values.iter().all(|v| nodes.contains(v))
        }
        _ => false,
    })
}

/// The chaos catalog as disturbances: the same faults, applied behind the operator's back.
/// Faults the target cannot apply (a partition on plain processes) are left out.
pub fn catalog_specs(
    chaos: &[ChaosSpec],
    nodes: &[String],
    can: impl Fn(operator_protocol::Disturbance) -> bool,
) -> Vec<DisturbanceSpec> {
    chaos
        .iter()
        .filter(|c| c.needs.iter().all(|n| can(*n)))
        .map(|c| DisturbanceSpec {
            name: c.name.clone(),
            family: Family::Catalog,
            description: format!("chaos {} on {{target}}: {}", c.name, c.description),
            targets: match node_param(c, nodes).map(|p| &p.kind) {
                Some(ParamKind::Enum { values }) => values.clone(),
                Some(_) => nodes.to_vec(),
                None => vec![],
            },
            params: c
                .params
                .iter()
                .filter_map(|p| match p.kind {
                    ParamKind::Integer { min, max } => Some(DrawnRange::new(&p.name, min, max)),
                    _ => None,
                })
                .collect(),
            held: false,
            // A fault that kills a process loses what the process held.
            loses: if c.needs.contains(&operator_protocol::Disturbance::Kill) {
                Loses::State
            } else {
                Loses::Nothing
            },
            deliberate: false,
            lasts_ms_param: None,
            needs: vec![],
        })
        .collect()
}

fn draw_int(rng: &mut fastrand::Rng, range: &DrawnRange) -> i64 {
    let (min, max) = (range.min.min(range.max), range.max.max(range.min));
    if range.log_scale && min > 0 {
        let (lo, hi) = ((min as f64).ln(), (max as f64).ln());
        ((lo + rng.f64() * (hi - lo)).exp().round() as i64).clamp(min, max)
    } else {
        rng.i64(min..=max)
    }
}

/// The schedule seed `seed` draws from `vocabulary`: families first, evenly, so a subject
/// with many dependency commands does not drown out its people and signals.
pub fn draw(seed: u64, vocabulary: &[DisturbanceSpec]) -> Schedule {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut families: Vec<Family> = vocabulary.iter().map(|s| s.family).collect();
    families.sort_by_key(|f| f.as_str());
    families.dedup();
    let count = rng.usize(STEPS.0..=STEPS.1);
    let mut steps = Vec::with_capacity(count);
    for i in 0..count {
        if families.is_empty() {
            break;
        }
        let family = families[rng.usize(..families.len())];
        let of_family: Vec<&DisturbanceSpec> =
            vocabulary.iter().filter(|s| s.family == family).collect();
        let spec = of_family[rng.usize(..of_family.len())];
        let target = (!spec.targets.is_empty())
            .then(|| spec.targets[rng.usize(..spec.targets.len())].clone());
        let params: Params = spec
            .params
            .iter()
            .map(|r| (r.name.clone(), draw_int(&mut rng, r).into()))
            .collect();
        let disturbance = DrawnDisturbance {
            name: spec.name.clone(),
            target,
            params,
        };
        // The first comes early, so every schedule disturbs something soon.
        let at_ms = if i == 0 {
            rng.u64(0..3_000)
        } else {
            rng.u64(0..SPAN_MS)
        };
        let hold_ms = spec
            .held
            .then(|| draw_int(&mut rng, &DrawnRange::log("hold_ms", HOLD_MS.0, HOLD_MS.1)) as u64);
        let lasts_ms = spec
            .lasts_ms_param
            .as_deref()
            .map_or(0, |p| disturbance.int(p, 0).max(0) as u64);
        steps.push(Step {
            at_ms,
            lasts_ms,
            family,
            description: disturbance.describe(spec),
            disturbance,
            hold_ms,
            loses: spec.loses,
            deliberate: spec.deliberate,
        });
    }
    steps.sort_by_key(|s| s.at_ms);
    Schedule { seed, steps }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocabulary() -> Vec<DisturbanceSpec> {
        let nodes = vec!["node-1".to_string(), "redis".to_string()];
        let mut v = process_specs(&nodes);
        v.push(DisturbanceSpec {
            name: "pause".into(),
            family: Family::Dependency,
            description: "CLIENT PAUSE {ms}".into(),
            targets: vec![],
            params: vec![DrawnRange::log("ms", 500, 40_000)],
            held: false,
            loses: Loses::Nothing,
            deliberate: false,
            lasts_ms_param: Some("ms".into()),
            needs: vec![],
        });
        v
    }

    #[test]
    fn a_seed_draws_the_same_schedule_every_time_and_another_seed_another() {
        let v = vocabulary();
        let a = serde_json::to_string(&draw(7, &v)).unwrap();
        assert_eq!(a, serde_json::to_string(&draw(7, &v)).unwrap());
        let differ = (8..20).any(|s| serde_json::to_string(&draw(s, &v)).unwrap() != a);
        assert!(differ);
    }

    #[test]
    fn draws_stay_in_their_ranges_and_cover_every_family_and_both_ends() {
        let v = vocabulary();
        let mut families = std::collections::BTreeSet::new();
        let (mut short, mut long) = (false, false);
        for seed in 0..2_000 {
            let schedule = draw(seed, &v);
            assert!((STEPS.0..=STEPS.1).contains(&schedule.steps.len()));
            for step in &schedule.steps {
                families.insert(step.family.as_str());
                assert!(step.at_ms < SPAN_MS);
                if let Some(hold) = step.hold_ms {
                    assert!((1_000..=30_000).contains(&hold));
                }
                if step.disturbance.name == "pause" {
                    let ms = step.disturbance.int("ms", 0);
                    assert!((500..=40_000).contains(&ms), "{ms}");
                    short |= ms < 1_000;
                    long |= ms > 20_000;
                    assert_eq!(step.description, format!("CLIENT PAUSE {ms}"));
                }
                if step.disturbance.name == "stop_cont_cycle" {
                    assert!(step.disturbance.target.is_some());
                    assert!((10..=95).contains(&step.disturbance.int("duty", 0)));
                }
            }
        }
        assert_eq!(families.len(), 3, "{families:?}");
        assert!(short && long, "a log-scale range reaches both of its ends");
    }

    #[test]
    fn steps_overlap_sometimes_and_come_in_time_order() {
        let v = vocabulary();
        let overlapping = (0..500).any(|seed| {
            let s = draw(seed, &v);
            s.steps.windows(2).any(|w| w[1].at_ms < w[0].ends_ms())
        });
        assert!(overlapping);
        for seed in 0..500 {
            let s = draw(seed, &v);
            assert!(s.steps.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        }
    }

    #[test]
    fn the_catalog_becomes_disturbances_with_its_integer_ranges_and_nodes() {
        let chaos = vec![ChaosSpec {
            name: "latency".into(),
            description: "slow a node".into(),
            root_cause: "injected_latency".into(),
            expected_invariant: "high_latency".into(),
            params: vec![
                operator_protocol::ParamSpec {
                    name: "node".into(),
                    description: String::new(),
                    kind: ParamKind::Node,
                    required: true,
                },
                operator_protocol::ParamSpec {
                    name: "ms".into(),
                    description: String::new(),
                    kind: ParamKind::Integer {
                        min: 50,
                        max: 2_000,
                    },
                    required: false,
                },
            ],
            needs: vec![],
        }];
        let specs = catalog_specs(&chaos, &["node-1".into()], |_| true);
        assert_eq!(specs[0].family, Family::Catalog);
        assert_eq!(specs[0].targets, vec!["node-1".to_string()]);
        assert_eq!(specs[0].params, vec![DrawnRange::new("ms", 50, 2_000)]);
        // A fault the target cannot apply is not drawn.
        let partition = ChaosSpec {
            needs: vec![operator_protocol::Disturbance::Isolate],
            ..chaos[0].clone()
        };
        assert!(catalog_specs(&[partition], &["node-1".into()], |_| false).is_empty());
    }
}
