//! Process identity and signals. A pid alone may be reused after a restart;
//! a pid plus its kernel start time names one process for good.

use std::time::Duration;

/// The start time of `pid` in clock ticks since boot (`/proc/<pid>/stat`
/// field 22), or `None` when no such process is alive (a zombie is not).
pub fn start_ticks(pid: u32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it follow ')'.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// This machine's host name, to tell whether a recorded process is one of
/// this host's.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

/// Kills `pid` if it is still the process that started at `ticks`.
pub fn kill_if_same(pid: u32, ticks: i64) {
    if start_ticks(pid) == Some(ticks) {
        signal(pid, libc::SIGKILL);
    }
}

/// Waits up to `limit` for the process to be gone; true if it is.
async fn wait_gone(pid: u32, ticks: i64, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if start_ticks(pid) != Some(ticks) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Leaves out of a child's environment every variable of tarn's own that
/// starts with one of `prefixes` (settings the child gets from tarn instead).
pub(crate) fn scrub_env(cmd: &mut tokio::process::Command, prefixes: &[&str]) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if prefixes.iter().any(|p| key.starts_with(p)) {
            cmd.env_remove(key.as_ref());
        }
    }
}

pub(crate) fn signal(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    // SAFETY: kill(2) takes no pointers; a stale pid is guarded by callers
    // through `start_ticks`.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Stops the process `pid` if it is still the one that started at `ticks`:
/// SIGTERM, then SIGKILL after `grace`. Returns whether it was found alive.
pub(crate) async fn stop_stale(pid: u32, ticks: i64, grace: Duration) -> bool {
    if start_ticks(pid) != Some(ticks) {
        return false;
    }
    signal(pid, libc::SIGTERM);
    if !wait_gone(pid, ticks, grace).await {
        signal(pid, libc::SIGKILL);
        if !wait_gone(pid, ticks, Duration::from_secs(5)).await {
            tracing::warn!(pid, "engine process survived SIGKILL");
        }
    }
    true
}

pub(crate) fn terminate(pid: u32) {
    signal(pid, libc::SIGTERM);
}

/// The last `n` lines of `text`, for error messages that quote a log.
pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn last_lines_keeps_the_end() {
        assert_eq!(super::last_lines("a\nb\nc", 2), "b\nc");
        assert_eq!(super::last_lines("a", 5), "a");
    }

    #[test]
    fn own_process_has_start_ticks() {
        assert!(super::start_ticks(std::process::id()).is_some());
        assert!(super::start_ticks(u32::MAX - 1).is_none());
    }
}
