//! Benchmarks for the workspace (issue 7 builds the load benchmark; the fakes' throughput bench lives in
//! `benches/benches/`).
