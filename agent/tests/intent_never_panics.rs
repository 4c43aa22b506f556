//! Whatever the bytes, the intent stage answers Ok or Err, never panics: mutated
//! and truncated fixtures, random bytes, deep nesting, a YAML alias bomb; and the
//! binary refuses hostile files with exit 2 and a message.

use std::path::PathBuf;

use routewarden::intent::{self, Options};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn fixtures() -> Vec<Vec<u8>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut paths = vec![root.join("examples/seed-machineconfig.yaml")];
    for dir in ["tests/fixtures/intent", "tests/fixtures/intent/bad"] {
        let entries = std::fs::read_dir(root.join(dir)).expect("fixture dir exists");
        paths.extend(
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file()),
        );
    }
    paths
        .iter()
        .map(|p| std::fs::read(p).expect("fixture readable"))
        .collect()
}

fn mutate(rng: &mut Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    const INTERESTING: &[u8] = b"{}[]:,\"'\\\n -/=%$#&;|0.";
    for _ in 0..=rng.below(4) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.below(bytes.len());
        match rng.below(4) {
            0 => bytes[at] = INTERESTING[rng.below(INTERESTING.len())],
            1 => bytes.truncate(at),
            2 => {
                let b = bytes[at];
                bytes.insert(at, b);
            }
            _ => bytes[at] = (rng.next() & 0xff) as u8,
        }
    }
    bytes
}

#[test]
fn mutated_fixtures_never_panic() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let options = Options {
        node_name: Some("worker-0".into()),
        ..Options::default()
    };
    let (mut ok, mut err) = (0, 0);
    let fixtures = fixtures();
    for original in &fixtures {
        for _ in 0..400 {
            let input = mutate(&mut rng, original.clone());
            match intent::from_bytes(&input, &options) {
                Ok(_) => ok += 1,
                Err(_) => err += 1,
            }
        }
    }
    println!(
        "figure: {} mutated fixture inputs ({} fixtures): {ok} read, {err} refused with an error, no panic",
        ok + err,
        fixtures.len()
    );
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(42);
    for len in [0usize, 1, 7, 64, 4096] {
        for _ in 0..50 {
            let input: Vec<u8> = (0..len).map(|_| (rng.next() & 0xff) as u8).collect();
            let _ = intent::from_bytes(&input, &Options::default());
        }
    }
}

fn nested_json() -> String {
    format!("{}{}", "[".repeat(100_000), "]".repeat(100_000))
}

fn nested_yaml() -> String {
    format!("a: {}{}", "[".repeat(100_000), "]".repeat(100_000))
}

/// Nine levels of nine aliases each: 9^9 strings once expanded.
fn alias_bomb() -> String {
    let mut yaml = String::from("a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n");
    let names = ["b", "c", "d", "e", "f", "g", "h", "i"];
    let mut prev = "a";
    for n in names {
        yaml.push_str(&format!(
            "{n}: &{n} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
        prev = n;
    }
    yaml.push_str("spec:\n  config:\n    storage:\n      files: *i\n");
    yaml
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    assert!(intent::from_bytes(nested_json().as_bytes(), &Options::default()).is_err());
    assert!(intent::from_bytes(nested_yaml().as_bytes(), &Options::default()).is_err());
}

#[test]
fn yaml_alias_bomb_is_refused() {
    assert!(intent::from_bytes(alias_bomb().as_bytes(), &Options::default()).is_err());
}

/// The binary, on each hostile file: exit 2 and one line naming the file, no panic.
#[test]
fn hostile_files_exit_2_with_a_message() {
    let dir = std::env::temp_dir().join(format!("rw-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut rng = Rng(7);
    let random: Vec<u8> = (0..100_000).map(|_| (rng.next() & 0xff) as u8).collect();
    let inputs: [(&str, Vec<u8>); 4] = [
        ("a YAML alias bomb", alias_bomb().into_bytes()),
        ("JSON nested 100,000 deep", nested_json().into_bytes()),
        ("YAML nested 100,000 deep", nested_yaml().into_bytes()),
        ("100 kB of random bytes", random),
    ];
    let mut files: Vec<(&str, PathBuf)> = Vec::new();
    for (i, (what, bytes)) in inputs.iter().enumerate() {
        let path = dir.join(format!("input-{i}"));
        std::fs::write(&path, bytes).expect("write input");
        files.push((what, path));
    }
    let huge = dir.join("huge");
    let file = std::fs::File::create(&huge).expect("create");
    file.set_len(65 * 1024 * 1024).expect("a sparse 65 MiB file");
    files.push(("a 65 MiB file", huge));
    let mut refused = Vec::new();
    for (what, path) in &files {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_routewarden"))
            .args(["expected", "--machineconfig"])
            .arg(path)
            .output()
            .expect("run routewarden");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{what}: one line: {stderr}");
        assert!(
            stderr.starts_with("routewarden: ") && stderr.contains(&path.display().to_string()),
            "{what}: the message names the file: {stderr}"
        );
        refused.push(*what);
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "figure: {}: each refused by the binary with exit 2 and a one-line message naming the file, no panic",
        refused.join(", ")
    );
}
