//! A PD-compatible simulator of a TiKV cluster, for machines without TiKV images. The subject
//! talks to it over PD's HTTP API only, so its code path is the real one.

pub mod model;
pub mod server;
pub mod store_process;
