//! operator-tui's integration tests, one binary: the workspace is linked once, not once per
//! file. Tests that start a cluster, containers or a terminal first take a place among the
//! heavy tests (`support::heavy(group)`, or `support::one_cluster_at_a_time()` where even the
//! tests of one group must not overlap); the light ones run beside them.

mod support;

mod anthropic_brain;
mod as_people_run_it;
mod cli;
mod docker_target;
mod engine;
mod eval;
mod generated;
mod local_target;
mod never_worse;
mod openai_brain;
mod premises;
mod ratelimiter_loop;
mod readme;
mod rollback;
mod sensing;
mod tikv_attached;
mod tikv_docker;
mod tikv_loop;
mod tui_terminal;
mod undo;
mod worth;
