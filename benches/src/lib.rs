//! Benchmarks of the workspace: the open-loop load benchmark (`llm-benches load`) and, under `benches/`,
//! criterion micro-benchmarks.
//!
//! # Layout
//! - [`cpus`]: the load and the server under test on disjoint CPUs (`--cpus isolated`, the default).
//! - [`procs`]: the servers under test as child processes (fake, bare forwarder, gateway), their readiness
//!   and peak memory.
//! - [`forwarder`]: the bare forwarder, a few dozen lines of axum + pooled reqwest: the practical floor for
//!   any gateway on the machine.
//! - [`load`]: open-loop generation at a fixed arrival rate (latency measured from the intended send time,
//!   so there is no coordinated omission) and closed-loop throughput ceilings.
//! - [`peers`]: peer gateways (TensorZero, Portkey, LiteLLM) installed from their registries and run on
//!   loopback beside the gateway (`--peer`).
//! - [`streams`]: time to first token, time between chunks, memory per open stream.
//! - [`stats`]: latency percentiles.
//! - [`suite`]: the measurements of the load benchmark; [`report`]: its Markdown and JSON.

pub mod cpus;
pub mod forwarder;
pub mod load;
pub mod peers;
pub mod procs;
pub mod report;
pub mod stats;
pub mod streams;
pub mod suite;
