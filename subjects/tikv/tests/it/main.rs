//! The TiKV subject's integration tests, one binary: the PD client, Prometheus, the simulator
//! and the subject against it, all over real HTTP on loopback.

mod pd_client;
mod prometheus;
mod simulator;
mod subject;
