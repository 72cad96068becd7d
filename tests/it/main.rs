//! operator-tui's integration tests, one binary: linking the whole workspace once instead of
//! once per file is most of what `cargo test` costs on two cores. Tests that start a cluster,
//! containers or a terminal take `support::one_cluster_at_a_time()` first.

mod support;

mod anthropic_brain;
mod cli;
mod docker_target;
mod engine;
mod eval;
mod local_target;
mod openai_brain;
mod ratelimiter_loop;
mod tikv_attached;
mod tikv_docker;
mod tikv_loop;
mod tui_terminal;
