//! `eval --suite generated --twin`: each seed played twice, live (a real cluster, real time)
//! and on the subject's model in simulated time, and the two set side by side: the verdict and
//! the actions that ran (what the engine decided), not their timing. Where twins differ, the
//! model is what gets fixed (or the difference is a gap it states): this is how the
//! simulation's figures stay honest.

use std::sync::Arc;

use color_eyre::eyre::{Result, eyre};
use serde::Serialize;

use super::{GeneratedOptions, ScheduleGrade, Verdict, brain_for, report};
use crate::frontends::eval::{EvalOptions, report_line};

/// What one side of a twin decided.
#[derive(Debug, Clone, Serialize)]
struct Side {
    verdict: Verdict,
    /// The actions that ran, in the order they ran.
    actions: Vec<String>,
    harms: Vec<String>,
}

impl From<&ScheduleGrade> for Side {
    fn from(g: &ScheduleGrade) -> Self {
        Self {
            verdict: g.verdict,
            actions: g.actions.clone(),
            harms: g.harms.iter().map(|h| h.detail.clone()).collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct Twin {
    seed: u64,
    steps: Vec<String>,
    live: Side,
    simulated: Side,
    agree: bool,
}

/// The same verdict and the same actions, whatever their order (two tickets' steps may
/// interleave differently by a few milliseconds).
fn agree(live: &Side, simulated: &Side) -> bool {
    let sorted = |actions: &[String]| {
        let mut sorted = actions.to_vec();
        sorted.sort();
        sorted
    };
    live.verdict == simulated.verdict && sorted(&live.actions) == sorted(&simulated.actions)
}

pub async fn run(options: EvalOptions, generated: GeneratedOptions) -> Result<()> {
    if options
        .brain
        .brain
        .is_some_and(|b| b != crate::brains::BrainName::Rules)
        && !generated.fuzz
    {
        return Err(crate::user_error!(
            "--twin plays each seed in simulation too, where only the rules brain or --fuzz-brain can answer"
        ));
    }
    let bar = indicatif::ProgressBar::new(generated.count);
    let options = Arc::new(options);
    let mut twins = Vec::new();
    for seed in generated.seed..generated.seed + generated.count {
        let live_options = GeneratedOptions {
            simulated: false,
            ..generated.clone()
        };
        let brain = brain_for(seed, &options, &live_options)?;
        let live = super::run_schedule(seed, &options, &live_options, brain).await;
        let sim_options = GeneratedOptions {
            simulated: true,
            ..generated.clone()
        };
        let sim_eval = options.clone();
        let simulated = tokio::task::spawn_blocking(move || {
            super::simulated::run_schedule(seed, &sim_eval, &sim_options)
        })
        .await
        .map_err(|e| eyre!("the simulated twin of seed {seed}: {e}"))?;
        let (live_side, sim_side) = (Side::from(&live), Side::from(&simulated));
        let twin = Twin {
            seed,
            steps: live.steps.clone(),
            agree: agree(&live_side, &sim_side),
            live: live_side,
            simulated: sim_side,
        };
        report_line(
            &bar,
            format!(
                "{}\n  simulated: {:?}, ran: {} — {}",
                report::line(&live),
                twin.simulated.verdict,
                if twin.simulated.actions.is_empty() {
                    "none".to_string()
                } else {
                    twin.simulated.actions.join(", ")
                },
                if twin.agree {
                    "twins agree"
                } else {
                    "TWINS DIFFER"
                }
            ),
        );
        bar.inc(1);
        twins.push(twin);
    }
    bar.finish_and_clear();
    write(&options.out, &options, &twins)
}

fn markdown(options: &EvalOptions, twins: &[Twin]) -> String {
    let agreeing = twins.iter().filter(|t| t.agree).count();
    let mut md = format!(
        "# Twins: {} live and simulated, seed by seed\n\n**{agreeing} of {} agree** (the same verdict and the same actions ran; timing aside).\n\n| seed | live | simulated | agree |\n|---|---|---|---|\n",
        options.subject.as_str(),
        twins.len()
    );
    let side = |s: &Side| {
        let actions = if s.actions.is_empty() {
            "no action".to_string()
        } else {
            s.actions.join(", ")
        };
        format!("{:?}: {actions}", s.verdict).replace('|', "\\|")
    };
    for t in twins {
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            t.seed,
            side(&t.live),
            side(&t.simulated),
            if t.agree { "yes" } else { "**no**" }
        ));
    }
    let differing: Vec<&Twin> = twins.iter().filter(|t| !t.agree).collect();
    if !differing.is_empty() {
        md.push_str("\n## Where they differ\n\n");
        for t in differing {
            md.push_str(&format!("- seed {}: {}\n", t.seed, t.steps.join("; ")));
            for (name, s) in [("live", &t.live), ("simulated", &t.simulated)] {
                for harm in &s.harms {
                    md.push_str(&format!("  - {name} harm: {harm}\n"));
                }
            }
        }
    }
    md
}

fn write(out: &std::path::Path, options: &EvalOptions, twins: &[Twin]) -> Result<()> {
    crate::frontends::eval::write_json_and_markdown(out, "twin", &twins, &markdown(options, twins))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(verdict: Verdict, actions: &[&str]) -> Side {
        Side {
            verdict,
            actions: actions.iter().map(|a| a.to_string()).collect(),
            harms: vec![],
        }
    }

    #[test]
    fn twins_agree_on_the_verdict_and_the_actions_whatever_their_order() {
        let live = side(
            Verdict::Fixed,
            &["restart_node n2", "rebalance_leaders store-1"],
        );
        let simulated = side(
            Verdict::Fixed,
            &["rebalance_leaders store-1", "restart_node n2"],
        );
        assert!(agree(&live, &simulated));
        assert!(!agree(
            &live,
            &side(
                Verdict::Honest,
                &["restart_node n2", "rebalance_leaders store-1"]
            )
        ));
        assert!(!agree(&live, &side(Verdict::Fixed, &["restart_node n2"])));
    }
}
