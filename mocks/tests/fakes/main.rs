//! Integration tests of the fakes over real HTTP: every route, stream format and fault of every provider.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod admin;
mod common;
mod dashscope;
mod faults;
mod gigachat;
mod ollama;
mod openai;
mod responses;
mod sdk;
mod streaming;
mod structured;
