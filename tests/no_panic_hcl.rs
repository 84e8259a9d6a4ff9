//! Robustness of the HCL readers: truncated files, random bytes and pathological nesting
//! never panic, and input that cannot be valid always yields at least one diagnostic.

use kvform::diag::{Diagnostics, SourceMap};
use kvform::workspace::hcl_files;
use proptest::prelude::*;
use std::path::Path;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Settings,
    BucketConf,
    BucketJobs,
    Vars,
}

const KINDS: [Kind; 4] = [Kind::Settings, Kind::BucketConf, Kind::BucketJobs, Kind::Vars];

impl Kind {
    fn rel(self) -> &'static str {
        match self {
            Kind::Settings => "kvform.hcl",
            Kind::BucketConf => "workspace/bucket.conf",
            Kind::BucketJobs => "workspace/bucket.jobs.conf",
            Kind::Vars => "workspace/jobs/api/vars.hcl",
        }
    }

    /// A valid file of this kind. No brackets or quotes inside strings or comments, so
    /// counting them tells whether a prefix ends inside an open construct.
    fn sample(self) -> &'static str {
        match self {
            Kind::Settings => {
                "job_config_selector = \"\"\nmax_versions = 10\nstate {\n  path = \"data/kvform.db\"\n}\nhooks {\n  timeout = \"10m\"\n  api_port = 0\n}\n"
            }
            Kind::BucketConf => {
                "port_min = 30000\nport_max = 39999\nlog_level = \"info\"\nratio = 1.5\nflags = [\"a\", true, -2]\nlimits = { burst = 20, nested = { x = [1] } }\n"
            }
            Kind::BucketJobs => {
                "job \"api\" {\n  memory = \"512 mb\"\n  cpu = \"1.5 ghz\"\n  replicas_hint = 3\n}\njob \"db\" {\n  memory = 2048\n}\n"
            }
            Kind::Vars => "base_path = \"/api\"\nworkers = 4\ndebug = false\nlist = [\"x\", { k = \"v\" }]\n",
        }
    }
}

/// Write `bytes` as the file of `kind` in a fresh bucket and run its reader.
fn read(kind: Kind, bytes: &[u8]) -> Diagnostics {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(kind.rel());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let root: &Path = tmp.path();
    let mut sources = SourceMap::new();
    let mut diags = Diagnostics::new();
    match kind {
        Kind::Settings => drop(hcl_files::settings(root, &mut sources, &mut diags)),
        Kind::BucketConf => drop(hcl_files::bucket_conf(root, &mut sources, &mut diags)),
        Kind::BucketJobs => drop(hcl_files::bucket_jobs(root, "", &mut sources, &mut diags)),
        Kind::Vars => drop(hcl_files::job_vars(root, "api", &mut sources, &mut diags)),
    }
    // Rendering must not panic either (spans inside the file, on char boundaries).
    diags.sort(&sources);
    let _ = diags.render(&sources, false);
    diags
}

fn open_construct(prefix: &str) -> bool {
    let n = |c: char| prefix.matches(c).count();
    n('"') % 2 == 1 || n('{') != n('}') || n('[') != n(']')
}

#[test]
fn samples_are_valid() {
    for kind in KINDS {
        let d = read(kind, kind.sample().as_bytes());
        assert!(d.is_empty(), "{kind:?}: {d:?}");
    }
}

#[test]
fn every_truncation_is_handled() {
    for kind in KINDS {
        let s = kind.sample();
        let mut open = 0;
        for cut in (0..s.len()).filter(|i| s.is_char_boundary(*i)) {
            let prefix = &s[..cut];
            let d = read(kind, prefix.as_bytes());
            if open_construct(prefix) {
                open += 1;
                assert!(d.has_errors(), "{kind:?}: no error for truncation {prefix:?}");
            }
        }
        assert!(open > 10, "{kind:?}: the sample exercises too few open constructs");
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for kind in KINDS {
        let deep = format!("a = {}1{}\n", "[".repeat(10_000), "]".repeat(10_000));
        assert!(read(kind, deep.as_bytes()).has_errors(), "{kind:?}");
        let blocks = format!("{}{}", "b {\n".repeat(5_000), "}\n".repeat(5_000));
        assert!(read(kind, blocks.as_bytes()).has_errors(), "{kind:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        for kind in KINDS {
            let d = read(kind, &bytes);
            if std::str::from_utf8(&bytes).is_err() {
                prop_assert!(d.has_errors(), "{:?}: invalid UTF-8 accepted", kind);
            }
        }
    }

    #[test]
    fn garbage_text_never_panics(text in "[ -~\n\t]{0,200}") {
        for kind in KINDS {
            let _ = read(kind, text.as_bytes());
        }
    }

    #[test]
    fn an_invalid_byte_anywhere_is_reported(at in 0usize..1000, byte in 0x80u8..=0xFF) {
        for kind in KINDS {
            let mut bytes = kind.sample().as_bytes().to_vec();
            let at = at % (bytes.len() + 1);
            bytes.insert(at, byte);
            if std::str::from_utf8(&bytes).is_err() {
                prop_assert!(read(kind, &bytes).has_errors(), "{:?}", kind);
            }
        }
    }

    #[test]
    fn mutated_samples_never_panic(at in 0usize..1000, insert in "[{}\\[\\]\"=$%<>#/*\\\\a-z0-9 \n-]{1,4}") {
        for kind in KINDS {
            let s = kind.sample();
            let mut at = at % (s.len() + 1);
            while !s.is_char_boundary(at) { at -= 1; }
            let mutated = format!("{}{}{}", &s[..at], insert, &s[at..]);
            let _ = read(kind, mutated.as_bytes());
        }
    }
}
