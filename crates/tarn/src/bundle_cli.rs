//! `tarn bundle`: Declarative Automation Bundles as the databricks CLI's
//! `bundle` group drives them (`init`, `validate`, `deploy`, `run`,
//! `destroy`, `summary`), against the workspace `tarn_assist::Workspace`
//! finds. Loading is `tarn_bundle::config`'s, deploying
//! `tarn_bundle::deploy`'s; this module parses flags and prints.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};
use tarn_assist::Client;
use tarn_bundle::config::{self, CurrentUser, LoadOptions};
use tarn_bundle::deploy::{self, ApiLookup, DeployOptions, resources};
use tarn_bundle::{Bundle, Diagnostic};

use crate::jobs_cli::{client, parse_param, pretty, runtime};

#[derive(Args)]
pub struct BundleArgs {
    /// The target to use (the bundle's default target otherwise).
    #[arg(short = 't', long, global = true)]
    target: Option<String>,
    /// A variable's value, NAME=VALUE (repeatable).
    #[arg(long = "var", value_parser = parse_param, global = true)]
    vars: Vec<(String, String)>,
    #[command(subcommand)]
    action: BundleAction,
}

#[derive(Subcommand)]
pub enum BundleAction {
    /// Write a starter bundle: a job running a notebook, dev and prod targets.
    Init {
        /// Where to write it (default: ./<name>).
        dir: Option<PathBuf>,
        #[arg(long)]
        name: Option<String>,
    },
    /// Load the bundle for the target and report what is wrong with it.
    Validate {
        /// `json` prints the resolved configuration.
        #[arg(short = 'o', long, default_value = "text")]
        output: String,
    },
    /// Upload the files and create or update the resources.
    Deploy {
        /// Accepted for the databricks CLI's sake; tarn asks nothing.
        #[arg(long)]
        auto_approve: bool,
        /// Take the deploy lock even when another deploy holds it.
        #[arg(long)]
        force_lock: bool,
    },
    /// Run a deployed job or pipeline and follow it to its end.
    Run {
        /// The resource's key (`jobs.KEY` or `pipelines.KEY` where ambiguous).
        key: String,
        /// A job parameter, NAME=VALUE (repeatable).
        #[arg(long = "param", value_parser = parse_param)]
        param: Vec<(String, String)>,
        /// Job parameters as NAME=VALUE,NAME=VALUE.
        #[arg(long, value_delimiter = ',', value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Rewrite every table of a pipeline.
        #[arg(long)]
        full_refresh_all: bool,
        /// Print the run's id and return at once.
        #[arg(long)]
        no_wait: bool,
    },
    /// Delete every deployed resource and the bundle's workspace folder.
    Destroy {
        /// Destroy without asking.
        #[arg(long)]
        auto_approve: bool,
        #[arg(long)]
        force_lock: bool,
    },
    /// The deployment: where it is and each resource's id and page.
    Summary {
        #[arg(short = 'o', long, default_value = "text")]
        output: String,
    },
}

