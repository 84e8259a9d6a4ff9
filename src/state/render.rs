//! The last apply's template render (SPEC §12), kept in the state so `plan --render` on
//! another checkout — an ephemeral CI runner without `data/render/` — diffs against it.
//!
//! One row per rendered file of an allocation, the text with every secret the template read
//! replaced by `(sensitive)` (`templates::Rendered::masked`): never a plaintext secret. The
//! apply writes an allocation's files in its write transaction when it renders the job's
//! templates (so a job rolled back takes its render with it), replacing that allocation's
//! previous files, and forgets the allocations the job no longer has; the apply forgets
//! the render of jobs no longer in the workspace when it records the purged jobs.

use super::backend::vals;
use super::{StateError, StateStore, WriteTxn, sql};
use std::collections::{BTreeMap, BTreeSet};

impl WriteTxn {
    /// Record `files` (path under the job's directory, masked text) as allocation (`job`,
    /// `host`)'s render, replacing what it had.
    pub fn put_render(&mut self, job: &str, host: &str, files: &[(String, String)]) -> Result<(), StateError> {
        // Held-back writes and savepoints first: the rows belong to the job's savepoint.
        self.flush()?;
        let serial = self.next_serial() as i64;
        let p = self.path().to_path_buf();
        let conn = self.conn();
        conn.execute("DELETE FROM render_files WHERE host = ?1 AND job = ?2", vals![host, job])
            .map_err(sql(&p, "write the render"))?;
        for (file, text) in files {
            conn.execute(
                "INSERT INTO render_files (host, job, file, text, serial) VALUES (?1, ?2, ?3, ?4, ?5)",
                vals![host, job, file.as_str(), text.as_str(), serial],
            )
            .map_err(sql(&p, "write the render"))?;
        }
        Ok(())
    }

    /// Forget the render of `job`'s allocations on hosts other than `hosts`.
    pub fn retain_render(&mut self, job: &str, hosts: &[String]) -> Result<(), StateError> {
        self.flush()?;
        let p = self.path().to_path_buf();
        let conn = self.conn();
        let recorded = conn
            .query_map("SELECT DISTINCT host FROM render_files WHERE job = ?1 ORDER BY host", vals![job], |r| r.text(0))
            .map_err(sql(&p, "read the render"))?;
        for host in recorded.iter().filter(|h| !hosts.contains(h)) {
            conn.execute("DELETE FROM render_files WHERE host = ?1 AND job = ?2", vals![host.as_str(), job])
                .map_err(sql(&p, "write the render"))?;
        }
        Ok(())
    }

    /// Forget the render of every job not in `jobs` (the workspace's): a job removed from
    /// the workspace leaves no rows behind once the apply that purges its namespaces commits.
    pub fn retain_render_jobs(&mut self, jobs: &BTreeSet<&str>) -> Result<(), StateError> {
        // Held-back writes and savepoints first (`--atomic`: the rows belong to its savepoint).
        self.flush()?;
        let p = self.path().to_path_buf();
        let conn = self.conn();
        let recorded = conn
            .query_map("SELECT DISTINCT job FROM render_files ORDER BY job", &[], |r| r.text(0))
            .map_err(sql(&p, "read the render"))?;
        for job in recorded.iter().filter(|j| !jobs.contains(j.as_str())) {
            conn.execute("DELETE FROM render_files WHERE job = ?1", vals![job.as_str()])
                .map_err(sql(&p, "write the render"))?;
        }
        Ok(())
    }
}

impl StateStore {
    /// The last apply's render: `<host>/jobs/<job>/<file>` (maand's staged layout) → the
    /// masked text, sorted.
    pub fn last_render(&self) -> Result<BTreeMap<String, String>, StateError> {
        let rows = self
            .conn()
            .query_map("SELECT host, job, file, text FROM render_files ORDER BY host, job, file", &[], |r| {
                Ok((format!("{}/jobs/{}/{}", r.text(0)?, r.text(1)?, r.text(2)?), r.text(3)?))
            })
            .map_err(sql(self.path(), "read the render"))?;
        Ok(rows.into_iter().collect())
    }
}
