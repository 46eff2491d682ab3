//! `${...}` references: `${var.<name>[.field]}`, `${bundle.name}`,
//! `${bundle.target}`, `${workspace.file_path}`,
//! `${workspace.current_user.userName}` and any other key of the resolved
//! configuration. A string that is one reference takes the referenced
//! value whole (a complex variable's map or list); references inside a
//! longer string take its text. `${resources.<type>.<key>.<field>}` is
//! left for the deployer, once the resource is known to exist.

use std::collections::BTreeMap;

use super::targets::Target;
use super::variables::Variable;
use super::yaml::{Kind, Node, error};
use super::{CurrentUser, Diagnostic};

/// The workspace paths of the deployment, resolved.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub root_path: String,
    pub file_path: String,
    pub artifact_path: String,
    pub state_path: String,
    pub resource_path: String,
}

/// What references resolve against.
pub struct Context {
    pub vars: BTreeMap<String, Variable>,
    pub workspace: Workspace,
    pub user: CurrentUser,
    pub name: String,
    /// Whether `workspace.root_path` was set (production mode needs it).
    pub root_path_set: bool,
    /// The configuration (without resources) with `var` added.
    scope: Node,
    /// `<type>.<key>` of every resource, for `${resources...}` checks.
    resources: Vec<String>,
}

/// How many rounds variables referencing variables may take.
const ROUNDS: usize = 10;

impl Context {
    /// Resolves variables among themselves, then the workspace paths, and
    /// writes `bundle.target` and the `workspace` paths into the tree.
    pub fn new(
        tree: &mut Node,
        target: &Target,
        mut vars: BTreeMap<String, Variable>,
        user: &CurrentUser,
    ) -> Result<Context, Vec<Diagnostic>> {
        let loc = tree.loc.clone();
        let Some(name) = tree.get("bundle").and_then(|b| b.get("name")).and_then(Node::scalar_text) else {
            return Err(vec![error("bundle.name is required", Some(loc), "bundle.name")]);
        };
        if let Some(bundle) = tree.entry_map("bundle") {
            bundle.set("target", Node::string(&target.name, &loc));
        }
        let workspace = tree.entry_map("workspace").ok_or_else(Vec::new)?;
        let mut current_user = Node::new(Kind::Map(Vec::new()), loc.clone());
        current_user.set("userName", Node::string(&user.user_name, &loc));
        current_user.set("short_name", Node::string(&user.short_name, &loc));
        workspace.set("current_user", current_user);
        let mut scope = tree.clone();
        scope.remove("resources");
        scope.remove("variables");
        let resources = tree
            .get("resources")
            .map(|r| {
                r.entries().iter().flat_map(|(t, g)| g.entries().iter().map(move |(k, _)| format!("{t}.{k}"))).collect()
            })
            .unwrap_or_default();
        let mut context = Context {
            vars: BTreeMap::new(),
            workspace: empty_workspace(),
            user: user.clone(),
            name,
            root_path_set: false,
            scope,
            resources,
        };
        // Variables may name workspace paths, and the paths variables:
        // settle what resolves, then the paths, then everything.
        let _ = context.settle(&mut vars);
        context.settle_bundle(tree)?;
        context.workspace_paths(tree)?;
        context.settle(&mut vars)?;
        context.vars = vars;
        Ok(context)
    }

