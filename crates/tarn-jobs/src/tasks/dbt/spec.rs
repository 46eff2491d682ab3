//! A `dbt_task` as Databricks checks it at create and submit: one to ten
//! commands, each a `dbt` command line (split as a POSIX shell splits
//! words, quotes and backslashes included, with no expansion), a warehouse
//! that exists, `catalog`/`schema` only with a warehouse and
//! `profiles_directory` only without one, and a `GIT` source only in a job
//! with a `git_source`.

use serde_json::Value;

/// Databricks takes at most this many commands.
pub const MAX_COMMANDS: usize = 10;

/// Where the project comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectSource {
    Workspace,
    Git,
}

/// A `dbt_task`, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbtSpec {
    /// Each command as its words; the first is `dbt`.
    pub commands: Vec<Vec<String>>,
    pub project_directory: Option<String>,
    pub profiles_directory: Option<String>,
    pub warehouse_id: Option<String>,
    pub catalog: Option<String>,
    pub schema: Option<String>,
    pub source: ProjectSource,
}

impl DbtSpec {
    /// Reads `dbt_task`; `has_git_source` is whether the job has a
    /// `git_source` (the default source then, as on Databricks).
    pub fn parse(raw: &Value, has_git_source: bool) -> Result<DbtSpec, String> {
        let text = |key: &str| -> Result<Option<String>, String> {
            match raw.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("dbt_task.{key} must be a string")),
            }
        };
        let commands = match raw.get("commands") {
            Some(Value::Array(list)) => list,
            None | Some(Value::Null) => return Err("dbt_task.commands must not be empty".into()),
            Some(_) => return Err("dbt_task.commands must be a list of strings".into()),
        };
        if commands.is_empty() {
            return Err("dbt_task.commands must not be empty".into());
        }
        if commands.len() > MAX_COMMANDS {
            return Err(format!("dbt_task takes at most {MAX_COMMANDS} commands, got {}", commands.len()));
        }
        let commands = commands.iter().map(command).collect::<Result<Vec<_>, _>>()?;
        let source = match text("source")?.as_deref() {
            None if has_git_source => ProjectSource::Git,
            None | Some("WORKSPACE") => ProjectSource::Workspace,
            Some("GIT") if has_git_source => ProjectSource::Git,
            Some("GIT") => return Err("dbt_task.source is GIT, but the job has no git_source".into()),
            Some(other) => return Err(format!("dbt_task.source '{other}' is not one of WORKSPACE, GIT")),
        };
        let spec = DbtSpec {
            commands,
            project_directory: text("project_directory")?,
            profiles_directory: text("profiles_directory")?,
            warehouse_id: text("warehouse_id")?,
            catalog: text("catalog")?,
            schema: text("schema")?,
            source,
        };
        spec.check_combinations()?;
        Ok(spec)
    }

    fn check_combinations(&self) -> Result<(), String> {
        if self.warehouse_id.is_some() && self.profiles_directory.is_some() {
            return Err("dbt_task.profiles_directory can only be given without a warehouse_id".into());
        }
        if self.warehouse_id.is_none() {
            if self.catalog.is_some() {
                return Err("dbt_task.catalog can only be given with a warehouse_id".into());
            }
            if self.schema.is_some() {
                return Err("dbt_task.schema can only be given with a warehouse_id".into());
            }
        }
        if self.source == ProjectSource::Workspace && self.project_directory.is_none() {
            return Err("dbt_task.project_directory is needed when the project is not from a git_source".into());
        }
        Ok(())
    }
}

fn command(value: &Value) -> Result<Vec<String>, String> {
    let Some(line) = value.as_str() else { return Err("dbt_task.commands must be a list of strings".into()) };
    let words = split_words(line).map_err(|e| format!("dbt_task command '{line}': {e}"))?;
    match words.first().map(String::as_str) {
        Some("dbt") => Ok(words),
        _ => Err(format!("dbt_task command '{line}' does not start with 'dbt'; every command must")),
    }
}

