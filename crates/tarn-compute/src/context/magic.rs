//! `%pip` commands: a Python command whose lines are `%pip install ...`
//! becomes installer steps for the context's own environment (tarn runs
//! them, then restarts the context's Python in the new environment).
//! Other magics (`%sh`, `%sql` inside a Python command) are the worker's.

use crate::libraries::{LibraryFiles, is_remote_path};

/// pip options the installer does without (or does by itself).
const IGNORED_FLAGS: &[&str] = &["-q", "--quiet", "--no-cache-dir", "--disable-pip-version-check", "--user"];

/// The install steps of a `%pip` command, `None` when `code` is not one.
/// Volume, DBFS and workspace paths (`-r FILE`, wheels) are copied locally.
pub fn pip_steps(code: &str, files: &dyn LibraryFiles) -> Option<Result<Vec<Vec<String>>, String>> {
    let joined = code.replace("\\\n", " ");
    let lines: Vec<&str> = joined.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    if !lines.first().is_some_and(|l| is_pip(l)) {
        return None;
    }
    Some(lines.iter().map(|line| pip_line(line, files)).collect())
}

fn is_pip(line: &str) -> bool {
    line == "%pip" || line.starts_with("%pip ")
}

fn pip_line(line: &str, files: &dyn LibraryFiles) -> Result<Vec<String>, String> {
    if !is_pip(line) {
        return Err(format!("A %pip command holds only %pip lines; put `{line}` in a command of its own"));
    }
    let words = split_words(&line["%pip".len()..])?;
    match words.first().map(String::as_str) {
        Some("install") => {}
        Some(other) => return Err(format!("%pip {other} is not supported here; tarn runs %pip install")),
        None => return Err("%pip needs a subcommand: %pip install PACKAGE ...".into()),
    }
    let mut step = Vec::new();
    let mut args = words.into_iter().skip(1).peekable();
    while let Some(arg) = args.next() {
        if IGNORED_FLAGS.contains(&arg.as_str()) {
            continue;
        }
        if arg == "-r" || arg == "--requirement" {
            let path = args.next().ok_or("-r needs a requirements file")?;
            step.push("-r".into());
            step.push(local(&path, files)?);
        } else if arg.ends_with(".whl") {
            step.push(local(&arg, files)?);
        } else {
            step.push(arg);
        }
    }
    if step.is_empty() {
        return Err("%pip install needs a package, a wheel or -r FILE".into());
    }
    Ok(step)
}

fn local(path: &str, files: &dyn LibraryFiles) -> Result<String, String> {
    if is_remote_path(path) { files.local_copy(path) } else { Ok(path.to_string()) }
}

/// Words as a shell splits them: whitespace apart, quotes kept together.
fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("%pip: a quote is not closed".into());
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Copies;
    impl LibraryFiles for Copies {
        fn local_copy(&self, path: &str) -> Result<String, String> {
            if path.contains("missing") { Err(format!("{path}: not found")) } else { Ok(format!("/copy{path}")) }
        }
    }

    fn steps(code: &str) -> Option<Result<Vec<Vec<String>>, String>> {
        pip_steps(code, &Copies)
    }

    #[test]
    fn pip_commands_become_install_steps() {
        assert_eq!(steps("print(1)"), None);
        assert_eq!(steps("# a comment\nx = 1\n%pip install a"), None, "not a %pip command");
        assert_eq!(
            steps("%pip install -q 'simplejson==3.19.*' \"b>=1\"\n%pip install -r /Workspace/req.txt"),
            Some(Ok(vec![
                vec!["simplejson==3.19.*".to_string(), "b>=1".to_string()],
                vec!["-r".to_string(), "/copy/Workspace/req.txt".to_string()],
            ]))
        );
        assert_eq!(
            steps("%pip install \\\n  /Volumes/m/d/v/a-1-py3-none-any.whl /tmp/local.whl"),
            Some(Ok(vec![vec!["/copy/Volumes/m/d/v/a-1-py3-none-any.whl".to_string(), "/tmp/local.whl".to_string()]]))
        );
    }

    #[test]
    fn bad_pip_commands_say_why() {
        for (code, why) in [
            ("%pip uninstall -y a", "tarn runs %pip install"),
            ("%pip", "needs a subcommand"),
            ("%pip install -q", "needs a package"),
            ("%pip install 'a", "quote is not closed"),
            ("%pip install a\nimport a", "only %pip lines"),
            ("%pip install -r /Volumes/missing.txt", "not found"),
        ] {
            let err = steps(code).and_then(|r| r.err()).unwrap_or_default();
            assert!(err.contains(why), "{code}: {err}");
        }
    }
}
