//! Auto Loader and `read_files` batches: which files a batch takes (those
//! no committed batch took, at most `cloudFiles.maxFilesPerTrigger`), the
//! columns it reads them with under `cloudFiles.schemaEvolutionMode`, and
//! the relation that reads them.
//!
//! Modes, as Databricks defines them: `addNewColumns` (the default without
//! a declared schema) adds columns the new files bring; `none` (the
//! default with one) ignores them; `failOnNewColumns` stops the flow;
//! `rescue` keeps the columns of the first batch and puts every other
//! field of a JSON record into `_rescued_data` as a JSON object.

use spark_connect_proto::Relation;
use tarn_sqltext::quote_identifier;

use super::relation;
use super::sources::{self, option};
use crate::graph::FileSource;

/// The column rescued fields go to.
pub const RESCUED: &str = "_rescued_data";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    AddNewColumns,
    None,
    FailOnNewColumns,
    Rescue,
}

fn mode(source: &FileSource) -> Result<Mode, String> {
    let Some(value) = option(&source.options, "cloudFiles.schemaEvolutionMode") else {
        return Ok(if source.schema.is_some() { Mode::None } else { Mode::AddNewColumns });
    };
    match value.to_ascii_lowercase().as_str() {
        "addnewcolumns" => Ok(Mode::AddNewColumns),
        "none" => Ok(Mode::None),
        "failonnewcolumns" => Ok(Mode::FailOnNewColumns),
        "rescue" => Ok(Mode::Rescue),
        _ => Err(format!(
            "cloudFiles.schemaEvolutionMode '{value}' is not one of addNewColumns, rescue, failOnNewColumns, none"
        )),
    }
}

fn max_files(source: &FileSource) -> Result<Option<usize>, String> {
    option(&source.options, "cloudFiles.maxFilesPerTrigger")
        .map(|v| {
            v.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("cloudFiles.maxFilesPerTrigger must be a positive number, not '{v}'"))
        })
        .transpose()
}

/// One batch of a file source.
pub struct FileBatch {
    /// What the flow's view of the source reads.
    pub relation: Relation,
    /// The files it takes.
    pub files: Vec<String>,
    /// The columns of the source after this batch (JSON and CSV).
    pub columns: Vec<String>,
    /// Files were left for a later batch by `maxFilesPerTrigger`.
    pub limited: bool,
}

/// The batch of `source` after the files in `done` and the columns
/// `known` from earlier batches; `limit` applies `maxFilesPerTrigger`.
pub fn next_batch(
    dir: &sources::SourceDir,
    source: &FileSource,
    done: &std::collections::BTreeSet<String>,
    known: &[String],
    limit: bool,
) -> Result<FileBatch, String> {
    let mode = mode(source)?;
    let listed = dir.list_files().map_err(|e| format!("Auto Loader path {}: {e}", source.path))?;
    let mut new: Vec<String> = listed.into_iter().filter(|f| !done.contains(f)).collect();
    let mut limited = false;
    if let Some(max) = max_files(source)?.filter(|_| limit) {
        limited = new.len() > max;
        new.truncate(max);
    }
    let format = option(&source.options, "cloudFiles.format").unwrap_or(&source.format).to_ascii_lowercase();
    let sampled = sources::sample_columns(dir, &format, &new, &source.options)?.unwrap_or_default();
    let columns = evolve(mode, known, sampled, &source.path)?;
    let files = new;
    let rescue = mode == Mode::Rescue;
    if rescue && format != "json" {
        return Err(format!("schemaEvolutionMode rescue is supported for JSON sources, not {format}"));
    }
    let strings = format == "json"
        && source.schema.is_none()
        && !columns.is_empty()
        && (rescue || !sources::is_true(&source.options, "cloudFiles.inferColumnTypes"));
    let relation = if files.is_empty() {
        empty(&columns, rescue)
    } else if strings {
        json_strings(files.clone(), &columns, rescue)
    } else {
        read(source, &format, files.clone(), &columns, mode)
    };
    Ok(FileBatch { relation, files, columns, limited })
}

/// The source's columns after a batch that found `sampled`.
fn evolve(mode: Mode, known: &[String], sampled: Vec<String>, path: &str) -> Result<Vec<String>, String> {
    if known.is_empty() {
        return Ok(sampled);
    }
    let added: Vec<String> = sampled.into_iter().filter(|c| !known.contains(c)).collect();
    match mode {
        Mode::AddNewColumns => Ok(known.iter().cloned().chain(added).collect()),
        Mode::FailOnNewColumns if !added.is_empty() => Err(format!(
            "Auto Loader found new columns [{}] in {path} and cloudFiles.schemaEvolutionMode is failOnNewColumns: \
             change the schema or the files, then run the update again",
            added.join(", ")
        )),
        Mode::None | Mode::FailOnNewColumns | Mode::Rescue => Ok(known.to_vec()),
    }
}

