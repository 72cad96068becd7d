//! The full-screen front end: one select! loop over keys, engine events, a clock tick and a
//! frame budget. Keys become messages, `update` is pure, and only this loop runs effects.
//! Engine events are drained before a frame is drawn, so a model streaming hundreds of tokens
//! a second costs one redraw per frame, not one per token.

mod convert;
mod recording;
mod terminal;

use std::path::Path;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr};
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures::StreamExt;
use operator_protocol::ChaosRequest;
use operator_widgets::chapters::{ChapterBook, ChapterRun};
use operator_widgets::update::{Effect, EngineUpdate, Msg};
use operator_widgets::view::{ChaosEntry, Header, View};
use tokio::sync::broadcast::error::RecvError;

use crate::clock::{Clock, SystemClock};
use crate::engine::EngineHandle;
use crate::events::Command;
use crate::run::RunOptions;

const FRAME: Duration = Duration::from_millis(33);
const TICK: Duration = Duration::from_millis(250);

/// The chapters shipped for each subject, unless `--chapters` names another file.
fn chapters(args: &RunOptions) -> Result<ChapterBook> {
    let text = match &args.chapters {
        Some(path) => {
            std::fs::read_to_string(path).wrap_err_with(|| format!("reading {}", path.display()))?
        }
        None => crate::deploy::demo_chapters(args.subject.subject).to_string(),
    };
    toml::from_str(&text).wrap_err("the demo chapters do not parse")
}

fn wall_clock(ms: u64) -> String {
    let day = ms / 1000 % 86_400;
    format!("{:02}:{:02}:{:02} UTC", day / 3600, day / 60 % 60, day % 60)
}

pub async fn run_tui(mut args: RunOptions, db: &Path, state_dir: &Path) -> Result<()> {
    let book = chapters(&args)?;
    eprintln!("operator-tui: bringing the cluster up");
    let prepared = crate::run::prepare(&mut args, db, state_dir).await?;
    let mut events = prepared.engine.events().subscribe();
    prepared.announce_warnings();
    let crate::run::Prepared {
        brain,
        deployment,
        engine,
        claim: _claim,
    } = prepared;
    let handle = engine.start();
    let mut view = View {
        header: Header {
            subject: deployment.subject.name().to_string(),
            target: deployment.target.kind().to_string(),
            simulated: deployment.target.simulated(),
            brain: brain.name(),
            read_only: args.read_only,
            context: args.context.clone(),
            ..Header::default()
        },
        pacing: args.pacing,
        // Only what this target can inject: no partition offered on plain processes.
        chaos: crate::targets::injectable(deployment.subject.chaos(), &*deployment.target)
            .into_iter()
            .map(|c| ChaosEntry {
                name: c.name,
                description: c.description,
                breaks: c.expected_invariant,
            })
            .collect(),
        catalog: crate::engine::general_actions::catalog(&*deployment.subject),
        chapters: ChapterRun::new(book, args.autoplay),
        ..View::default()
    };
    let recorder = match &args.record {
        Some(path) => Some(recording::Recorder::create(
            path,
            "operator-tui",
            deployment.secrets(),
        )?),
        None => None,
    };
    let mut drills = DemoDrills {
        drills: deployment.drills.clone(),
        running: None,
    };
    let result = {
        let mut screen = terminal::Screen::enter(recorder, args.colors)?;
        let outcome = event_loop(&mut screen, &mut view, &handle, &mut events, &mut drills).await;
        screen.leave()?;
        outcome
    };
    // A drill a chapter started and did not get to undo is undone: nothing left behind.
    if let Some(name) = drills.running.take() {
        eprintln!("undoing drill {name}");
        drills.stop(&name).await;
    }
    eprintln!("{}", deployment.stopping());
    handle.shutdown().await?;
    drop(drills);
    drop(deployment);
    if let Some(path) = &args.record {
        eprintln!("recorded {}", path.display());
    }
    result
}

/// The drills demo chapters start and undo, and the one running now.
struct DemoDrills {
    drills: Option<std::sync::Arc<dyn operator_protocol::Drills>>,
    running: Option<String>,
}

impl DemoDrills {
    /// Starts a drill; the error, if any, is what to show.
    async fn start(&mut self, name: &str) -> Result<(), String> {
        let drills = self.drills.as_ref().ok_or_else(|| {
            format!("drill {name} needs a cluster operator-tui started here (not attached)")
        })?;
        drills
            .start(name)
            .await
            .map_err(|e| format!("drill {name}: {e}"))?;
        self.running = Some(name.to_string());
        Ok(())
    }

