//! The render pipeline: limits → split → pre-scan → parse only candidate documents →
//! release/namespace resolution → expansion, adoption, guard → assemble the output.
//!
//! Output order: unchanged documents keep their bytes and their place; each
//! `TerraformModule` document is replaced in place by its generated objects (source, runner
//! ServiceAccount, RoleBinding, Terraform); adopted CRs are re-serialised in place; guard
//! objects (Helm 4 only) are appended at the end. Generated objects inherit the chart file of
//! their declaration (Helm 4 filename annotation / Helm 3 `# Source:` comment); guard objects
//! are filed as `<chart>/templates/tfops-guard.yaml`.

use std::collections::{BTreeMap, BTreeSet};
use tfops_api::names;

/// Whether `api_version` (`group/version`) is in `group`.
fn in_group(api_version: &str, group: &str) -> bool {
    api_version
        .strip_prefix(group)
        .is_some_and(|rest| rest.starts_with('/'))
}

use serde_json::Value;

use crate::error::{ErrorKind, RenderError};
use crate::expand::{self, ExpandError, GuardMode, ReleaseContext};
use crate::intent::{self, TerraformModule};
use crate::meta::{self, FILENAME_ANNOTATION, INSTANCE_LABEL};
use crate::naming::{self, NameRule};
use crate::scan::{self, DocInfo};
use crate::split::{self, Segment};
use crate::{yaml, HelmFlavor, RenderOptions, Rendered, Summary};

