//! CPU time used by processes, read from `/proc` (Linux), for `verity bench`: how much of the
//! machine the validators and the load generator each took during a workload.

use std::time::Instant;

/// CPU seconds (user and system, all threads) used so far by process `pid`, or by this
/// process when `None`; `None` where `/proc` cannot tell (the process gone, not Linux).
pub fn seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    parse_stat(&stat).map(|ticks| ticks as f64 / ticks_per_second())
}

/// `utime + stime` from the text of `/proc/<pid>/stat`, in clock ticks. The second field (the
/// command name, in parentheses) may itself hold spaces and parentheses, so fields are counted
/// after its last `)`: there the state is the first, and utime and stime the 12th and 13th.
fn parse_stat(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_per_second() -> f64 {
    use nix::unistd::{SysconfVar, sysconf};
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

/// The CPU time of this process and of some others at one moment.
#[derive(Clone, Debug)]
pub struct Sample {
    at: Instant,
    own: Option<f64>,
    others: Vec<Option<f64>>,
}

/// CPU used between a [Sample] and now.
#[derive(Clone, Debug, PartialEq)]
pub struct Usage {
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// CPU seconds of this process.
    pub own_s: Option<f64>,
    /// CPU seconds of the other processes together; `None` if any could not be read.
    pub others_s: Option<f64>,
}

impl Sample {
    /// Samples this process and `pids`.
    pub fn take(pids: &[u32]) -> Self {
        Self {
            at: Instant::now(),
            own: seconds(None),
            others: pids.iter().map(|p| seconds(Some(*p))).collect(),
        }
    }

    /// What was used from this sample to `now` (a sample of the same processes).
    pub fn until(&self, now: &Sample) -> Usage {
        let diff = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
        let others_s = if self.others.len() == now.others.len() {
            self.others
                .iter()
                .zip(&now.others)
                .map(|(a, b)| diff(*a, *b))
                .sum::<Option<f64>>()
        } else {
            None
        };
        Usage {
            wall_s: now.at.duration_since(self.at).as_secs_f64(),
            own_s: diff(self.own, now.own),
            others_s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_user_plus_system_ticks_whatever_the_command_name() {
        let line = "4242 (verity) S 1 4242 4242 0 -1 4194560 7100 0 0 0 350 41 0 0 20 0 9 0 \
                    123 456 789";
        assert_eq!(parse_stat(line), Some(391));
        // A name with spaces and a closing parenthesis of its own.
        let odd = "77 (a) b (c) R 1 77 77 0 -1 0 0 0 0 0 12 3 0 0 20 0 1 0 1 2 3";
        assert_eq!(parse_stat(odd), Some(15));
        assert_eq!(parse_stat("77 (short) R 1 2"), None);
        assert_eq!(parse_stat("no parenthesis at all"), None);
    }

    #[test]
    fn this_process_is_seen_using_the_cpu_it_burns() {
        let before = Sample::take(&[std::process::id()]);
        // Spin until /proc shows at least two clock ticks used (bounded by a deadline).
        let deadline = Instant::now() + std::time::Duration::from_secs(20);
        let mut x = 0u64;
        loop {
            for i in 0..1_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
            }
            let used = before.until(&Sample::take(&[std::process::id()]));
            if used.own_s.unwrap_or(0.0) >= 0.02 || Instant::now() > deadline {
                assert!(used.own_s.unwrap() >= 0.02, "no CPU time seen: {used:?}");
                // The same process sampled as "other" sees the same time, to a tick or two.
                assert!((used.others_s.unwrap() - used.own_s.unwrap()).abs() <= 0.05);
                assert!(used.wall_s > 0.0);
                break;
            }
        }
        assert!(seconds(Some(u32::MAX)).is_none());
    }
}
