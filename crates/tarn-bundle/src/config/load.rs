//! The loader's entry points: finding the bundle root, reading
//! `databricks.yml` and its `include:` files, and running the steps that
//! resolve the tree for one target, in the CLI's order (target merge,
//! variables, interpolation, paths, mode and presets, sync, artifacts).

use std::path::{Path, PathBuf};

use super::yaml::{self, Node, error};
use super::{
    Bundle, CurrentUser, Diagnostic, LoadOptions, Lookup, Severity, interpolate, merge, mode, normalize, output, paths,
    resources, sync, targets, variables,
};

const FILE_NAMES: [&str; 2] = ["databricks.yml", "databricks.yaml"];

/// Top-level keys of `databricks.yml`; `environments` is the older name of `targets`.
const TOP_LEVEL: [&str; 15] = [
    "bundle",
    "include",
    "variables",
    "workspace",
    "artifacts",
    "resources",
    "targets",
    "environments",
    "sync",
    "run_as",
    "presets",
    "permissions",
    "experimental",
    "python",
    "scripts",
];

/// The directory holding `databricks.yml` (or `.yaml`): `start` or the
/// nearest parent that has one; `DATABRICKS_BUNDLE_ROOT` wins when set.
pub fn find_root(start: &Path) -> Option<PathBuf> {
    if let Some(root) = std::env::var_os("DATABRICKS_BUNDLE_ROOT").filter(|r| !r.is_empty()) {
        return Some(PathBuf::from(root));
    }
    start.ancestors().find(|dir| config_file(dir).is_some()).map(Path::to_path_buf)
}

fn config_file(dir: &Path) -> Option<PathBuf> {
    FILE_NAMES.iter().map(|name| dir.join(name)).find(|path| path.is_file())
}

/// Loads the bundle at `root` for one target. Errors come back all
/// together where a step can go on after them; warnings ride on the
/// [`Bundle`].
pub fn load(
    root: &Path,
    options: &LoadOptions,
    user: &CurrentUser,
    lookup: &dyn Lookup,
) -> Result<Bundle, Vec<Diagnostic>> {
    let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let mut warnings = Vec::new();
    let tree = read_files(&root, &mut warnings)?;
    let (mut tree, target) = targets::apply(tree, options.target.as_deref())?;
    resources::check_types(&tree)?;
    resources::check_principals(&tree)?;
    let vars = variables::resolve(&tree, &target, options, lookup)?;
    let context = interpolate::Context::new(&mut tree, &target, vars, user)?;
    interpolate::tree(&mut tree, &context)?;
    normalize::resources(&mut tree);
    resources::apply_run_as_and_permissions(&mut tree);
    let modes = mode::apply(&mut tree, &target, &context, &root, &mut warnings)?;
    paths::translate(&mut tree, &root, &context.workspace.file_path)?;
    let sync_files = sync::files(&root, &tree)?;
    let artifacts = sync::artifacts(&root, &tree, &context.workspace.file_path)?;
    Ok(output::bundle(output::Parts {
        root,
        tree,
        target,
        context,
        lock_enabled: modes.lock_enabled,
        sync_files,
        artifacts,
        warnings,
    }))
}

/// `databricks.yml` with every `include:` file merged in.
fn read_files(root: &Path, warnings: &mut Vec<Diagnostic>) -> Result<Node, Vec<Diagnostic>> {
    let Some(main) = config_file(root) else {
        let summary = format!("unable to locate bundle root: databricks.yml not found in {}", root.display());
        return Err(vec![error(summary, None, "")]);
    };
    let mut tree = read_one(root, &main, warnings)?;
    let mut errors = Vec::new();
    for (pattern, loc) in include_patterns(&tree, &mut errors) {
        let full = root.join(&pattern).to_string_lossy().into_owned();
        let matches = match glob::glob(&full) {
            Ok(paths) => {
                let mut found: Vec<PathBuf> = paths.filter_map(Result::ok).filter(|p| p.is_file()).collect();
                found.sort();
                found
            }
            Err(e) => {
                errors.push(error(format!("invalid include pattern {pattern}: {e}"), Some(loc), "include"));
                continue;
            }
        };
        if matches.is_empty() {
            let summary = format!("{pattern} defined in 'include' section does not match any files");
            errors.push(error(summary, Some(loc), "include"));
            continue;
        }
        for file in matches.into_iter().filter(|f| *f != main) {
            match read_one(root, &file, warnings) {
                Ok(mut included) => {
                    if let Some(inner) = included.remove("include") {
                        errors.push(error("include: is only allowed in databricks.yml", Some(inner.loc), "include"));
                    }
                    merge::include(&mut tree, included, "", &mut errors);
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
    }
    if errors.is_empty() { Ok(tree) } else { Err(errors) }
}

fn include_patterns(tree: &Node, errors: &mut Vec<Diagnostic>) -> Vec<(String, super::Location)> {
    let Some(include) = tree.get("include") else { return Vec::new() };
    let mut patterns = Vec::new();
    for (i, item) in include.items().iter().enumerate() {
        match item.as_str() {
            Some(p) => patterns.push((p.to_string(), item.loc.clone())),
            None => errors.push(error("an include must be a string", Some(item.loc.clone()), &format!("include[{i}]"))),
        }
    }
    if !include.is_null() && !matches!(include.kind, yaml::Kind::Seq(_)) {
        errors.push(error("include must be a list of file patterns", Some(include.loc.clone()), "include"));
    }
    patterns
}

fn read_one(root: &Path, file: &Path, warnings: &mut Vec<Diagnostic>) -> Result<Node, Vec<Diagnostic>> {
    let rel = file.strip_prefix(root).unwrap_or(file);
    let text = std::fs::read_to_string(file)
        .map_err(|e| vec![error(format!("cannot read {}: {e}", rel.display()), None, "")])?;
    let tree = yaml::parse(&text, rel).map_err(|e| vec![e])?;
    if !tree.is_map() {
        return Err(vec![error("a bundle file must hold a map of keys", Some(tree.loc.clone()), "")]);
    }
    let mut errors = Vec::new();
    for (key, value) in tree.entries() {
        if !TOP_LEVEL.contains(&key.as_str()) {
            errors.push(error(format!("unknown field: {key}"), Some(value.loc.clone()), key));
        } else if matches!(key.as_str(), "experimental" | "python" | "scripts") {
            warnings.push(Diagnostic {
                severity: Severity::Warning,
                summary: format!("tarn ignores {key}: it is not supported"),
                location: Some(value.loc.clone()),
                path: key.clone(),
            });
        }
    }
    if errors.is_empty() { Ok(tree) } else { Err(errors) }
}
