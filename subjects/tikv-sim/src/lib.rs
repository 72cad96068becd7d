//! A PD-compatible simulator of a TiKV cluster, for machines without TiKV images: a model of
//! stores, regions and PD members (`model`), PD's HTTP API and each store's status server over
//! it (`server`, or `in_process` without sockets on a simulated clock), one store as a process of its own (`store_process`), and the deployment
//! target that drives its chaos controls (`target`). The TiKV subject talks to it over PD's
//! HTTP API only, so the subject's code path is the real one. It shares no type with the
//! subject's PD client on purpose: a client bug cannot hide behind a shared type.

pub mod disturb;
pub mod drills;
pub mod in_process;
pub mod model;
pub mod server;
pub mod store_process;
pub mod target;
