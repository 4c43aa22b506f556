//! `routewarden lint`: each rule on a firing and a quiet fixture
//! (tests/fixtures/lint/rules/), the branches of RW002, RW006 and RW009 that
//! fixture does not take (and their near misses), the seed's MachineConfig, a
//! directory with two pools and NNCPs picked by labels, `--node-name` (per-host
//! nmstate files, NNCPs by hostname), every kind of input from a directory and
//! stdin, golden outputs in every format (`UPDATE_GOLDEN=1` regenerates them),
//! and the binary's exit codes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use routewarden::input::InputPath;
use routewarden::lint::{self, inputs, output, Report, RULES};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn lint_paths(paths: &[&str], labels: Option<BTreeMap<String, String>>) -> Report {
    let inputs: Vec<lint::Input> = paths
        .iter()
        .map(|p| inputs::read(&InputPath::File(PathBuf::from(p))).unwrap_or_else(|e| panic!("{p}: {e}")))
        .collect();
    lint::run(&inputs, labels, None)
}

/// `RWnnn FILE:LINE pool` per finding.
fn summary(report: &Report) -> Vec<String> {
    report
        .findings
        .iter()
        .map(|f| {
            format!(
                "{} {}:{} {}",
                f.rule,
                f.file,
                f.line,
                f.pool.as_deref().unwrap_or("-")
            )
        })
        .collect()
}

/// `RWnnn LEVEL FILE:LINE pool` per finding.
fn exact(report: &Report) -> Vec<String> {
    report
        .findings
        .iter()
        .map(|f| {
            let pool = f.pool.as_deref().unwrap_or("-");
            format!("{} {} {}:{} {pool}", f.rule, f.level.as_str(), f.file, f.line)
        })
        .collect()
}

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        actual,
        expected,
        "{} differs; UPDATE_GOLDEN=1 to regenerate",
        path.display()
    );
}

/// Run in the repository root so file names in the output are relative.
fn in_repo<T>(f: impl FnOnce() -> T) -> T {
    std::env::set_current_dir(repo("")).expect("cd to the repository");
    f()
}

#[test]
fn each_rule_fires_on_its_fixture_and_not_on_the_quiet_one() {
    in_repo(|| {
        for rule in RULES {
            let fire = format!("tests/fixtures/lint/rules/{}-fire.yaml", rule.id);
            let report = lint_paths(&[&fire], None);
            let ids: Vec<&str> = report.findings.iter().map(|f| f.rule).collect();
            assert_eq!(ids, [rule.id], "{fire}: {:?}", summary(&report));
            assert_eq!(report.findings[0].level, rule.level);
            let quiet = format!("tests/fixtures/lint/rules/{}-quiet.yaml", rule.id);
            let report = lint_paths(&[&quiet], None);
            assert!(report.findings.is_empty(), "{quiet}: {:?}", summary(&report));
            assert!(
                repo(&output::doc_path(rule.id)).is_file(),
                "{} has no page",
                rule.id
            );
        }
    });
}

/// Fixtures for the branches of a rule that `RWnnn-fire.yaml` does not take:
/// each finding exactly, and the words that say which branch it is.
const BRANCHES: [(&str, &[&str], &str); 5] = [
    (
        "RW002-fire-unordered",
        &[
            "RW002 warning tests/fixtures/lint/rules/RW002-fire-unordered.yaml:15 worker",
            "RW002 warning tests/fixtures/lint/rules/RW002-fire-unordered.yaml:25 worker",
        ],
        "declares routes through NetworkManager but is not ordered after it",
    ),
    (
        "RW006-fire-gateways",
        &["RW006 warning tests/fixtures/lint/rules/RW006-fire-gateways.yaml:46 worker"],
        "is also declared by unit a.service line 6 with another gateway or metric",
    ),
    (
        "RW006-fire-metrics",
        &["RW006 warning tests/fixtures/lint/rules/RW006-fire-metrics.yaml:46 worker"],
        "route declared again with another metric",
    ),
    (
        "RW009-fire-masked",
        &["RW009 error tests/fixtures/lint/rules/RW009-fire-masked.yaml:14 worker"],
        "unit r.service declares routes but is masked",
    ),
    (
        "RW009-fire-no-install",
        &["RW009 error tests/fixtures/lint/rules/RW009-fire-no-install.yaml:14 worker"],
        "has no [Install] section (WantedBy=) and no other unit wants it",
    ),
];

/// Near misses of those branches.
const NEAR_MISSES: [&str; 3] = [
    "RW002-quiet-after-networkmanager",
    "RW006-quiet-same-route",
    "RW009-quiet-wanted",
];

