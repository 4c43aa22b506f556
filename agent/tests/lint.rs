//! `routewarden lint`: each rule on a firing and a quiet fixture
//! (tests/fixtures/lint/rules/), the seed's MachineConfig, a directory with two
//! pools and NNCPs picked by labels, golden outputs in every format
//! (`UPDATE_GOLDEN=1` regenerates them), and the binary's exit codes.

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
