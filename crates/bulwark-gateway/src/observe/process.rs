//! The gateway process's own memory, descriptors, threads and tasks, read
//! when `/metrics` is scraped: a leak shows as a line that only climbs,
//! which is what a soak (docs/soak.md) and an operator's alert look for.

use bulwark_metrics::ProcessStats;

/// Reads what this platform can tell; on one without `/proc`, the memory,
/// descriptor and thread figures are simply absent. Blocking: call it off
/// the runtime's threads. The runtime's live tasks are known only on one of
/// them, so the caller fills them in.
pub fn read() -> ProcessStats {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let alive_tasks = None;
    ProcessStats {
        resident_bytes: status_kib(&status, "VmRSS:").map(|kib| kib * 1024),
        peak_resident_bytes: status_kib(&status, "VmHWM:").map(|kib| kib * 1024),
        open_fds: std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|entries| entries.count() as u64),
        threads: status_kib(&status, "Threads:"),
        alive_tasks,
    }
}

/// A number from `/proc/self/status` (`VmRSS:   1234 kB`), unit dropped.
fn status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_from_proc_status() {
        let status = "Name:\tbulwark\nVmHWM:\t  20480 kB\nVmRSS:\t   10240 kB\nThreads:\t7\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(10240));
        assert_eq!(status_kib(status, "VmHWM:"), Some(20480));
        assert_eq!(status_kib(status, "Threads:"), Some(7));
        assert_eq!(status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn this_process_reports_itself() {
        let stats = read();
        if cfg!(target_os = "linux") {
            assert!(stats.resident_bytes.unwrap_or(0) > 0);
            assert!(stats.peak_resident_bytes >= stats.resident_bytes);
            assert!(stats.open_fds.unwrap_or(0) >= 3);
            assert!(stats.threads.unwrap_or(0) >= 1);
        }
    }
}
