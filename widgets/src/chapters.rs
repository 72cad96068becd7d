//! Demo chapters: a story told in steps (narrative, a fault after a countdown, what to wait
//! for). The same TOML drives live demos, `--autoplay` recordings and eval. Advancing is pure:
//! `tick` returns the fault to inject when a countdown ends.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChapterBook {
    pub subject: String,
    pub title: String,
    pub chapters: Vec<Chapter>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chapter {
    pub title: String,
    pub narrative: String,
    /// A chaos name from the subject's catalog, injected when the countdown ends.
    #[serde(default)]
    pub fault: Option<String>,
    /// Or a drill: a fault from outside the operator (not in its catalog or runbook, from the
    /// eval's unknown suite), started when the countdown ends and undone once the chapter's
    /// condition is met.
    #[serde(default)]
    pub drill: Option<String>,
    #[serde(default = "five")]
    pub countdown_s: u64,
    pub wait_for: WaitFor,
    /// Autoplay stays on a finished chapter this long, so a viewer can read it.
    #[serde(default = "five")]
    pub linger_s: u64,
}

fn five() -> u64 {
    5
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitFor {
    /// Every node healthy and no active ticket.
    Healthy,
    /// A ticket opened after the fault was resolved.
    Resolved,
    /// A ticket opened after the fault went to a human: the operator declined on evidence.
    NeedsAHuman,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The fault is injected at this time.
    Countdown { inject_at_ms: u64 },
    /// Waiting for the chapter's condition; the fault (if any) went in at `since_ms`.
    Waiting { since_ms: u64 },
    Done {
        at_ms: u64,
        /// False when autoplay stopped waiting (`AUTOPLAY_PATIENCE_MS`) without the condition.
        met: bool,
    },
}

/// How long autoplay waits for a chapter's condition before it says so and moves on: a fault
/// the operator never saw (a counter's drift that healed with its window before an
/// observation compared it, on a loaded machine) must not hold an unattended demo for ever.
pub const AUTOPLAY_PATIENCE_MS: u64 = 120_000;

/// Where the story is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChapterRun {
    pub book: Option<ChapterBook>,
    pub index: usize,
    pub phase: Option<Phase>,
    pub autoplay: bool,
    /// Autoplay ran past the last chapter.
    pub finished: bool,
}

/// What the rest of the screen says, for the chapter's wait condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub all_healthy: bool,
    pub active_tickets: usize,
    /// The newest ticket was opened then.
    pub opened_since: Option<u64>,
    /// A ticket opened at or after the given time has been resolved.
    pub resolved_since: Option<u64>,
    /// The newest ticket that went to a human on evidence was opened then.
    pub needs_a_human_since: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChapterEvent {
    Inject(String),
    StartDrill(String),
    StopDrill(String),
    /// Autoplay is through the last chapter.
    Finished,
}

impl ChapterRun {
    pub fn new(book: ChapterBook, autoplay: bool) -> Self {
        Self {
            book: Some(book),
            index: 0,
            phase: None,
            autoplay,
            finished: false,
        }
    }

    pub fn current(&self) -> Option<&Chapter> {
        self.book.as_ref()?.chapters.get(self.index)
    }