pub fn bundle(home: &Path, args: BundleArgs) -> Result<(), String> {
    let BundleArgs { target, vars, action } = args;
    if let BundleAction::Init { dir, name } = action {
        return crate::bundle_init::init(dir, name);
    }
    let client = client(home)?;
    let options = LoadOptions { target, vars };
    runtime()?.block_on(async move {
        let user = deploy::current_user(&client).await.map_err(|e| format!("finding the current user: {e}"))?;
        let bundle = load(&client, &options, &user)?;
        match action {
            BundleAction::Init { .. } => Ok(()),
            BundleAction::Validate { output } => validate(&client, &bundle, &user, &output),
            BundleAction::Deploy { auto_approve: _, force_lock } => {
                print_warnings(&bundle.warnings);
                println!("Deploying {} to {} ({})", bundle.name, bundle.target, bundle.root_path);
                let report = deploy::deploy(&client, &bundle, &user, &DeployOptions { force_lock })
                    .await
                    .map_err(|e| e.to_string())?;
                println!("Uploaded {} files to {}", report.files_uploaded, bundle.file_path);
                if report.files_deleted > 0 {
                    println!("Deleted {} files no longer in the bundle", report.files_deleted);
                }
                report.changes.iter().for_each(|c| println!("{c}"));
                println!("Deployment complete!");
                Ok(())
            }
            BundleAction::Run { key, mut param, params, full_refresh_all, no_wait } => {
                param.extend(params);
                run(&client, &bundle, &key, param, full_refresh_all, no_wait).await
            }
            BundleAction::Destroy { auto_approve, force_lock } => {
                confirm_destroy(&bundle, auto_approve)?;
                let deleted = deploy::destroy(&client, &bundle, &user, &DeployOptions { force_lock })
                    .await
                    .map_err(|e| e.to_string())?;
                deleted.iter().for_each(|c| println!("{c}"));
                println!("Deleted {}", bundle.root_path);
                println!("Destroy complete!");
                Ok(())
            }
            BundleAction::Summary { output } => summary(&client, &bundle, &user, &output).await,
        }
    })
}

/// The bundle around the working directory, loaded for the target; its
/// errors printed as the CLI prints them.
fn load(client: &Client, options: &LoadOptions, user: &CurrentUser) -> Result<Bundle, String> {
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let root = config::find_root(&cwd)
        .ok_or_else(|| format!("no databricks.yml in {} or a folder above it", cwd.display()))?;
    let lookup = ApiLookup::new(client.workspace().clone());
    config::load(&root, options, user, &lookup).map_err(|diagnostics| {
        print_warnings(&diagnostics);
        let errors = diagnostics.iter().filter(|d| d.is_error()).count();
        format!("the bundle has {errors} error{}", if errors == 1 { "" } else { "s" })
    })
}

fn print_warnings(diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        eprintln!("{d}\n");
    }
}

fn header(client: &Client, bundle: &Bundle, user: &CurrentUser) {
    println!("Name: {}", bundle.name);
    println!("Target: {}", bundle.target);
    println!("Workspace:");
    println!("  Host: {}", client.host());
    println!("  User: {}", user.user_name);
    println!("  Path: {}", bundle.root_path);
}

fn validate(client: &Client, bundle: &Bundle, user: &CurrentUser, output: &str) -> Result<(), String> {
    if output == "json" {
        return pretty(&bundle.config);
    }
    header(client, bundle, user);
    println!();
    print_warnings(&bundle.warnings);
    match bundle.warnings.len() {
        0 => println!("Validation OK!"),
        n => println!("Found {n} warning{}", if n == 1 { "" } else { "s" }),
    }
    Ok(())
}

fn confirm_destroy(bundle: &Bundle, auto_approve: bool) -> Result<(), String> {
    if auto_approve {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(
            "destroy deletes every resource of the deployment: pass --auto-approve to destroy without a prompt".into(),
        );
    }
    eprint!("Destroy every resource of {} ({}) and delete {}? [y/N] ", bundle.name, bundle.target, bundle.root_path);
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(|e| e.to_string())?;
    match answer.trim() {
        "y" | "Y" | "yes" => Ok(()),
        _ => Err("destroy cancelled".into()),
    }
}

/// `(type, key)` of the job or pipeline `key` names.
fn runnable(bundle: &Bundle, key: &str) -> Result<(String, String), String> {
    const RUNNABLE: [&str; 2] = ["jobs", "pipelines"];
    if let Some((kind, name)) = key.split_once('.')
        && RUNNABLE.contains(&kind)
    {
        return match bundle.resources.get(kind).is_some_and(|g| g.contains_key(name)) {
            true => Ok((kind.to_string(), name.to_string())),
            false => Err(format!("the bundle has no resources.{kind}.{name}")),
        };
    }
    let found: Vec<&str> =
        RUNNABLE.into_iter().filter(|k| bundle.resources.get(*k).is_some_and(|g| g.contains_key(key))).collect();
    match found.as_slice() {
        [kind] => Ok((kind.to_string(), key.to_string())),
        [] => Err(format!("the bundle has no job or pipeline `{key}`")),
        _ => Err(format!("`{key}` names both a job and a pipeline: say jobs.{key} or pipelines.{key}")),
    }
}

