//! `llm-scenarios rehearse`: the stand on the design's ports, kept up until Ctrl-C, with scripts to try.

use std::path::Path;

/// Runs the rehearsal stand; returns the exit code.
pub async fn rehearse(_scenario: Option<&Path>, _chaos_url: Option<String>) -> u8 {
    eprintln!("rehearse: not implemented yet");
    2
}
