//! Robustness of the JSON workspace parsers: every truncation of a valid file and a few
//! hundred random or mutated byte strings per file type (fixed seed, so failures
//! reproduce) must load without panicking, and anything that is not valid JSON must
//! produce at least one diagnostic.

use std::path::Path;

const WORKERS: &str = r#"[
  {"host": "10.0.0.1", "hostname": "a", "labels": ["api", "db"], "memory": "4 gb", "cpu": 2400,
   "tags": {"rack": "r1"}, "position": 2},
  {"host": "10.0.0.2"}
]
"#;
const DISABLED: &str = r#"{"jobs": {"api": {"allocations": ["10.0.0.1"]}}, "workers": ["10.0.0.2"]}
"#;
const MANIFEST: &str = r#"{
  "version": "1.2.3",
  "selectors": ["api"],
  "resources": {"memory": {"min": "256 mb", "max": "1 gb"}, "cpu": {"min": 500}, "ports": {"http": {}, "admin": 9000}},
  "commands": {"command_ready": {"executed_on": ["post_deploy"], "demands": {"job": "db", "command": "command_m", "config": {"min_version": 1}}}},
  "max_concurrent_upgrades": 2
}
"#;

const FILES: &[(&str, &str)] = &[
    ("workspace/workers.json", WORKERS),
    ("workspace/disabled.json", DISABLED),
    ("workspace/jobs/api/manifest.json", MANIFEST),
];

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Load a bucket whose only file is `rel` holding `bytes`; returns the diagnostic count.
fn load_with(root: &Path, rel: &str, bytes: &[u8]) -> usize {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let loaded = kvform::workspace::load(root);
    // Rendering must not panic either (spans at end of file, inside multi-byte chars).
    let _ = loaded.diagnostics.render(&loaded.sources, false);
    loaded.diagnostics.0.len()
}

fn is_valid_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes).is_ok()
}

#[test]
fn truncated_files_are_reported() {
    for (rel, text) in FILES {
        let dir = tempfile::tempdir().unwrap();
        let last = text.trim_end().len() - 1;
        for cut in 0..=last {
            let bytes = &text.as_bytes()[..cut];
            let n = load_with(dir.path(), rel, bytes);
            assert!(n > 0, "{rel} truncated to {cut} bytes loaded without a diagnostic");
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    const ALPHABET: &[u8] = b"{}[]:,\"\\ \n0123456789.-eEtrufalsn/*abc\xc3\xa9\xff";
    for (rel, text) in FILES {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..300 {
            let bytes: Vec<u8> = if round % 2 == 0 {
                // Pure noise from a JSON-ish alphabet.
                let len = rng.below(64);
                (0..len).map(|_| ALPHABET[rng.below(ALPHABET.len())]).collect()
            } else {
                // A valid file with a few bytes overwritten.
                let mut b = text.as_bytes().to_vec();
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(b.len());
                    b[i] = ALPHABET[rng.below(ALPHABET.len())];
                }
                b
            };
            let n = load_with(dir.path(), rel, &bytes);
            if !is_valid_json(&bytes) {
                assert!(n > 0, "{rel}: invalid JSON {:?} loaded without a diagnostic", String::from_utf8_lossy(&bytes));
            }
        }
    }
}