    /// `bundle:` may use variables (`name: ${var.project}`); resolved
    /// before the paths that name it.
    fn settle_bundle(&mut self, tree: &mut Node) -> Result<(), Vec<Diagnostic>> {
        let Some(mut bundle) = self.scope.get("bundle").cloned() else { return Ok(()) };
        let mut errors = Vec::new();
        self.node(&mut bundle, "bundle", &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        if let Some(name) = bundle.get("name").and_then(Node::scalar_text) {
            self.name = name;
        }
        tree.set("bundle", bundle.clone());
        self.scope.set("bundle", bundle);
        Ok(())
    }

    /// Resolves variables that reference variables, a round at a time.
    fn settle(&mut self, vars: &mut BTreeMap<String, Variable>) -> Result<(), Vec<Diagnostic>> {
        self.sync_vars(vars);
        let mut errors = Vec::new();
        for _ in 0..ROUNDS {
            errors.clear();
            for (name, var) in vars.iter_mut() {
                self.node(&mut var.value, &format!("variables.{name}"), &mut errors);
            }
            self.sync_vars(vars);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let cyclic: Vec<Diagnostic> = vars
            .iter()
            .filter(|(_, v)| v.value.to_json().to_string().contains("${var."))
            .map(|(n, v)| {
                let summary = format!("variable {n} references itself through other variables");
                error(summary, Some(v.declared.clone()), &format!("variables.{n}"))
            })
            .collect();
        if cyclic.is_empty() { Ok(()) } else { Err(cyclic) }
    }

    fn sync_vars(&mut self, vars: &BTreeMap<String, Variable>) {
        let loc = self.scope.loc.clone();
        let mut map = Node::new(Kind::Map(Vec::new()), loc);
        for (name, var) in vars {
            map.set(name, var.value.clone());
        }
        self.scope.set("var", map);
    }

    /// `root_path` (default `~/.bundle/${bundle.name}/${bundle.target}`)
    /// and the paths below it, `~` expanded to the user's home.
    fn workspace_paths(&mut self, tree: &mut Node) -> Result<(), Vec<Diagnostic>> {
        let home = format!("/Workspace/Users/{}", self.user.user_name);
        self.root_path_set = tree.get("workspace").and_then(|w| w.get("root_path")).is_some();
        let mut errors = Vec::new();
        let root = self.path_setting(
            tree,
            "root_path",
            "~/.bundle/${bundle.name}/${bundle.target}".to_string(),
            &home,
            &mut errors,
        );
        self.set_scope_path("root_path", &root);
        let mut derived = |key: &str, dir: &str, errors: &mut Vec<Diagnostic>| {
            let value = self.path_setting(tree, key, format!("{root}/{dir}"), &home, errors);
            self.set_scope_path(key, &value);
            value
        };
        let file_path = derived("file_path", "files", &mut errors);
        let artifact_path = derived("artifact_path", "artifacts", &mut errors);
        let state_path = derived("state_path", "state", &mut errors);
        let resource_path = derived("resource_path", "resources", &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        self.workspace = Workspace { root_path: root, file_path, artifact_path, state_path, resource_path };
        if let Some(workspace) = tree.entry_map("workspace") {
            let loc = workspace.loc.clone();
            for (key, value) in self.workspace.pairs() {
                workspace.set(key, Node::string(value, &loc));
            }
        }
        Ok(())
    }

    fn path_setting(
        &self,
        tree: &Node,
        key: &str,
        default: String,
        home: &str,
        errors: &mut Vec<Diagnostic>,
    ) -> String {
        let loc = tree.loc.clone();
        let mut node =
            tree.get("workspace").and_then(|w| w.get(key)).cloned().unwrap_or_else(|| Node::string(default, &loc));
        self.node(&mut node, &format!("workspace.{key}"), errors);
        let text = node.scalar_text().unwrap_or_default();
        match text.strip_prefix('~') {
            Some(rest) => format!("{home}{rest}"),
            None => text,
        }
    }

    fn set_scope_path(&mut self, key: &str, value: &str) {
        let loc = self.scope.loc.clone();
        if let Some(workspace) = self.scope.entry_map("workspace") {
            workspace.set(key, Node::string(value, &loc));
        }
    }

    /// Interpolates `node` in place; `path` names it in diagnostics.
    pub fn node(&self, node: &mut Node, path: &str, errors: &mut Vec<Diagnostic>) {
        match &mut node.kind {
            Kind::Str(text) if text.contains("${") => {
                let text = text.clone();
                match self.string(&text) {
                    Ok(Some(value)) => {
                        let loc = node.loc.clone();
                        *node = value;
                        node.loc = loc;
                    }
                    Ok(None) => {}
                    Err(summary) => errors.push(error(summary, Some(node.loc.clone()), path)),
                }
            }
            Kind::Seq(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.node(item, &format!("{path}[{i}]"), errors);
                }
            }
            Kind::Map(entries) => {
                for (key, value) in entries.iter_mut() {
                    self.node(value, &super::merge::join(path, key), errors);
                }
            }
            _ => {}
        }
    }

    /// The string's value with its references resolved; `None` when it
    /// stays as written.
    fn string(&self, text: &str) -> Result<Option<Node>, String> {
        let refs = references(text);
        if refs.is_empty() {
            return Ok(None);
        }
        if let [(0, end, path)] = refs.as_slice()
            && *end == text.len()
        {
            return self.lookup(path);
        }
        let mut out = String::new();
        let mut last = 0;
        for (start, end, path) in &refs {
            out.push_str(&text[last..*start]);
            match self.lookup(path)? {
                Some(value) => match value.scalar_text() {
                    Some(s) => out.push_str(&s),
                    None if value.is_null() => {}
                    None => return Err(format!("cannot interpolate a map or list into a string: ${{{path}}}")),
                },
                None => out.push_str(&text[*start..*end]),
            }
            last = *end;
        }
        out.push_str(&text[last..]);
        Ok(Some(Node::new(Kind::Str(out), self.scope.loc.clone())))
    }

    fn lookup(&self, path: &str) -> Result<Option<Node>, String> {
        let segments = segments(path);
        if segments.first().map(String::as_str) == Some("resources") {
            let id = segments.get(1..3).map(|s| s.join("."));
            return match id {
                Some(id) if self.resources.contains(&id) => Ok(None),
                _ => Err(format!("reference does not exist: ${{{path}}}")),
            };
        }
        let mut node = &self.scope;
        for segment in &segments {
            let next = match segment.parse::<usize>() {
                Ok(i) if matches!(node.kind, Kind::Seq(_)) => node.items().get(i),
                _ => node.get(segment),
            };
            node = next.ok_or_else(|| format!("reference does not exist: ${{{path}}}"))?;
        }
        Ok(Some(node.clone()))
    }
}

impl Workspace {
    pub fn pairs(&self) -> [(&'static str, &str); 5] {
        [
            ("root_path", &self.root_path),
            ("file_path", &self.file_path),
            ("artifact_path", &self.artifact_path),
            ("state_path", &self.state_path),
            ("resource_path", &self.resource_path),
        ]
    }
}

fn empty_workspace() -> Workspace {
    Workspace {
        root_path: String::new(),
        file_path: String::new(),
        artifact_path: String::new(),
        state_path: String::new(),
        resource_path: String::new(),
    }
}

/// Interpolates everything but the `variables` declarations.
pub fn tree(tree: &mut Node, context: &Context) -> Result<(), Vec<Diagnostic>> {
    let mut errors = Vec::new();
    for (key, value) in tree.entries_mut() {
        if key != "variables" {
            context.node(value, key, &mut errors);
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// `(start, end, path)` of each `${path}` whose path is a dotted name
/// (segments of letters, digits, `_`, `-`, with `[n]` indexes), as the
/// CLI's pattern accepts; anything else is left as text.
fn references(text: &str) -> Vec<(usize, usize, String)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("${") {
        let start = from + at;
        let Some(close) = text[start..].find('}') else { break };
        let end = start + close + 1;
        let path = &text[start + 2..end - 1];
        if valid(path) {
            found.push((start, end, path.to_string()));
        }
        from = if valid(path) { end } else { start + 2 };
    }
    found
}

fn valid(path: &str) -> bool {
    !path.is_empty()
        && path.split('.').all(|segment| {
            let name = segment.split('[').next().unwrap_or_default();
            let indexes_ok = segment[name.len()..]
                .split_terminator(']')
                .all(|i| i.strip_prefix('[').is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())));
            name.starts_with(|c: char| c.is_ascii_alphabetic())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                && indexes_ok
        })
}

/// `var.a.b[0]` as `["var", "a", "b", "0"]`.
fn segments(path: &str) -> Vec<String> {
    path.split('.')
        .flat_map(|segment| segment.split(['[', ']']).filter(|s| !s.is_empty()).map(str::to_string).collect::<Vec<_>>())
        .collect()
}
