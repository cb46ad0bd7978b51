//! Limits: client API keys for the gateway itself (constant-time check, requests/min via governor, tokens/min),
//! and per-provider budgets the router consults before calling a provider.

pub mod budget;
mod clients;
pub mod window;

pub use budget::{BudgetStatus, ProviderBudgets};
pub use clients::{ClientId, ClientLimits, Denied};

/// Constant-time byte comparison (hand-written rather than a `subtle` dependency: one fold over the bytes is all
/// that is needed). Only the length may leak, which for random keys of a fixed format says nothing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimiser from turning the fold into an early-exit comparison.
    std::hint::black_box(diff) == 0
}
