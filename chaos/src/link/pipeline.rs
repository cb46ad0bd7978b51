//! One direction of a connection: reads chunks, runs them through the toxic chain, writes them out.
//!
//! A single task does it all as a state machine whose every await is cancel-safe (a read, a `write`, a sleep
//! until a stored instant), so it can keep reading while a chunk waits in a toxic: chunks are stamped when read
//! and latency pipelines. A chain change interrupts the waits of the toxics that changed, and the pieces in
//! flight continue through the new chain from the toxic they had reached, so adding, updating or removing a
//! toxic affects live connections, as in Toxiproxy.
//!
//! While the chain is empty (on Linux) the link takes a zero-copy path instead: `splice(2)` moves the bytes source
//! -> pipe -> destination without copying them through user space ([`super::splice`]), driven by the same
//! readiness and the same stop, kill and chain-change signals, and never holding more than the pipe does. A toxic
//! added on a live link ends that path at once: what the pipe still holds is read out and goes through the new
//! chain like any chunk read ahead, so counters stay exact and the toxic sees every byte not yet written. When the
//! chain is empty again and nothing is in flight, the link goes back to splicing. Elsewhere, or when no pipe can be
//! made, the link copies through user space as with toxics.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};

#[cfg(target_os = "linux")]
use super::splice::{Fill, Pipe};
use super::Stop;
use crate::rng::Rng;
use crate::toxics::stage::{Chain, OnChunk, OnEof, Stages};
use crate::toxics::{Piece, Wait};

/// Read sizes: a link starts small, doubles its read size whenever a read fills the buffer and halves it when
/// reads come back small, so idle connections stay cheap and bulk transfers make few syscalls. Each chunk is read straight into its own buffer
/// (no zeroing, no copy), and written buffers are reused.
const READ_MIN: usize = 16 * 1024;
const READ_MAX: usize = 1024 * 1024;
/// Chunks smaller than this give their spare capacity back, so a queue of small chunks stays small.
const SHRINK_BELOW: usize = 8 * 1024;
/// Read-ahead while chunks wait in toxics (Toxiproxy's latency buffer holds 1024 chunks), in chunks and bytes.
const QUEUE_CHUNKS: usize = 1024;
const QUEUE_BYTES: usize = 8 * 1024 * 1024;

/// How the link ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Input ended: half-close the destination.
    Eof,
    /// A toxic closes the link: close the destination and tear the connection down.
    Close,
    /// Stopped from outside or the write failed: tear down without further ado.
    Abort,
}

/// Something on its way through the chain: data, the end of input, or the close after `limit_data`'s last byte
/// or `reset_peer`'s timeout. `next` is the index of the toxic it meets next; `wait` holds it before that.
#[derive(Debug)]
enum Item {
    Data {
        next: usize,
        wait: Wait,
        data: Vec<u8>,
        written: usize,
        read_at: Instant,
    },
    Eof {
        next: usize,
        wait: Wait,
    },
    Close {
        wait: Wait,
    },
}

impl Item {
    fn wait_mut(&mut self) -> &mut Wait {
        match self {
            Item::Data { wait, .. } | Item::Eof { wait, .. } | Item::Close { wait } => wait,
        }
    }

    fn next_mut(&mut self) -> Option<&mut usize> {
        match self {
            Item::Data { next, .. } | Item::Eof { next, .. } => Some(next),
            Item::Close { .. } => None,
        }
    }
}

/// What the state machine waits for next.
enum Step {
    /// Nothing to process: wait for input.
    Idle,
    /// The top item waits until then.
    Sleep(Instant),
    /// The top item is data that has passed every toxic.
    Write,
    /// The link is over.
    Done(Flow),
}

