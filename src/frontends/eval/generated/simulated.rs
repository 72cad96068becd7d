//! `eval --suite generated --simulated`: the same schedules, player, sampler and harm oracle
//! as the live suite, played against a subject's model (`deploy::simulated`) on a paused
//! tokio runtime. The engine is the real one (its shell, its SQLite store, its brain); only
//! the cluster and the clock are simulated, so a schedule's minute takes milliseconds and a
//! seed replays exactly. Schedules run on every core, one runtime each.
//!
//! A model is a model: what it says is checked against live runs of sampled seeds (the live
//! suite replays any seed), and where the two differ the model is what gets fixed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use color_eyre::eyre::{Result, eyre};
use tokio::time::Instant;

use super::player::{Player, Sampler, TicketWatcher};
use super::{
    AFTERWARDS, GeneratedOptions, SETTLE, ScheduleGrade, Verdict, brain_for, grade_schedule,
    replay_command, report, vocabulary,
};
use crate::clock::{Clock, TokioClock};
use crate::deploy;
use crate::engine::{Engine, EngineConfig};
use crate::frontends::eval::{EvalOptions, report_line};
use crate::model::{Mode, TicketStatus};
use crate::store::Store;

/// Simulated time starts here (2027-01-15), the same for every seed, so a replay is exact.
const START_MS: u64 = 1_800_000_000_000;
/// The model's cluster is healthy from its first step; the engine gets this long to see it so
/// before the first disturbance.
const WARM_UP: Duration = Duration::from_secs(6);

pub fn run(options: EvalOptions, generated: GeneratedOptions) -> Result<()> {
    if !generated.fuzz
        && options
            .brain
            .brain
            .is_some_and(|b| b != crate::brains::BrainName::Rules)
    {
        return Err(crate::user_error!(
            "the simulation answers tickets with the rules brain or --fuzz-brain: a model's API cannot answer in simulated time (run the live suite without --simulated for that)"
        ));
    }
    let bar = indicatif::ProgressBar::new(generated.count);
    let next = AtomicU64::new(generated.seed);
    let end = generated.seed + generated.count;
    let grades: Mutex<Vec<ScheduleGrade>> = Mutex::default();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::SeqCst);
                    if seed >= end {
                        break;
                    }
                    let graded = run_schedule(seed, &options, &generated);
                    // Thousands of schedules: only what needs reading is printed as it ends.
                    if matches!(graded.verdict, Verdict::Harmful | Verdict::Failed) {
                        report_line(&bar, report::line(&graded));
                    }
                    bar.inc(1);
                    grades
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(graded);
                }
            });
        }
    });
    bar.finish_and_clear();
    let mut grades = grades.into_inner().unwrap_or_else(|p| p.into_inner());
    grades.sort_by_key(|g| g.seed);
    let brain = if generated.fuzz { "fuzzed" } else { "rules" };
    let built = report::build(&options, &generated, brain, grades);
    report::write(&options.out, &built)
}

/// One schedule on a fresh model and a fresh engine, in a runtime of its own whose clock
/// moves only when every task waits.
pub(super) fn run_schedule(
    seed: u64,
    options: &EvalOptions,
    generated: &GeneratedOptions,
) -> ScheduleGrade {
    let replay = replay_command(options, generated, seed);
    // The engine's retry jitter comes from this thread's generator: seeded, it replays too.
    fastrand::seed(seed);
    let played = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| eyre!("a runtime for the simulation: {e}"))
        .and_then(|runtime| runtime.block_on(play(seed, options, generated)));
    match played {
        Ok(grade) => ScheduleGrade { replay, ..grade },
        Err(e) => ScheduleGrade::failed(seed, None, &replay, format!("{e:#}")),
    }
}

async fn play(
    seed: u64,
    options: &EvalOptions,
    generated: &GeneratedOptions,
) -> Result<ScheduleGrade> {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new(START_MS));
    let cluster = deploy::simulated(options.subject, START_MS)?;
    // In memory where the machine has it: the engine's store is real, its disk need not be.
    let shm = std::path::PathBuf::from("/dev/shm");
    let scratch = if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    };
    let dir = tempfile::Builder::new()
        .prefix("operator-sim-")
        .tempdir_in(scratch)?;
    let db = dir.path().join("operator.db");
    let engine = Engine::new(
        cluster.subject.clone(),
        cluster.target.clone(),
        brain_for(seed, options, generated)?,
        Store::open(&db)?,
        clock.clone(),
        EngineConfig {
            mode: Some(Mode::Execute),
            cluster: format!("simulated-{seed}"),
            store_inline: true,
            ..EngineConfig::default()
        },
    );
    let handle = engine.start();
    tokio::time::sleep(WARM_UP).await;
    let drawn = super::schedule::draw(
        seed,
        &vocabulary(
            cluster.target.as_ref(),
            cluster.subject.as_ref(),
            cluster.disturber.as_ref(),
        ),
    );
    let player = Player::new(
        cluster.target.clone(),
        cluster.subject.clone(),
        cluster.disturber.clone(),
        clock.clone(),
    );
    let sampler = Sampler::start(cluster.disturber.clone());
    let watcher = TicketWatcher::start(db.clone(), clock.clone(), true);
    let start = Instant::now();
    player.play(seed, &drawn).await;
    tokio::time::sleep_until(start + Duration::from_millis(drawn.ends_ms()) + AFTERWARDS).await;
    let store = Store::open(&db)?;
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline && store.tickets(100)?.iter().any(still_open) {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut samples = sampler.stop();
    let named = watcher.stop();
    player.let_go(&drawn).await;
    let (history, _errors) = player.take_log();
    handle.shutdown().await?;
    // What is left behind is what the cluster holds once the operator has gone (it takes its
    // own residue away on exit); the live suite's cluster is gone by then, and it asks the
    // ledger alone.
    samples.push(cluster.disturber.world().await);
    let left_behind = store
        .open_residue(cluster.subject.name())?
        .into_iter()
        .map(|r| r.residue.key)
        .collect();
    let history = super::super::oracle::History {
        samples,
        named,
        left_behind,
        ..history
    };
    let tickets = store.tickets(100_000)?;
    // A replay of one seed keeps what the engine wrote, to be read with the usual commands.
    if generated.count == 1 {
        let kept = dir.keep();
        eprintln!(
            "the engine's database is kept: operator-tui --db {} tickets list",
            kept.join("operator.db").display()
        );
    }
    grade_schedule(
        &drawn,
        history,
        &tickets,
        &store,
        cluster.subject.as_ref(),
        clock.now_ms(),
    )
}

fn still_open(t: &crate::model::Ticket) -> bool {
    !matches!(
        t.status,
        TicketStatus::Resolved | TicketStatus::Escalated | TicketStatus::Held
    )
}
