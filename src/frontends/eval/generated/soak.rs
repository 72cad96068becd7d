//! `eval --suite generated --minutes M`: one live cluster and one engine for M minutes, a new
//! drawn schedule every 15 to 25 s, overlapping the ones still playing. It reports whether the
//! engine survived, tickets left open, the harm the oracle found over the whole history,
//! processes left running after the cluster stopped, and this process's CPU and memory over
//! time (the engine, the sampler and the traffic all run in it).

use std::time::{Duration, Instant};

use color_eyre::eyre::Result;
use serde::Serialize;
use std::sync::Arc;

use super::player::{Player, Sampler, TicketWatcher};
use super::{GeneratedOptions, brain_for, named, ran_actions, vocabulary};
use crate::clock::{Clock, SystemClock};
use crate::frontends::eval::oracle::{self, Harm, History};
use crate::frontends::eval::schedule::{self, Schedule};
use crate::frontends::eval::{EvalCluster, EvalOptions, wait_healthy};
use crate::model::TicketStatus;

/// How often CPU and memory are read.
const RESOURCES_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Serialize)]
pub struct ResourceSample {
    pub at_s: u64,
    /// CPU over the last interval, in percent of one core.
    pub cpu_percent: f64,
    pub rss_mb: f64,
}

#[derive(Serialize)]
struct SoakReport {
    subject: String,
    brain: String,
    minutes: u64,
    first_seed: u64,
    schedules: Vec<String>,
    /// The engine stopped cleanly at the end (it did not crash meanwhile).
    engine_survived: bool,
    engine_error: Option<String>,
    tickets: usize,
    left_open: usize,
    escalated: usize,
    actions_ran: usize,
    harms: Vec<Harm>,
    /// Processes of the cluster still running after it was stopped.
    processes_left: Vec<String>,
    resources: Vec<ResourceSample>,
    disturbance_errors: Vec<String>,
}

/// CPU seconds used by this process so far, and its resident memory in MB.
fn usage() -> Option<(f64, f64)> {
    let me = procfs::process::Process::myself().ok()?;
    let stat = me.stat().ok()?;
    let ticks = procfs::ticks_per_second() as f64;
    let rss = me.status().ok()?.vmrss.unwrap_or(0) as f64 / 1024.0;
    Some(((stat.utime + stat.stime) as f64 / ticks, rss))
}

/// Our children still alive: what a stopped cluster must not leave.
fn children() -> Vec<String> {
    let me = std::process::id() as i32;
    procfs::process::all_processes()
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|p| p.stat().ok())
        .filter(|s| s.ppid == me && s.state != 'Z')
        .map(|s| format!("{} (pid {})", s.comm, s.pid))
        .collect()
}