/// What happens to one input document.
/// One warning per `Terraform` CR whose declared uninstall timeout is longer than the guard
/// budget: its destroy may still run when the budget ends; the guard never cuts it, so the
/// hook then fails and `helm uninstall` has to be run again.
fn budget_warnings(
    actions: &[Action],
    cfg: &crate::CatalogConfig,
    declared: &BTreeSet<String>,
) -> Vec<String> {
    let budget = cfg.guard.budget.as_millis();
    let mut long = Vec::new();
    let mut longest: Option<(u64, String)> = None;
    for objs in actions.iter().filter_map(|a| match a {
        Action::Replace(v) => Some(v),
        Action::Pass => None,
    }) {
        for o in objs.iter().filter(|o| {
            o["kind"] == "Terraform"
                && o["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| declared.contains(n))
        }) {
            let Some(t) = o["metadata"]["annotations"][names::ANN_TIMEOUT].as_str() else {
                continue;
            };
            let Ok(d) = tfops_api::GoDuration::parse(t) else {
                continue;
            };
            if d.as_millis() > budget {
                long.push(format!(
                    "{} ({t})",
                    o["metadata"]["name"].as_str().unwrap_or("?")
                ));
                if longest.as_ref().is_none_or(|(m, _)| d.as_millis() > *m) {
                    longest = Some((d.as_millis(), t.to_owned()));
                }
            }
        }
    }
    match longest {
        None => Vec::new(),
        Some((_, t)) => vec![format!(
            "uninstall timeouts longer than the guard budget {} (catalog guard.budget): {}; a destroy still running when the budget ends is left to finish (the guard never cuts it) and the uninstall has to be run again — for destroys that long set guard.budget to at least {t} and run `helm uninstall --timeout` a minute longer",
            cfg.guard.budget,
            long.join(", ")
        )],
    }
}

enum Action {
    /// Copied byte-for-byte.
    Pass,
    /// Replaced by these objects (a module's expansion or an adopted CR).
    Replace(Vec<Value>),
}

/// A parsed candidate document.
enum Parsed {
    Module(usize),
    Terraform(Value),
    Other,
}

fn doc_label(value: &Value) -> Option<String> {
    let kind = value.get("kind")?.as_str()?;
    Some(match meta::name(value) {
        Some(n) => format!("{kind} {n:?}"),
        None => kind.to_string(),
    })
}

fn located(e: ExpandError, file: Option<&str>, document: &str) -> RenderError {
    let mut r = RenderError::new(e.kind, e.message)
        .with_source_file(file)
        .with_document(document);
    if !e.field.is_empty() {
        r = r.with_field(e.field);
    }
    r
}

pub(crate) fn run(input: &[u8], opts: &RenderOptions) -> Result<Rendered, RenderError> {
    let limits = &opts.limits;
    if input.len() > limits.max_input_bytes {
        return Err(RenderError::new(
            ErrorKind::Oversize,
            format!(
                "input is {} bytes, more than the limit of {} bytes",
                input.len(),
                limits.max_input_bytes
            ),
        ));
    }
    let segments = split::split(input);
    let info = pre_scan(input, &segments);
    if let Err(e) = std::str::from_utf8(input) {
        let at = e.valid_up_to();
        let file = scan::segment_of(&segments, at).and_then(|i| info[i].source_file());
        let line = input[..at].iter().filter(|b| **b == b'\n').count() + 1;
        return Err(RenderError::new(
            ErrorKind::Encoding,
            format!("input is not valid UTF-8 (byte offset {at}, line {line})"),
        )
        .with_source_file(file));
    }
    let flavor = if info.iter().any(|d| d.filename_annotation.is_some()) {
        HelmFlavor::Helm4
    } else if info.iter().any(|d| d.source_comment.is_some()) {
        HelmFlavor::Helm3
    } else {
        HelmFlavor::Unknown
    };

    // Parse candidates only.
    let mut parsed: Vec<Option<Parsed>> = (0..segments.len()).map(|_| None).collect();
    let mut modules: Vec<(usize, TerraformModule)> = Vec::new();
    let mut namespaces: Vec<(usize, String)> = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        if !info[i].candidate {
            continue;
        }
        let file = info[i].source_file();
        let value = parse_doc(input, seg, opts, file).map_err(|e| {
            match scan::header(&input[seg.body.clone()]).label() {
                Some(label) => e.with_document(label),
                None => e,
            }
        })?;
        let api = value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
        let label = doc_label(&value).unwrap_or_else(|| "document".into());
        if let Some(ns) = meta::str_at(&value, "/metadata/namespace") {
            if api.starts_with(names::TFOPS_PREFIX) || in_group(api, names::TF_GROUP) {
                namespaces.push((i, ns.to_string()));
            }
        }
        parsed[i] = Some(if api.starts_with(names::TFOPS_PREFIX) {
            if api != intent::API_VERSION || kind != intent::KIND {
                return Err(RenderError::new(
                    ErrorKind::Intent,
                    format!(
                        "unsupported {api} kind {kind:?}: only {} {} is known",
                        intent::API_VERSION,
                        intent::KIND
                    ),
                )
                .with_source_file(file)
                .with_document(label)
                .with_field("kind"));
            }
            let module = intent::parse(value).map_err(|(field, m)| {
                RenderError::new(ErrorKind::Intent, m)
                    .with_source_file(file)
                    .with_document(label.clone())
                    .with_field(field)
            })?;
            modules.push((i, module));
            Parsed::Module(modules.len() - 1)
        } else if in_group(api, names::TF_GROUP) && kind == names::TF_KIND {
            Parsed::Terraform(value)
        } else {
            Parsed::Other
        });
    }
    let adopt_count = parsed
        .iter()
        .filter(|p| matches!(p, Some(Parsed::Terraform(_))))
        .count();
    if modules.is_empty() && adopt_count == 0 {
        return Ok(Rendered {
            output: input.to_vec(),
            warnings: Vec::new(),
            helm_flavor: flavor,
            summary: Summary::default(),
        });
    }

    // Release context.
    let release = resolve_release(input, &segments, &info, &parsed, opts)?;
    let namespace = match resolve_namespace(&namespaces, &info, opts)? {
        Some(ns) => Some(ns),
        None => namespace_from_documents(input, &segments, opts),
    };
    let chart = info
        .iter()
        .filter_map(DocInfo::source_file)
        .find_map(|f| f.split_once('/').map(|(c, _)| c.to_string()));
    let guard = if flavor == HelmFlavor::Helm4 {
        GuardMode::Hook
    } else {
        GuardMode::Client
    };
    let rc = ReleaseContext {
        release: release.clone(),
        namespace: namespace.clone(),
        chart: chart.clone(),
        guard,
    };
    let cfg = &opts.config;
    let mut warnings = Vec::new();

    // Modules: uniqueness, names, dependencies.
    let module_refs: Vec<&TerraformModule> = modules.iter().map(|(_, m)| m).collect();
    let module_ctx = |k: usize| {
        let (seg, m) = &modules[k];
        (
            info[*seg].source_file(),
            format!("{} {:?}", intent::KIND, m.metadata.name),
        )
    };
    if let Err((k, name)) = expand::check_unique(&module_refs) {
        let (file, doc) = module_ctx(k);
        return Err(RenderError::new(
            ErrorKind::Duplicate,
            format!("module {name:?} is declared twice"),
        )
        .with_source_file(file)
        .with_document(doc)
        .with_field("metadata.name"));
    }
    let mut names = Vec::with_capacity(modules.len());
    let mut terraform_names = BTreeMap::new();
    for (k, (_, m)) in modules.iter().enumerate() {
        let n = expand::module_names(m, cfg, &rc).map_err(|e| {
            let (file, doc) = module_ctx(k);
            located(e, file, &doc)
        })?;
        terraform_names.insert(m.metadata.name.clone(), n.terraform.clone());
        names.push(n);
    }
    let adopted_nodes: Vec<expand::AdoptedNode> = parsed
        .iter()
        .filter_map(|p| match p {
            Some(Parsed::Terraform(v)) => Some(expand::AdoptedNode {
                name: meta::name(v).unwrap_or("").to_string(),
                depends_on: v
                    .pointer("/spec/dependsOn")
                    .and_then(Value::as_array)
                    .map(|deps| {
                        deps.iter()
                            .filter_map(|d| d.get("name").and_then(Value::as_str))
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            _ => None,
        })
        .collect();
    // A module may depend on a Terraform CR adopted from the chart: its CR name is used as is.
    for a in &adopted_nodes {
        if !a.name.is_empty() && !terraform_names.contains_key(&a.name) {
            terraform_names.insert(a.name.clone(), a.name.clone());
        }
    }
    expand::check_dependencies(&module_refs, &adopted_nodes, &terraform_names).map_err(
        |(k, e)| {
            let (file, doc) = module_ctx(k);
            located(e, file, &doc)
        },
    )?;

    // Build actions.
    let mut actions: Vec<Action> = (0..segments.len()).map(|_| Action::Pass).collect();
    let mut summary = Summary {
        release: Some(release.clone()),
        namespace: namespace.clone(),
        ..Summary::default()
    };
    let mut seen: BTreeMap<(String, String, String), String> = BTreeMap::new();
    let mut claim = |obj: &Value, owner: &str| -> Result<(), String> {
        let key = (
            obj.get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            meta::str_at(obj, "/metadata/namespace")
                .or(namespace.as_deref())
                .unwrap_or("")
                .to_string(),
            meta::name(obj).unwrap_or("").to_string(),
        );
        if let Some(prev) = seen.get(&key) {
            return Err(format!(
                "{} {:?} would be produced by both {prev} and {owner}",
                key.0, key.2
            ));
        }
        seen.insert(key, owner.to_string());
        Ok(())
    };
    // Terraform CRs whose uninstall timeout was declared (module, chart annotation or
    // catalog default) rather than the built-in default: only those are checked against the
    // guard budget.
    let mut declared_timeouts: BTreeSet<String> = BTreeSet::new();
    let catalog_timeout = cfg.defaults.uninstall.timeout.is_some();
    for (i, p) in parsed.iter_mut().enumerate() {
        let file = info[i].source_file();
        match p.take() {
            Some(Parsed::Module(k)) => {
                let (_, m) = &modules[k];
                if catalog_timeout
                    || m.spec
                        .uninstall
                        .as_ref()
                        .is_some_and(|u| u.timeout.is_some())
                {
                    declared_timeouts.insert(names[k].terraform.clone());
                }
                let doc = format!("{} {:?}", intent::KIND, m.metadata.name);
                let mut objects = expand::expand(m, &names[k], &terraform_names, cfg, &rc)
                    .map_err(|e| located(e, file, &doc))?;
                for o in &objects {
                    claim(o, &doc).map_err(|msg| {
                        RenderError::new(ErrorKind::Duplicate, msg)
                            .with_source_file(file)
                            .with_document(doc.clone())
                    })?;
                }
                if flavor == HelmFlavor::Helm4 {
                    if let Some(f) = file {
                        for o in &mut objects {
                            meta::set_annotation(o, FILENAME_ANNOTATION, f);
                        }
                    }
                }
                summary.modules_expanded += 1;
                summary.objects_added += objects.len();
                actions[i] = Action::Replace(objects);
            }
            Some(Parsed::Terraform(mut value)) => {
                let doc = doc_label(&value).unwrap_or_else(|| "Terraform".into());
                if catalog_timeout
                    || value["metadata"]["annotations"][names::ANN_TIMEOUT].is_string()
                {
                    if let Some(n) = value["metadata"]["name"].as_str() {
                        declared_timeouts.insert(n.to_owned());
                    }
                }
                let w = crate::adopt::adopt(&mut value, cfg, &rc)
                    .map_err(|e| located(e, file, &doc))?;
                claim(&value, &doc).map_err(|msg| {
                    RenderError::new(ErrorKind::Duplicate, msg)
                        .with_source_file(file)
                        .with_document(doc.clone())
                })?;
                warnings.extend(w);
                summary.crs_adopted += 1;
                actions[i] = Action::Replace(vec![value]);
            }
            _ => {}
        }
    }

    let mut guard_objects = Vec::new();
    if guard == GuardMode::Hook {
        let (mut objs, w) =
            crate::guard::guard_objects(cfg, &rc).map_err(|e| located(e, None, "guard"))?;
        warnings.extend(w);
        let file = format!(
            "{}/templates/tfops-guard.yaml",
            chart.as_deref().unwrap_or("tfops")
        );
        for o in &mut objs {
            claim(o, "guard").map_err(|msg| RenderError::new(ErrorKind::Duplicate, msg))?;
            meta::set_annotation(o, FILENAME_ANNOTATION, &file);
        }
        summary.guard_injected = true;
        summary.objects_added += objs.len();
        guard_objects = objs;
        warnings.extend(budget_warnings(&actions, cfg, &declared_timeouts));
    } else {
        warnings.push(format!(
            "release {release:?} has Terraform resources but this Helm ({}) does not run hooks added by a post-renderer: uninstall must go through `helm tfops uninstall {release}` (plain `helm uninstall` can hang on Terraform finalizers)",
            if flavor == HelmFlavor::Helm3 { "Helm 3" } else { "unknown version" }
        ));
    }
    if namespace.is_none() {
        warnings.push("release namespace unknown (no metadata.namespace, no HELM_NAMESPACE): RoleBinding subjects use \"default\"".into());
    }

    let output = assemble(input, &segments, &info, &actions, &guard_objects, flavor)?;
    Ok(Rendered {
        output,
        warnings,
        helm_flavor: flavor,
        summary,
    })
}

fn pre_scan(input: &[u8], segments: &[Segment]) -> Vec<DocInfo> {
    let mut candidate = vec![false; segments.len()];
    for needle in scan::CANDIDATE_NEEDLES {
        scan::mark(segments, &scan::positions(input, needle), &mut candidate);
    }
    let mut info: Vec<DocInfo> = segments
        .iter()
        .zip(candidate)
        .map(|(s, c)| DocInfo {
            source_comment: scan::source_comment(&input[s.body.clone()]),
            filename_annotation: None,
            candidate: c,
        })
        .collect();
    for at in scan::positions(input, FILENAME_ANNOTATION) {
        if let Some(i) = scan::segment_of(segments, at) {
            if info[i].filename_annotation.is_none() {
                info[i].filename_annotation = scan::filename_at(input, &segments[i].span, at);
            }
        }
    }
    info
}

fn parse_doc(
    input: &[u8],
    seg: &Segment,
    opts: &RenderOptions,
    file: Option<&str>,
) -> Result<Value, RenderError> {
    let text = std::str::from_utf8(&input[seg.span.clone()])
        .map_err(|e| RenderError::new(ErrorKind::Encoding, e.to_string()).with_source_file(file))?;
    yaml::parse_value(text, &opts.limits).map_err(|e| {
        // saphyr counts lines from the document start; say where the document starts.
        let start = input[..seg.span.start]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        RenderError::new(
            ErrorKind::Yaml,
            format!(
                "invalid YAML in the document starting at line {start} of the stream: {}",
                e.message
            ),
        )
        .with_source_file(file)
    })
}

fn resolve_release(
    input: &[u8],
    segments: &[Segment],
    info: &[DocInfo],
    parsed: &[Option<Parsed>],
    opts: &RenderOptions,
) -> Result<String, RenderError> {
    let check = |name: &str, origin: &str| -> Result<String, RenderError> {
        if name.len() > 53 {
            return Err(RenderError::new(
                ErrorKind::Release,
                format!("release name {name:?} ({origin}) is longer than 53 characters"),
            ));
        }
        naming::validate(name, NameRule::Subdomain).map_err(|m| {
            RenderError::new(ErrorKind::Release, format!("release name ({origin}): {m}"))
        })?;
        Ok(name.to_string())
    };
    if let Some(r) = &opts.release {
        return check(r, "--release");
    }
    let mut found: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut flags = vec![false; segments.len()];
    scan::mark(
        segments,
        &scan::positions(input, INSTANCE_LABEL),
        &mut flags,
    );
    for (i, hit) in flags.iter().enumerate() {
        if !hit {
            continue;
        }
        let file = info[i].source_file();
        let body = &input[segments[i].body.clone()];
        let label = match (&parsed[i], scan::metadata_label(body, INSTANCE_LABEL)) {
            (Some(Parsed::Terraform(v)), _) => meta::label(v, INSTANCE_LABEL).cloned(),
            (_, scan::LabelScan::Found(r)) => Some(Value::String(r)),
            (_, scan::LabelScan::Absent) => None,
            (_, scan::LabelScan::Unknown) => {
                let v = parse_doc(input, &segments[i], opts, file)?;
                meta::label(&v, INSTANCE_LABEL).cloned()
            }
        };
        if let Some(Value::String(r)) = label {
            found.entry(r).or_insert_with(|| file.map(str::to_string));
        }
    }
    match found.len() {
        1 => {
            let name = found.keys().next().cloned().unwrap_or_default();
            check(&name, "label app.kubernetes.io/instance")
        }
        0 => Err(RenderError::new(
            ErrorKind::Release,
            "cannot determine the release name: pass `--release NAME` (with --post-renderer-args) or label the chart's objects with app.kubernetes.io/instance",
        )),
        _ => Err(RenderError::new(
            ErrorKind::Release,
            format!(
                "objects disagree on the release name (app.kubernetes.io/instance: {}); pass `--release NAME`",
                found.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

fn resolve_namespace(
    declared: &[(usize, String)],
    info: &[DocInfo],
    opts: &RenderOptions,
) -> Result<Option<String>, RenderError> {
    if let Some((first_seg, first)) = declared.first() {
        if let Some((seg, other)) = declared.iter().find(|(_, n)| n != first) {
            return Err(RenderError::new(
                ErrorKind::Intent,
                format!(
                    "Terraform objects of one release must share a namespace: {first:?} ({}) vs {other:?}",
                    info[*first_seg].source_file().unwrap_or("?")
                ),
            )
            .with_source_file(info[*seg].source_file())
            .with_field("metadata.namespace"));
        }
        naming::validate(first, NameRule::Label).map_err(|m| {
            RenderError::new(ErrorKind::Name, m)
                .with_source_file(info[*first_seg].source_file())
                .with_field("metadata.namespace")
        })?;
        return Ok(Some(first.clone()));
    }
    match &opts.namespace {
        Some(ns) if !ns.is_empty() => {
            naming::validate(ns, NameRule::Label)
                .map_err(|m| RenderError::new(ErrorKind::Name, format!("namespace option: {m}")))?;
            Ok(Some(ns.clone()))
        }
        _ => Ok(None),
    }
}

/// Last resort: the `metadata.namespace` of the first ordinary document that has one. Read
/// line by line; only flow-style documents are parsed (a bounded number; parse failures are
/// skipped here).
fn namespace_from_documents(
    input: &[u8],
    segments: &[Segment],
    opts: &RenderOptions,
) -> Option<String> {
    let mut flags = vec![false; segments.len()];
    scan::mark(segments, &scan::positions(input, "namespace:"), &mut flags);
    let mut parses = 0;
    segments
        .iter()
        .zip(flags)
        .filter(|(_, hit)| *hit)
        .find_map(|(seg, _)| {
            let ns = match scan::metadata_namespace(&input[seg.body.clone()]) {
                scan::LabelScan::Found(ns) => ns,
                scan::LabelScan::Absent => return None,
                scan::LabelScan::Unknown => {
                    parses += 1;
                    if parses > 8 {
                        return None;
                    }
                    let text = std::str::from_utf8(&input[seg.span.clone()]).ok()?;
                    let v = yaml::parse_value(text, &opts.limits).ok()?;
                    meta::str_at(&v, "/metadata/namespace")?.to_string()
                }
            };
            naming::validate(&ns, NameRule::Label).ok()?;
            Some(ns)
        })
}

fn ensure_newline(out: &mut Vec<u8>) {
    if out.last().is_some_and(|b| *b != b'\n') {
        out.push(b'\n');
    }
}

fn emit(
    out: &mut Vec<u8>,
    object: &Value,
    source: Option<&str>,
    flavor: HelmFlavor,
    bare: bool,
) -> Result<(), RenderError> {
    let body = yaml::to_yaml(object).map_err(|m| {
        RenderError::new(
            ErrorKind::Yaml,
            format!("cannot serialise generated object: {m}"),
        )
        .with_source_file(source)
    })?;
    ensure_newline(out);
    if !bare {
        out.extend_from_slice(b"---\n");
    }
    if flavor != HelmFlavor::Helm4 {
        if let Some(f) = source {
            // Keep Helm 3's per-document source comment so readers can map objects to files.
            out.extend_from_slice(b"# Source: ");
            out.extend_from_slice(f.as_bytes());
            out.push(b'\n');
        }
    }
    out.extend_from_slice(body.as_bytes());
    Ok(())
}

fn assemble(
    input: &[u8],
    segments: &[Segment],
    info: &[DocInfo],
    actions: &[Action],
    guard_objects: &[Value],
    flavor: HelmFlavor,
) -> Result<Vec<u8>, RenderError> {
    let mut out = Vec::with_capacity(input.len() + 4096 * (guard_objects.len() + 8));
    for ((seg, action), di) in segments.iter().zip(actions).zip(info) {
        match action {
            Action::Pass => out.extend_from_slice(&input[seg.span.clone()]),
            Action::Replace(objects) => {
                for (k, o) in objects.iter().enumerate() {
                    let bare = k == 0 && out.is_empty() && seg.start_marker.is_none();
                    emit(&mut out, o, di.source_file(), flavor, bare)?;
                }
                if let Some(end) = &seg.end_marker {
                    ensure_newline(&mut out);
                    out.extend_from_slice(&input[end.clone()]);
                }
            }
        }
    }
    for o in guard_objects {
        let bare = out.is_empty();
        emit(&mut out, o, None, flavor, bare)?;
    }
    Ok(out)
}
