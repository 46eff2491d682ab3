//! tarn's object-store root as delta-rs sees it: `s3://` URLs under the
//! root open on the one client tarn-storage built (credentials from the
//! environment, never in delta-rs's storage options), and the stores a
//! table is opened on.

use std::sync::Arc;

use deltalake::logstore::{
    ObjectStoreFactory, ObjectStoreRef, StorageConfig, logstore_factories, object_store_factories,
};
use deltalake::{DeltaResult, DeltaTableError};
use object_store::path::Path;
use tarn_storage::{ObjectRoot, Storage};
use url::Url;

/// Lets delta-rs open `s3://` URLs of `storage`'s bucket. Nothing to do for
/// local storage. Registering again replaces the earlier root.
pub fn register(storage: &Storage) {
    let Some(root) = storage.object() else { return };
    let (Ok(s3), Ok(file)) = (Url::parse("s3://"), Url::parse("file://")) else { return };
    object_store_factories().insert(s3.clone(), Arc::new(RootFactory(root.clone())));
    // The default log store (conditional puts for commits) serves S3 as it
    // serves local files.
    let default = logstore_factories().get(&file).map(|f| f.value().clone());
    if let Some(default) = default {
        logstore_factories().insert(s3, default);
    }
}

struct RootFactory(Arc<ObjectRoot>);

impl ObjectStoreFactory for RootFactory {
    fn parse_url_opts(&self, url: &Url, _config: &StorageConfig) -> DeltaResult<(ObjectStoreRef, Path)> {
        if url.host_str() != Some(self.0.bucket()) {
            return Err(DeltaTableError::InvalidTableLocation(format!("{url} is outside tarn's storage root")));
        }
        let path = Path::from_url_path(url.path()).map_err(|e| DeltaTableError::InvalidTableLocation(e.to_string()))?;
        Ok((self.0.store(), path))
    }
}

/// The store a table at `url` is read and written through, and the URL of
/// that store's root.
pub(crate) fn store_for(storage: &Storage, url: &Url) -> Result<(ObjectStoreRef, Url), String> {
    match (url.scheme(), storage.object()) {
        ("file", _) => {
            let root = Url::parse("file:///").map_err(|e| e.to_string())?;
            Ok((Arc::new(object_store::local::LocalFileSystem::new()), root))
        }
        ("s3", Some(object)) if url.host_str() == Some(object.bucket()) => {
            let root = Url::parse(&format!("s3://{}/", object.bucket())).map_err(|e| e.to_string())?;
            Ok((object.store(), root))
        }
        _ => Err(format!("{url} is outside tarn's storage")),
    }
}
