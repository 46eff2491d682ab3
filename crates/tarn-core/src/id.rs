//! Identifiers in the formats Databricks clients show and users recognise.

use chrono::{Datelike, Timelike, Utc};
use rand::Rng;

const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

fn random_chars(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n).map(|_| ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())] as char).collect()
}

/// A cluster id as Databricks forms it: `MMDD-HHMMSS-xxxxxxxx`.
pub fn cluster_id() -> String {
    let now = Utc::now();
    format!(
        "{:02}{:02}-{:02}{:02}{:02}-{}",
        now.month(),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        random_chars(8)
    )
}

/// Random bytes as lowercase hex, for secrets such as token values.
pub fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

/// A principal id (user, service principal or group) in Databricks' 16-digit range.
pub fn principal_id() -> i64 {
    rand::rng().random_range(1_000_000_000_000_000..9_000_000_000_000_000)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cluster_id_has_databricks_shape() {
        let id = super::cluster_id();
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(parts.len(), 3, "{id}");
        assert_eq!((parts[0].len(), parts[1].len(), parts[2].len()), (4, 6, 8));
        assert!(parts[0].chars().chain(parts[1].chars()).all(|c| c.is_ascii_digit()));
    }
}
