//! operator-tui's TiKV subject. So far: the client for PD's HTTP API, with PD's exact shapes
//! (see the team's reference `pd-api.md`). Invariants, actions, chaos, the runbook and the
//! PD-compatible simulator come next.

pub mod pd;
