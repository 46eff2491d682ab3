//! A HyperLogLog distinct counter: 4,096 registers whatever the row count,
//! merged register by register, written sparsely while mostly empty.

use std::hash::Hasher;

use crate::codec::{Corrupt, Decoded, Reader, Writer};

/// HyperLogLog registers (2^12: about 1.6% error).
const HLL_BITS: u32 = 12;

/// A HyperLogLog distinct counter.
#[derive(Debug, Clone)]
pub struct Distinct {
    registers: Vec<u8>,
}

impl Default for Distinct {
    fn default() -> Self {
        Self { registers: vec![0; 1 << HLL_BITS] }
    }
}

/// FNV-1a over bytes: cheap, and the same value always hashes the same.
#[derive(Default)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// SplitMix64's finalizer: spreads a hash's bits for the registers.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Distinct {
    pub fn add_bits(&mut self, bits: u64) {
        self.add_hash(mix(bits));
    }

    pub fn add_str(&mut self, text: &str) {
        let mut fnv = Fnv::default();
        fnv.write(text.as_bytes());
        self.add_hash(mix(fnv.finish()));
    }

    fn add_hash(&mut self, hash: u64) {
        let index = (hash >> (64 - HLL_BITS)) as usize;
        let rank = ((hash << HLL_BITS) | (1 << (HLL_BITS - 1))).leading_zeros() as u8 + 1;
        if rank > self.registers[index] {
            self.registers[index] = rank;
        }
    }

    /// The union of both counters' values.
    pub fn merge(&mut self, other: &Self) {
        for (mine, theirs) in self.registers.iter_mut().zip(&other.registers) {
            *mine = (*mine).max(*theirs);
        }
    }

    /// Sparse (index, rank) pairs while under a third of the registers are
    /// set, which small windows mostly are; else all of them.
    pub(crate) fn encode(&self, w: &mut Writer) {
        let set: Vec<(usize, u8)> = self.registers.iter().copied().enumerate().filter(|(_, r)| *r > 0).collect();
        if set.len() * 3 < self.registers.len() {
            w.u8(0);
            w.len(set.len());
            for (i, r) in set {
                w.u64(i as u64);
                w.u8(r);
            }
        } else {
            w.u8(1);
            w.raw(&self.registers);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Decoded<Self> {
        let mut out = Self::default();
        let size = out.registers.len();
        match r.u8()? {
            0 => {
                for _ in 0..r.count()? {
                    let index = usize::try_from(r.u64()?).ok().filter(|i| *i < size);
                    let index = index.ok_or_else(|| Corrupt("a register index out of range".into()))?;
                    out.registers[index] = r.u8()?;
                }
            }
            1 => {
                let registers = r.raw()?;
                if registers.len() != size {
                    return Err(Corrupt(format!("{} HyperLogLog registers, not {size}", registers.len())));
                }
                out.registers.copy_from_slice(registers);
            }
            t => return Err(Corrupt(format!("HyperLogLog tag {t}"))),
        }
        Ok(out)
    }

    pub fn estimate(&self) -> u64 {
        let m = self.registers.len() as f64;
        let sum: f64 = self.registers.iter().map(|&r| 2f64.powi(-i32::from(r))).sum();
        let raw = 0.7213 / (1.0 + 1.079 / m) * m * m / sum;
        let zeros = self.registers.iter().filter(|&&r| r == 0).count();
        let estimate = if raw <= 2.5 * m && zeros > 0 { m * (m / zeros as f64).ln() } else { raw };
        estimate.round() as u64
    }
}