pub async fn run(options: EvalOptions, generated: GeneratedOptions, minutes: u64) -> Result<()> {
    let brain = brain_for(generated.seed, &options, &generated)?;
    let brain_name = if generated.fuzz {
        "fuzzed".to_string()
    } else {
        brain.name()
    };
    let cluster = EvalCluster::start(&options, brain).await?;
    let disturber = cluster
        .deployment
        .disturber
        .clone()
        .ok_or_else(|| crate::user_error!("this deployment has no disturbances"))?;
    wait_healthy(&cluster.deployment).await?;
    let subject = cluster.deployment.subject.clone();
    let target = cluster.deployment.target.clone();
    let words = vocabulary(target.as_ref(), subject.as_ref(), disturber.as_ref());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let player = Player::new(target, subject.clone(), disturber.clone(), clock.clone());
    let sampler = Sampler::start(disturber.clone());
    let watcher = TicketWatcher::start(cluster.db(), clock, false);
    let start = Instant::now();
    let until = start + Duration::from_secs(minutes * 60);
    let mut resources = Vec::new();
    let mut last_usage = (start, usage().map_or(0.0, |u| u.0));
    let mut next_resources = start + RESOURCES_EVERY;
    let mut playing = tokio::task::JoinSet::new();
    let mut drawn: Vec<Schedule> = Vec::new();
    let mut next_schedule = start;
    let mut pacing = fastrand::Rng::with_seed(generated.seed);
    let mut seed = generated.seed;
    while Instant::now() < until {
        if Instant::now() >= next_schedule {
            let schedule = schedule::draw(seed, &words);
            eprintln!(
                "{:>4} s  seed {seed}: {}",
                start.elapsed().as_secs(),
                schedule
                    .steps
                    .iter()
                    .map(|s| s.description.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            let (player, played) = (player.clone(), schedule.clone());
            playing.spawn(async move { player.play(played.seed, &played).await });
            drawn.push(schedule);
            seed += 1;
            next_schedule += Duration::from_millis(pacing.u64(15_000..=25_000));
        }
        if Instant::now() >= next_resources {
            if let Some((cpu, rss)) = usage() {
                let elapsed = last_usage.0.elapsed().as_secs_f64().max(0.001);
                resources.push(ResourceSample {
                    at_s: start.elapsed().as_secs(),
                    cpu_percent: (cpu - last_usage.1) / elapsed * 100.0,
                    rss_mb: rss,
                });
                last_usage = (Instant::now(), cpu);
            }
            next_resources += RESOURCES_EVERY;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "{} schedules played; letting the last ones end",
        drawn.len()
    );
    while playing.join_next().await.is_some() {}
    cluster.settle(Duration::from_secs(60)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let samples = sampler.stop();
    let mut seen_named = watcher.stop();
    for schedule in &drawn {
        player.let_go(schedule).await;
    }
    let store = cluster.store()?;
    let tickets = store.tickets(10_000)?;
    let ran = ran_actions(
        &store,
        subject.as_ref(),
        crate::clock::Clock::now_ms(&crate::clock::SystemClock),
    )?;
    let (logged, disturbance_errors) = player.take_log();
    // Whatever holds the target keeps the cluster's processes: all of it goes before they are
    // counted.
    drop((player, disturber));
    // The engine's shutdown says whether it was still alive to stop.
    let stopped = cluster.stop().await;
    let (engine_error, left_behind) = match stopped {
        Ok(left) => (None, left),
        Err(e) => (Some(format!("{e:#}")), vec![]),
    };
    let history = History {
        samples,
        actions: ran.iter().map(|(_, seen)| seen.clone()).collect(),
        named: {
            seen_named.extend(named(
                &tickets,
                crate::clock::Clock::now_ms(&crate::clock::SystemClock),
            ));
            seen_named
        },
        left_behind,
        put_by_operator: store.residue_keys(subject.name())?,
        ..logged
    };
    let harms = oracle::judge(&history);
    let report = SoakReport {
        subject: options.subject.as_str().to_string(),
        brain: brain_name,
        minutes,
        first_seed: generated.seed,
        schedules: drawn
            .iter()
            .map(|s| {
                format!(
                    "seed {}: {}",
                    s.seed,
                    s.steps
                        .iter()
                        .map(|s| s.description.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            })
            .collect(),
        engine_survived: engine_error.is_none(),
        engine_error,
        tickets: tickets.len(),
        left_open: tickets
            .iter()
            .filter(|t| {
                !matches!(
                    t.status,
                    TicketStatus::Resolved | TicketStatus::Escalated | TicketStatus::Held
                )
            })
            .count(),
        escalated: tickets
            .iter()
            .filter(|t| t.status == TicketStatus::Escalated)
            .count(),
        actions_ran: ran.len(),
        harms,
        processes_left: children(),
        resources,
        disturbance_errors,
    };
    write(&options.out, &report)
}

fn markdown(r: &SoakReport) -> String {
    let mut md = format!(
        "# Soak: {} with the {} brain, {} minutes, {} schedules from seed {}\n\n\
         | figure | value |\n|---|---|\n\
         | engine survived | {} |\n| tickets | {} |\n| left open after settling | {} |\n\
         | escalated to a person | {} |\n| actions that ran | {} |\n| **harms found** | **{}** |\n\
         | processes left after stopping | {} |\n| disturbances that could not be applied | {} |\n",
        r.subject,
        r.brain,
        r.minutes,
        r.schedules.len(),
        r.first_seed,
        if r.engine_survived { "yes" } else { "NO" },
        r.tickets,
        r.left_open,
        r.escalated,
        r.actions_ran,
        r.harms.len(),
        r.processes_left.len(),
        r.disturbance_errors.len(),
    );
    if let Some(e) = &r.engine_error {
        md.push_str(&format!("\nThe engine failed: {e}\n"));
    }
    if !r.harms.is_empty() {
        md.push_str("\n## Harms\n\n");
        for h in &r.harms {
            md.push_str(&format!("- {:?}: {}\n", h.kind, h.detail));
        }
    }
    md.push_str("\n## CPU and memory of the eval process (engine, sampler, traffic)\n\n| at | CPU (% of a core) | RSS |\n|---|---|---|\n");
    for s in &r.resources {
        md.push_str(&format!(
            "| {} s | {:.1} % | {:.1} MB |\n",
            s.at_s, s.cpu_percent, s.rss_mb
        ));
    }
    md.push_str("\n## Schedules\n\n");
    for s in &r.schedules {
        md.push_str(&format!("- {s}\n"));
    }
    md
}

fn write(out: &std::path::Path, report: &SoakReport) -> Result<()> {
    crate::frontends::eval::write_json_and_markdown(out, "soak", report, &markdown(report))
}