#[test]
fn each_branch_of_rw002_rw006_and_rw009_fires_and_its_near_miss_is_quiet() {
    in_repo(|| {
        for (name, want, words) in BRANCHES {
            let report = lint_paths(&[&format!("tests/fixtures/lint/rules/{name}.yaml")], None);
            assert_eq!(exact(&report), want, "{name}");
            for f in &report.findings {
                assert!(f.message.contains(words), "{name}: {}", f.message);
            }
        }
        for name in NEAR_MISSES {
            let report = lint_paths(&[&format!("tests/fixtures/lint/rules/{name}.yaml")], None);
            assert!(report.findings.is_empty(), "{name}: {:?}", exact(&report));
        }
    });
}

#[test]
fn the_seed_gives_exactly_rw001_and_rw002_on_their_lines() {
    in_repo(|| {
        let report = lint_paths(&["examples/seed-machineconfig.yaml"], None);
        assert_eq!(
            summary(&report),
            [
                "RW002 examples/seed-machineconfig.yaml:22 worker",
                "RW001 examples/seed-machineconfig.yaml:29 worker",
            ],
            "line 22 is the unit's entry, line 29 its ExecStart"
        );
    });
}

fn worker() -> Option<BTreeMap<String, String>> {
    Some([("node-role.kubernetes.io/worker".to_owned(), String::new())].into())
}

#[test]
fn a_directory_with_two_pools_and_nncps_selected_by_labels() {
    in_repo(|| {
        let paths = inputs::expand(&["tests/fixtures/lint/pools".to_owned()]).expect("directory lists");
        let read: Vec<lint::Input> = paths.iter().map(|p| inputs::read(p).expect("reads")).collect();
        assert_eq!(read.len(), 3, "recursive, *.yaml and *.yml");
        let report = lint::run(&read, worker(), None);
        assert_eq!(
            summary(&report),
            [
                "RW001 tests/fixtures/lint/pools/10-worker.yaml:22 worker",
                "RW009 tests/fixtures/lint/pools/20-master.yaml:14 master",
                "RW010 tests/fixtures/lint/pools/nncp/30-policies.yml:15 -",
            ],
            "each pool merged on its own; the infra policy does not select a worker"
        );
        assert_eq!(report.pools, ["master", "worker"]);
        assert_eq!(report.skipped, 1, "the Service in the List");
        let all = lint::run(&read, None, None);
        assert!(
            summary(&all).contains(&"RW007 tests/fixtures/lint/pools/nncp/30-policies.yml:28 -".to_owned()),
            "without labels every policy applies: {:?}",
            summary(&all)
        );
    });
}

#[test]
fn golden_outputs_in_every_format() {
    in_repo(|| {
        let report = lint_paths(
            &[
                "tests/fixtures/lint/pools/10-worker.yaml",
                "tests/fixtures/lint/pools/20-master.yaml",
                "tests/fixtures/lint/pools/nncp/30-policies.yml",
                "examples/seed-machineconfig.yaml",
            ],
            None,
        );
        golden("lint.txt", &output::text(&report));
        golden("lint.json", &output::json(&report));
        golden("lint.github", &output::github(&report));
        golden("lint.sarif", &output::sarif(&report));
    });
}

fn bin(args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_routewarden"))
        .arg("lint")
        .args(args)
        .current_dir(repo(""))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input).expect("stdin");
    }
    let out = child.wait_with_output().expect("exits");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exit_codes_and_stdin() {
    let seed = "examples/seed-machineconfig.yaml";
    assert_eq!(bin(&[seed], None).0, 0, "warnings only, --fail-on error");
    assert_eq!(bin(&[seed, "--fail-on", "warning"], None).0, 1);
    assert_eq!(bin(&["tests/fixtures/lint/rules/RW009-fire.yaml"], None).0, 1);
    assert_eq!(
        bin(
            &["tests/fixtures/lint/rules/RW009-fire.yaml", "--fail-on", "never"],
            None
        )
        .0,
        0
    );
    let (code, _, err) = bin(&["tests/fixtures/intent/bad/invalid.yaml"], None);
    assert_eq!(code, 2);
    assert!(err.contains("tests/fixtures/intent/bad/invalid.yaml"), "{err}");
    assert_eq!(bin(&["no/such/file.yaml"], None).0, 2);
    let kustomized = std::fs::read(repo(seed)).expect("seed");
    let (code, out, _) = bin(
        &["-", "--format", "github", "--fail-on", "warning"],
        Some(&kustomized),
    );
    assert_eq!(code, 1);
    assert!(out.starts_with("::warning file=-,line=22,title=RW002::"), "{out}");
    let (code, out, _) = bin(&["tests/fixtures/intent/bad/not-machineconfig.yaml"], None);
    assert_eq!(code, 0);
    assert!(out.contains("1 documents skipped"), "{out}");
}

