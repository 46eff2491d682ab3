//! Notebook formats: Databricks SOURCE files (a header line, cells split by
//! `COMMAND ----------` lines, `MAGIC`-prefixed lines for other languages)
//! and Jupyter `.ipynb` documents, converted through SOURCE.

use serde_json::{Value, json};

use super::{Format, Language};
use crate::{FilesError, Result};

const SEPARATOR: &str = "COMMAND ----------";

/// One notebook cell. `magic` is the `%` command that opens a cell written
/// in another language or kind (`md`, `sql`, `pip`, `run`...), without the
/// `%`; `source` is the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub magic: Option<String>,
    pub source: String,
}

/// What an import becomes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Imported {
    /// Source text in SOURCE form, header first.
    Notebook {
        language: Language,
        source: String,
    },
    File(Vec<u8>),
}

fn header(language: Language) -> String {
    format!("{} Databricks notebook source", language.comment())
}

fn magic_prefix(language: Language) -> String {
    format!("{} MAGIC", language.comment())
}

fn has_header(text: &str, language: Language) -> bool {
    text.trim_start_matches('\u{feff}').lines().next().map(str::trim_end) == Some(header(language).as_str())
}

fn utf8(content: Vec<u8>, path: &str) -> Result<String> {
    String::from_utf8(content).map_err(|_| FilesError::InvalidArgument(format!("The content for {path} is not UTF-8")))
}

/// Source text with its header line, as stored.
pub(crate) fn with_header(text: &str, language: Language) -> String {
    if has_header(text, language) {
        return text.to_string();
    }
    format!("{}\n{text}", header(language))
}

/// The path an import lands at and what it becomes. AUTO makes a notebook of
/// `.ipynb` files and of `.py`/`.sql`/`.scala`/`.r` files that start with
/// the notebook header, dropping the extension; anything else is a file.
pub(crate) fn classify(
    path: &str,
    content: Vec<u8>,
    format: Format,
    language: Option<Language>,
) -> Result<(String, Imported)> {
    let (stem, extension) = match path.rsplit_once('.') {
        Some((stem, ext)) if !ext.contains('/') && !stem.ends_with('/') => (stem, ext),
        _ => (path, ""),
    };
    match format {
        Format::Source => {
            let language = language.ok_or_else(|| {
                FilesError::InvalidArgument(
                    "The language field is required to import a SOURCE notebook (use format AUTO or RAW for files)"
                        .into(),
                )
            })?;
            let source = with_header(&utf8(content, path)?, language);
            Ok((path.to_string(), Imported::Notebook { language, source }))
        }
        Format::Jupyter => Ok((path.to_string(), from_jupyter(&content, language, path)?)),
        Format::Auto if extension.eq_ignore_ascii_case("ipynb") => {
            Ok((stem.to_string(), from_jupyter(&content, language, path)?))
        }
        Format::Auto => match Language::from_extension(extension) {
            Some(lang) if std::str::from_utf8(&content).is_ok_and(|t| has_header(t, lang)) => {
                let source = utf8(content, path)?;
                Ok((stem.to_string(), Imported::Notebook { language: lang, source }))
            }
            _ => Ok((path.to_string(), Imported::File(content))),
        },
        Format::Raw => Ok((path.to_string(), Imported::File(content))),
        Format::Html | Format::Dbc | Format::RMarkdown => {
            Err(FilesError::Unsupported(format!("Importing {} is not supported by tarn", format.name())))
        }
    }
}

/// A file to run as notebook cells: a SOURCE notebook (by header) or an
/// `.ipynb` document is split into its cells; any other file is one cell in
/// the language its extension names (Python if none does).
pub fn file_cells(path: &str, content: Vec<u8>) -> Result<(Language, Vec<Cell>)> {
    match classify(path, content, Format::Auto, None)? {
        (_, Imported::Notebook { language, source }) => Ok((language, cells(&source, language))),
        (_, Imported::File(bytes)) => {
            let extension = path.rsplit_once('.').map_or("", |(_, e)| e);
            let language = Language::from_extension(extension).unwrap_or(Language::Python);
            Ok((language, vec![Cell { magic: None, source: utf8(bytes, path)? }]))
        }
    }
}

