//! Where the load benchmark's processes run. By default the load (this process: generator and chaos proxy,
//! and the fake it starts) and the server under test (the bare forwarder, the gateway) are pinned to disjoint
//! physical cores, as one would put a load generator on another machine: otherwise, on a small machine, the time a
//! target's requests wait for a CPU the generator or the fake holds is counted as the target's latency, and
//! the figures measure the machine's contention more than the target.

use serde::Serialize;

/// How the benchmark's processes share the CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuMode {
    /// The load (generator, fake) on the lower physical cores, the server under test on the upper ones (by
    /// logical CPU on a single core with hyperthreads; `shared` with fewer than 2 CPUs).
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
    /// Splits the available CPUs by physical core (`cores`: each core's CPUs, its hyperthreads): the upper half
    /// of the cores (rounded down) to the target, the rest to the load, which runs the generator and the fake,
    /// so the two never share a core. `None` with fewer than 2 cores.
    pub fn split(cores: &[Vec<usize>]) -> Option<Layout> {
        let mut cores: Vec<Vec<usize>> = cores.iter().filter(|c| !c.is_empty()).cloned().collect();
        for c in &mut cores {
            c.sort_unstable();
        }
        cores.sort();
        cores.dedup();
        if cores.len() < 2 {
            return None;
        }
        let at = cores.len() - cores.len() / 2;
        let target = cores.split_off(at);
        let flat = |cs: Vec<Vec<usize>>| {
            let mut v: Vec<usize> = cs.into_iter().flatten().collect();
            v.sort_unstable();
            v
        };
        Some(Layout {
            load: flat(cores),
            target: flat(target),
        })
    }

    /// The layout for `available` CPUs grouped into physical `cores`: by core, or, with a single core (two
    /// hyperthreads, as on some 2-vCPU VMs), by logical CPU, with a note saying so; the two sides then still do
    /// not wait for each other's time slices, though they share the core's units. `None` with fewer than 2 CPUs.
    pub fn choose(available: &[usize], cores: &[Vec<usize>]) -> Option<(Layout, &'static str)> {
        if let Some(l) = Layout::split(cores) {
            return Some((l, ""));
        }
        let threads: Vec<Vec<usize>> = available.iter().map(|&c| vec![c]).collect();
        Layout::split(&threads).map(|l| (l, " (hyperthreads of one physical core)"))
    }

    /// E.g. `load (generator, fake) on CPU 0, server under test (forwarder, gateway) on CPU 1`.
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

/// The `available` CPUs grouped by physical core (hyperthread siblings together, from
/// `/sys/devices/system/cpu/cpuN/topology/thread_siblings_list`; a CPU whose topology cannot be read is a core
/// of its own).
pub fn cores(available: &[usize]) -> Vec<Vec<usize>> {
    let mut cores: Vec<Vec<usize>> = Vec::new();
    for &c in available {
        let siblings = std::fs::read_to_string(format!(
            "/sys/devices/system/cpu/cpu{c}/topology/thread_siblings_list"
        ))
        .ok()
        .and_then(|t| parse_list(&t))
        .unwrap_or_else(|| vec![c]);
        let mut core: Vec<usize> = siblings.into_iter().filter(|s| available.contains(s)).collect();
        if !core.contains(&c) {
            core.push(c);
            core.sort_unstable();
        }
        if !cores.contains(&core) {
            cores.push(core);
        }
    }
    cores
}

/// A kernel CPU list (`0-3,8,10-11`).
pub fn parse_list(text: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if b < a || b - a > 65_536 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.trim().parse().ok()?),
        }
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// Pins every thread of process `pid` to `cpus` (threads it starts later inherit the set from their parent).
#[cfg(target_os = "linux")]
pub fn pin(pid: u32, cpus: &[usize]) -> std::io::Result<()> {
    use rustix::thread::{sched_setaffinity, CpuSet, Pid};
    let mut set = CpuSet::new();
    let mut any = false;
    for &c in cpus.iter().filter(|&&c| c < CpuSet::MAX_CPU) {
        set.set(c);
        any = true;
    }
    if !any {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("no CPU of {cpus:?} can be set"),
        ));
    }
    // Twice: a thread started during the first pass by a thread not yet pinned is caught by the second.
    for _ in 0..2 {
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

    fn singles(cpus: &[usize]) -> Vec<Vec<usize>> {
        cpus.iter().map(|&c| vec![c]).collect()
    }

    #[test]
    fn split_gives_the_target_the_upper_half_of_the_cores_and_needs_two() {
        assert_eq!(Layout::split(&[]), None);
        assert_eq!(Layout::split(&singles(&[3])), None);
        assert_eq!(Layout::split(&[vec![3], vec![3]]), None, "one core named twice");
        assert_eq!(Layout::split(&[vec![0, 1]]), None, "two hyperthreads of one core");
        let two = Layout::split(&singles(&[1, 0])).unwrap();
        assert_eq!((two.load, two.target), (vec![0], vec![1]));
        let three = Layout::split(&singles(&[0, 1, 2])).unwrap();
        assert_eq!((three.load, three.target), (vec![0, 1], vec![2]));
        let sparse = Layout::split(&singles(&[2, 5, 7, 9])).unwrap();
        assert_eq!((sparse.load, sparse.target), (vec![2, 5], vec![7, 9]));
        // Hyperthreads numbered N and N + cores: siblings stay on the same side.
        let ht = Layout::split(&[vec![0, 4], vec![1, 5], vec![2, 6], vec![3, 7]]).unwrap();
        assert_eq!((ht.load, ht.target), (vec![0, 1, 4, 5], vec![2, 3, 6, 7]));
        assert_eq!(
            Layout::split(&singles(&[0, 1, 2, 3, 4, 5, 6, 7]))
                .unwrap()
                .describe(),
            "load (generator, fake) on CPU 0-3, server under test (forwarder, gateway) on CPU 4-7"
        );
        assert_eq!(list(&[2, 5]), "2,5");
        assert_eq!(list(&[1]), "1");
    }

    #[test]
    fn choose_splits_by_core_else_by_hyperthread() {
        let (by_core, note) = Layout::choose(&[0, 1, 2, 3], &[vec![0, 2], vec![1, 3]]).unwrap();
        assert_eq!((by_core.load, by_core.target, note), (vec![0, 2], vec![1, 3], ""));
        let (by_thread, note) = Layout::choose(&[0, 1], &[vec![0, 1]]).unwrap();
        assert_eq!((by_thread.load, by_thread.target), (vec![0], vec![1]));
        assert_eq!(note, " (hyperthreads of one physical core)");
        assert!(Layout::choose(&[0], &[vec![0]]).is_none());
    }

    #[test]
    fn cpu_lists_parse_as_the_kernel_writes_them() {
        assert_eq!(parse_list("0-3,8,10-11\n"), Some(vec![0, 1, 2, 3, 8, 10, 11]));
        assert_eq!(parse_list("5"), Some(vec![5]));
        assert_eq!(parse_list(""), Some(vec![]));
        assert_eq!(parse_list("3-1"), None);
        assert_eq!(parse_list("x"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn cores_group_every_available_cpu_once() {
        let cpus = available().unwrap();
        let cores = cores(&cpus);
        let mut flat: Vec<usize> = cores.iter().flatten().copied().collect();
        flat.sort_unstable();
        assert_eq!(flat, cpus, "{cores:?}");
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
