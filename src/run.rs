//! `run`, `check` and `chaos inject`: the commands that need a live cluster.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use color_eyre::eyre::Result;
use operator_protocol::{ChaosRequest, Health};

use crate::brains::BrainChoice;
use crate::clock::{Clock, SystemClock};
use crate::deploy::{self, DeploySpec, SubjectName};
use crate::engine::{ConfidenceGates, Engine, EngineConfig};
use crate::events::{Command, EngineEvent};
use crate::store::{ChaosRecord, Store};

/// Resolves on Ctrl-C or SIGTERM, so children are stopped either way.
pub async fn interrupted() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// What a run is asked to do, whichever front end shows it.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub subject: DeploySpec,
    pub headless: bool,
    /// Written to the store at start; `None` keeps the stored mode.
    pub mode: Option<crate::model::Mode>,
    pub brain: BrainChoice,
    pub gates: ConfidenceGates,
    pub tick_ms: u64,
    /// How long a cause that may pass by itself is watched before anything disruptive runs.
    pub watch: Duration,
    /// Stop after this many seconds.
    pub duration: Option<f64>,
    /// Inject this chaos once the cluster is healthy.
    pub inject: Option<String>,
    /// Play the demo chapters unattended and quit after the last.
    pub autoplay: bool,
    /// Record the session as an asciicast.
    pub record: Option<std::path::PathBuf>,
    /// Demo chapters instead of the subject's own.
    pub chapters: Option<std::path::PathBuf>,
    /// Never act, never inject chaos.
    pub read_only: bool,
    /// The cluster's name for the people watching, and how careful to be with it.
    pub context: Option<Context>,
    /// Characters a second the TUI streams reasoning at (0: as it comes); display only.
    pub pacing: u32,
    /// Draw colours (false for NO_COLOR and --color never).
    pub colors: bool,
    /// Headless: print every engine event as a JSON line instead of text.
    pub json: bool,
}

/// A context: the name of the cluster, its colour, and whether it asks for its name to be
/// typed before anything disruptive (the TUI's header label is the same data).
pub use operator_widgets::view::ContextLabel as Context;

/// What `run` needs before any front end attaches: the brain, the cluster, and the engine
/// built on them (not started, so a front end can subscribe first).
pub struct Prepared {
    pub brain: Arc<dyn operator_protocol::Brain>,
    pub deployment: deploy::Deployment,
    pub engine: Engine,
    /// This engine's hold on the database, for as long as the run lasts.
    pub claim: crate::store::EngineClaim,
}

impl Prepared {
    /// What the deployment could not set up, as notices to whoever subscribed: call it after
    /// subscribing and before starting the engine.
    pub fn announce_warnings(&self) {
        let events = self.engine.events();
        for warning in &self.deployment.warnings {
            let _ = events.send(EngineEvent::Notice(format!("warning: {warning}")));
        }
    }
}

/// Takes the database for this engine (refused while another runs on it, or when it belongs to
/// another subject), adopts the context it belongs to when none was given, and asks for a
/// protected context's name before any unattended chaos; then brings the cluster up.
pub async fn prepare(args: &mut RunOptions, db: &Path, state_dir: &Path) -> Result<Prepared> {
    let brain = crate::brains::choose(&args.brain).map_err(|e| crate::user_error!("{e}"))?;
    let mut store = Store::open(db)?;
    let (claim, context) = crate::store::EngineClaim::take(
        db,
        &mut store,
        &crate::store::Claimant {
            subject: args.subject.subject.as_str().to_string(),
            description: format!(
                "{} · {}",
                args.subject.subject.as_str(),
                args.subject.target.as_str()
            ),
            context: args.context.as_ref().map(|c| (c.name.clone(), c.protected)),
        },
    )?;
    if args.context.is_none() {
        args.context = context.map(|c| Context {
            name: c.name,
            color: None,
            protected: c.protected,
        });
    }
    if let Some(context) = args.context.as_ref().filter(|c| c.protected) {
        if args.autoplay {
            return Err(crate::user_error!(
                "--autoplay injects faults unattended, which the protected context {} never allows: play the demo on another context, with a database of its own (--db PATH; {} belongs to {})",
                context.name,
                db.display(),
                context.name
            ));
        }
        if let Some(fault) = &args.inject {
            confirm_context(&context.name, &format!("inject {fault}"))?;
        }
    }
    let deployment =
        deploy::bring_up(&args.subject, state_dir, &|line| eprintln!("  {line}")).await?;
    let config = EngineConfig {
        tick: Duration::from_millis(args.tick_ms.max(10)),
        watch_period: args.watch,
        mode: args.mode,
        confidence_gates: args.gates,
        read_only: args.read_only,
        cluster: deployment.cluster_id.clone(),
        ..EngineConfig::default()
    };
    let engine = Engine::new(
        deployment.subject.clone(),
        deployment.target.clone(),
        brain.clone(),
        store,
        Arc::new(SystemClock),
        config,
    );
    Ok(Prepared {
        brain,
        deployment,
        engine,
        claim,
    })
}

