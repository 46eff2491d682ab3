//! Reading a cluster's engine log (stdout and stderr of its Sail engine,
//! `$TARN_HOME/logs/clusters/<id>/engine.log`) for people to look at.

use std::io::{Read, Seek, SeekFrom};

use super::ClusterManager;
use crate::ComputeError;

/// How much of the log's end is read at most, whatever its size.
const TAIL_BYTES: u64 = 256 * 1024;

impl ClusterManager {
    /// The last `lines` lines of the cluster's engine log; `None` when its
    /// engine never wrote one.
    pub fn engine_log_tail(&self, cluster_id: &str, lines: usize) -> Result<Option<String>, ComputeError> {
        // The id names a stored cluster, so the path stays under the logs directory.
        self.load(cluster_id)?;
        let path = self.inner.config.home.join("logs").join("clusters").join(cluster_id).join("engine.log");
        let mut file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ComputeError::Engine(format!("reading {}: {e}", path.display()))),
        };
        let io = |e: std::io::Error| ComputeError::Engine(format!("reading {}: {e}", path.display()));
        let len = file.metadata().map_err(io)?.len();
        let from = len.saturating_sub(TAIL_BYTES);
        file.seek(SeekFrom::Start(from)).map_err(io)?;
        let mut bytes = Vec::new();
        file.take(TAIL_BYTES).read_to_end(&mut bytes).map_err(io)?;
        let text = String::from_utf8_lossy(&bytes);
        // A read from the middle of the file starts inside a line.
        let text = if from > 0 { text.split_once('\n').map_or("", |(_, rest)| rest) } else { &text };
        let all: Vec<&str> = text.lines().collect();
        Ok(Some(all[all.len().saturating_sub(lines)..].join("\n")))
    }
}