/// The cells of SOURCE text (header dropped), with magics split off.
pub(crate) fn cells(source: &str, language: Language) -> Vec<Cell> {
    let separator = format!("{} {SEPARATOR}", language.comment());
    let prefix = magic_prefix(language);
    let body = if has_header(source, language) { source.split_once('\n').map_or("", |(_, b)| b) } else { source };
    let mut chunks = vec![String::new()];
    for line in body.lines() {
        if line.trim_end() == separator {
            chunks.push(String::new());
        } else if let Some(chunk) = chunks.last_mut() {
            chunk.push_str(line);
            chunk.push('\n');
        }
    }
    chunks.iter().map(|c| c.trim_matches('\n')).filter(|c| !c.is_empty()).map(|c| cell(c, &prefix)).collect()
}

fn cell(text: &str, prefix: &str) -> Cell {
    let lines: Vec<&str> = text.lines().collect();
    let unprefixed: Option<Vec<&str>> =
        lines.iter().map(|l| l.strip_prefix(prefix).map(|r| r.strip_prefix(' ').unwrap_or(r))).collect();
    match unprefixed {
        Some(unprefixed) => split_magic(&unprefixed),
        None => Cell { magic: None, source: text.to_string() },
    }
}

/// A cell whose first line may be a `%magic` (with or without text after
/// it on the same line).
fn split_magic(lines: &[&str]) -> Cell {
    let Some(magic) = lines.first().and_then(|l| l.strip_prefix('%')).filter(|m| !m.starts_with('%')) else {
        return Cell { magic: None, source: lines.join("\n") };
    };
    let (name, inline) = magic.split_once(char::is_whitespace).unwrap_or((magic, ""));
    let inline = inline.trim_start();
    let rest = lines.get(1..).unwrap_or_default();
    let source = if inline.is_empty() { rest.join("\n") } else { [&[inline][..], rest].concat().join("\n") };
    Cell { magic: Some(name.to_string()), source }
}

/// SOURCE text of `cells`, header first; a magic goes on its own line.
fn to_source(cells: &[Cell], language: Language) -> String {
    let prefix = magic_prefix(language);
    let rendered: Vec<String> = cells
        .iter()
        .map(|c| match &c.magic {
            None => c.source.trim_end().to_string(),
            Some(magic) => {
                let text = format!("%{magic}\n{}", c.source.trim_end());
                let lines: Vec<String> =
                    text.lines().map(|l| if l.is_empty() { prefix.clone() } else { format!("{prefix} {l}") }).collect();
                lines.join("\n")
            }
        })
        .collect();
    let separator = format!("\n\n{} {SEPARATOR}\n\n", language.comment());
    format!("{}\n{}\n", header(language), rendered.join(&separator))
}

fn cell_text(cell: &Value) -> String {
    match cell.get("source") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(lines)) => lines.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

/// A Jupyter document as a notebook. The language is `language`, else the
/// document's own (`language_info.name`, `kernelspec.language`), else Python.
fn from_jupyter(content: &[u8], language: Option<Language>, path: &str) -> Result<Imported> {
    let invalid = || FilesError::InvalidArgument(format!("The content for {path} is not a Jupyter notebook"));
    let doc: Value = serde_json::from_slice(content).map_err(|_| invalid())?;
    let raw_cells = doc.get("cells").and_then(Value::as_array).ok_or_else(invalid)?;
    let meta = doc.get("metadata");
    let own = [&["language_info", "name"][..], &["kernelspec", "language"][..]]
        .iter()
        .find_map(|keys| keys.iter().try_fold(meta?, |v, k| v.get(k)).and_then(Value::as_str))
        .and_then(|name| Language::from_name(&name.to_ascii_uppercase()));
    let language = language.or(own).unwrap_or(Language::Python);
    let mut cells = Vec::new();
    for raw in raw_cells {
        let text = cell_text(raw);
        match raw.get("cell_type").and_then(Value::as_str) {
            Some("markdown") => cells.push(Cell { magic: Some("md".into()), source: text }),
            Some("code") => cells.push(split_magic(&text.lines().collect::<Vec<_>>())),
            _ => {}
        }
    }
    Ok(Imported::Notebook { language, source: to_source(&cells, language) })
}

