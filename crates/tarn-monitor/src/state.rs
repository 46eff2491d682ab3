//! What a refresh keeps for the next one, in files under
//! `$TARN_HOME/monitors/<table id>/state/` (the catalog's table id, so a
//! table dropped and created again under the same name starts afresh):
//! - `table.bin`: the monitored table's windows as of the version read,
//!   with what they depend on (definition, schema, slices) and the output
//!   tables' versions as that refresh left them;
//! - `baseline.bin`: the baseline table's profile at one of its versions,
//!   so an unchanged baseline is not read again.
//!
//! Files rather than the store: the sketches are opaque bytes of up to a
//! few MiB, read whole once per refresh and never queried, which is what a
//! file is for and what would bloat `metadata.db`. Each is written to a
//! temporary file, synced, then renamed over the old one, so a crash leaves
//! the old state or the new, never half of one. A file that cannot be read
//! back is treated as absent: the refresh recomputes everything.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::codec::{Corrupt, Decoded, Reader, Writer};
use crate::error::{MonitorError, Result};
use crate::slicing::SliceSet;
use crate::window::Pass;

/// The first bytes of a state file; the number moves with its format.
const MAGIC: &[u8; 8] = b"TARNMON1";

/// The monitored table's windows, kept between refreshes.
pub struct Kept {
    pub fingerprint: String,
    /// The table version these windows cover.
    pub version: i64,
    /// The table's columns and types, as read.
    pub schema: String,
    /// The baseline (table id, version) the output tables were written with.
    pub baseline: Option<(String, i64)>,
    /// Each output table's name and its version after the refresh wrote it.
    pub outputs: Vec<(String, i64)>,
    pub slices: Vec<SliceSet>,
    pub pass: Pass,
}

/// A baseline table's profile at one version.
pub struct KeptBaseline {
    pub fingerprint: String,
    pub table_id: String,
    pub version: i64,
    pub pass: Pass,
}

fn encode_slices(slices: &[SliceSet], w: &mut Writer) {
    w.len(slices.len());
    slices.iter().for_each(|s| s.encode(w));
}

fn decode_slices(r: &mut Reader<'_>) -> Decoded<Vec<SliceSet>> {
    (0..r.count()?).map(|_| SliceSet::decode(r)).collect()
}

impl Kept {
    fn encode(&mut self, w: &mut Writer) {
        w.str(&self.fingerprint);
        w.i64(self.version);
        w.str(&self.schema);
        match &self.baseline {
            Some((id, version)) => {
                w.u8(1);
                w.str(id);
                w.i64(*version);
            }
            None => w.u8(0),
        }
        w.len(self.outputs.len());
        for (name, version) in &self.outputs {
            w.str(name);
            w.i64(*version);
        }
        encode_slices(&self.slices, w);
        self.pass.encode(w);
    }

    fn decode(r: &mut Reader<'_>) -> Decoded<Self> {
        let (fingerprint, version, schema) = (r.str()?, r.i64()?, r.str()?);
        let baseline = match r.u8()? {
            0 => None,
            1 => Some((r.str()?, r.i64()?)),
            t => return Err(Corrupt(format!("baseline tag {t}"))),
        };
        let outputs = (0..r.count()?).map(|_| Ok((r.str()?, r.i64()?))).collect::<Decoded<_>>()?;
        let slices = decode_slices(r)?;
        let pass = Pass::decode(r)?;
        Ok(Self { fingerprint, version, schema, baseline, outputs, slices, pass })
    }
}

impl KeptBaseline {
    fn encode(&mut self, w: &mut Writer) {
        w.str(&self.fingerprint);
        w.str(&self.table_id);
        w.i64(self.version);
        self.pass.encode(w);
    }

    fn decode(r: &mut Reader<'_>) -> Decoded<Self> {
        Ok(Self { fingerprint: r.str()?, table_id: r.str()?, version: r.i64()?, pass: Pass::decode(r)? })
    }
}