async fn run(
    client: &Client,
    bundle: &Bundle,
    key: &str,
    params: Vec<(String, String)>,
    full_refresh: bool,
    no_wait: bool,
) -> Result<(), String> {
    let (kind, name) = runnable(bundle, key)?;
    let deployed = deploy::deployed(client, bundle).await.map_err(|e| e.to_string())?;
    let id =
        deployed.entries.get(&(kind.clone(), name.clone())).map(|e| e.id.clone()).ok_or_else(|| {
            format!("{kind}.{name} is not deployed to {}: run `tarn bundle deploy` first", bundle.target)
        })?;
    let api = |e: tarn_assist::ClientError| e.to_string();
    if kind == "pipelines" {
        let body = json!({"full_refresh": full_refresh});
        let started = client.post(&format!("/api/2.0/pipelines/{id}/updates"), &body).await.map_err(api)?;
        let update = started.get("update_id").and_then(Value::as_str).ok_or("start answered no update_id")?;
        println!("Update URL: {}/pipelines/{id}/updates/{update}", client.host());
        if no_wait {
            return Ok(());
        }
        return crate::pipelines_cli::follow(client, &id, update).await;
    }
    let job_id: i64 = id.parse().map_err(|_| format!("job id `{id}` in the state is not a number"))?;
    let parameters: Map<String, Value> = params.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    let body = json!({"job_id": job_id, "job_parameters": parameters});
    let started = client.post("/api/2.2/jobs/run-now", &body).await.map_err(api)?;
    let run_id = started.get("run_id").and_then(Value::as_i64).ok_or("run-now answered no run_id")?;
    println!("Run URL: {}/jobs/{job_id}/runs/{run_id}", client.host());
    if no_wait {
        return Ok(());
    }
    crate::jobs_cli::watch(client, run_id).await
}

async fn summary(client: &Client, bundle: &Bundle, user: &CurrentUser, output: &str) -> Result<(), String> {
    let deployed = deploy::deployed(client, bundle).await.map_err(|e| e.to_string())?;
    let mut groups = Map::new();
    for (kind, group) in &bundle.resources {
        let mut items = Map::new();
        for key in group.keys() {
            let entry = deployed.entries.get(&(kind.clone(), key.clone()));
            let item = match entry {
                Some(e) => {
                    let url = resources::url(kind, &e.id).map(|u| format!("{}{u}", client.host()));
                    json!({"id": e.id, "url": url})
                }
                None => json!({"id": null, "url": null}),
            };
            items.insert(key.clone(), item);
        }
        groups.insert(kind.clone(), Value::Object(items));
    }
    if output == "json" {
        let workspace = json!({"host": client.host(), "current_user": user.user_name, "root_path": bundle.root_path});
        let out = json!({"bundle": {"name": bundle.name, "target": bundle.target}, "workspace": workspace, "resources": groups});
        return pretty(&out);
    }
    header(client, bundle, user);
    println!("Resources:");
    for (kind, items) in &groups {
        println!("  {kind}:");
        for (key, item) in items.as_object().into_iter().flatten() {
            match (item.get("id").and_then(Value::as_str), item.get("url").and_then(Value::as_str)) {
                (Some(id), Some(url)) => println!("    {key}: id {id}, {url}"),
                (Some(id), None) => println!("    {key}: id {id}"),
                _ => println!("    {key}: not deployed"),
            }
        }
    }
    Ok(())
}
