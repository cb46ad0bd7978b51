//! `llm-scenarios`: declarative YAML outage scenarios for the LLM gateway, their runner, the standard suite and
//! the reports (console, JSON journal, JUnit XML, HTML with an SVG timeline).
//!
//! # Layout
//! - [`format`]: the scenario format, parsed strictly (`raw`) then validated (`validate`); [`format::bound`]
//!   holds the small languages of `expect:` (bounds, metric selectors).
//! - [`gateway_config`]: the gateway config of a scenario (file + overrides), checked by the gateway's loader.
//! - [`stand`]: fakes, chaos proxies and the gateway, in process on port 0 (or at URLs).
//! - [`faults`]: applying and removing a phase's faults; the rollback that always runs.
//! - [`load`]: the load generator and what each request looked like to the client ([`load::Sample`]).
//! - [`metrics`]: Prometheus text parsing and selector sums; [`evaluate`]: measured values against bounds.
//! - [`runner`]: steady state, phases, rollback, steady state again; [`report`]: the outputs.
//! - [`cli`]: the `llm-scenarios` commands (`run`, `validate`, `list`, `rehearse`); [`rehearse`]: the stand kept up.

pub mod cli;
pub mod evaluate;
pub mod faults;
pub mod format;
pub mod gateway_config;
pub mod load;
pub mod metrics;
pub mod progress;
pub mod rehearse;
pub mod report;
pub mod runner;
pub mod stand;

pub use format::{load as load_scenario, FormatError, Scenario};
pub use runner::{run_all, run_scenario, RunOptions};