/// On a protected context, something disruptive goes on only once the context's name is typed
/// (at a terminal) or given in OPERATOR_CONFIRM_CONTEXT (in a script).
pub fn confirm_context(name: &str, what: &str) -> Result<()> {
    let given = match std::env::var("OPERATOR_CONFIRM_CONTEXT") {
        Ok(given) => given,
        Err(_) if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
            eprint!("{name} is a protected context: type its name to {what}: ");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line
        }
        Err(_) => {
            return Err(crate::user_error!(
                "{name} is a protected context: set OPERATOR_CONFIRM_CONTEXT={name} to {what} from a script"
            ));
        }
    };
    if given.trim() == name {
        Ok(())
    } else {
        Err(crate::user_error!(
            "not done: {:?} is not the context's name ({name})",
            given.trim()
        ))
    }
}

pub async fn run_headless(mut args: RunOptions, db: &Path, state_dir: &Path) -> Result<()> {
    let prepared = prepare(&mut args, db, state_dir).await?;
    let events = prepared.engine.events();
    let printer = if args.json {
        tokio::spawn(crate::frontends::headless::print_events_json(
            events.subscribe(),
        ))
    } else {
        tokio::spawn(crate::frontends::headless::print_events(events.subscribe()))
    };
    prepared.announce_warnings();
    let Prepared {
        brain,
        deployment,
        engine,
        claim: _claim,
    } = prepared;
    eprintln!(
        "  {} · brain {} · database {}",
        deployment.description,
        brain.name(),
        db.display()
    );
    // Which cluster, and how careful: on stdout, where a log of the run keeps it.
    let mut label = Vec::new();
    if let Some(context) = &args.context {
        label.push(format!(
            "context {}{}",
            context.name,
            if context.protected {
                " (protected)"
            } else {
                ""
            }
        ));
    }
    if args.read_only {
        label.push("READ-ONLY: nothing is run, no chaos is injected".to_string());
    }
    if args.json {
        let run = serde_json::json!({ "event": "run", "data": {
            "cluster": deployment.description,
            "brain": brain.name(),
            "context": args.context.as_ref().map(|c| &c.name),
            "protected": args.context.as_ref().is_some_and(|c| c.protected),
            "read_only": args.read_only,
        }});
        println!("{run}");
    } else if !label.is_empty() {
        println!("{}", label.join(" · "));
    }
    let handle = engine.start();
    if let Some(name) = args.inject.clone() {
        let commands = handle.commands.clone();
        let mut watch = events.subscribe();
        tokio::spawn(async move {
            // Inject once the cluster is seen whole and quiet.
            while let Ok(event) = watch.recv().await {
                if let EngineEvent::Observed {
                    observation,
                    violations,
                } = event
                    && violations.is_empty()
                    && observation
                        .nodes
                        .iter()
                        .all(|n| n.health == Health::Healthy)
                {
                    let _ = commands
                        .send(Command::InjectChaos(ChaosRequest {
                            name,
                            params: Default::default(),
                        }))
                        .await;
                    break;
                }
            }
        });
    }
    match args.duration {
        Some(seconds) => {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(seconds)) => {}
                _ = interrupted() => {}
            }
        }
        None => interrupted().await,
    }
    eprintln!("{}", deployment.stopping());
    handle.shutdown().await?;
    printer.abort();
    drop(deployment);
    Ok(())
}

