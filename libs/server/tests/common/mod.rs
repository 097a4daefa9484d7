//! What the allocator tests share: a burst of allocations and this process's resident
//! memory.

/// VmRSS of this process, MB.
pub fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024.0
}

/// 96 MB in 2 KB blocks, every page touched: what an import's in-flight items look like.
pub fn allocate_96_mb() -> Vec<Vec<u8>> {
    (0..49_152).map(|i| vec![i as u8; 2048]).collect()
}
