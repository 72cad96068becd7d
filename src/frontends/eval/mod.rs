//! `operator-tui eval`: every scenario of a subject (the demo chapters' faults, plus no-fault
//! control runs), each on a fresh cluster, headless, graded from ground truth: detected and
//! how fast, root cause, action, mitigation, false positives, tool calls and tokens. Each run is
//! independent; one that fails is recorded as failed and the suite goes on. Every diagnosis is
//! kept as a flight that `eval --replay` can put to another brain without a cluster.

pub mod flight;
pub mod fuzzed;
pub mod generated;
pub mod grade;
pub mod oracle;
pub mod schedule;
pub mod unknown;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr};
use operator_protocol::{Brain, ChaosRequest, Health, Runbook};
use serde::{Deserialize, Serialize};

use crate::brains::BrainChoice;
use crate::clock::SystemClock;
use crate::deploy::{self, DeploySpec, SubjectName, TargetName};
use crate::engine::{Engine, EngineConfig};
use crate::events::Command;
use crate::model::{Mode, TicketStatus};
use crate::store::Store;
use flight::{Flight, RecordingBrain, ReplayedTools};
use grade::{Grade, RunRecord, ScenarioSummary};

/// Which faults an eval runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Suite {
    /// The demo chapters' faults (the chaos catalog), graded against their root cause.
    Catalog,
    /// Faults the operator was never told about, graded by what it did about them.
    Unknown,
    /// Schedules drawn from seeds (signals, people, dependency commands, traffic, the catalog,
    /// overlapping), judged by the harm oracle from the world before and after each action.
    Generated,
}

#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub subject: SubjectName,
    pub brain: BrainChoice,
    pub runs: u32,
    pub scenarios: Vec<String>,
    pub out: PathBuf,
    pub control_seconds: u64,
}

struct Scenario {
    name: String,
    /// (chaos name, expected invariant, root cause); None for control.
    fault: Option<(String, String, String)>,
}

/// A flight with the ground truth it is graded against.
#[derive(Serialize, Deserialize)]
struct FlightFile {
    scenario: String,
    expected_invariant: String,
    root_cause: String,
    flight: Flight,
}

#[derive(Serialize)]
struct Report {
    subject: String,
    brain: String,
    /// Flights put to a brain: no cluster, so only root cause and action are graded.
    replay: bool,
    date_ms: u64,
    /// First in every report: actions that made things worse.
    harmful_actions: usize,
    overall: ScenarioSummary,
    control_false_positives: usize,
    scenarios: Vec<ScenarioSummary>,
    calibration: Vec<grade::CalibrationBucket>,
    brier_score: Option<f64>,
    /// Named causes at ≥ 90 % confidence, and those that were wrong.
    sure: grade::Sureness,
    runs: Vec<Grade>,
}

fn chapters_book(subject: SubjectName) -> Result<operator_widgets::chapters::ChapterBook> {
    toml::from_str(deploy::demo_chapters(subject)).wrap_err("the demo chapters do not parse")
}

fn scenarios(
    subject: SubjectName,
    subject_chaos: &[operator_protocol::ChaosSpec],
    only: &[String],
) -> Result<Vec<Scenario>> {
    let mut out = Vec::new();
    for chapter in chapters_book(subject)?.chapters {
        let Some(fault) = chapter.fault else { continue };
        let spec = subject_chaos
            .iter()
            .find(|c| c.name == fault)
            .ok_or_else(|| {
                crate::user_error!("chapter {:?} names unknown chaos {fault}", chapter.title)
            })?;
        out.push(Scenario {
            name: fault.clone(),
            fault: Some((
                fault,
                spec.expected_invariant.clone(),
                spec.root_cause.clone(),
            )),
        });
    }
    out.push(Scenario {
        name: "control".into(),
        fault: None,
    });
    if !only.is_empty() {
        out.retain(|s| only.contains(&s.name));
        if out.is_empty() {
            return Err(crate::user_error!(
                "no scenario matches {}",
                only.join(", ")
            ));
        }
    }
    Ok(out)
}

