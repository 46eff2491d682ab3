//! `/Volumes/<catalog>/<schema>/<volume>/<path>`: a volume looked up in the
//! catalog, the path confined to its storage location.

use tarn_catalog::{Catalog, CatalogError, Kind, local_path};

use crate::confine::{Root, segments};
use crate::object::ObjectTree;
use crate::tree::{Location, Tree};
use crate::{FilesError, Result};

/// Volume paths. Cheap to clone.
#[derive(Clone)]
pub struct Volumes {
    catalog: Catalog,
}

const SHAPE: &str = "it must be /Volumes/<catalog>/<schema>/<volume>/<path>";

impl Volumes {
    pub fn new(catalog: Catalog) -> Volumes {
        Volumes { catalog }
    }

    /// Where `path` (`/Volumes/c/s/v/...`, the volume's root included) is.
    pub fn locate(&self, path: &str) -> Result<Location> {
        let parts = segments(path, path)?;
        let ["Volumes", catalog, schema, volume, rest @ ..] = parts.as_slice() else {
            return Err(FilesError::InvalidPath { path: path.to_string(), reason: SHAPE });
        };
        let name = format!("{catalog}.{schema}.{volume}");
        let info = self.catalog.get(Kind::Volume, &name).map_err(|e| match e {
            CatalogError::NotFound { .. } => FilesError::VolumeNotFound { name: name.clone() },
            CatalogError::InvalidArgument(_) => FilesError::InvalidPath { path: path.to_string(), reason: SHAPE },
            other => other.into(),
        })?;
        let location = info.get("storage_location").and_then(|l| l.as_str()).unwrap_or_default();
        if let Some(root) = self.catalog.storage().object()
            && let Some(prefix) = root.rel_of_url(location).filter(|p| !p.is_empty())
        {
            return Location::new(Tree::Object(ObjectTree::new(root.clone(), &prefix)), &rest.join("/"), path);
        }
        let dir = local_path(location).ok_or_else(|| {
            FilesError::Unsupported(format!("Volume {name} is stored at {location}, which tarn cannot reach"))
        })?;
        Location::new(Root::open(&dir)?, &rest.join("/"), path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TempDir;
    use std::sync::Arc;

    #[test]
    fn volume_paths_resolve_through_the_catalog() {
        let tmp = TempDir::new("volumes");
        let catalog = Catalog::new(Arc::new(tarn_store::Store::open_in_memory().unwrap()), tmp.0.join("lake"));
        catalog.bootstrap("admin").unwrap();
        let req = tarn_catalog::CreateRequest {
            catalog_name: Some("main".into()),
            schema_name: Some("default".into()),
            name: Some("landing".into()),
            ..Default::default()
        };
        let info = catalog.create(Kind::Volume, &req, "admin").unwrap();
        let volumes = Volumes::new(catalog);
        let loc = volumes.locate("/Volumes/Main/default/landing/a/b.csv").unwrap();
        assert_eq!(loc.shown(), "/Volumes/Main/default/landing/a/b.csv");
        let mut staged = loc.create_file().unwrap();
        staged.write(b"x").unwrap();
        staged.commit(crate::Overwrite::Allow).unwrap();
        let dir = local_path(info["storage_location"].as_str().unwrap()).unwrap();
        assert_eq!(std::fs::read(dir.join("a/b.csv")).unwrap(), b"x");
        for (path, bad) in [
            ("/Volumes/main/default/nope/x", "VolumeNotFound"),
            ("/Volumes/main/default", "InvalidPath"),
            ("/tmp/x", "InvalidPath"),
            ("/Volumes/main/default/landing/../../x", "InvalidPath"),
        ] {
            let err = volumes.locate(path).unwrap_err();
            assert!(format!("{err:?}").starts_with(bad), "{path}: {err:?}");
        }
    }
}
