//! The byte form of a monitor's kept state: little-endian integers, floats
//! as their exact bits, length-prefixed strings and lists. No binary serde
//! format is in the dependency tree, JSON cannot carry NaN or infinities
//! (an empty sketch's min and max) and would triple the size of the
//! HyperLogLog registers, so the few types kept write themselves here.
//! A reader never panics on bad bytes: it answers [`Corrupt`].

/// State bytes that cannot be read back (truncated, or not ours).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable monitor state: {0}")]
pub struct Corrupt(pub String);

pub type Decoded<T> = std::result::Result<T, Corrupt>;

#[derive(Default)]
pub struct Writer {
    pub bytes: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }

    pub fn u64(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    pub fn i64(&mut self, v: i64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    pub fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }

    pub fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }

    pub fn raw(&mut self, v: &[u8]) {
        self.len(v.len());
        self.bytes.extend_from_slice(v);
    }

    pub fn str(&mut self, v: &str) {
        self.raw(v.as_bytes());
    }

    pub fn opt_str(&mut self, v: Option<&str>) {
        match v {
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
            None => self.u8(0),
        }
    }
}

pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn take(&mut self, n: usize) -> Decoded<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or_else(|| Corrupt(format!("truncated at byte {}", self.at)))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Decoded<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> Decoded<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn u64(&mut self) -> Decoded<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub fn i64(&mut self) -> Decoded<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    pub fn f64(&mut self) -> Decoded<f64> {
        Ok(f64::from_bits(self.u64()?))
    }

    /// A length, checked against the bytes left so a corrupt one cannot
    /// make a caller allocate without bound.
    pub fn count(&mut self) -> Decoded<usize> {
        let n = self.u64()?;
        let left = (self.bytes.len() - self.at) as u64;
        if n > left {
            return Err(Corrupt(format!("a length of {n} with {left} bytes left")));
        }
        Ok(n as usize)
    }

    pub fn raw(&mut self) -> Decoded<&'a [u8]> {
        let n = self.count()?;
        self.take(n)
    }

    pub fn str(&mut self) -> Decoded<String> {
        String::from_utf8(self.raw()?.to_vec()).map_err(|e| Corrupt(e.to_string()))
    }

    pub fn opt_str(&mut self) -> Decoded<Option<String>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.str()?)),
            t => Err(Corrupt(format!("option tag {t}"))),
        }
    }

    pub fn done(&self) -> bool {
        self.at == self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_back_exactly_and_truncation_is_caught() {
        let mut w = Writer::default();
        w.f64(f64::NEG_INFINITY);
        w.f64(0.1 + 0.2);
        w.i64(-7);
        w.opt_str(Some("é"));
        w.opt_str(None);
        let mut r = Reader::new(&w.bytes);
        assert_eq!(r.f64().unwrap(), f64::NEG_INFINITY);
        assert_eq!(r.f64().unwrap().to_bits(), (0.1f64 + 0.2).to_bits());
        assert_eq!(r.i64().unwrap(), -7);
        assert_eq!(r.opt_str().unwrap().as_deref(), Some("é"));
        assert_eq!(r.opt_str().unwrap(), None);
        assert!(r.done());
        let mut short = Reader::new(&w.bytes[..20]);
        short.f64().unwrap();
        short.f64().unwrap();
        assert!(short.i64().is_err());
        // A huge length is refused, not allocated.
        let mut w = Writer::default();
        w.u64(u64::MAX);
        assert!(Reader::new(&w.bytes).str().is_err());
    }
}