async fn wait_healthy(deployment: &deploy::Deployment) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let observation = deployment
            .subject
            .observe()
            .await
            .map_err(|e| crate::user_error!("{e}"))?;
        if deployment.subject.check(&observation).is_empty()
            && observation
                .nodes
                .iter()
                .all(|n| n.health == Health::Healthy)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(crate::user_error!(
                "the cluster did not become healthy within 20 s"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A fresh cluster with an engine on it in execute mode, for one run.
struct EvalCluster {
    // Dropped last: the database and the cluster's scratch live in it.
    dir: tempfile::TempDir,
    deployment: deploy::Deployment,
    handle: crate::engine::EngineHandle,
}

impl EvalCluster {
    async fn start(options: &EvalOptions, brain: Arc<dyn Brain>) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("operator-eval-")
            .tempdir()?;
        let args = DeploySpec {
            subject: options.subject,
            target: TargetName::Local,
            ..DeploySpec::default()
        };
        let deployment = deploy::bring_up(&args, dir.path(), &|_| {}).await?;
        let engine = Engine::new(
            deployment.subject.clone(),
            deployment.target.clone(),
            brain,
            Store::open(&dir.path().join("operator.db"))?,
            Arc::new(SystemClock),
            EngineConfig {
                mode: Some(Mode::Execute),
                cluster: deployment.cluster_id.clone(),
                ..EngineConfig::default()
            },
        );
        let handle = engine.start();
        Ok(Self {
            dir,
            deployment,
            handle,
        })
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("operator.db")
    }

    fn store(&self) -> Result<Store> {
        Store::open(&self.db())
    }

    /// Waits (bounded) until every ticket has ended, resolved or escalated.
    async fn settle(&self, within: Duration) -> Result<()> {
        let store = self.store()?;
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let open = store.tickets(100)?.iter().any(|t| {
                !matches!(
                    t.status,
                    TicketStatus::Resolved | TicketStatus::Escalated | TicketStatus::Held
                )
            });
            if !open {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Everything the run left in the store, for grading.
    fn record(
        &self,
        scenario: &str,
        run: u32,
        truth: Option<(String, String)>,
        brain: String,
    ) -> Result<RunRecord> {
        let store = self.store()?;
        let tickets = store.tickets(100)?;
        let mut diagnoses = Vec::new();
        for t in &tickets {
            diagnoses.extend(store.diagnoses(t.id)?);
        }
        Ok(RunRecord {
            scenario: scenario.to_string(),
            run,
            truth,
            tickets,
            diagnoses,
            actions: store.actions(None, 100)?,
            // Filled in once the operator has exited (see `stop`).
            residue: vec![],
            escalations: store
                .audit_log(None, 10_000)?
                .into_iter()
                .filter(|row| row.event == "ticket_escalated")
                .filter_map(|row| Some((row.ticket_id?, row.detail)))
                .collect(),
            brain,
            error: None,
        })
    }

    /// Stops the operator, then says what its ledger still lists as left in the cluster.
    async fn stop(self) -> Result<Vec<String>> {
        let store = self.store()?;
        self.handle.shutdown().await?;
        let subject = self.deployment.subject.name().to_string();
        let left = store
            .open_residue(&subject)?
            .into_iter()
            .map(|r| r.residue.key)
            .collect();
        drop(self.deployment);
        Ok(left)
    }
}

async fn run_one(
    scenario: &Scenario,
    run: u32,
    brain: Arc<dyn Brain>,
    options: &EvalOptions,
    flights: Arc<Mutex<Vec<Flight>>>,
) -> Result<RunRecord> {
    let recording = Arc::new(RecordingBrain {
        inner: brain.clone(),
        flights,
    });
    let cluster = EvalCluster::start(options, recording).await?;
    let outcome = async {
        wait_healthy(&cluster.deployment).await?;
        let store = cluster.store()?;
        match &scenario.fault {
            Some((chaos, invariant, _)) => {
                cluster
                    .handle
                    .send(Command::InjectChaos(ChaosRequest {
                        name: chaos.clone(),
                        params: Default::default(),
                    }))
                    .await;
                let deadline = Instant::now() + Duration::from_secs(40);
                while Instant::now() < deadline {
                    let done = store.tickets(20)?.iter().any(|t| {
                        &t.invariant == invariant
                            && matches!(t.status, TicketStatus::Resolved | TicketStatus::Escalated)
                    });
                    if done {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                // A little longer, so trouble the fix itself causes counts against it.
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            None => tokio::time::sleep(Duration::from_secs(options.control_seconds)).await,
        }
        cluster.record(
            &scenario.name,
            run,
            scenario
                .fault
                .as_ref()
                .map(|(_, inv, cause)| (inv.clone(), cause.clone())),
            brain.name(),
        )
    }
    .await;
    let left = cluster.stop().await?;
    outcome.map(|record| RunRecord {
        residue: left,
        ..record
    })
}

fn percent(rate: f64) -> String {
    format!("{:.0}%", rate * 100.0)
}

/// The rate columns of a summary; a control run has none, a replay only the brain's two.
fn rates(s: &ScenarioSummary, replay: bool) -> [String; 4] {
    let none = || "—".to_string();
    if s.control {
        return [none(), none(), none(), none()];
    }
    if replay {
        return [
            none(),
            percent(s.root_cause_correct),
            percent(s.action_appropriate),
            none(),
        ];
    }
    [
        percent(s.detected),
        percent(s.root_cause_correct),
        percent(s.action_appropriate),
        percent(s.mitigated),
    ]
}

fn ms(v: Option<u64>) -> String {
    v.map(|v| format!("{v} ms")).unwrap_or_else(|| "—".into())
}

fn markdown(report: &Report) -> String {
    let mut md = format!(
        "# Eval: {} with the {} brain\n\n**Harmful actions: {}** (disruptive or destructive actions that ran on a wrong cause, or in a control run)\n\n| scenario | runs | harmful | detected | root cause | action | mitigated | detect p50 / p90 | mitigate p50 / p90 | false positives | undone | residue |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        report.subject, report.brain, report.harmful_actions
    );
    for s in report
        .scenarios
        .iter()
        .chain(std::iter::once(&report.overall))
    {
        let [d, r, a, m] = rates(s, report.replay);
        md.push_str(&format!(
            "| {} | {} | {} | {d} | {r} | {a} | {m} | {} / {} | {} / {} | {} | {} | {} |\n",
            s.scenario,
            s.runs,
            s.harmful_actions,
            ms(s.detect_p50_ms),
            ms(s.detect_p90_ms),
            ms(s.mitigate_p50_ms),
            ms(s.mitigate_p90_ms),
            s.false_positives,
            grade::undone(s.undos, s.rollbacks),
            s.residue
        ));
    }
    if report.replay {
        md.push_str("\nA replay puts recorded flights to the brain without a cluster: only root cause and action are graded.\n");
    } else {
        md.push_str(&format!(
            "\nControl runs: {} false positive(s).\n",
            report.control_false_positives
        ));
    }
    md.push_str(&calibration_markdown(report));
    md
}

fn calibration_markdown(report: &Report) -> String {
    calibration_section(
        "Brier score {brier} (0 is perfect; always answering 50 % scores 0.25).",
        &report.calibration,
        report.brier_score,
        report.sure,
    )
}

/// A calibration section: `intro` (with `{brier}` for the score), how many named causes at
/// ≥ 90 % were wrong, then the buckets' table; nothing when no diagnosis had a confidence to
/// grade.
fn calibration_section(
    intro: &str,
    buckets: &[grade::CalibrationBucket],
    brier: Option<f64>,
    sure: grade::Sureness,
) -> String {
    let Some(brier) = brier else {
        return String::new();
    };
    let mut md = format!(
        "\n## Calibration\n\n{} Named causes at ≥ 90 % that were wrong: {} of {}.\n\n| confidence | diagnoses | mean confidence | right |\n|---|---|---|---|\n",
        intro.replace("{brier}", &format!("{brier:.3}")),
        sure.wrong,
        sure.named_sure
    );
    for b in buckets {
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            b.range,
            b.diagnoses,
            percent(b.mean_confidence),
            percent(b.accuracy)
        ));
    }
    md
}

/// A run's result line, above the progress bar (or in the log when there is no terminal,
/// where the bar draws nothing).
fn report_line(bar: &indicatif::ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

fn print_table(report: &Report) {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_header(vec![
            "scenario",
            "runs",
            "harmful",
            "detected",
            "root cause",
            "action",
            "mitigated",
            "detect p50/p90",
            "mitigate p50/p90",
            "false +",
            "undone",
            "residue",
        ]);
    for s in report
        .scenarios
        .iter()
        .chain(std::iter::once(&report.overall))
    {
        let [d, r, a, m] = rates(s, report.replay);
        table.add_row(vec![
            s.scenario.clone(),
            s.runs.to_string(),
            s.harmful_actions.to_string(),
            d,
            r,
            a,
            m,
            format!("{} / {}", ms(s.detect_p50_ms), ms(s.detect_p90_ms)),
            format!("{} / {}", ms(s.mitigate_p50_ms), ms(s.mitigate_p90_ms)),
            s.false_positives.to_string(),
            grade::undone(s.undos, s.rollbacks),
            s.residue.to_string(),
        ]);
    }
    println!("harmful actions: {}", report.harmful_actions);
    println!("{table}");
    print!("{}", calibration_markdown(report));
}

fn build_report(subject: &str, brain: &str, replay: bool, grades: Vec<Grade>) -> Report {
    let mut names: Vec<String> = Vec::new();
    for g in &grades {
        if !names.contains(&g.scenario) {
            names.push(g.scenario.clone());
        }
    }
    let scenarios = names
        .iter()
        .map(|n| {
            grade::summarize(
                n,
                &grades
                    .iter()
                    .filter(|g| &g.scenario == n)
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let faults: Vec<&Grade> = grades.iter().filter(|g| !g.control).collect();
    let (calibration, brier_score) = grade::calibration(&grades);
    let scored: Vec<(f64, bool)> = grades
        .iter()
        .filter(|g| !g.control)
        .filter_map(|g| Some((g.confidence?, g.root_cause_correct)))
        .collect();
    Report {
        sure: grade::sureness(&scored),
        harmful_actions: grades.iter().map(|g| g.harmful_actions).sum(),
        calibration,
        brier_score,
        subject: subject.into(),
        brain: brain.into(),
        replay,
        date_ms: crate::clock::Clock::now_ms(&SystemClock),
        overall: grade::summarize("all faults", &faults),
        control_false_positives: grades
            .iter()
            .filter(|g| g.control)
            .map(|g| g.false_positives)
            .sum(),
        scenarios,
        runs: grades,
    }
}

/// A suite's report as `OUT/NAME.json` and `OUT/NAME.md`, the markdown printed, and where
/// both went said on stderr.
pub(crate) fn write_json_and_markdown(
    out: &Path,
    name: &str,
    report: &impl serde::Serialize,
    md: &str,
) -> Result<()> {
    std::fs::create_dir_all(out)?;
    let (json_path, md_path) = (
        out.join(format!("{name}.json")),
        out.join(format!("{name}.md")),
    );
    std::fs::write(&json_path, serde_json::to_string_pretty(report)?)?;
    std::fs::write(&md_path, md)?;
    print!("{md}");
    eprintln!("wrote {} and {}", json_path.display(), md_path.display());
    Ok(())
}

fn write_report(out: &Path, report: &Report) -> Result<()> {
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("eval.json"), serde_json::to_string_pretty(report)?)?;
    std::fs::write(out.join("eval.md"), markdown(report))?;
    print_table(report);
    eprintln!(
        "wrote {} and {}",
        out.join("eval.json").display(),
        out.join("eval.md").display()
    );
    Ok(())
}

pub async fn run(options: EvalOptions) -> Result<()> {
    let brain = crate::brains::choose(&options.brain).map_err(|e| crate::user_error!("{e}"))?;
    let catalog = deploy::chaos_catalog(options.subject)?;
    let runbook: Runbook = deploy::runbook(options.subject)?;
    let scenarios = scenarios(options.subject, &catalog, &options.scenarios)?;
    let total = scenarios.len() as u64 * options.runs as u64;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed}]")
            .expect("static template"),
    );
    let mut grades = Vec::new();
    let flights_dir = options.out.join("flights");
    std::fs::create_dir_all(&flights_dir)?;
    for run in 1..=options.runs {
        for scenario in &scenarios {
            bar.set_message(format!("{} run {run}", scenario.name));
            let flights = Arc::new(Mutex::new(Vec::new()));
            let record =
                match run_one(scenario, run, brain.clone(), &options, flights.clone()).await {
                    Ok(record) => record,
                    Err(e) => RunRecord {
                        scenario: scenario.name.clone(),
                        run,
                        truth: scenario
                            .fault
                            .as_ref()
                            .map(|(_, i, c)| (i.clone(), c.clone())),
                        tickets: vec![],
                        diagnoses: vec![],
                        actions: vec![],
                        escalations: vec![],
                        residue: vec![],
                        brain: brain.name(),
                        error: Some(format!("{e:#}")),
                    },
                };
            if let Some((_, invariant, cause)) = &scenario.fault {
                for (i, flight) in flights
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .drain(..)
                    .enumerate()
                {
                    let file = FlightFile {
                        scenario: scenario.name.clone(),
                        expected_invariant: invariant.clone(),
                        root_cause: cause.clone(),
                        flight,
                    };
                    std::fs::write(
                        flights_dir.join(format!("{}-{run}-{i}.json", scenario.name)),
                        serde_json::to_string_pretty(&file)?,
                    )?;
                }
            }
            let graded = grade::grade(&record, &runbook);
            let line = format!(
                "{:<14} run {run}: {}{}",
                scenario.name,
                if graded.control {
                    format!("{} false positive(s)", graded.false_positives)
                } else {
                    format!(
                        "detected {} · {} · mitigated {}",
                        ms(graded.time_to_detect_ms),
                        graded
                            .diagnosed_as
                            .clone()
                            .unwrap_or_else(|| "no diagnosis".into()),
                        ms(graded.time_to_mitigate_ms)
                    )
                },
                graded
                    .error
                    .as_deref()
                    .map(|e| format!(" — failed: {e}"))
                    .unwrap_or_default()
            );
            report_line(&bar, line);
            grades.push(graded);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    write_report(
        &options.out,
        &build_report(
            &format!("{:?}", options.subject).to_lowercase(),
            &brain.name(),
            false,
            grades,
        ),
    )
}

/// `eval --replay DIR`: the recorded flights put to a brain, graded on root cause and action.
pub async fn replay(dir: &Path, options: EvalOptions) -> Result<()> {
    let brain = crate::brains::choose(&options.brain).map_err(|e| crate::user_error!("{e}"))?;
    let runbook = deploy::runbook(options.subject)?;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir.join("flights"))
        .wrap_err_with(|| {
            format!(
                "reading {}/flights (written by an earlier eval)",
                dir.display()
            )
        })?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    struct Quiet;
    impl operator_protocol::ReasoningSink for Quiet {
        fn emit(&self, _: operator_protocol::ReasoningEvent) {}
    }
    let mut grades = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let file: FlightFile = serde_json::from_str(&std::fs::read_to_string(path)?)
            .wrap_err_with(|| format!("reading {}", path.display()))?;
        let tools = ReplayedTools {
            specs: file.flight.context.tools.clone(),
            exchanges: file.flight.tools,
        };
        let result = brain.diagnose(&file.flight.context, &tools, &Quiet).await;
        let (category, actions, error) = match &result {
            Ok(d) => (
                Some(d.root_cause.category.clone()),
                d.recommended_actions
                    .iter()
                    .map(|a| a.action.clone())
                    .collect::<Vec<_>>(),
                None,
            ),
            Err(e) => (None, vec![], Some(e.to_string())),
        };
        let allowed = grade::allowed_actions(&runbook, &file.expected_invariant, &file.root_cause);
        let cost = result.as_ref().map(|d| d.cost.clone()).unwrap_or_default();
        let confidence = result.as_ref().ok().map(|d| d.confidence);
        grades.push(Grade {
            scenario: file.scenario.clone(),
            run: i as u32 + 1,
            control: false,
            detected: true,
            time_to_detect_ms: None,
            root_cause_correct: category.as_deref() == Some(file.root_cause.as_str()),
            diagnosed_as: category,
            action_appropriate: !actions.is_empty() && actions.iter().all(|a| allowed.contains(a)),
            mitigated: false,
            time_to_mitigate_ms: None,
            false_positives: 0,
            // Nothing runs in a replay.
            harmful_actions: 0,
            undos: 0,
            rollbacks: 0,
            residue: 0,
            confidence,
            tool_calls: cost.tool_calls,
            tokens: cost.input_tokens + cost.output_tokens,
            usd: cost.usd,
            brain: brain.name(),
            error,
        });
    }
    if grades.is_empty() {
        return Err(crate::user_error!(
            "no flights in {}/flights",
            dir.display()
        ));
    }
    let out = dir.join(format!("replay-{}", brain.name().replace(' ', "-")));
    write_report(
        &out,
        &build_report(
            &format!("{:?}", options.subject).to_lowercase(),
            &brain.name(),
            true,
            grades,
        ),
    )
}
