//! Whatever the bytes, the intent stage answers Ok or Err, never panics: mutated
//! and truncated fixtures, random bytes, deep nesting, a YAML alias bomb.

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

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(intent::from_bytes(json.as_bytes(), &Options::default()).is_err());
    let yaml = format!("a: {}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(intent::from_bytes(yaml.as_bytes(), &Options::default()).is_err());
}

#[test]
fn yaml_alias_bomb_is_refused() {
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
    assert!(intent::from_bytes(yaml.as_bytes(), &Options::default()).is_err());
}
