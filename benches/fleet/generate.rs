//! A synthetic bucket for the fleet benchmark: `workers` workers and `jobs` jobs, each job
//! placed on a share of the fleet through labels.
//!
//! The fleet is split into `groups` label groups (`g0`, `g1`, …, worker i in group
//! `i % groups`); job j selects group `j % groups`, so every job lands on
//! `workers / groups` workers and every worker hosts `jobs / groups` jobs. With the default
//! 10,000 workers, 200 jobs and 20 groups that is 500 workers per job and 100,000
//! allocations. Each job has a pool port, memory bounds, a vars.hcl and one `cli` command
//! (run only by `kvform run`, so the CLI benchmark's applies start no hook process); job j
//! demands job `j - groups` (same group), so the dependency graph has `jobs / groups`
//! waves, like a real bucket's layered services.

use std::fmt::Write as _;
use std::path::Path;

pub struct Fleet {
    pub workers: usize,
    pub jobs: usize,
    pub groups: usize,
}

impl Fleet {
    /// Allocations the generated workspace places (before disabling anything).
    pub fn allocations(&self) -> usize {
        (0..self.jobs).map(|j| (0..self.workers).filter(|w| w % self.groups == j % self.groups).count()).sum()
    }

    /// Job j's name (`job0042`).
    pub fn job(j: usize) -> String {
        format!("job{j:04}")
    }

    /// Write the bucket under `root` (which must exist and be empty).
    pub fn write(&self, root: &Path) -> std::io::Result<()> {
        let ws = root.join("workspace");
        std::fs::create_dir_all(ws.join("jobs"))?;
        std::fs::write(root.join("kvform.hcl"), "max_versions = 10\n")?;
        // The pool must hold one port per job.
        std::fs::write(ws.join("bucket.conf"), "port_min = 20000\nport_max = 29999\nregion = \"bench\"\n")?;

        let mut workers = String::from("[\n");
        for i in 0..self.workers {
            let sep = if i + 1 == self.workers { "" } else { "," };
            let (a, b, c) = (i / 65536, (i / 256) % 256, i % 256);
            writeln!(
                workers,
                r#"  {{"host": "10.{a}.{b}.{c}", "labels": ["g{}", "rack{}"], "memory": "64 gb", "cpu": "32 ghz", "tags": {{"zone": "z{}"}}}}{sep}"#,
                i % self.groups,
                i % 40,
                i % 3
            )
            .unwrap();
        }
        workers.push_str("]\n");
        std::fs::write(ws.join("workers.json"), workers)?;

        let mut jobs_conf = String::new();
        for j in 0..self.jobs {
            let name = Self::job(j);
            let dir = ws.join("jobs").join(&name);
            std::fs::create_dir_all(dir.join("_modules"))?;
            let demands = if j >= self.groups {
                let up = Self::job(j - self.groups);
                format!(
                    r#", "demands": {{"job": "{up}", "command": "command_ping", "config": {{"min_version": "1"}}}}"#
                )
            } else {
                String::new()
            };
            let manifest = format!(
                r#"{{
  "version": "1.0.{j}",
  "selectors": ["g{g}"],
  "resources": {{
    "memory": {{"min": "64 mb", "max": "256 mb"}},
    "cpu": {{"min": "100 mhz", "max": "500 mhz"}},
    "ports": {{"{name}_http": {{}}}}
  }},
  "commands": {{
    "command_ping": {{"executed_on": ["cli"]{demands}}}
  }},
  "max_concurrent_upgrades": 50
}}
"#,
                g = j % self.groups
            );
            std::fs::write(dir.join("manifest.json"), manifest)?;
            std::fs::write(dir.join("_modules/command_ping.py"), "print('pong')\n")?;
            std::fs::write(dir.join("vars.hcl"), format!("base_path = \"/{name}\"\nthreads = {}\n", 2 + j % 7))?;
            writeln!(jobs_conf, "job \"{name}\" {{\n  memory = \"128 mb\"\n  replicas_hint = {}\n}}", 1 + j % 5)
                .unwrap();
        }
        std::fs::write(ws.join("bucket.jobs.conf"), jobs_conf)?;
        Ok(())
    }
}