/// `ask`: one question to the brain, its reasoning streamed to stdout, then the answer.
pub async fn ask(
    question: String,
    subject: &DeploySpec,
    brain: &BrainChoice,
    state_dir: &Path,
) -> Result<()> {
    /// Streams the reasoning as it comes; remembers whether the answer was among it.
    struct Stdout(std::sync::atomic::AtomicBool);
    impl operator_protocol::ReasoningSink for Stdout {
        fn emit(&self, event: operator_protocol::ReasoningEvent) {
            use std::io::Write;
            match event {
                operator_protocol::ReasoningEvent::Text { text } => {
                    self.0.store(true, std::sync::atomic::Ordering::Relaxed);
                    print!("{text}")
                }
                operator_protocol::ReasoningEvent::ToolCall { tool, args } => {
                    println!("\n  → {tool} {args}")
                }
                _ => {}
            }
            let _ = std::io::stdout().flush();
        }
    }
    let brain = crate::brains::choose(brain).map_err(|e| crate::user_error!("{e}"))?;
    if !brain.answers_questions() {
        return Err(crate::user_error!(
            "the {} brain diagnoses tickets from the runbook and answers no free questions: use --brain anthropic (ANTHROPIC_API_KEY) or --brain openai (OPENAI_BASE_URL)",
            brain.name()
        ));
    }
    let deployment = deploy::connect(subject, state_dir).await?;
    let observation = deployment.subject.observe().await.ok();
    let context = operator_protocol::QuestionContext {
        subject: deployment.subject.name().to_string(),
        question,
        observation,
        runbook: deployment.subject.runbook(),
        actions: deployment.subject.actions(),
        tools: deployment.subject.tools(),
    };
    eprintln!("asking {}", brain.name());
    let tools = crate::engine::SubjectTools(deployment.subject.clone(), deployment.target.clone());
    let stdout = Stdout(Default::default());
    let answer = brain
        .ask(&context, &tools, &stdout)
        .await
        .map_err(|e| crate::user_error!("{e}"))?;
    // A brain that streamed its answer has printed it already; one that did not says it now.
    if stdout.0.load(std::sync::atomic::Ordering::Relaxed) {
        println!();
    } else {
        println!("{answer}");
    }
    Ok(())
}

/// One observation; exit status 1 when any invariant is broken.
pub async fn check_once(args: &DeploySpec, state_dir: &Path, json: bool) -> Result<bool> {
    let deployment = deploy::connect(args, state_dir).await?;
    // Rates and percentiles come from deltas: a first look, a second one a second later.
    deployment
        .subject
        .observe()
        .await
        .map_err(|e| crate::user_error!("observing: {e}"))?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let observation = deployment
        .subject
        .observe()
        .await
        .map_err(|e| crate::user_error!("observing: {e}"))?;
    let violations = deployment.subject.check(&observation);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "observation": observation, "violations": violations })
            )?
        );
    } else {
        for n in &observation.nodes {
            println!("{:<8} {:?}", n.id, n.health);
        }
        if violations.is_empty() {
            println!("every invariant holds");
        }
        for v in &violations {
            println!("VIOLATED {} on {}: {}", v.invariant, v.target, v.message);
        }
    }
    Ok(violations.is_empty())
}

pub fn chaos_list(subject: SubjectName, json: bool) -> Result<()> {
    let specs = deploy::chaos_catalog(subject)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&specs)?);
        return Ok(());
    }
    for (i, c) in specs.iter().enumerate() {
        println!(
            "{}. {:<14} {} → breaks {}, root cause {}",
            i + 1,
            c.name,
            c.description,
            c.expected_invariant,
            c.root_cause
        );
    }
    Ok(())
}

pub async fn chaos_inject(
    subject: SubjectName,
    name: String,
    params: Vec<(String, serde_json::Value)>,
    db: &Path,
    state_dir: &Path,
) -> Result<()> {
    let request = ChaosRequest {
        name: name.clone(),
        params: params.into_iter().collect(),
    };
    // Checked before a cluster is even looked for: a typo is the first thing to hear about.
    operator_protocol::check_chaos(&deploy::chaos_catalog(subject)?, &request, None)
        .map_err(|refusal| crate::user_error!("{refusal}"))?;
    let deployment = deploy::attach(subject, state_dir)?;
    let started_ms = SystemClock.now_ms();
    let outcome = deployment
        .subject
        .inject(&request, &*deployment.target)
        .await
        .map_err(|e| crate::user_error!("{e}"))?;
    let spec = deployment
        .subject
        .chaos()
        .into_iter()
        .find(|c| c.name == name);
    let record = ChaosRecord {
        at_ms: outcome.effective_ms.unwrap_or(started_ms),
        name,
        target: outcome.target.clone(),
        root_cause: spec
            .as_ref()
            .map(|s| s.root_cause.clone())
            .unwrap_or_default(),
        expected_invariant: spec.map(|s| s.expected_invariant).unwrap_or_default(),
    };
    Store::open(db)?.record_chaos(deployment.subject.name(), &record, &outcome.summary)?;
    println!("{}", outcome.summary);
    Ok(())
}