    async fn stop(&mut self, name: &str) -> Option<String> {
        self.running = None;
        let drills = self.drills.as_ref()?;
        drills
            .stop(name)
            .await
            .err()
            .map(|e| format!("undoing drill {name}: {e}"))
    }
}

async fn event_loop(
    screen: &mut terminal::Screen,
    view: &mut View,
    engine: &EngineHandle,
    events: &mut tokio::sync::broadcast::Receiver<crate::events::EngineEvent>,
    drills: &mut DemoDrills,
) -> Result<()> {
    let mut keys = EventStream::new();
    let mut frame = tokio::time::interval(FRAME);
    let mut tick = tokio::time::interval(TICK);
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut dirty = true;
    let interrupted = crate::run::interrupted();
    tokio::pin!(interrupted);
    loop {
        let mut effects = Vec::new();
        tokio::select! {
            key = keys.next() => match key {
                Some(Ok(Event::Key(key))) if key.kind == KeyEventKind::Press => {
                    if let Some(msg) = operator_widgets::handle_key(view, key) {
                        effects = operator_widgets::update(view, msg);
                    }
                    dirty = true;
                }
                Some(Ok(Event::Resize(width, height))) => {
                    screen.resized(width, height);
                    dirty = true;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e).wrap_err("reading the terminal"),
                None => break,
            },
            event = events.recv() => {
                match event {
                    Ok(event) => apply(view, event),
                    // The UI fell behind: ask for the state again rather than show a gap.
                    Err(RecvError::Lagged(_)) => engine.send(Command::Replay).await,
                    Err(RecvError::Closed) => break,
                }
                while let Ok(event) = events.try_recv() {
                    apply(view, event);
                }
                dirty = true;
            }
            _ = tick.tick() => {
                let now_ms = SystemClock.now_ms();
                effects = operator_widgets::update(view, Msg::Tick { now_ms, clock: wall_clock(now_ms) });
                dirty = true;
            }
            _ = frame.tick() => {
                if dirty {
                    screen.draw(view)?;
                    dirty = false;
                }
            }
            _ = &mut interrupted => break,
        }
        for effect in effects {
            if !run_effect(view, engine, drills, effect).await {
                return Ok(());
            }
        }
    }
    Ok(())
}

fn apply(view: &mut View, event: crate::events::EngineEvent) {
    if let Some(update) = convert::engine_update(event) {
        operator_widgets::update(view, Msg::Engine(update));
    }
}

/// Runs one effect; false means quit.
async fn run_effect(
    view: &mut View,
    engine: &EngineHandle,
    drills: &mut DemoDrills,
    effect: Effect,
) -> bool {
    match effect {
        Effect::Quit => return false,
        // A drill is a fault from outside: a read-only operator starts none.
        Effect::StartDrill(name) if view.header.read_only => {
            view.push_notice(format!("read-only: drill {name} not started"));
        }
        Effect::StartDrill(name) => {
            if let Err(e) = drills.start(&name).await {
                view.push_notice(e);
            }
        }
        Effect::StopDrill(name) => {
            if let Some(e) = drills.stop(&name).await {
                view.push_notice(e);
            }
        }
        Effect::InjectChaos(name) => {
            engine
                .send(Command::InjectChaos(ChaosRequest {
                    name,
                    params: Default::default(),
                }))
                .await
        }
        Effect::Approve(id) => {
            engine
                .send(Command::Approve(crate::model::ActionId(id)))
                .await
        }
        Effect::Reject(id) => {
            engine
                .send(Command::Reject(crate::model::ActionId(id)))
                .await
        }
        Effect::Undo(id) => engine.send(Command::Undo(crate::model::ActionId(id))).await,
        Effect::Pick(pick) => {
            let pick = crate::engine::HumanPick {
                ticket: crate::model::TicketId(pick.ticket),
                request: operator_protocol::ActionRequest {
                    action: pick.action,
                    params: pick.params,
                },
                override_for: pick.override_for,
            };
            engine.send(Command::Pick(pick)).await
        }
        Effect::SetMode(mode) => engine.send(Command::SetMode(mode)).await,
        Effect::KillSwitch(on) => engine.send(Command::KillSwitch(on)).await,
        Effect::Ask(question) => {
            operator_widgets::update(
                view,
                Msg::Engine(EngineUpdate::Answer(format!("asking: {question}…"))),
            );
            engine.send(Command::Ask(question)).await;
        }
    }
    true
}