fn lines_json(text: &str) -> Value {
    json!(text.split_inclusive('\n').collect::<Vec<_>>())
}

/// SOURCE text as a Jupyter (nbformat 4) document.
pub(crate) fn to_jupyter(source: &str, language: Language) -> Vec<u8> {
    let cells: Vec<Value> = cells(source, language)
        .into_iter()
        .map(|c| match c.magic.as_deref() {
            Some("md") => json!({"cell_type": "markdown", "metadata": {}, "source": lines_json(&c.source)}),
            _ => {
                let text = match &c.magic {
                    Some(magic) => format!("%{magic}\n{}", c.source),
                    None => c.source.clone(),
                };
                json!({"cell_type": "code", "execution_count": null, "metadata": {}, "outputs": [],
                       "source": lines_json(&text)})
            }
        })
        .collect();
    let doc = json!({
        "cells": cells,
        "metadata": {"language_info": {"name": language.name().to_ascii_lowercase()}},
        "nbformat": 4,
        "nbformat_minor": 5,
    });
    doc.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "# Databricks notebook source\nx = 1\n\n# COMMAND ----------\n\n# MAGIC %md\n# MAGIC # Title\n# MAGIC\n# MAGIC text\n\n# COMMAND ----------\n\n# MAGIC %sql\n# MAGIC SELECT 1\n";

    #[test]
    fn source_cells_split_on_commands_and_magics() {
        let cells = cells(SOURCE, Language::Python);
        assert_eq!(
            cells,
            [
                Cell { magic: None, source: "x = 1".into() },
                Cell { magic: Some("md".into()), source: "# Title\n\ntext".into() },
                Cell { magic: Some("sql".into()), source: "SELECT 1".into() },
            ]
        );
        assert_eq!(to_source(&cells, Language::Python), SOURCE);
        let inline = "# Databricks notebook source\n# MAGIC %sql SELECT 2";
        assert_eq!(
            super::cells(inline, Language::Python)[0],
            Cell { magic: Some("sql".into()), source: "SELECT 2".into() }
        );
    }

    #[test]
    fn jupyter_round_trips_through_source() {
        let Imported::Notebook { language, source } =
            from_jupyter(&to_jupyter(SOURCE, Language::Python), None, "nb").unwrap()
        else {
            panic!("not a notebook")
        };
        assert_eq!((language, source.as_str()), (Language::Python, SOURCE));
    }

    #[test]
    fn auto_import_tells_notebooks_from_files() {
        let nb = b"-- Databricks notebook source\nSELECT 1".to_vec();
        let (path, imported) = classify("/a/q.sql", nb, Format::Auto, None).unwrap();
        assert_eq!(path, "/a/q");
        assert!(matches!(imported, Imported::Notebook { language: Language::Sql, .. }));
        let (path, imported) = classify("/a/plain.py", b"print(1)".to_vec(), Format::Auto, None).unwrap();
        assert_eq!((path.as_str(), imported), ("/a/plain.py", Imported::File(b"print(1)".to_vec())));
        let (path, _) = classify("/a/x.ipynb", br#"{"cells": []}"#.to_vec(), Format::Auto, None).unwrap();
        assert_eq!(path, "/a/x");
        assert!(classify("/a/x", b"{}".to_vec(), Format::Jupyter, None).is_err());
        assert!(classify("/a/x", b"x".to_vec(), Format::Source, None).is_err());
        let (_, imported) = classify("/a/x", b"x = 1".to_vec(), Format::Source, Some(Language::Python)).unwrap();
        assert_eq!(
            imported,
            Imported::Notebook { language: Language::Python, source: with_header("x = 1", Language::Python) }
        );
    }
}
