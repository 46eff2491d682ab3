//! Node types offered by the local backend, derived from this host: a node
//! type is a share of the host's cores and memory.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeType {
    pub node_type_id: String,
    pub num_cores: u32,
    pub memory_mb: u64,
    pub description: String,
}

#[derive(Debug, Clone, Copy)]
pub struct Host {
    pub cores: u32,
    pub memory_mb: u64,
}

impl Host {
    pub fn detect() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
        Self { cores, memory_mb: total_memory_mb().unwrap_or(1024) }
    }
}

fn total_memory_mb() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// `local-<n>c` for n = 1, 2, 4, ... up to the host's cores (and the host's
/// own count when it is not a power of two), memory in proportion.
pub fn node_types(host: Host) -> Vec<NodeType> {
    let mut sizes: Vec<u32> =
        std::iter::successors(Some(1u32), |n| n.checked_mul(2)).take_while(|n| *n <= host.cores).collect();
    if sizes.last() != Some(&host.cores) {
        sizes.push(host.cores.max(1));
    }
    sizes
        .into_iter()
        .map(|cores| {
            let memory_mb = host.memory_mb * u64::from(cores) / u64::from(host.cores.max(1));
            NodeType {
                node_type_id: format!("local-{cores}c"),
                num_cores: cores,
                memory_mb,
                description: format!("{cores} core(s), {} GiB of this host", memory_mb / 1024),
            }
        })
        .collect()
}

/// The node type a cluster gets when its spec names none or one this host
/// does not offer (a cloud type from a bundle): the whole host.
pub fn default_node_type(host: Host) -> NodeType {
    node_types(host).pop().unwrap_or(NodeType {
        node_type_id: "local-1c".into(),
        num_cores: 1,
        memory_mb: host.memory_mb,
        description: "this host".into(),
    })
}

pub fn find_node_type(host: Host, id: Option<&str>) -> NodeType {
    id.and_then(|id| node_types(host).into_iter().find(|n| n.node_type_id == id))
        .unwrap_or_else(|| default_node_type(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_types_scale_with_the_host() {
        let host = Host { cores: 6, memory_mb: 6144 };
        let ids: Vec<_> = node_types(host).into_iter().map(|n| (n.node_type_id, n.memory_mb)).collect();
        assert_eq!(
            ids,
            [
                ("local-1c".into(), 1024),
                ("local-2c".into(), 2048),
                ("local-4c".into(), 4096),
                ("local-6c".into(), 6144)
            ]
        );
        assert_eq!(find_node_type(host, Some("i3.xlarge")).num_cores, 6);
        assert_eq!(find_node_type(host, Some("local-2c")).num_cores, 2);
    }
}
