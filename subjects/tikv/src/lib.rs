//! operator-tui's TiKV subject. So far: the client for PD's HTTP API, with PD's exact shapes
//! (see the team's reference `pd-api.md`), the facts an observation holds and the invariants
//! over them. Observation, actions, chaos, the runbook and the PD-compatible simulator come next.

pub mod facts;
pub mod invariants;
pub mod pd;
pub mod sim;
