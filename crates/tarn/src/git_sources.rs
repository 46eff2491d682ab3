//! Jobs' `git_source` checkouts reach git here: tarn-jobs' `GitSources`
//! answered by tarn-repos (a clone at the revision, with the run's
//! principal's git credential), so neither crate knows the other.

use std::path::Path;

use tarn_jobs::tasks::BoxFuture;
use tarn_jobs::{GitRevision, GitSource, GitSources};
use tarn_repos::{Repos, Revision};

pub struct JobGitSources(pub Repos);

impl GitSources for JobGitSources {
    fn checkout<'a>(
        &'a self,
        source: &'a GitSource,
        user: &'a str,
        dest: &'a Path,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let revision = match &source.revision {
                GitRevision::Branch(b) => Revision::Branch(b.clone()),
                GitRevision::Tag(t) => Revision::Tag(t.clone()),
                GitRevision::Commit(c) => Revision::Commit(c.clone()),
            };
            self.0
                .checkout_revision(user, &source.url, &source.provider, &revision, dest)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
