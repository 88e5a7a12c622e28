//! The loader's pipeline: each file parsed, interpolated, normalized and its `extends` resolved;
//! the files merged in order; the top level checked; each service converted and its spec checked.

use super::convert::{self, Ctx, Svc};
use super::error::{ComposeError, Problems};
use super::interpolate::{interpolate_tree, Vars};
use super::value::{boolean, entries, string};
use super::{merge, yaml, FileSource, Loaded};
use serde_yaml_ng::{Mapping, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// How deep `extends` may chain.
const MAX_EXTENDS: usize = 32;

pub struct Loader<'a> {
    source: &'a dyn FileSource,
    vars: BTreeMap<String, String>,
    warnings: Vec<String>,
    /// Files read for `extends: {file: ...}`: their services, normalized.
    others: HashMap<PathBuf, Mapping>,
    /// Errors show paths relative to this directory (the working directory for the CLI).
    shown_from: Option<PathBuf>,
}

fn dir_of(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

impl<'a> Loader<'a> {
    pub fn new(
        source: &'a dyn FileSource,
        vars: BTreeMap<String, String>,
        warnings: Vec<String>,
    ) -> Self {
        Loader {
            source,
            vars,
            warnings,
            others: HashMap::new(),
            shown_from: None,
        }
    }

    /// Errors name files relative to `dir` when they are below it.
    pub fn show_paths_from(&mut self, dir: Option<PathBuf>) {
        self.shown_from = dir;
    }

    fn name_of(&self, p: &Path) -> String {
        let shown = self
            .shown_from
            .as_deref()
            .and_then(|d| p.strip_prefix(d).ok());
        shown.unwrap_or(p).display().to_string()
    }

    /// Parses, interpolates and normalizes one file; returns its top-level mapping.
    fn prepare(&mut self, path: &Path, bytes: &[u8]) -> Result<Mapping, ComposeError> {
        let name = self.name_of(path);
        let mut value = yaml::parse(&name, bytes)?;
        let mut root = match value {
            Value::Mapping(_) => std::mem::take(&mut value),
            Value::Null => {
                return Err(ComposeError::one(
                    &name,
                    "the file is empty (a Compose file is a mapping with services)",
                ))
            }
            ref other => {
                return Err(ComposeError::one(
                    &name,
                    format!(
                        "a Compose file is a mapping (services:, volumes:, ...), not {}",
                        super::value::kind(other)
                    ),
                ))
            }
        };
        let mut vars = Vars::new(&self.vars);
        let mut errors = Vec::new();
        interpolate_tree(&mut root, "", &mut vars, &mut errors);
        for u in vars.unset {
            let w = format!("{name}: the variable {u} is not set: it is an empty string");
            if !self.warnings.contains(&w) {
                self.warnings.push(w);
            }
        }
        let mut problems = Problems::default();
        for (at, m) in errors {
            problems.push(format!("{name}: {at}"), m);
        }
        let Value::Mapping(mut root) = root else {
            unreachable!("checked above")
        };
        if let Some(services) = root.get_mut("services") {
            match services {
                Value::Mapping(services) => {
                    for (k, svc) in services.iter_mut() {
                        match svc {
                            Value::Mapping(svc) => merge::normalize_service(svc, &dir_of(path)),
                            Value::Null => *svc = Value::Mapping(Mapping::new()),
                            other => problems.push(
                                format!("{name}: services.{}", yaml::describe_key(k)),
                                format!(
                                    "a service is a mapping, not {}",
                                    super::value::kind(other)
                                ),
                            ),
                        }
                    }
                }
                Value::Null => *services = Value::Mapping(Mapping::new()),
                other => problems.push(
                    format!("{name}: services"),
                    format!(
                        "expected a mapping of services, found {}",
                        super::value::kind(other)
                    ),
                ),
            }
        }
        problems.into_result(root)
    }

    /// Reads, prepares and resolves one file given on the command line.
    pub fn file(&mut self, path: &Path, bytes: &[u8]) -> Result<Mapping, ComposeError> {
        let mut root = self.prepare(path, bytes)?;
        let Some(Value::Mapping(services)) = root.get("services") else {
            return Ok(root);
        };
        let services = services.clone();
        let mut resolved = Mapping::new();
        let mut problems = Problems::default();
        for (k, _) in &services {
            let name = k.as_str().unwrap_or_default().to_string();
            match self.resolve(path, &services, &name, &mut vec![]) {
                Ok(svc) => {
                    resolved.insert(k.clone(), Value::Mapping(svc));
                }
                Err(e) => problems.0.extend(e.problems),
            }
        }
        root.insert("services".into(), Value::Mapping(resolved));
        problems.into_result(root)
    }

    /// Service `name` of the file `path` (whose services are `services`) with its `extends`
    /// applied, recursively.
    fn resolve(
        &mut self,
        path: &Path,
        services: &Mapping,
        name: &str,
        chain: &mut Vec<(PathBuf, String)>,
    ) -> Result<Mapping, ComposeError> {
        let shown = self.name_of(path);
        let at = || format!("{shown}: service {name}: extends");
        let Some(Value::Mapping(svc)) = services.get(name) else {
            return Err(ComposeError::one(
                format!("{shown}: services"),
                format!("there is no service {name:?} to extend"),
            ));
        };
        let mut svc = svc.clone();
        let Some(ext) = svc.shift_remove("extends") else {
            return Ok(svc);
        };
        let (file, base) = match &ext {
            Value::String(s) => (None, s.clone()),
            Value::Mapping(m) => {
                let mut file = None;
                let mut base = None;
                for (k, v) in entries(m).map_err(|e| ComposeError::one(at(), e))? {
                    match k {
                        "service" => {
                            base = Some(string(v).map_err(|e| ComposeError::one(at(), e))?)
                        }
                        "file" => file = Some(string(v).map_err(|e| ComposeError::one(at(), e))?),
                        o => {
                            return Err(ComposeError::one(
                                at(),
                                format!("{o}: not an extends key (service, file)"),
                            ))
                        }
                    }
                }
                let base = base.ok_or_else(|| ComposeError::one(at(), "needs a service"))?;
                (file, base)
            }
            _ => {
                return Err(ComposeError::one(
                    at(),
                    "expected a service name or { service, file }",
                ))
            }
        };
        chain.push((path.to_path_buf(), name.to_string()));
        if chain.len() > MAX_EXTENDS {
            return Err(ComposeError::one(
                at(),
                format!("more than {MAX_EXTENDS} levels"),
            ));
        }
        let base_path = match &file {
            None => path.to_path_buf(),
            Some(f) => PathBuf::from(merge::rebase(&dir_of(path), f)),
        };
        if chain.iter().any(|(p, n)| *p == base_path && *n == base) {
            let cycle: Vec<String> = chain.iter().map(|(_, n)| n.clone()).chain([base]).collect();
            return Err(ComposeError::one(
                at(),
                format!("a cycle: {}", cycle.join(" → ")),
            ));
        }
        let base_svc = if file.is_none() {
            self.resolve(path, services, &base, chain)
        } else {
            let others = match self.others.get(&base_path) {
                Some(s) => s.clone(),
                None => {
                    let bytes = self.source.read(&base_path).map_err(|e| {
                        ComposeError::one(at(), format!("reading {}: {e}", base_path.display()))
                    })?;
                    let root = self.prepare(&base_path, &bytes)?;
                    let s = match root.get("services") {
                        Some(Value::Mapping(s)) => s.clone(),
                        _ => Mapping::new(),
                    };
                    self.others.insert(base_path.clone(), s.clone());
                    s
                }
            };
            self.resolve(&base_path, &others, &base, chain)
        }
        .map_err(|e| {
            if e.problems
                .iter()
                .any(|p| p.message.starts_with("there is no service"))
            {
                ComposeError::one(
                    at(),
                    format!("there is no service {base:?} in {}", base_path.display()),
                )
            } else {
                e
            }
        })?;
        chain.pop();
        Ok(merge::merge_service(base_svc, svc))
    }

    /// Merges the files, checks the top level and converts every service.
    pub fn finish(
        mut self,
        stack: &str,
        files: Vec<(PathBuf, Mapping)>,
    ) -> Result<Loaded, ComposeError> {
        // Which file last wrote each service's key (for errors naming the file).
        let mut origins: HashMap<(String, String), String> = HashMap::new();
        let mut service_file: HashMap<String, String> = HashMap::new();
        let mut top_origins: HashMap<String, String> = HashMap::new();
        let first = files
            .first()
            .map(|(p, _)| self.name_of(p))
            .unwrap_or_default();
        let mut root = Mapping::new();
        for (path, file) in files {
            for k in file.keys() {
                top_origins.insert(
                    k.as_str().unwrap_or_default().to_string(),
                    self.name_of(&path),
                );
            }
            if let Some(Value::Mapping(services)) = file.get("services") {
                for (name, svc) in services {
                    let name = name.as_str().unwrap_or_default().to_string();
                    service_file
                        .entry(name.clone())
                        .or_insert_with(|| self.name_of(&path));
                    if let Value::Mapping(svc) = svc {
                        for k in svc.keys() {
                            let k = k.as_str().unwrap_or_default().to_string();
                            origins.insert((name.clone(), k), self.name_of(&path));
                        }
                    }
                }
            }
            merge::merge_root(&mut root, file);
        }
        let top = |k: &str| format!("{}: {k}", top_origins.get(k).unwrap_or(&first));
        let mut root = Value::Mapping(root);
        let mut tag_errors = Vec::new();
        merge::finish_tags(&mut root, "", &mut tag_errors);
        let Value::Mapping(root) = root else {
            unreachable!("a mapping stays one")
        };
        let mut problems = Problems::default();
        for (at, m) in tag_errors {
            problems.push(at, m);
        }

        let mut services = Mapping::new();
        let mut volumes = BTreeMap::new();
        let mut owned = Vec::new();
        match entries(&root) {
            Err(e) => problems.push(first.clone(), e),
            Ok(keys) => {
                for (k, v) in keys {
                    match k {
                        "services" => match v {
                            Value::Mapping(m) => services = m.clone(),
                            _ => problems.push(top("services"), "expected a mapping of services"),
                        },
                        "volumes" => self.volumes(&top("volumes"), stack, v, &mut volumes, &mut owned, &mut problems),
                        "version" => self.warnings.push(format!("{}: obsolete and ignored, as docker compose does", top("version"))),
                        "name" => match string(v) {
                            Ok(n) if n == stack => {}
                            Ok(n) => self.warnings.push(format!("{}: the stack is {stack}; the file's name {n:?} is ignored", top("name"))),
                            Err(e) => problems.push(top("name"), e),
                        },
                        "networks" => {
                            let only_default = matches!(v, Value::Mapping(m) if m.keys().all(|k| k.as_str() == Some("default")));
                            if only_default {
                                self.warnings.push(format!("{}: ignored: every service of the stack is on one overlay network", top("networks")));
                            } else {
                                problems.push(top("networks"), "Hoist does not support networks yet: every service of the stack is on one overlay network, where services find each other by name");
                            }
                        }
                        "secrets" | "configs" => problems.push(top(k), format!("Hoist does not support {k} yet (they come with the security work)")),
                        "include" => problems.push(top(k), "Hoist does not support include: pass the files with -c"),
                        k if k.starts_with("x-") => {}
                        k => problems.push(top(k), "not a top-level Compose key (services, volumes, networks, secrets, configs, name, version, x-...)"),
                    }
                }
            }
        }
        if services.is_empty() && problems.0.is_empty() {
            problems.push(first.clone(), "no services");
        }

        let mut ctx = Ctx {
            stack,
            vars: &self.vars,
            source: self.source,
            volumes: &volumes,
            warnings: std::mem::take(&mut self.warnings),
            problems,
        };
        let mut specs = Vec::new();
        for (name, svc) in &services {
            let name = name.as_str().unwrap_or_default().to_string();
            let origin = |key: &str| {
                origins
                    .get(&(name.clone(), key.to_string()))
                    .or_else(|| service_file.get(&name))
                    .cloned()
                    .unwrap_or_default()
            };
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                let at = origin("");
                ctx.problems.push(
                    format!("{at}: services"),
                    format!("{name:?} is not a service name (letters, digits, '.', '_', '-')"),
                );
                continue;
            }
            let Value::Mapping(svc) = svc else { continue };
            let mut s = Svc {
                ctx: &mut ctx,
                name: &name,
                origin: &origin,
            };
            if let Some(spec) = convert::service(&mut s, svc) {
                for e in spec.validate() {
                    if e.field != "name" {
                        s.err(&e.field, format!("{} (in Hoist's spec)", e.message));
                    }
                }
                specs.push(spec);
            }
        }
        let Ctx {
            warnings, problems, ..
        } = ctx;
        problems.into_result(Loaded {
            services: specs,
            volumes: owned,
            warnings,
        })
    }

    /// The top-level `volumes`: key → name on the nodes (`STACK_KEY`, or `name:`, or the
    /// external volume's name); `owned` gets the names of the volumes the stack makes.
    fn volumes(
        &mut self,
        file_at: &str,
        stack: &str,
        v: &Value,
        out: &mut BTreeMap<String, String>,
        owned: &mut Vec<String>,
        problems: &mut Problems,
    ) {
        let m = match v {
            Value::Mapping(m) => m,
            Value::Null => return,
            _ => return problems.push(file_at, "expected a mapping of volumes"),
        };
        let keys = match entries(m) {
            Ok(k) => k,
            Err(e) => return problems.push(file_at, e),
        };
        for (key, spec) in keys {
            let at = format!("{file_at}.{key}");
            let mut name = None;
            let mut external = false;
            let r: Result<(), String> = (|| {
                match spec {
                    Value::Null => {}
                    Value::Mapping(m) => {
                        for (k, v) in entries(m)? {
                            match k {
                                "name" => name = Some(string(v)?),
                                "external" => match v {
                                    // The old form: external: { name: X }.
                                    Value::Mapping(e) => {
                                        external = true;
                                        if let Some(n) = e.get("name") {
                                            name = Some(string(n)?);
                                        }
                                    }
                                    other => external = boolean(other)?,
                                },
                                "driver" => {
                                    let d = string(v)?;
                                    if d != "local" {
                                        return Err(format!("driver: Hoist cannot honour the {d} driver (volumes are local to a node)"));
                                    }
                                }
                                "driver_opts" => return Err("driver_opts: Hoist cannot honour them (volumes are directories on the node)".into()),
                                "labels" => self.warnings.push(format!("{at}.labels: ignored: Hoist's volumes have no labels")),
                                k if k.starts_with("x-") => {}
                                o => return Err(format!("{o}: not a volume key")),
                            }
                        }
                    }
                    _ => return Err("expected a mapping".into()),
                }
                Ok(())
            })();
            if let Err(e) = r {
                problems.push(&at, e);
                continue;
            }
            let full = match name {
                Some(n) => n,
                None if external => key.to_string(),
                None => format!("{stack}_{key}"),
            };
            if let Err(e) = hoist_proto::rules::check_volume_name(&full) {
                problems.push(&at, e);
                continue;
            }
            if !external {
                owned.push(full.clone());
            }
            out.insert(key.to_string(), full);
        }
    }
}
