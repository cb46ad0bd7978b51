//! The zero-copy path of a link without toxics (Linux): bytes go socket -> pipe -> socket with `splice(2)` and
//! never enter user space.
//!
//! Each link owns one non-blocking pipe for its whole life. [`Pipe::fill_from`] splices what the source holds into
//! the pipe (never more than the pipe has room for, so TCP backpressure reaches the source as before) and
//! [`Pipe::flush_to`] splices it on to the destination; both run inside tokio's `try_io`, so a `WouldBlock`
//! clears the socket's readiness and the link awaits the next one. When a toxic arrives, [`Pipe::take_all`] reads
//! what the pipe still holds, and that data goes through the toxics like any chunk read but not yet written.
//!
//! `splice` to a socket whose peer has gone raises `SIGPIPE` (it has no `MSG_NOSIGNAL`); Rust programs ignore that
//! signal by default, so the call just fails with `EPIPE` and the link aborts, as a failed write does.

use std::io;
use std::os::fd::OwnedFd;

use rustix::io::Errno;
use rustix::net::{recv, RecvFlags};
use rustix::pipe::{fcntl_getpipe_size, fcntl_setpipe_size, pipe_with, splice, PipeFlags, SpliceFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// The pipe size asked for: with the default 64 KiB a bulk transfer wakes the link four times as often.
const PIPE_SIZE: usize = 1024 * 1024;
/// What Linux gives a pipe unless told otherwise, in case even asking for the size fails.
const PIPE_DEFAULT: usize = 64 * 1024;
const FLAGS: SpliceFlags = SpliceFlags::MOVE.union(SpliceFlags::NONBLOCK);

/// What one splice from the source did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fill {
    /// Moved this many bytes into the pipe.
    Moved(usize),
    /// The source has ended (FIN).
    End,
    /// The pipe had no free slot although it holds fewer bytes than its size (data can take more slots than
    /// bytes suggest) while the source has more: the source's readiness is kept, and the link stops filling until
    /// a flush frees room.
    Full,
}

/// A link's pipe and how many bytes it holds.
#[derive(Debug)]
pub(super) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    size: usize,
    held: usize,
    full: bool,
}

impl Pipe {
    /// A non-blocking, close-on-exec pipe, enlarged to 1 MiB where the system allows it (silently kept at its
    /// size otherwise).
    pub(super) fn new() -> io::Result<Self> {
        let (read, write) = pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
        let size = fcntl_setpipe_size(&write, PIPE_SIZE)
            .or_else(|_| fcntl_getpipe_size(&write))
            .unwrap_or(PIPE_DEFAULT);
        Ok(Self {
            read,
            write,
            size,
            held: 0,
            full: false,
        })
    }

    /// Bytes in the pipe, read from the source and not yet written.
    pub(super) fn held(&self) -> usize {
        self.held
    }

    /// Whether a fill can take anything.
    pub(super) fn has_room(&self) -> bool {
        !self.full && self.held < self.size
    }

    /// Splices what the source holds, up to the pipe's free room. `Err(WouldBlock)` means the source is empty
    /// (its readiness is cleared); any other error is the source's.
    pub(super) fn fill_from(&mut self, source: &TcpStream) -> io::Result<Fill> {
        let room = self.size.saturating_sub(self.held);
        if room == 0 {
            self.full = true;
            return Ok(Fill::Full);
        }
        let held = self.held;
        let write = &self.write;
        let filled = source.try_io(Interest::READABLE, || {
            match splice(source, None, write, None, room, FLAGS) {
                Ok(0) => Ok(Fill::End),
                Ok(n) => Ok(Fill::Moved(n)),
                // With data in the pipe, EAGAIN may mean a full pipe rather than an empty source: a peek tells
                // (an empty source gives EAGAIN again, which clears its readiness).
                Err(Errno::AGAIN) if held > 0 => {
                    let mut probe = [0u8; 1];
                    match recv(source, &mut probe[..], RecvFlags::PEEK | RecvFlags::DONTWAIT) {
                        Ok(_) => Ok(Fill::Full),
                        Err(e) => Err(e.into()),
                    }
                }
                Err(e) => Err(e.into()),
            }
        })?;
        match filled {
            Fill::Moved(n) => self.held += n,
            Fill::Full => self.full = true,
            Fill::End => {}
        }
        Ok(filled)
    }

    /// Splices what the pipe holds to the destination; returns the bytes written. `Err(WouldBlock)` means the
    /// destination is full (its readiness is cleared); any other error is a failed write.
    pub(super) fn flush_to(&mut self, dest: &TcpStream) -> io::Result<usize> {
        let held = self.held;
        let read = &self.read;
        let n = dest.try_io(Interest::WRITABLE, || {
            splice(read, None, dest, None, held, FLAGS).map_err(io::Error::from)
        })?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.held = self.held.saturating_sub(n);
        self.full = false;
        Ok(n)
    }

    /// Reads out everything the pipe holds (without waiting: it is all there), leaving it empty.
    pub(super) fn take_all(&mut self) -> io::Result<Vec<u8>> {
        let mut data = vec![0u8; self.held];
        let mut got = 0;
        while got < data.len() {
            match rustix::io::read(&self.read, &mut data[got..]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => got += n,
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.held = 0;
        self.full = false;
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (b, _) = listener.accept().await.unwrap();
        (a, b)
    }

    #[tokio::test]
    async fn moves_bytes_reports_would_block_and_end_and_gives_back_what_it_holds() {
        let (mut src_peer, src) = pair().await;
        let (dest, mut dest_peer) = pair().await;
        let mut pipe = Pipe::new().unwrap();
        assert!(pipe.size >= PIPE_DEFAULT);
        assert_eq!(
            pipe.fill_from(&src).unwrap_err().kind(),
            io::ErrorKind::WouldBlock,
            "nothing sent yet"
        );

        src_peer.write_all(b"hello").await.unwrap();
        src.readable().await.unwrap();
        assert_eq!(pipe.fill_from(&src).unwrap(), Fill::Moved(5));
        assert_eq!(pipe.held(), 5);
        dest.writable().await.unwrap();
        assert_eq!(pipe.flush_to(&dest).unwrap(), 5);
        assert_eq!(pipe.held(), 0);
        let mut buf = [0u8; 5];
        dest_peer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");

        src_peer.write_all(b"kept").await.unwrap();
        src.readable().await.unwrap();
        assert_eq!(pipe.fill_from(&src).unwrap(), Fill::Moved(4));
        assert_eq!(pipe.take_all().unwrap(), b"kept");
        assert_eq!(pipe.held(), 0);

        src_peer.shutdown().await.unwrap();
        src.readable().await.unwrap();
        assert_eq!(pipe.fill_from(&src).unwrap(), Fill::End);
    }
}
