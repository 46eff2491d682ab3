//! Secret references, `{{secrets/<scope>/<key>}}`, as Databricks takes them
//! in cluster environment variables and Spark conf, job parameters and
//! serving `environment_vars`; and the one way a service resolves them.

/// A reference to one secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub scope: String,
    pub key: String,
}

impl SecretRef {
    /// `None` when `value` is not a reference; an error when it looks like
    /// one (it starts with `{{secrets/`) but is not exactly one.
    pub fn parse(value: &str) -> Option<Result<Self, String>> {
        let text = value.trim();
        if !text.starts_with("{{secrets/") {
            return None;
        }
        let inner = text.strip_prefix("{{secrets/").and_then(|t| t.strip_suffix("}}"));
        let parts = inner.map(|t| t.split('/').map(str::trim).collect::<Vec<_>>());
        Some(match parts.as_deref() {
            Some([scope, key]) if !scope.is_empty() && !key.is_empty() => {
                Ok(Self { scope: scope.to_string(), key: key.to_string() })
            }
            _ => Err(format!("'{text}' is not a secret reference of the form {{{{secrets/<scope>/<key>}}}}")),
        })
    }
}

impl std::fmt::Display for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{{{{secrets/{}/{}}}}}", self.scope, self.key)
    }
}

/// What resolving a reference gives: the value, or an error that names the
/// reference (never a value).
pub type Resolved<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send + 'a>>;

/// Resolves references with a principal's own permissions (a scope's
/// values may live on another server, hence the future).
pub trait SecretSource: Send + Sync {
    fn secret<'a>(&'a self, principal: &'a str, reference: &'a SecretRef) -> Resolved<'a>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_exactly() {
        let r = SecretRef::parse(" {{secrets/app/db-password}} ").unwrap().unwrap();
        assert_eq!((r.scope.as_str(), r.key.as_str()), ("app", "db-password"));
        assert_eq!(r.to_string(), "{{secrets/app/db-password}}");
        assert!(SecretRef::parse("plain").is_none());
        for bad in ["{{secrets/app}}", "{{secrets/a/b/c}}", "{{secrets/app/key} }", "{{secrets//k}}"] {
            assert!(SecretRef::parse(bad).unwrap().is_err(), "{bad}");
        }
    }
}
