//! What a refresh keeps of a table: its windows (granularity, start, model
//! and slice) and each window's profile, which merge with a later read of
//! new rows and write themselves to bytes.

use std::collections::BTreeMap;

use crate::codec::{Corrupt, Decoded, Reader, Writer};
use crate::profile::ColumnProfile;

/// A slice of the rows: those whose `slicing_exprs` entry `key` evaluates
/// to `value` (NULL: `None`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slice {
    pub key: String,
    pub value: Option<String>,
}

/// Which window a row falls in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowKey {
    /// The granularity's text ("1 day"); empty for a snapshot or a baseline.
    pub granularity: String,
    pub start: i64,
    pub end: i64,
    /// The model id for inference logs ("*" for all models), else `None`.
    pub model: Option<String>,
    /// `None` for all rows.
    pub slice: Option<Slice>,
}

impl WindowKey {
    /// The same window and slice for another model, or the window of the series before.
    pub fn same_series(&self, other: &Self) -> bool {
        self.granularity == other.granularity && self.model == other.model && self.slice == other.slice
    }

    pub fn encode(&self, w: &mut Writer) {
        w.str(&self.granularity);
        w.i64(self.start);
        w.i64(self.end);
        w.opt_str(self.model.as_deref());
        match &self.slice {
            Some(s) => {
                w.u8(1);
                w.str(&s.key);
                w.opt_str(s.value.as_deref());
            }
            None => w.u8(0),
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Decoded<Self> {
        let (granularity, start, end, model) = (r.str()?, r.i64()?, r.i64()?, r.opt_str()?);
        let slice = match r.u8()? {
            0 => None,
            1 => Some(Slice { key: r.str()?, value: r.opt_str()? }),
            t => return Err(Corrupt(format!("slice tag {t}"))),
        };
        Ok(Self { granularity, start, end, model, slice })
    }
}

/// Prediction quality in one window of an inference log with labels.
#[derive(Debug, Clone, Default)]
pub struct Quality {
    pub labeled: u64,
    pub correct: u64,
    pub squared_error: f64,
    pub absolute_error: f64,
    pub label_sum: f64,
    pub label_square_sum: f64,
}

impl Quality {
    fn merge(&mut self, o: &Self) {
        self.labeled += o.labeled;
        self.correct += o.correct;
        self.squared_error += o.squared_error;
        self.absolute_error += o.absolute_error;
        self.label_sum += o.label_sum;
        self.label_square_sum += o.label_square_sum;
    }

    fn encode(&self, w: &mut Writer) {
        w.u64(self.labeled);
        w.u64(self.correct);
        for x in [self.squared_error, self.absolute_error, self.label_sum, self.label_square_sum] {
            w.f64(x);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Decoded<Self> {
        Ok(Self {
            labeled: r.u64()?,
            correct: r.u64()?,
            squared_error: r.f64()?,
            absolute_error: r.f64()?,
            label_sum: r.f64()?,
            label_square_sum: r.f64()?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct WindowProfile {
    pub rows: u64,
    /// In the table's column order.
    pub columns: Vec<ColumnProfile>,
    pub quality: Quality,
    /// The monitored table's version whose rows last changed this window
    /// (`logging_table_commit_version`).
    pub version: i64,
}

impl WindowProfile {
    /// Adds the rows `other` profiled (a later read of the same table).
    pub fn merge(&mut self, other: &mut Self) -> Decoded<()> {
        if self.columns.len() != other.columns.len() {
            return Err(Corrupt(format!("{} columns cannot merge {}", self.columns.len(), other.columns.len())));
        }
        for (a, b) in self.columns.iter_mut().zip(other.columns.iter_mut()) {
            a.merge(b)?;
        }
        self.rows += other.rows;
        self.quality.merge(&other.quality);
        self.version = self.version.max(other.version);
        Ok(())
    }

    pub fn encode(&mut self, w: &mut Writer) {
        w.u64(self.rows);
        w.i64(self.version);
        self.quality.encode(w);
        w.len(self.columns.len());
        for c in &mut self.columns {
            c.encode(w);
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Decoded<Self> {
        let (rows, version, quality) = (r.u64()?, r.i64()?, Quality::decode(r)?);
        let columns = (0..r.count()?).map(|_| ColumnProfile::decode(r)).collect::<Decoded<Vec<_>>>()?;
        Ok(Self { rows, columns, quality, version })
    }
}

/// Every window the pass saw, and the table's columns.
pub struct Pass {
    pub column_names: Vec<String>,
    pub windows: BTreeMap<WindowKey, WindowProfile>,
}

impl Pass {
    pub fn encode(&mut self, w: &mut Writer) {
        w.len(self.column_names.len());
        self.column_names.iter().for_each(|c| w.str(c));
        w.len(self.windows.len());
        for (key, window) in &mut self.windows {
            key.encode(w);
            window.encode(w);
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Decoded<Self> {
        let column_names = (0..r.count()?).map(|_| r.str()).collect::<Decoded<Vec<_>>>()?;
        let mut windows = BTreeMap::new();
        for _ in 0..r.count()? {
            let key = WindowKey::decode(r)?;
            windows.insert(key, WindowProfile::decode(r)?);
        }
        Ok(Self { column_names, windows })
    }

    /// Adds a later pass over new rows of the same table; returns the
    /// windows those rows fell in.
    pub fn merge(&mut self, later: Pass) -> Decoded<Vec<WindowKey>> {
        if later.column_names != self.column_names {
            return Err(Corrupt("the passes read different columns".into()));
        }
        let mut touched = Vec::with_capacity(later.windows.len());
        for (key, mut window) in later.windows {
            match self.windows.get_mut(&key) {
                Some(kept) => kept.merge(&mut window)?,
                None => _ = self.windows.insert(key.clone(), window),
            }
            touched.push(key);
        }
        Ok(touched)
    }
}
