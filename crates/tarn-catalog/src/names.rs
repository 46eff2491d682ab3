//! Object names: validation, case folding and the `hive_metastore` alias.

use crate::{CatalogError, Kind, Result};

pub const DEFAULT_CATALOG: &str = "main";
pub const DEFAULT_SCHEMA: &str = "default";
const HIVE_METASTORE: &str = "hive_metastore";

/// A validated, lower-cased dotted name of `kind`'s depth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullName {
    pub parts: Vec<String>,
}

impl FullName {
    pub fn parse(kind: Kind, full_name: &str) -> Result<Self> {
        let parts: Vec<&str> = full_name.split('.').collect();
        if parts.len() != kind.depth() {
            return Err(CatalogError::InvalidArgument(format!(
                "Invalid {} name '{full_name}': expected {} dot-separated part(s)",
                kind.as_str(),
                kind.depth()
            )));
        }
        Self::from_parts(&parts)
    }

    pub fn from_parts(parts: &[&str]) -> Result<Self> {
        let mut out = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let p = identifier(part)?;
            out.push(if i == 0 && p == HIVE_METASTORE { DEFAULT_CATALOG.to_string() } else { p });
        }
        Ok(Self { parts: out })
    }

    pub fn name(&self) -> &str {
        self.parts.last().map(String::as_str).unwrap_or("")
    }

    pub fn parent(&self) -> String {
        self.parts[..self.parts.len().saturating_sub(1)].join(".")
    }

    pub fn full(&self) -> String {
        self.parts.join(".")
    }
}

/// One name part, lower-cased. Dots, slashes and control characters would
/// make names ambiguous or escape storage paths.
pub fn identifier(raw: &str) -> Result<String> {
    let name = raw.trim_matches('`');
    if name.is_empty() || name.len() > 255 || name.chars().any(|c| c == '.' || c == '/' || c.is_control()) {
        return Err(CatalogError::InvalidArgument(format!(
            "Invalid name '{raw}': names are 1-255 characters without '.', '/' or control characters"
        )));
    }
    Ok(name.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_and_alias() {
        let n = FullName::parse(Kind::Table, "Hive_Metastore.Default.T1").unwrap();
        assert_eq!(n.full(), "main.default.t1");
        assert_eq!((n.parent(), n.name()), ("main.default".to_string(), "t1"));
        assert!(FullName::parse(Kind::Table, "a.b").is_err());
        assert!(FullName::parse(Kind::Schema, "a./etc").is_err());
        assert!(identifier("").is_err());
    }
}
