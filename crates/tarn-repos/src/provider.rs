//! Git providers as the Repos and Git Credentials APIs name them; a
//! request may spell one in any case, answers use these spellings.

use crate::{RepoError, Result};

pub const PROVIDERS: [&str; 8] = [
    "gitHub",
    "bitbucketCloud",
    "gitLab",
    "azureDevOpsServices",
    "gitHubEnterprise",
    "bitbucketServer",
    "gitLabEnterpriseEdition",
    "awsCodeCommit",
];

/// The provider's canonical spelling, or INVALID_PARAMETER_VALUE.
pub fn canonical(given: &str) -> Result<&'static str> {
    PROVIDERS.into_iter().find(|p| p.eq_ignore_ascii_case(given.trim())).ok_or_else(|| {
        RepoError::InvalidParameter(format!("Invalid Git provider '{given}'; expected one of {}", PROVIDERS.join(", ")))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn providers_match_in_any_case() {
        assert_eq!(super::canonical("GITHUB").ok(), Some("gitHub"));
        assert_eq!(super::canonical("gitlabenterpriseedition").ok(), Some("gitLabEnterpriseEdition"));
        assert!(super::canonical("svn").is_err());
    }
}
