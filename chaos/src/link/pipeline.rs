//! The toxic half of a link: takes timestamped chunks, runs them through the chain, writes them out.
//!
//! Pieces wait between toxics (latency, bandwidth, slicer); a chain change interrupts a wait, and the pieces in
//! flight continue through the new chain from the toxic they had reached, so adding, updating or removing a
//! toxic affects live connections, as in Toxiproxy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, Instant};

use super::{Input, Stop};
use crate::rng::Rng;
use crate::toxics::stage::{Chain, Change, OnChunk, OnEof, Stages};
use crate::toxics::{Piece, Wait};

/// How processing ended or goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Go,
    /// Input ended: half-close the destination.
    Eof,
    /// A toxic closes the link: close the destination and tear the connection down.
    Close,
    /// Stopped from outside or the write failed: tear down without further ado.
    Abort,
}

/// Why a wait ended.
enum Woke {
    Done,
    Chain(Change),
    Abort,
    Deadline,
}

/// A piece on its way through the chain, or the close that follows `limit_data`'s last byte.
enum Item {
    Data { next: usize, wait: Wait, data: Vec<u8> },
    Close,
}

pub(super) struct Pipeline {
    input: mpsc::Receiver<Input>,
    dest: OwnedWriteHalf,
    chain: watch::Receiver<Arc<Chain>>,
    chain_open: bool,
    stop: Stop,
    kill: Arc<watch::Sender<bool>>,
    linger: Arc<AtomicBool>,
    rng: Rng,
    stages: Stages,
    sent: u64,
}