pub(super) struct Pipeline {
    source: OwnedReadHalf,
    dest: OwnedWriteHalf,
    chain: watch::Receiver<Arc<Chain>>,
    chain_open: bool,
    stop: Stop,
    kill: Arc<watch::Sender<bool>>,
    linger: Arc<AtomicBool>,
    rng: Rng,
    stages: Stages,
    /// Chunks read but not yet taken in (with their read time), then possibly the end of input.
    queue: VecDeque<(Vec<u8>, Instant)>,
    queued_bytes: usize,
    input_ended: bool,
    eof_queued: bool,
    /// The chunk being processed, as a stack of items (top = next to handle).
    work: Vec<Item>,
    /// A buffer to read into, kept between reads and recycled from written chunks.
    spare: Vec<u8>,
    read_size: usize,
    /// The pipe of the zero-copy path, kept for the link's life once made.
    #[cfg(target_os = "linux")]
    pipe: Option<Pipe>,
    /// Making a pipe failed: this link copies through user space.
    #[cfg(target_os = "linux")]
    pipe_failed: bool,
    received: u64,
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
        source: OwnedReadHalf,
        dest: OwnedWriteHalf,
        chain: watch::Receiver<Arc<Chain>>,
        stop: Stop,
        kill: Arc<watch::Sender<bool>>,
        linger: Arc<AtomicBool>,
        rng: Rng,
    ) -> Self {
        Self {
            source,
            dest,
            chain,
            chain_open: true,
            stop,
            kill,
            linger,
            rng,
            stages: Stages::default(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            input_ended: false,
            eof_queued: false,
            work: Vec::new(),
            spare: Vec::new(),
            read_size: READ_MIN,
            #[cfg(target_os = "linux")]
            pipe: None,
            #[cfg(target_os = "linux")]
            pipe_failed: false,
            received: 0,
            sent: 0,
        }
    }

    /// Runs until the link ends; returns the bytes received and sent.
    pub(super) async fn run(mut self) -> (u64, u64) {
        self.reload(false);
        let flow = loop {
            #[cfg(target_os = "linux")]
            if let Some(mut pipe) = self.zero_copy_pipe() {
                let ended = self.run_spliced(&mut pipe).await;
                self.pipe = Some(pipe);
                match ended {
                    Some(flow) => break flow,
                    None => continue,
                }
            }
            let step = self.step();
            if let Step::Done(flow) = step {
                break flow;
            }
            // Read ahead while toxics hold data; while the destination is slow to take what is ready, read at most
            // one chunk ahead so TCP backpressure reaches the source, as with Toxiproxy's unbuffered channels.
            let writing = matches!(step, Step::Write);
            let can_read = !self.input_ended
                && self.queue.len() < QUEUE_CHUNKS
                && self.queued_bytes < QUEUE_BYTES
                && (!writing || self.queue.is_empty());
            let spare = self.spare.capacity();
            if can_read && (spare < self.read_size || spare > 4 * self.read_size) {
                self.spare = Vec::with_capacity(self.read_size);
            }
            let sleep_at = match step {
                Step::Sleep(at) => Some(at),
                _ => None,
            };
            let pending: &[u8] = match self.work.last() {
                Some(Item::Data { data, written, .. }) if writing => &data[*written..],
                _ => &[],
            };
            let deadline = self.stages.close_deadline();
            tokio::select! {
                biased;
                () = self.stop.wait() => break Flow::Abort,
                () = sleep_opt(deadline) => break Flow::Close,
                changed = self.chain.changed(), if self.chain_open => {
                    if changed.is_err() {
                        self.chain_open = false;
                    } else if self.reload(true) {
                        break Flow::Close;
                    }
                }
                written = self.dest.write(pending), if writing => match written {
                    Ok(n) if n > 0 => self.wrote(n),
                    _ => break Flow::Abort,
                },
                () = sleep_opt(sleep_at), if sleep_at.is_some() => {
                    if let Some(top) = self.work.last_mut() {
                        *top.wait_mut() = Wait::None;
                    }
                }
                read = self.source.read_buf(&mut self.spare), if can_read => match read {
                    Ok(n) if n > 0 => self.took(n),
                    _ => self.input_ended = true,
                },
            }
        };
        let (received, sent) = (self.received, self.sent);
        self.end(flow).await;
        (received, sent)
    }

    /// The pipe for the zero-copy path, made on first use, when the chain is empty and nothing is in flight.
    #[cfg(target_os = "linux")]
    fn zero_copy_pipe(&mut self) -> Option<Pipe> {
        if self.stages.len() > 0 || !self.work.is_empty() || !self.queue.is_empty() || self.input_ended {
            return None;
        }
        if let Some(pipe) = self.pipe.take() {
            return Some(pipe);
        }
        if self.pipe_failed {
            return None;
        }
        match Pipe::new() {
            Ok(pipe) => Some(pipe),
            Err(error) => {
                tracing::debug!(%error, "No pipe for the zero-copy path; copying through user space.");
                self.pipe_failed = true;
                None
            }
        }
    }

    /// The zero-copy path: splices source -> pipe -> destination until the link ends (`Some`) or a toxic arrives
    /// (`None`, with what the pipe held queued for the chain). Like the copying path, it stops reading while the
    /// pipe is full, so backpressure reaches the source, and a read error counts as the end of input.
    #[cfg(target_os = "linux")]
    async fn run_spliced(&mut self, pipe: &mut Pipe) -> Option<Flow> {
        loop {
            let fill = !self.input_ended && pipe.has_room();
            let flush = pipe.held() > 0;
            if !fill && !flush {
                return Some(Flow::Eof);
            }
            tokio::select! {
                biased;
                () = self.stop.wait() => return Some(Flow::Abort),
                changed = self.chain.changed(), if self.chain_open => {
                    if changed.is_err() {
                        self.chain_open = false;
                        continue;
                    }
                    if self.reload(true) {
                        return Some(Flow::Close);
                    }
                    if self.stages.len() > 0 {
                        return match pipe.take_all() {
                            Ok(data) => {
                                if !data.is_empty() {
                                    self.enqueue(data);
                                }
                                None
                            }
                            Err(_) => Some(Flow::Abort),
                        };
                    }
                }
                ready = self.dest.as_ref().writable(), if flush => {
                    if ready.is_err() || !self.flush(pipe) {
                        return Some(Flow::Abort);
                    }
                }
                ready = self.source.as_ref().readable(), if fill => {
                    let filled = match ready {
                        Ok(()) => pipe.fill_from(self.source.as_ref()),
                        Err(e) => Err(e),
                    };
                    match filled {
                        Ok(Fill::Moved(n)) => {
                            self.received += n as u64;
                            // The destination is usually ready: pass the bytes on without another round.
                            if !self.flush(pipe) {
                                return Some(Flow::Abort);
                            }
                        }
                        Ok(Fill::Full) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Ok(Fill::End) | Err(_) => self.input_ended = true,
                    }
                }
            }
        }
    }

    /// Splices what the pipe holds to the destination as far as it takes it now; `false` if the write failed.
    #[cfg(target_os = "linux")]
    fn flush(&mut self, pipe: &mut Pipe) -> bool {
        match pipe.flush_to(self.dest.as_ref()) {
            Ok(n) => {
                self.sent += n as u64;
                true
            }
            Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
        }
    }

    /// Queues the chunk just read into `spare`.
    fn took(&mut self, n: usize) {
        self.received += n as u64;
        if n >= self.read_size {
            self.read_size = (self.read_size * 2).min(READ_MAX);
        } else if n < self.read_size / 4 {
            self.read_size = (self.read_size / 2).max(READ_MIN);
        }
        let mut chunk = std::mem::take(&mut self.spare);
        if n < SHRINK_BELOW {
            chunk.shrink_to_fit();
        }
        self.enqueue(chunk);
    }

    /// Queues a chunk read and not yet sent through the chain.
    fn enqueue(&mut self, chunk: Vec<u8>) {
        self.queued_bytes += chunk.len();
        self.queue.push_back((chunk, Instant::now()));
    }

    /// Accounts `n` bytes written from the top item; recycles its buffer once it is all out.
    fn wrote(&mut self, n: usize) {
        self.sent += n as u64;
        if let Some(Item::Data { data, written, .. }) = self.work.last_mut() {
            *written += n;
            if *written >= data.len() {
                if let Some(Item::Data { mut data, .. }) = self.work.pop() {
                    let fits = (self.read_size..=2 * self.read_size).contains(&data.capacity());
                    if fits && self.spare.capacity() < self.read_size {
                        data.clear();
                        self.spare = data;
                    }
                }
            }
        }
    }

    /// Advances without waiting until something must be awaited.
    fn step(&mut self) -> Step {
        loop {
            let now = Instant::now();
            let len = self.stages.len();
            let Some(top) = self.work.last_mut() else {
                if let Some((data, read_at)) = self.queue.pop_front() {
                    self.queued_bytes -= data.len();
                    self.work.push(Item::Data {
                        next: 0,
                        wait: Wait::None,
                        data,
                        written: 0,
                        read_at,
                    });
                    continue;
                }
                if self.input_ended && !self.eof_queued {
                    self.eof_queued = true;
                    self.work.push(Item::Eof {
                        next: 0,
                        wait: Wait::None,
                    });
                    continue;
                }
                return Step::Idle;
            };
            let wait = top.wait_mut();
            let until = match *wait {
                Wait::None => None,
                Wait::Until(at) => Some(at),
                Wait::For(d) => now.checked_add(d),
            };
            match until {
                Some(at) if at > now => {
                    *wait = Wait::Until(at);
                    return Step::Sleep(at);
                }
                _ => *wait = Wait::None,
            }
            match top {
                Item::Data {
                    next, data, written, ..
                } if *next >= len => {
                    if *written < data.len() {
                        return Step::Write;
                    }
                    self.work.pop();
                    continue;
                }
                Item::Eof { next, .. } if *next >= len => return Step::Done(Flow::Eof),
                Item::Close { .. } => return Step::Done(Flow::Close),
                _ => {}
            }
            match self.work.pop() {
                Some(Item::Data {
                    next,
                    mut data,
                    written,
                    read_at,
                    ..
                }) => {
                    // Only what was not yet written goes on (a partly written chunk is never reprocessed whole).
                    data.drain(..written.min(data.len()));
                    let pieces = match self.stages.on_chunk(next, data, read_at, &mut self.rng) {
                        OnChunk::Drop => continue,
                        OnChunk::Forward(pieces) => pieces,
                        OnChunk::ForwardThenClose(pieces) => {
                            self.work.push(Item::Close { wait: Wait::None });
                            pieces
                        }
                    };
                    self.work
                        .extend(pieces.into_iter().rev().map(|Piece { wait, data }| Item::Data {
                            next: next + 1,
                            wait,
                            data,
                            written: 0,
                            read_at,
                        }));
                }
                Some(Item::Eof { next, .. }) => match self.stages.on_eof(next) {
                    OnEof::Forward(delay) => {
                        let wait = delay.map_or(Wait::None, Wait::For);
                        self.work.push(Item::Eof { next: next + 1, wait });
                    }
                    OnEof::CloseAt(at) => self.work.push(Item::Close {
                        wait: Wait::Until(at),
                    }),
                },
                _ => {}
            }
        }
    }

    /// Takes the latest chain; marks the connection for RST if it holds `reset_peer`. With `live`, moves the
    /// items in flight onto the new chain. Returns whether a removed toxic closes the link.
    fn reload(&mut self, live: bool) -> bool {
        let chain = self.chain.borrow_and_update().clone();
        let change = self.stages.apply(&chain, &mut self.rng, Instant::now());
        if self.stages.has_reset_peer() {
            self.linger.store(true, Ordering::Release);
        }
        if live {
            for item in &mut self.work {
                let Some(next) = item.next_mut() else { continue };
                let (moved, keep_wait) = self.stages.remap(&change, *next);
                *next = moved;
                if !keep_wait {
                    *item.wait_mut() = Wait::None;
                }
            }
        }
        change.close
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
            let _ = self.source.as_ref().set_zero_linger();
        }
        self.kill.send_replace(true);
        // No FIN on drop: each socket closes (with RST under linger 0) when its other half goes too.
        self.dest.forget();
    }
}