    pub fn len(&self) -> usize {
        self.book.as_ref().map(|b| b.chapters.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts chapter `index` at `now_ms`.
    pub fn enter(&mut self, index: usize, now_ms: u64) {
        let Some(chapter) = self.book.as_ref().and_then(|b| b.chapters.get(index)) else {
            return;
        };
        self.index = index;
        self.phase = Some(match chapter.fault.as_ref().or(chapter.drill.as_ref()) {
            Some(_) => Phase::Countdown {
                inject_at_ms: now_ms + chapter.countdown_s * 1000,
            },
            None => Phase::Waiting { since_ms: now_ms },
        });
    }

    pub fn next(&mut self, now_ms: u64) {
        if self.index + 1 < self.len() {
            self.enter(self.index + 1, now_ms);
        }
    }

    pub fn previous(&mut self, now_ms: u64) {
        self.enter(self.index.saturating_sub(1), now_ms);
    }

    /// Seconds left before the fault, for the countdown on screen.
    pub fn countdown_s(&self, now_ms: u64) -> Option<u64> {
        match self.phase? {
            Phase::Countdown { inject_at_ms } => {
                Some(inject_at_ms.saturating_sub(now_ms).div_ceil(1000))
            }
            _ => None,
        }
    }

    pub fn tick(&mut self, now_ms: u64, progress: Progress) -> Option<ChapterEvent> {
        let chapter = self.current()?.clone();
        if self.phase.is_none() {
            self.enter(self.index, now_ms);
        }
        match self.phase? {
            Phase::Countdown { inject_at_ms } if now_ms >= inject_at_ms => {
                self.phase = Some(Phase::Waiting { since_ms: now_ms });
                match chapter.drill {
                    Some(drill) => Some(ChapterEvent::StartDrill(drill)),
                    None => chapter.fault.map(ChapterEvent::Inject),
                }
            }
            Phase::Countdown { .. } => None,
            Phase::Waiting { since_ms } => {
                let met = match chapter.wait_for {
                    // After a fault, healthy means healthy again: the fault was seen first (a
                    // fault takes seconds to show, and the cluster looks healthy meanwhile).
                    WaitFor::Healthy => {
                        let faulted = chapter.fault.is_some() || chapter.drill.is_some();
                        progress.all_healthy
                            && progress.active_tickets == 0
                            && (!faulted || progress.opened_since.is_some_and(|t| t >= since_ms))
                    }
                    WaitFor::Resolved => progress.resolved_since.is_some_and(|t| t >= since_ms),
                    WaitFor::NeedsAHuman => {
                        progress.needs_a_human_since.is_some_and(|t| t >= since_ms)
                    }
                };
                let out_of_patience =
                    self.autoplay && now_ms >= since_ms.saturating_add(AUTOPLAY_PATIENCE_MS);
                if !met && !out_of_patience {
                    return None;
                }
                self.phase = Some(Phase::Done { at_ms: now_ms, met });
                // The person who did it undoes it; what the operator said stays on screen.
                chapter.drill.map(ChapterEvent::StopDrill)
            }
            Phase::Done { at_ms, .. }
                if self.autoplay && now_ms >= at_ms + chapter.linger_s * 1000 =>
            {
                if self.index + 1 < self.len() {
                    self.next(now_ms);
                    None
                } else if !self.finished {
                    self.finished = true;
                    Some(ChapterEvent::Finished)
                } else {
                    None
                }
            }
            Phase::Done { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> ChapterBook {
        ChapterBook {
            subject: "s".into(),
            title: "t".into(),
            chapters: vec![
                Chapter {
                    title: "calm".into(),
                    narrative: "".into(),
                    fault: None,
                    drill: None,
                    countdown_s: 0,
                    wait_for: WaitFor::Healthy,
                    linger_s: 1,
                },
                Chapter {
                    title: "fault".into(),
                    narrative: "".into(),
                    fault: Some("kill_node".into()),
                    drill: None,
                    countdown_s: 3,
                    wait_for: WaitFor::Resolved,
                    linger_s: 1,
                },
            ],
        }
    }

    const HEALTHY: Progress = Progress {
        all_healthy: true,
        active_tickets: 0,
        opened_since: None,
        resolved_since: None,
        needs_a_human_since: None,
    };

    #[test]
    fn autoplay_waits_counts_down_injects_waits_for_the_fix_and_finishes() {
        let mut run = ChapterRun::new(book(), true);
        assert_eq!(run.tick(0, HEALTHY), None);
        assert!(matches!(run.phase, Some(Phase::Done { .. })));
        assert_eq!(run.tick(1000, HEALTHY), None, "lingers, then moves on");
        assert_eq!(run.index, 1);
        assert_eq!(run.countdown_s(1000), Some(3));
        assert_eq!(run.tick(2000, HEALTHY), None);
        assert_eq!(
            run.tick(4000, HEALTHY),
            Some(ChapterEvent::Inject("kill_node".into()))
        );
        let before_fix = Progress {
            all_healthy: false,
            active_tickets: 1,
            opened_since: Some(4200),
            resolved_since: Some(1000),
            needs_a_human_since: None,
        };
        assert_eq!(run.tick(5000, before_fix), None);
        assert!(
            matches!(run.phase, Some(Phase::Waiting { .. })),
            "an older resolution does not count"
        );
        let fixed = Progress {
            all_healthy: true,
            active_tickets: 0,
            opened_since: Some(4200),
            resolved_since: Some(4500),
            needs_a_human_since: None,
        };
        run.tick(6000, fixed);
        assert!(matches!(run.phase, Some(Phase::Done { .. })));
        assert_eq!(run.tick(7000, fixed), Some(ChapterEvent::Finished));
        assert_eq!(run.tick(8000, fixed), None);
    }

    #[test]
    fn autoplay_moves_on_from_a_fault_it_never_sees_and_says_so() {
        let mut run = ChapterRun::new(book(), true);
        run.tick(0, HEALTHY);
        run.tick(1000, HEALTHY);
        assert_eq!(
            run.tick(4000, HEALTHY),
            Some(ChapterEvent::Inject("kill_node".into()))
        );
        // Nothing ever opens: the fault went unseen.
        assert_eq!(run.tick(4000 + AUTOPLAY_PATIENCE_MS - 1, HEALTHY), None);
        assert!(matches!(run.phase, Some(Phase::Waiting { .. })));
        run.tick(4000 + AUTOPLAY_PATIENCE_MS, HEALTHY);
        assert!(matches!(run.phase, Some(Phase::Done { met: false, .. })));
        assert_eq!(
            run.tick(4000 + AUTOPLAY_PATIENCE_MS + 1000, HEALTHY),
            Some(ChapterEvent::Finished)
        );
        // A person at the keys waits as long as they like.
        let mut by_hand = ChapterRun::new(book(), false);
        by_hand.next(0);
        by_hand.tick(0, HEALTHY);
        by_hand.tick(10_000, HEALTHY);
        by_hand.tick(10_000 + 10 * AUTOPLAY_PATIENCE_MS, HEALTHY);
        assert!(matches!(by_hand.phase, Some(Phase::Waiting { .. })));
    }

    #[test]
    fn a_drill_chapter_starts_its_drill_waits_for_a_human_and_undoes_it() {
        let mut book = book();
        book.chapters[1].fault = None;
        book.chapters[1].drill = Some("redis_password_set".into());
        book.chapters[1].wait_for = WaitFor::NeedsAHuman;
        let mut run = ChapterRun::new(book, true);
        run.enter(1, 0);
        assert_eq!(
            run.tick(3000, HEALTHY),
            Some(ChapterEvent::StartDrill("redis_password_set".into()))
        );
        let resolved_only = Progress {
            resolved_since: Some(3500),
            ..HEALTHY
        };
        assert_eq!(run.tick(4000, resolved_only), None, "it waits for a human");
        let handed_over = Progress {
            needs_a_human_since: Some(3500),
            ..HEALTHY
        };
        assert_eq!(
            run.tick(5000, handed_over),
            Some(ChapterEvent::StopDrill("redis_password_set".into()))
        );
        assert!(matches!(run.phase, Some(Phase::Done { .. })));
    }

    #[test]
    fn healthy_after_a_fault_waits_until_the_fault_was_seen() {
        let mut book = book();
        book.chapters[1].wait_for = WaitFor::Healthy;
        let mut run = ChapterRun::new(book, true);
        run.enter(1, 0);
        assert_eq!(
            run.tick(3000, HEALTHY),
            Some(ChapterEvent::Inject("kill_node".into()))
        );
        let old_ticket = Progress {
            opened_since: Some(1000),
            ..HEALTHY
        };
        assert_eq!(run.tick(3500, old_ticket), None);
        assert!(
            matches!(run.phase, Some(Phase::Waiting { .. })),
            "the cluster looks healthy before the fault shows"
        );
        let seen_and_fixed = Progress {
            opened_since: Some(3200),
            ..HEALTHY
        };
        run.tick(9000, seen_and_fixed);
        assert!(matches!(run.phase, Some(Phase::Done { .. })));
    }

    #[test]
    fn without_autoplay_a_done_chapter_stays_until_a_key() {
        let mut run = ChapterRun::new(book(), false);
        run.tick(0, HEALTHY);
        run.tick(60_000, HEALTHY);
        assert_eq!(run.index, 0);
        run.next(60_000);
        assert_eq!(run.index, 1);
        run.previous(61_000);
        assert_eq!(run.index, 0);
    }
}
