//! The LLM gateway (issue 3): not built yet.
//!
//! This crate is a placeholder so the workspace has the layout of `DESIGN.md`. It exports nothing and
//! ships no binary, so nothing here can be mistaken for a working gateway.
