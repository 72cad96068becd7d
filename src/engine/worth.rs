//! The rule that weighs what an action buys against what it destroys, on spans the shell read
//! right before the action would run. Pure: the reads happen in the shell, the judgement here.

use operator_protocol::{ActionSpec, Millis, Span};

/// A span as it stands now: declared, or read from its tool.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lasting {
    Moment,
    For(Millis),
    UntilActedOn,
}

impl Lasting {
    /// A declared span as it stands; a measured one must be read (`None`).
    pub fn declared(span: &Span) -> Option<Self> {
        match span {
            Span::Moment => Some(Lasting::Moment),
            Span::UntilActedOn => Some(Lasting::UntilActedOn),
            Span::Measured { .. } => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Weighing {
    /// It runs.
    Worth,
    /// The trouble ends by itself in `for_ms` and the action would destroy more than that
    /// buys: wait for it to pass, saying so.
    Wait { for_ms: Millis, reason: String },
    /// Neither side ends by itself: only a person weighs a permanent loss.
    ForAPerson(String),
}

/// What the action weighs, read for this run.
pub struct Spans<'a> {
    pub trouble: Lasting,
    pub loss: Lasting,
    /// What ends when a measured trouble does ("the drift on demo-1 ends with its window").
    pub trouble_ends: Option<&'a str>,
}

/// Runs on its own when it destroys nothing lasting, or when the trouble would outlast what it
/// destroys by `factor` (a trouble that lasts until someone acts outlasts any finite loss).
pub fn weigh(spec: &ActionSpec, spans: &Spans, factor: f64) -> Weighing {
    let Some(destroys) = spec.destroys.as_deref() else {
        return Weighing::Worth;
    };
    let ends = |ms: Millis| {
        let what = spans.trouble_ends.unwrap_or("the trouble ends by itself");
        format!(
            "waiting: {what} in {:.1} s; {} would destroy {destroys}",
            ms as f64 / 1000.0,
            spec.name
        )
    };
    match (spans.trouble, spans.loss) {
        (_, Lasting::Moment) => Weighing::Worth,
        (Lasting::UntilActedOn, Lasting::For(_)) => Weighing::Worth,
        (Lasting::UntilActedOn, Lasting::UntilActedOn) => Weighing::ForAPerson(format!(
            "{} would destroy {destroys} for good, to end a trouble that lasts until someone acts: a person weighs that",
            spec.name
        )),
        (Lasting::For(trouble), Lasting::For(loss)) if trouble as f64 >= factor * loss as f64 => {
            Weighing::Worth
        }
        (Lasting::For(trouble), _) => Weighing::Wait {
            for_ms: trouble,
            reason: ends(trouble),
        },
        // A trouble over as it happens needs nothing that destroys.
        (Lasting::Moment, _) => Weighing::Wait {
            for_ms: 0,
            reason: ends(0),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use operator_protocol::Risk;

    fn destroying(what: Option<&str>) -> ActionSpec {
        ActionSpec {
            destroys: what.map(String::from),
            ..ActionSpec::new("reset_counter", "", vec![], Risk::Destructive)
        }
    }

    fn spans(trouble: Lasting, loss: Lasting) -> Spans<'static> {
        Spans {
            trouble,
            loss,
            trouble_ends: Some("the drift on demo-1 ends with its window"),
        }
    }

    #[test]
    fn an_action_that_destroys_nothing_lasting_is_worth_running() {
        let loses_nothing = destroying(None);
        assert_eq!(
            weigh(
                &loses_nothing,
                &spans(Lasting::For(10), Lasting::UntilActedOn),
                2.0
            ),
            Weighing::Worth
        );
        let loses_a_cache = destroying(Some("its cache"));
        assert_eq!(
            weigh(
                &loses_a_cache,
                &spans(Lasting::For(10), Lasting::Moment),
                2.0
            ),
            Weighing::Worth
        );
    }

    #[test]
    fn a_trouble_that_ends_by_itself_before_the_loss_does_is_waited_out_and_says_so() {
        let reset = destroying(Some("the key's count for the current window"));
        let equal = weigh(&reset, &spans(Lasting::For(3200), Lasting::For(3200)), 2.0);
        assert_eq!(
            equal,
            Weighing::Wait {
                for_ms: 3200,
                reason: "waiting: the drift on demo-1 ends with its window in 3.2 s; reset_counter would destroy the key's count for the current window".into()
            }
        );
        let forever = weigh(
            &reset,
            &spans(Lasting::For(3200), Lasting::UntilActedOn),
            2.0,
        );
        assert!(matches!(forever, Weighing::Wait { for_ms: 3200, .. }));
    }

    #[test]
    fn only_a_trouble_that_clearly_outlasts_the_loss_buys_it() {
        let reset = destroying(Some("a count"));
        assert_eq!(
            weigh(
                &reset,
                &spans(Lasting::For(20_000), Lasting::For(10_000)),
                2.0
            ),
            Weighing::Worth
        );
        assert!(matches!(
            weigh(
                &reset,
                &spans(Lasting::For(19_999), Lasting::For(10_000)),
                2.0
            ),
            Weighing::Wait { .. }
        ));
        assert_eq!(
            weigh(
                &reset,
                &spans(Lasting::UntilActedOn, Lasting::For(60_000)),
                2.0
            ),
            Weighing::Worth
        );
    }

    #[test]
    fn a_permanent_loss_against_a_permanent_trouble_is_a_persons_call() {
        let wipe = destroying(Some("every count"));
        let weighed = weigh(
            &wipe,
            &spans(Lasting::UntilActedOn, Lasting::UntilActedOn),
            2.0,
        );
        let Weighing::ForAPerson(reason) = weighed else {
            panic!("{weighed:?}");
        };
        assert!(reason.contains("every count for good"), "{reason}");
    }
}