async fn sleep_opt(deadline: Option<Instant>) {
    match deadline {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Pipeline {
    pub(super) fn new(
        input: mpsc::Receiver<Input>,
        dest: OwnedWriteHalf,
        chain: watch::Receiver<Arc<Chain>>,
        stop: Stop,
        kill: Arc<watch::Sender<bool>>,
        linger: Arc<AtomicBool>,
        rng: Rng,
    ) -> Self {
        let stages = Stages::default();
        Self {
            input,
            dest,
            chain,
            chain_open: true,
            stop,
            kill,
            linger,
            rng,
            stages,
            sent: 0,
        }
    }

    /// Runs until the link ends; returns the bytes written.
    pub(super) async fn run(mut self) -> u64 {
        self.reload();
        let flow = loop {
            let deadline = self.stages.close_deadline();
            let flow = tokio::select! {
                biased;
                () = self.stop.wait() => Flow::Abort,
                () = sleep_opt(deadline) => Flow::Close,
                changed = self.chain.changed(), if self.chain_open => {
                    if changed.is_err() {
                        self.chain_open = false;
                        Flow::Go
                    } else if self.reload().close {
                        Flow::Close
                    } else {
                        Flow::Go
                    }
                }
                input = self.input.recv() => match input {
                    Some(Input::Chunk(data, read_at)) => self.process(data, read_at).await,
                    Some(Input::Eof) | None => self.finish_input().await,
                },
            };
            if flow != Flow::Go {
                break flow;
            }
        };
        let sent = self.sent;
        self.end(flow).await;
        sent
    }

    /// Takes the latest chain; marks the connection for RST if it holds `reset_peer`.
    fn reload(&mut self) -> Change {
        let chain = self.chain.borrow_and_update().clone();
        let change = self.stages.apply(&chain, &mut self.rng, Instant::now());
        if self.stages.has_reset_peer() {
            self.linger.store(true, Ordering::Release);
        }
        change
    }

    async fn process(&mut self, data: Vec<u8>, read_at: Instant) -> Flow {
        let mut stack = vec![Item::Data {
            next: 0,
            wait: Wait::None,
            data,
        }];
        while let Some(item) = stack.pop() {
            let Item::Data { next, wait, data } = item else {
                return Flow::Close;
            };
            let until = match wait {
                Wait::None => None,
                Wait::Until(at) => (at > Instant::now()).then_some(at),
                Wait::For(d) => Instant::now().checked_add(d),
            };
            if let Some(until) = until {
                match self.sleep(until).await {
                    Woke::Done => {}
                    Woke::Abort => return Flow::Abort,
                    Woke::Deadline => return Flow::Close,
                    Woke::Chain(change) if change.close => return Flow::Close,
                    Woke::Chain(change) => {
                        stack.push(Item::Data {
                            next,
                            wait: Wait::Until(until),
                            data,
                        });
                        for item in &mut stack {
                            if let Item::Data { next, wait, .. } = item {
                                let (moved, keep_wait) = self.stages.remap(&change, *next);
                                *next = moved;
                                if !keep_wait {
                                    *wait = Wait::None;
                                }
                            }
                        }
                        continue;
                    }
                }
            }
            if next >= self.stages.len() {
                if let Err(flow) = self.write(&data).await {
                    return flow;
                }
                continue;
            }
            let pieces = match self.stages.on_chunk(next, data, read_at, &mut self.rng) {
                OnChunk::Drop => continue,
                OnChunk::Forward(pieces) => pieces,
                OnChunk::ForwardThenClose(pieces) => {
                    stack.push(Item::Close);
                    pieces
                }
            };
            stack.extend(pieces.into_iter().rev().map(|Piece { wait, data }| Item::Data {
                next: next + 1,
                wait,
                data,
            }));
        }
        Flow::Go
    }

    /// Passes the end of input through the chain (slow_close delays it, reset_peer turns it into a reset).
    async fn finish_input(&mut self) -> Flow {
        let mut i = 0;
        while i < self.stages.len() {
            let until = match self.stages.on_eof(i) {
                OnEof::Forward(None) => None,
                OnEof::Forward(Some(delay)) => Instant::now().checked_add(delay),
                OnEof::CloseAt(at) => {
                    return match self.sleep(at).await {
                        Woke::Abort => Flow::Abort,
                        _ => Flow::Close,
                    };
                }
            };
            if let Some(until) = until {
                match self.sleep(until).await {
                    Woke::Done => {}
                    Woke::Abort => return Flow::Abort,
                    Woke::Deadline => return Flow::Close,
                    Woke::Chain(change) if change.close => return Flow::Close,
                    Woke::Chain(_) => {}
                }
            }
            i += 1;
        }
        Flow::Eof
    }

    /// Waits until `until`, unless stopped, a toxic's close deadline passes, or the chain changes.
    async fn sleep(&mut self, until: Instant) -> Woke {
        loop {
            let deadline = self.stages.close_deadline();
            tokio::select! {
                biased;
                () = self.stop.wait() => return Woke::Abort,
                () = sleep_opt(deadline) => return Woke::Deadline,
                changed = self.chain.changed(), if self.chain_open => {
                    if changed.is_err() {
                        self.chain_open = false;
                    } else {
                        return Woke::Chain(self.reload());
                    }
                }
                () = sleep_until(until) => return Woke::Done,
            }
        }
    }

    async fn write(&mut self, data: &[u8]) -> Result<(), Flow> {
        let deadline = self.stages.close_deadline();
        let written = tokio::select! {
            biased;
            () = self.stop.wait() => return Err(Flow::Abort),
            () = sleep_opt(deadline) => return Err(Flow::Close),
            written = self.dest.write_all(data) => written,
        };
        match written {
            Ok(()) => {
                self.sent += data.len() as u64;
                Ok(())
            }
            Err(_) => Err(Flow::Abort),
        }
    }

    async fn end(mut self, flow: Flow) {
        let linger = self.linger.load(Ordering::Acquire);
        if !linger && matches!(flow, Flow::Eof | Flow::Close) {
            let _ = self.dest.shutdown().await;
        }
        if flow == Flow::Eof && !linger {
            // Half-close only: the other direction may still be talking.
            return;
        }
        if linger {
            let _ = self.dest.as_ref().set_zero_linger();
        }
        self.kill.send_replace(true);
        // Do not send a FIN on drop: the socket closes (with RST under linger 0) when its read half goes.
        self.dest.forget();
    }
}
