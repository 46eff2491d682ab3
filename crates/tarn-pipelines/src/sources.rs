//! A pipeline's libraries read into definition sources: notebooks split in
//! cells, `.py` and `.sql` files, and globs over the workspace; SQL parsed
//! here, Python left for the analysis on the pipeline's compute.

use serde::Serialize;
use tarn_files::{Files, Format, Language, ObjectType};

use crate::graph::{DefinitionError, Definitions, Location};
use crate::settings::Library;

/// Python code for the analysis (`python/tarn/pipeline.py`).
#[derive(Debug, Clone, Serialize)]
pub struct PythonSource {
    pub path: String,
    pub code: String,
    pub first_line: u32,
}

#[derive(Debug, Default)]
pub struct Loaded {
    pub python: Vec<PythonSource>,
    /// SQL definitions, and every error met reading the libraries.
    pub sql: Definitions,
}

fn missing(path: &str, why: String) -> DefinitionError {
    DefinitionError {
        message: format!("Failed to load library {path}: {why}"),
        class: Some("FileNotFoundException".into()),
        location: Some(Location { path: path.to_string(), line: None }),
    }
}

fn read_text(files: &Files, path: &str) -> Result<String, String> {
    let bytes = if path.starts_with("/Volumes/") || path.starts_with("dbfs:") {
        files.dbfs().read_all(path).map_err(|e| e.to_string())?
    } else {
        files.workspace().export(path, Format::Raw).map_err(|e| e.to_string())?.content
    };
    String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())
}

fn line_of(text: &str, piece: &str) -> u32 {
    let offset = text.find(piece).unwrap_or(0);
    text[..offset].matches('\n').count() as u32 + 1
}

impl Loaded {
    fn file(&mut self, files: &Files, path: &str) {
        match read_text(files, path) {
            Err(why) => self.sql.errors.push(missing(path, why)),
            Ok(text) if path.ends_with(".sql") => self.sql.extend(crate::sql::definitions(path, &text, 1)),
            Ok(code) => self.python.push(PythonSource { path: path.into(), code, first_line: 1 }),
        }
    }

    fn notebook(&mut self, files: &Files, path: &str) {
        let notebook = match files.workspace().notebook(path) {
            Ok(n) => n,
            Err(e) => return self.sql.errors.push(missing(path, e.to_string())),
        };
        // A notebook's Python cells share one namespace, as in a notebook:
        // one source, each cell at its own line.
        let mut python = String::new();
        for cell in notebook.cells() {
            let line = line_of(&notebook.source, &cell.source);
            let language = match cell.magic.as_deref() {
                None => notebook.language,
                Some("sql") => Language::Sql,
                Some("python") => Language::Python,
                // Markdown, %pip and %run cells define nothing.
                Some(_) => continue,
            };
            match language {
                Language::Sql => self.sql.extend(crate::sql::definitions(path, &cell.source, line)),
                Language::Python => {
                    let at = python.matches('\n').count() as u32 + 1;
                    python.push_str(&"\n".repeat(line.saturating_sub(at) as usize));
                    python.push_str(&cell.source);
                    python.push('\n');
                }
                other => self.sql.errors.push(missing(path, format!("{} notebooks define no datasets", other.name()))),
            }
        }
        if !python.trim().is_empty() {
            self.python.push(PythonSource { path: path.into(), code: python, first_line: 1 });
        }
    }

    fn glob(&mut self, files: &Files, pattern: &str) {
        let base = pattern.split('*').next().unwrap_or_default().trim_end_matches('/').to_string();
        let mut found = Vec::new();
        let mut pending = vec![base.clone()];
        while let Some(dir) = pending.pop() {
            let Ok(entries) = files.workspace().list(&dir, None) else { continue };
            for entry in entries {
                if entry.object_type.is_container() {
                    pending.push(entry.path.clone());
                } else if matches(pattern, &entry.path) {
                    found.push((entry.path.clone(), entry.object_type == ObjectType::Notebook));
                }
            }
        }
        if found.is_empty() {
            return self.sql.errors.push(missing(pattern, "no file matches the pattern".into()));
        }
        found.sort();
        for (path, notebook) in found {
            if notebook {
                self.notebook(files, &path);
            } else if path.ends_with(".py") || path.ends_with(".sql") {
                self.file(files, &path);
            }
        }
    }
}

/// `*` matches within a path segment, `**` across segments.
fn matches(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p {
            [] => s.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=s.len()).any(|i| go(rest, &s[i..])),
            [b'*', rest @ ..] => (0..=s.len()).take_while(|&i| i == 0 || s[i - 1] != b'/').any(|i| go(rest, &s[i..])),
            [c, rest @ ..] => s.first() == Some(c) && go(rest, &s[1..]),
        }
    }
    go(pattern.as_bytes(), path.as_bytes())
}

pub fn load(files: &Files, libraries: &[Library]) -> Loaded {
    let mut loaded = Loaded::default();
    for library in libraries {
        match library {
            Library::Notebook(path) => loaded.notebook(files, path),
            Library::File(path) => loaded.file(files, path),
            Library::Glob(pattern) => loaded.glob(files, pattern),
        }
    }
    loaded
}

#[cfg(test)]
mod tests {
    #[test]
    fn globs_match_within_and_across_segments() {
        assert!(super::matches("/p/**", "/p/a/b.py"));
        assert!(super::matches("/p/*.sql", "/p/x.sql"));
        assert!(!super::matches("/p/*.sql", "/p/a/x.sql"));
        assert!(super::matches("/p/**/*.py", "/p/a/b/c.py"));
    }
}