/// Splits a command line into words as a POSIX shell does, without
/// expansions: blanks separate words, single quotes keep everything,
/// double quotes keep all but `\"`, `\\`, `\$` and `` \` ``, and a
/// backslash outside quotes keeps the next character.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => current.push(c),
                        None => return Err("a single quote is not closed".into()),
                    }
                }
            }
            '"' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => current.push(e),
                            Some(other) => {
                                current.push('\\');
                                current.push(other);
                            }
                            None => return Err("a double quote is not closed".into()),
                        },
                        Some(c) => current.push(c),
                        None => return Err("a double quote is not closed".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(next) => word.get_or_insert_with(String::new).push(next),
                None => return Err("the line ends with a backslash".into()),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn words_split_as_a_shell_splits_them() {
        let split = |s: &str| split_words(s).unwrap();
        assert_eq!(split("dbt run"), ["dbt", "run"]);
        assert_eq!(split("  dbt   run  --select a+ "), ["dbt", "run", "--select", "a+"]);
        assert_eq!(split(r#"dbt run --vars '{"a": 1}'"#), ["dbt", "run", "--vars", r#"{"a": 1}"#]);
        assert_eq!(split(r#"dbt run --vars "{\"a\": \"b c\"}""#), ["dbt", "run", "--vars", r#"{"a": "b c"}"#]);
        assert_eq!(split(r"dbt run --select my\ model"), ["dbt", "run", "--select", "my model"]);
        assert_eq!(split(r#"dbt "" x''y"#), ["dbt", "", "xy"]);
        assert_eq!(split(r#"dbt "a\nb""#), ["dbt", r"a\nb"]);
        assert!(split_words("dbt run 'open").is_err());
        assert!(split_words("dbt run \"open").is_err());
        assert!(split_words("dbt run \\").is_err());
    }

    #[test]
    fn a_task_is_read_with_its_defaults() {
        let spec = DbtSpec::parse(
            &json!({"commands": ["dbt deps", "dbt run --select 'a b'"], "project_directory": "/Workspace/p",
                    "warehouse_id": "w1", "schema": "s"}),
            false,
        )
        .unwrap();
        assert_eq!(spec.commands[1], ["dbt", "run", "--select", "a b"]);
        assert_eq!(spec.source, ProjectSource::Workspace);
        assert_eq!((spec.catalog, spec.schema.as_deref()), (None, Some("s")));
        let git = DbtSpec::parse(&json!({"commands": ["dbt run"]}), true).unwrap();
        assert_eq!((git.source, git.project_directory), (ProjectSource::Git, None));
        let workspace = json!({"commands": ["dbt run"], "project_directory": "/p", "source": "WORKSPACE"});
        assert_eq!(DbtSpec::parse(&workspace, true).unwrap().source, ProjectSource::Workspace);
    }

    #[test]
    fn bad_tasks_are_refused_naming_the_problem() {
        let refused = |raw: Value, git: bool| DbtSpec::parse(&raw, git).unwrap_err();
        assert!(refused(json!({"commands": []}), true).contains("must not be empty"));
        assert!(refused(json!({}), true).contains("must not be empty"));
        assert!(refused(json!({"commands": ["ls -la"]}), true).contains("does not start with 'dbt'"));
        assert!(refused(json!({"commands": ["dbtx run"]}), true).contains("does not start with 'dbt'"));
        assert!(refused(json!({"commands": [1]}), true).contains("list of strings"));
        let eleven: Vec<String> = (0..11).map(|_| "dbt run".to_string()).collect();
        assert!(refused(json!({"commands": eleven}), true).contains("at most 10"));
        assert!(
            refused(json!({"commands": ["dbt run"], "source": "GIT", "project_directory": "/p"}), false)
                .contains("no git_source")
        );
        assert!(refused(json!({"commands": ["dbt run"], "source": "S3"}), true).contains("not one of"));
        assert!(refused(json!({"commands": ["dbt run"]}), false).contains("project_directory"));
        let both = json!({"commands": ["dbt run"], "warehouse_id": "w", "profiles_directory": "p"});
        assert!(refused(both, true).contains("profiles_directory"));
        assert!(refused(json!({"commands": ["dbt run"], "catalog": "c"}), true).contains("catalog"));
        assert!(refused(json!({"commands": ["dbt run"], "schema": "s"}), true).contains("schema"));
    }
}
