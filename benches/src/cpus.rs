//! Where the load benchmark's processes run. By default the load (this process: generator and chaos proxy,
//! and the fake it starts) and the server under test (the bare forwarder, the gateway) are pinned to disjoint
//! CPUs, as one would put a load generator on another machine: otherwise, on a small machine, the time a
//! target's requests wait for a CPU the generator or the fake holds is counted as the target's latency, and
//! the figures measure the machine's contention more than the target.

use serde::Serialize;

/// How the benchmark's processes share the CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuMode {
    /// The load (generator, fake) on the lower CPUs, the server under test on the upper ones (falls back to
    /// `shared` with fewer than 2 CPUs).
    Isolated,
    /// Every process may run on every CPU.
    Shared,
}

/// Disjoint CPU sets for the load and for the server under test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layout {
    /// The generator, the chaos proxy and the fake.
    pub load: Vec<usize>,
    /// The forwarder and the gateway.
    pub target: Vec<usize>,
}

impl Layout {
    /// Splits `available` CPUs: the upper half (rounded down) to the target, the rest to the load, which
    /// runs the generator and the fake. `None` with fewer than 2 CPUs.
    pub fn split(available: &[usize]) -> Option<Layout> {
        if available.len() < 2 {
            return None;
        }
        let mut cpus = available.to_vec();
        cpus.sort_unstable();
        cpus.dedup();
        let at = cpus.len() - cpus.len() / 2;
        let target = cpus.split_off(at);
        Some(Layout { load: cpus, target })
    }

    /// E.g. `load on CPU 0, server under test on CPU 1`.
    pub fn describe(&self) -> String {
        format!(
            "load (generator, fake) on CPU {}, server under test (forwarder, gateway) on CPU {}",
            list(&self.load),
            list(&self.target)
        )
    }
}

/// `0-3` or `0,2,5`.
fn list(cpus: &[usize]) -> String {
    let contiguous = cpus.windows(2).all(|w| w[1] == w[0] + 1);
    match (cpus.first(), cpus.last()) {
        (Some(a), Some(b)) if contiguous && a != b => format!("{a}-{b}"),
        _ => cpus.iter().map(usize::to_string).collect::<Vec<_>>().join(","),
    }
}

/// The CPUs this process may run on.
#[cfg(target_os = "linux")]
pub fn available() -> std::io::Result<Vec<usize>> {
    use rustix::thread::{sched_getaffinity, CpuSet};
    let set = sched_getaffinity(None)?;
    Ok((0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect())
}

/// Pins every thread of process `pid` to `cpus` (threads it starts later inherit the set from their parent).
#[cfg(target_os = "linux")]
pub fn pin(pid: u32, cpus: &[usize]) -> std::io::Result<()> {
    use rustix::thread::{sched_setaffinity, CpuSet, Pid};
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(c);
    }
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let tid = entry?.file_name();
        let Some(tid) = tid.to_str().and_then(|t| t.parse().ok()).and_then(Pid::from_raw) else {
            continue;
        };
        match sched_setaffinity(Some(tid), &set) {
            // A thread that ended since the listing needs no pinning.
            Err(rustix::io::Errno::SRCH) => {}
            r => r?,
        }
    }
    Ok(())
}

/// The CPUs this process may run on (pinning is Linux only).
#[cfg(not(target_os = "linux"))]
pub fn available() -> std::io::Result<Vec<usize>> {
    Err(std::io::Error::other("CPU pinning needs Linux"))
}

/// Pinning is Linux only.
#[cfg(not(target_os = "linux"))]
pub fn pin(_pid: u32, _cpus: &[usize]) -> std::io::Result<()> {
    Err(std::io::Error::other("CPU pinning needs Linux"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_gives_the_target_the_upper_half_and_needs_two_cpus() {
        assert_eq!(Layout::split(&[]), None);
        assert_eq!(Layout::split(&[3]), None);
        let two = Layout::split(&[1, 0]).unwrap();
        assert_eq!((two.load, two.target), (vec![0], vec![1]));
        let three = Layout::split(&[0, 1, 2]).unwrap();
        assert_eq!((three.load, three.target), (vec![0, 1], vec![2]));
        let sparse = Layout::split(&[2, 5, 7, 9]).unwrap();
        assert_eq!((sparse.load, sparse.target), (vec![2, 5], vec![7, 9]));
        assert_eq!(
            Layout::split(&[0, 1, 2, 3, 4, 5, 6, 7]).unwrap().describe(),
            "load (generator, fake) on CPU 0-3, server under test (forwarder, gateway) on CPU 4-7"
        );
        assert_eq!(list(&[2, 5]), "2,5");
        assert_eq!(list(&[1]), "1");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn pin_moves_every_thread_of_a_running_process() {
        let cpus = available().unwrap();
        assert!(!cpus.is_empty());
        let last = *cpus.last().unwrap();
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        pin(child.id(), &[last]).unwrap();
        let got =
            rustix::thread::sched_getaffinity(rustix::thread::Pid::from_raw(child.id() as i32)).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        let set: Vec<usize> = (0..rustix::thread::CpuSet::MAX_CPU)
            .filter(|&c| got.is_set(c))
            .collect();
        assert_eq!(set, vec![last]);
        assert!(pin(u32::MAX, &[last]).is_err(), "no such process");
    }
}