fn options_for_reader(source: &FileSource) -> Vec<(String, String)> {
    source
        .options
        .iter()
        .filter(|(k, _)| !k.starts_with("cloudFiles."))
        .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
        .collect()
}

/// The files read by the engine: with the declared schema, as strings of
/// the known columns, or with types the engine infers.
fn read(source: &FileSource, format: &str, files: Vec<String>, columns: &[String], mode: Mode) -> Relation {
    let infer = sources::is_true(&source.options, "cloudFiles.inferColumnTypes");
    let schema = match &source.schema {
        Some(declared) => Some(declared.clone()),
        None => (!infer && !columns.is_empty()).then(|| sources::string_schema(columns)),
    };
    let read = relation::files(format, files, schema, options_for_reader(source));
    // Inferred types: columns the known ones lack are left out under `none`.
    if infer && mode == Mode::None && source.schema.is_none() && !columns.is_empty() {
        let select: Vec<String> = columns.iter().map(|c| quote_identifier(c)).collect();
        return relation::select(read, &select);
    }
    read
}

/// JSON lines read as text and parsed once each with every known column
/// as a string, as Auto Loader reads JSON without `inferColumnTypes` (the
/// engine's JSON reader refuses a number where the schema says string);
/// under `rescue`, the fields no column takes go to `_rescued_data` as a
/// JSON object (NULL when there are none).
fn json_strings(files: Vec<String>, columns: &[String], rescue: bool) -> Relation {
    const RECORD: &str = "__tarn_record";
    let text = relation::files("text", files, None, Vec::new());
    let mut parsed =
        vec![format!("from_json(value, '{}') AS {RECORD}", sources::string_schema(columns).replace('\'', "\\'"))];
    if rescue {
        parsed.push("value".into());
    }
    let mut select: Vec<String> =
        columns.iter().map(|c| format!("{RECORD}.{} AS {}", quote_identifier(c), quote_identifier(c))).collect();
    if rescue {
        let names = columns.iter().map(|c| format!("'{}'", c.replace('\'', "\\'"))).collect::<Vec<_>>().join(", ");
        let rest = if names.is_empty() {
            "from_json(value, 'map<string,string>')".to_string()
        } else {
            format!(
                "map_filter(from_json(value, 'map<string,string>'), (k, v) -> NOT array_contains(array({names}), k))"
            )
        };
        select.push(format!("CASE WHEN size({rest}) > 0 THEN to_json({rest}) END AS {RESCUED}"));
    }
    relation::select(relation::select(text, &parsed), &select)
}

/// No rows, with the source's columns as strings.
fn empty(columns: &[String], rescue: bool) -> Relation {
    let mut names: Vec<&str> = columns.iter().map(String::as_str).collect();
    if rescue {
        names.push(RESCUED);
    }
    let select = if names.is_empty() {
        "NULL AS value".to_string()
    } else {
        names.iter().map(|c| format!("CAST(NULL AS STRING) AS {}", quote_identifier(c))).collect::<Vec<_>>().join(", ")
    };
    relation::sql(&format!("SELECT {select} WHERE 1 = 0"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn modes_decide_what_new_columns_do() {
        let known = names(&["a", "b"]);
        let sampled = || names(&["a", "c"]);
        assert_eq!(evolve(Mode::AddNewColumns, &known, sampled(), "/p").unwrap(), names(&["a", "b", "c"]));
        assert_eq!(evolve(Mode::None, &known, sampled(), "/p").unwrap(), known);
        assert_eq!(evolve(Mode::Rescue, &known, sampled(), "/p").unwrap(), known);
        let error = evolve(Mode::FailOnNewColumns, &known, sampled(), "/p").unwrap_err();
        assert!(error.contains("[c]") && error.contains("failOnNewColumns"), "{error}");
        assert_eq!(evolve(Mode::FailOnNewColumns, &known, names(&["b"]), "/p").unwrap(), known);
        assert_eq!(evolve(Mode::FailOnNewColumns, &[], sampled(), "/p").unwrap(), sampled());
    }

    #[test]
    fn max_files_must_be_positive() {
        let mut source = FileSource::default();
        source.options.insert("cloudFiles.maxFilesPerTrigger".into(), Value::String("0".into()));
        assert!(max_files(&source).is_err());
        source.options.insert("cloudFiles.maxFilesPerTrigger".into(), Value::String("2".into()));
        assert_eq!(max_files(&source).unwrap(), Some(2));
    }
}