/// `RWnnn FILE:LINE` per finding of `lint --format json --fail-on never ARGS`,
/// with the exit code and the whole report.
fn bin_findings(args: &[&str], stdin: Option<&[u8]>) -> (i32, Vec<String>, serde_json::Value) {
    let json = [args, &["--format", "json", "--fail-on", "never"]].concat();
    let (code, out, err) = bin(&json, stdin);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    let found = report["findings"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|f| {
                    format!(
                        "{} {}:{}",
                        f["rule"].as_str().unwrap_or("?"),
                        f["file"].as_str().unwrap_or("?"),
                        f["line"]
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (code, found, report)
}

const NODES: &str = "tests/fixtures/lint/nodes";

#[test]
fn node_name_picks_the_per_host_file_and_the_policies_naming_its_hostname() {
    let per_host = "RW007 tests/fixtures/lint/nodes/10-per-host.yaml:23";
    let worker_0 = "RW010 tests/fixtures/lint/nodes/20-policies.yaml:12";
    let worker_1 = "RW010 tests/fixtures/lint/nodes/20-policies.yaml:26";
    let workers = "RW007 tests/fixtures/lint/nodes/20-policies.yaml:40";
    let run = |args: &[&str]| bin_findings(&[&[NODES], args].concat(), None).1;
    assert_eq!(
        run(&[]),
        [worker_0, worker_1, workers],
        "no node: every policy, no per-host file"
    );
    assert_eq!(
        run(&["--node-name", "worker-0.example.com"]),
        [per_host, worker_0, workers],
        "worker-0's file and policy; worker-1's policy names another host; the role is not known, so the workers' policy applies"
    );
    let worker = ["--node-labels", "node-role.kubernetes.io/worker="];
    assert_eq!(
        run(&[&worker[..], &["--node-name", "worker-0.example.com"]].concat()),
        [per_host, worker_0, workers],
        "the node name joins the labels as kubernetes.io/hostname"
    );
    assert_eq!(
        run(&worker),
        [workers],
        "labels without a hostname: no policy that selects one applies"
    );
    assert_eq!(
        run(&[
            "--node-name",
            "worker-1.example.com",
            "--node-labels",
            "node-role.kubernetes.io/infra="
        ]),
        [worker_1],
        "worker-1 is no worker here, and worker-0's file is not its own"
    );
    assert_eq!(
        run(&["--node-name", "worker-0", "--node-labels", "kubernetes.io/hostname=worker-1.example.com,node-role.kubernetes.io/worker="]),
        [per_host, worker_1, workers],
        "a hostname label given wins over --node-name for the policies; the per-host file still goes by the name"
    );
    let help = bin(&["--help"], None).1;
    let flag = help.split("--node-name").nth(1).unwrap_or("");
    assert!(
        flag.contains("kubernetes.io/hostname") && flag.contains("per-host nmstate"),
        "{help}"
    );
}

const INPUTS: &str = "tests/fixtures/lint/inputs";

#[test]
fn rendered_configs_bare_ignition_and_plain_nmstate_from_a_directory_and_stdin() {
    let (code, found, report) = bin_findings(&[INPUTS], None);
    assert_eq!(code, 0);
    assert_eq!(
        found,
        [
            "RW001 tests/fixtures/lint/inputs/10-rendered-worker.json:30",
            "RW003 tests/fixtures/lint/inputs/20-ignition.yaml:6",
            "RW008 tests/fixtures/lint/inputs/30-nmstate.yml:13",
        ],
        "the *.json the walk found, the Ignition config, the nmstate document; the rendered master config replaces nothing of the worker's"
    );
    assert_eq!(report["files"], 5, "README.md is not read: {report}");
    assert_eq!(report["skipped"], 1, "the ConfigMap: {report}");
    assert_eq!(
        report["pools"],
        serde_json::json!([
            "-",
            "master (rendered-master-0a1b2c3d4e5f60718293a4b5c6d7e8f9)",
            "worker (rendered-worker-5f1b0c2d9e8a7b6c5d4e3f2a1b0c9d8e)"
        ]),
        "each rendered config on its own, named by its pool; the Ignition config has none: {report}"
    );
    let pools: Vec<&str> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| f["pool"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(pools, ["worker", "-", "-"]);

    let (code, found, report) = bin_findings(&[&format!("{INPUTS}/40-configmap.yaml")], None);
    assert_eq!((code, found.len()), (0, 0), "skipped is no error");
    assert_eq!(
        (report["files"].clone(), report["skipped"].clone()),
        (1.into(), 1.into())
    );

    let mut stream = Vec::new();
    for name in ["20-ignition.yaml", "30-nmstate.yml", "40-configmap.yaml"] {
        if !stream.is_empty() {
            stream.extend(b"---\n");
        }
        stream.extend(std::fs::read(repo(&format!("{INPUTS}/{name}"))).expect("fixture"));
    }
    let (_, found, report) = bin_findings(&["-"], Some(&stream));
    assert_eq!(found, ["RW003 -:6", "RW008 -:22"], "lines of the stream");
    assert_eq!(
        (report["files"].clone(), report["skipped"].clone()),
        (1.into(), 1.into())
    );
    let rendered = std::fs::read(repo(&format!("{INPUTS}/10-rendered-worker.json"))).expect("fixture");
    let (_, found, _) = bin_findings(&["-"], Some(&rendered));
    assert_eq!(found, ["RW001 -:30"], "JSON on stdin");
}
