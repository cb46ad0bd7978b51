//! `llm-gateway` binary (placeholder until the CLI lands).
fn main() {}
