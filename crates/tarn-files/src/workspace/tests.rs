use super::*;
use crate::testdir::TempDir;

fn workspace(tmp: &TempDir) -> Workspace {
    let store = Arc::new(Store::open_in_memory().unwrap());
    Workspace::new(Root::open(&tmp.0.join("workspace")).unwrap(), store)
}

fn import(path: &str, content: &str, format: Format, language: Option<Language>, overwrite: bool) -> Import {
    Import {
        path: path.into(),
        creator: "me".into(),
        content: content.as_bytes().to_vec(),
        format,
        language,
        overwrite,
    }
}

/// The same workspace with its content in (in-memory) object storage.
fn object_workspace(tmp: &TempDir) -> Workspace {
    let store = Arc::new(Store::open_in_memory().unwrap());
    let storage = tarn_storage::Storage::in_memory("team", &tmp.0.join("scratch")).unwrap();
    let tree = crate::ObjectTree::new(storage.object().unwrap().clone(), "workspace");
    Workspace::new(Tree::Object(tree), store)
}

#[test]
fn notebooks_files_and_directories() {
    let tmp = TempDir::new("workspace");
    notebooks_files_and_directories_in(workspace(&tmp));
    notebooks_files_and_directories_in(object_workspace(&tmp));
}

fn notebooks_files_and_directories_in(ws: Workspace) {
    ws.ensure_home("admin@example.com").unwrap();
    let home = "/Users/admin@example.com";
    ws.mkdirs(&format!("{home}/proj/sub"), "me").unwrap();
    let nb =
        ws.import(import(&format!("{home}/proj/etl"), "x = 1", Format::Source, Some(Language::Python), false)).unwrap();
    assert_eq!((nb.object_type, nb.language), (ObjectType::Notebook, Some(Language::Python)));
    let again = import(&format!("{home}/proj/etl"), "x = 2", Format::Source, Some(Language::Python), false);
    assert!(matches!(ws.import(again.clone()), Err(FilesError::AlreadyExists { .. })));
    assert_eq!(ws.notebook(&format!("{home}/proj/etl")).unwrap().cells()[0].source, "x = 1");
    let replaced = ws.import(Import { overwrite: true, ..again }).unwrap();
    assert_eq!(replaced.object_id, nb.object_id);
    ws.import(import(&format!("/Workspace{home}/proj/data.csv"), "a,b\n", Format::Auto, None, false)).unwrap();
    let listed: Vec<(String, ObjectType)> =
        ws.list(&format!("{home}/proj"), None).unwrap().into_iter().map(|o| (o.path, o.object_type)).collect();
    assert_eq!(
        listed,
        [
            (format!("{home}/proj/data.csv"), ObjectType::File),
            (format!("{home}/proj/etl"), ObjectType::Notebook),
            (format!("{home}/proj/sub"), ObjectType::Directory),
        ]
    );
    let exported = ws.export(&format!("{home}/proj/etl"), Format::Source).unwrap();
    assert_eq!(exported.content, b"# Databricks notebook source\nx = 2");
    assert_eq!(exported.file_type.as_deref(), Some("py"));
    assert!(matches!(ws.delete(&format!("{home}/proj"), false), Err(FilesError::DirectoryNotEmpty { .. })));
    assert_eq!(ws.get_status(&format!("{home}/proj/data.csv")).unwrap().size, Some(4));
    ws.delete(&format!("{home}/proj"), true).unwrap();
    assert!(matches!(ws.get_status(&format!("{home}/proj/etl")), Err(FilesError::NotFound { .. })));
    let content = Location::under(ws.root.clone(), "Users/admin@example.com/proj").unwrap();
    assert!(matches!(content.stat(), Err(FilesError::NotFound { .. })), "the content went with the rows");
}

#[test]
fn imports_need_a_parent_directory_and_refuse_bad_paths() {
    let tmp = TempDir::new("workspace-refusals");
    let ws = workspace(&tmp);
    let orphan = import("/Shared/missing/nb", "x", Format::Source, Some(Language::Python), false);
    assert!(matches!(ws.import(orphan), Err(FilesError::ParentNotFound { .. })));
    assert!(matches!(ws.mkdirs("/Shared/../etc", "me"), Err(FilesError::InvalidPath { .. })));
    assert!(matches!(ws.mkdirs("relative", "me"), Err(FilesError::InvalidPath { .. })));
    ws.mkdirs("/Shared", "me").unwrap();
    ws.import(import("/Shared/f", "x", Format::Raw, None, false)).unwrap();
    assert!(matches!(ws.mkdirs("/Shared/f/g", "me"), Err(FilesError::AlreadyExists { .. })));
    let over_dir = import("/Shared", "x", Format::Raw, None, true);
    assert!(matches!(ws.import(over_dir), Err(FilesError::AlreadyExists { .. })));
    assert_eq!(ws.export("/Shared/f", Format::Auto).unwrap().content, b"x");
    assert!(matches!(ws.delete("/", true), Err(FilesError::InvalidPath { .. })));
}