/// One monitor's state folder.
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// `root` is `$TARN_HOME/monitors`; `table_id` the monitored table's catalog id.
    pub fn new(root: &Path, table_id: &str) -> Result<Self> {
        let safe = !table_id.is_empty() && table_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !safe {
            return Err(MonitorError::Refresh(format!("table id '{table_id}' cannot name a state folder")));
        }
        Ok(Self { dir: root.join(table_id).join("state") })
    }

    pub fn load(&self) -> Option<Kept> {
        self.read("table.bin", Kept::decode)
    }

    pub fn save(&self, kept: &mut Kept) -> Result<()> {
        let mut w = header();
        kept.encode(&mut w);
        self.write("table.bin", &w.bytes)
    }

    pub fn load_baseline(&self) -> Option<KeptBaseline> {
        self.read("baseline.bin", KeptBaseline::decode)
    }

    pub fn save_baseline(&self, kept: &mut KeptBaseline) -> Result<()> {
        let mut w = header();
        kept.encode(&mut w);
        self.write("baseline.bin", &w.bytes)
    }

    /// Forgets everything kept (the monitor was deleted).
    pub fn remove(root: &Path, table_id: &str) {
        let Ok(state) = Self::new(root, table_id) else { return };
        let Some(folder) = state.dir.parent() else { return };
        if let Err(e) = std::fs::remove_dir_all(folder)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(folder = %folder.display(), error = %e, "removing a monitor's state");
        }
    }

    fn read<T>(&self, name: &str, decode: fn(&mut Reader<'_>) -> Decoded<T>) -> Option<T> {
        let path = self.dir.join(name);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "monitor state unreadable; recomputing");
                return None;
            }
        };
        let decoded = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| Corrupt("not a tarn monitor state file of this format".into()))
            .and_then(|body| {
                let mut r = Reader::new(body);
                let value = decode(&mut r)?;
                if r.done() { Ok(value) } else { Err(Corrupt("trailing bytes".into())) }
            });
        decoded.map_err(|e| tracing::warn!(path = %path.display(), error = %e, "monitor state ignored")).ok()
    }

    /// Temporary file, fsync, rename, fsync of the folder.
    fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let io = |context: &str, e: std::io::Error| {
            MonitorError::Refresh(format!("{context} {}: {e}", self.dir.join(name).display()))
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| io("creating the folder of", e))?;
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let unique = WRITES.fetch_add(1, Ordering::Relaxed);
        let temporary = self.dir.join(format!(".{name}.{}.{unique}.tmp", std::process::id()));
        let mut file = std::fs::File::create(&temporary).map_err(|e| io("writing", e))?;
        file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| io("writing", e))?;
        drop(file);
        std::fs::rename(&temporary, self.dir.join(name)).map_err(|e| io("replacing", e))?;
        if let Ok(folder) = std::fs::File::open(&self.dir) {
            // The rename is durable once the folder is; a failure here only risks the old state.
            _ = folder.sync_all();
        }
        Ok(())
    }
}

fn header() -> Writer {
    let mut w = Writer::default();
    w.bytes.extend_from_slice(MAGIC);
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn state_survives_a_round_trip_and_a_corrupt_file_reads_as_none() {
        let root = std::env::temp_dir().join(format!("tarn-monitor-state-{}", std::process::id()));
        let dir = StateDir::new(&root, "t-1").unwrap();
        assert!(dir.load().is_none());
        let pass = Pass { column_names: vec!["x".into()], windows: BTreeMap::new() };
        let slices = vec![SliceSet { text: "x > 1".into(), allowed: [Some("true".into()), None].into() }];
        let mut kept = Kept {
            fingerprint: "f".into(),
            version: 7,
            schema: "x:double".into(),
            baseline: Some(("b".into(), 3)),
            outputs: vec![("main.m.t_profile_metrics".into(), 2)],
            slices: slices.clone(),
            pass,
        };
        dir.save(&mut kept).unwrap();
        let back = dir.load().unwrap();
        assert_eq!((back.version, back.baseline, back.outputs, back.slices), (7, kept.baseline, kept.outputs, slices));
        std::fs::write(root.join("t-1/state/table.bin"), b"TARNMON1\x01").unwrap();
        assert!(dir.load().is_none());
        assert!(StateDir::new(&root, "../x").is_err());
        StateDir::remove(&root, "t-1");
        assert!(!root.join("t-1").exists());
    }
}
