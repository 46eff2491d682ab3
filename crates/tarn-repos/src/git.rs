//! The `git` binary, run as a child process: never interactive
//! (`GIT_TERMINAL_PROMPT=0`, no credential helpers), under a timeout, its
//! output kept only to explain a failure. A token reaches git through the
//! environment of one child and an askpass script that prints it, never
//! through the command line, a URL or a log line.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::{RepoError, Result};

/// Credentials for one https remote.
#[derive(Clone)]
pub struct Auth {
    pub username: String,
    pub token: String,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("username", &self.username).finish_non_exhaustive()
    }
}

/// Prints the username or the token git asks for, from this child's
/// environment only.
const ASKPASS: &str = "#!/bin/sh\ncase \"$1\" in\n  Username*) printf '%s\\n' \"$TARN_GIT_USERNAME\" ;;\n  *) printf '%s\\n' \"$TARN_GIT_TOKEN\" ;;\nesac\n";

/// How tarn runs git.
#[derive(Debug, Clone)]
pub struct Git {
    askpass: PathBuf,
    timeout: Duration,
}

impl Git {
    /// Writes the askpass script into `dir` (mode 0700).
    pub fn new(dir: &Path, timeout: Duration) -> Result<Git> {
        let askpass = dir.join(".tarn-askpass.sh");
        std::fs::write(&askpass, ASKPASS).map_err(|e| RepoError::io("writing git's askpass script", e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| RepoError::io("making git's askpass script executable", e))?;
        }
        Ok(Git { askpass, timeout })
    }

    /// Runs `git <args>` in `cwd`; its stdout on success, its stderr's
    /// last lines (credentials in URLs masked) on failure.
    pub async fn run(&self, cwd: &Path, args: &[&str], auth: Option<&Auth>) -> std::result::Result<String, String> {
        let mut command = tokio::process::Command::new("git");
        command
            .args(["-c", "credential.helper=", "-c", "core.hooksPath=/dev/null", "-c", "advice.detachedHead=false"])
            .args(args)
            .current_dir(cwd)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GCM_INTERACTIVE", "never")
            .env("GIT_ASKPASS", &self.askpass)
            .env("LC_ALL", "C")
            .env_remove("TARN_GIT_USERNAME")
            .env_remove("TARN_GIT_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(auth) = auth {
            command.env("TARN_GIT_USERNAME", &auth.username).env("TARN_GIT_TOKEN", &auth.token);
        }
        let child = command.spawn().map_err(|e| format!("tarn could not run git: {e}"))?;
        let output = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => return Err(format!("git failed: {e}")),
            Err(_) => return Err(format!("git took longer than {} seconds", self.timeout.as_secs())),
        };
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).trim().to_string());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(3)..].join("; ");
        Err(mask(&tail))
    }
}

/// `text` with the user information of any URL in it (`https://u:t@h`)
/// replaced, so a token someone put in a URL is not echoed back.
pub fn mask(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(|c: char| c.is_whitespace() || c == '/' || c == '\'' || c == '"').unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***@");
                rest = &tail[at + 1..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// Whether `url` speaks http(s), where credentials apply.
pub fn is_http(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// Whether `url` names a remote (`http(s)://`, `ssh://`, `git://`, or
/// ssh's `[user@]host:path`) rather than a path on the tarn server.
pub fn is_remote(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    if ["https://", "http://", "ssh://", "git://"].iter().any(|p| lower.starts_with(p)) {
        return true;
    }
    match url.split_once(':') {
        Some((host, _)) => !host.is_empty() && !host.contains('/') && !lower.starts_with("file:"),
        None => false,
    }
}

/// Refuses a ref name git could read as an option or that is not a plain name.
pub fn check_ref(kind: &str, name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.starts_with('-')
        || name.contains("..")
        || name.chars().any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c));
    if bad {
        return Err(RepoError::InvalidParameter(format!("'{name}' is not a valid {kind} name")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_information_in_urls_is_masked() {
        assert_eq!(
            mask("fatal: unable to access 'https://me:tok@example.com/r.git/': x"),
            "fatal: unable to access 'https://***@example.com/r.git/': x"
        );
        assert_eq!(mask("file:///tmp/x and http://h/p"), "file:///tmp/x and http://h/p");
        for remote in ["https://github.com/a/b.git", "ssh://git@h/a.git", "git@github.com:a/b.git"] {
            assert!(super::is_remote(remote), "{remote}");
        }
        for local in ["/srv/repos/a", "file:///srv/a", "./a", "a/b:c"] {
            assert!(!super::is_remote(local), "{local}");
        }
    }

    #[test]
    fn ref_names_that_look_like_options_are_refused() {
        assert!(check_ref("branch", "feature/x").is_ok());
        assert!(check_ref("branch", "--upload-pack=x").is_err());
        assert!(check_ref("tag", "a b").is_err());
        assert!(check_ref("tag", "a..b").is_err());
    }
}
