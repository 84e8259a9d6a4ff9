//! How a [`WriteTxn`] ends and what it sends on the way: the fingerprints of the plan it
//! applies, the rows its sink held back, savepoints, commit and rollback.

use super::*;

impl WriteTxn {
    /// Record what the plan being applied learned (`crate::state::fingerprint`): `changed` are the
    /// namespaces the plan changes, `writer` the writer it applies them as. Rows of changed
    /// namespaces are marked unverified now (outside any savepoint) and written again as the
    /// writer writes them; rows of namespaces read unchanged are written at commit; a write
    /// by any other writer marks its namespace's row unverified.
    /// `workspace_digest`: the workspace the plan was made from (recorded with the base).
    pub fn stage_fingerprints<'a>(
        &mut self,
        basis: &PlanBasis,
        changed: impl IntoIterator<Item = &'a str>,
        writer: &str,
        workspace_digest: Option<&str>,
    ) -> Result<(), StateError> {
        self.flush()?;
        if basis.full {
            self.conn.execute("DELETE FROM fingerprints", &[]).map_err(sql(&self.path, "reset fingerprints"))?;
            self.sink.fingerprints_emptied();
        }
        // The marks of planned namespaces keep a live namespace's row from ending absent (or
        // stale) when the job that changes it rolls back. A state with no row at all (a
        // bucket's first apply) has no live namespace: a rolled-back one ends not live, and
        // `finish` drops the rows of those anyway, so the marks would only be overwritten.
        let nothing_live = basis.full
            && !self
                .conn
                .query_one("SELECT EXISTS (SELECT 1 FROM latest)", &[], |r| r.bool(0))
                .map_err(sql(&self.path, "read state"))?;
        self.fp_written.clear();
        let mut staged = Staged {
            writer: writer.to_string(),
            workspace_digest: workspace_digest.map(str::to_string),
            units: basis.units.clone(),
            ..Default::default()
        };
        let changed: std::collections::BTreeSet<&str> = changed.into_iter().collect();
        let mut unverified: Vec<&str> = Vec::new();
        for (ns, d) in &basis.read {
            if changed.contains(ns.as_str()) {
                self.fp_written.remove(ns.as_str());
                if !nothing_live {
                    unverified.push(ns);
                }
                staged.on_write.insert(ns.clone(), *d);
                staged.planned.insert(ns.clone(), *d);
            } else {
                staged.on_commit.insert(ns.clone(), *d);
            }
        }
        // Changes the basis does not cover (a targeted apply records none): what they
        // write is not verified against any fingerprint, so the next plan must read it.
        for ns in changed.into_iter().filter(|ns| !basis.read.contains_key(*ns)) {
            unverified.push(ns);
            staged.foreign.insert(ns.to_string());
        }
        if basis.full && self.sink.bulk_fingerprints() {
            // The table was just emptied, so these are new rows: one COPY, not upserts.
            let rows: BTreeMap<String, fingerprint::Digest> =
                unverified.iter().map(|ns| (ns.to_string(), fingerprint::UNVERIFIED)).collect();
            self.send_fingerprints(rows)?;
        } else {
            for ns in unverified {
                self.put_fp(ns, &fingerprint::UNVERIFIED)?;
            }
        }
        self.staged = Some(staged);
        Ok(())
    }

    /// Keep the fingerprint rows true after a write to `ns` by `writer` (see
    /// [`Self::stage_fingerprints`]); nothing to do when no apply is staged.
    pub(super) fn note_write(&mut self, ns: &str, writer: &str) -> Result<(), StateError> {
        let Some(staged) = self.staged.as_mut() else { return Ok(()) };
        if writer == staged.writer {
            if let Some(d) = staged.on_write.get(ns)
                && self.fp_written.get(ns) != Some(d)
            {
                let d = *d;
                self.put_fp(ns, &d)?;
                self.fp_written.insert(ns.to_string(), d);
            }
        } else {
            staged.on_write.remove(ns);
            staged.on_commit.remove(ns);
            staged.foreign.insert(ns.to_string());
            self.fp_written.remove(ns);
            self.put_fp(ns, &fingerprint::UNVERIFIED)?;
        }
        Ok(())
    }

    /// Write a fingerprint row (unless the sink holds it back).
    pub(super) fn put_fp(&mut self, ns: &str, d: &fingerprint::Digest) -> Result<(), StateError> {
        if !self.flushing && self.sink.hold_fingerprint(ns, d) {
            return Ok(());
        }
        self.sink.fingerprint_may_exist(ns);
        crate::state::fingerprint_rows::put_row(&self.conn, &self.path, ns, d)
    }

    /// Send the held-back writes and savepoints, in the order they were made. Every method
    /// that reads or writes the database otherwise calls this first, so nothing ever sees
    /// the state without them. A held-back first version whose key turns out to exist
    /// (written in this transaction before it was held back) is written as [`Self::put`]
    /// would have written it.
    pub(in crate::state) fn flush(&mut self) -> Result<(), StateError> {
        if self.flushing || self.sink.is_empty() {
            return Ok(());
        }
        self.flushing = true;
        let sent = self.send_held();
        self.flushing = false;
        sent
    }

    pub(super) fn send_held(&mut self) -> Result<(), StateError> {
        for held in self.sink.drain() {
            match held {
                Held::Rows(rows) => self.send_rows(&rows)?,
                Held::Fingerprints(rows) => self.send_fingerprints(rows)?,
                Held::Savepoint => {
                    let sp = self.savepoints.iter_mut().find(|s| s.held).expect("the sink held a savepoint back");
                    let q = savepoint_name(&sp.name)?;
                    self.conn.batch(&format!("SAVEPOINT {q}")).map_err(sql(&self.path, "savepoint"))?;
                    // What it restores: everything before it is sent now, so counted.
                    sp.held = false;
                    sp.counts = self.counts;
                }
            }
        }
        Ok(())
    }

    pub(super) fn send_rows(&mut self, rows: &[NewRow]) -> Result<(), StateError> {
        if rows.is_empty() {
            return Ok(());
        }
        let conflicts = bulk::insert_first(&self.conn, &self.path, rows, self.next_serial() as i64)?;
        for r in rows {
            self.sink.touch(&r.namespace);
        }
        self.counts.added += (rows.len() - conflicts.len()) as u64;
        for i in conflicts {
            let r = &rows[i];
            self.write(&r.namespace, &r.key, &r.value, r.ttl as u64, &r.writer, r.now, Meta::Keep(r.kv_type))?;
        }
        Ok(())
    }

    /// Fingerprint rows known absent go in by one bulk insert, the others by upsert.
    pub(super) fn send_fingerprints(&mut self, rows: BTreeMap<String, fingerprint::Digest>) -> Result<(), StateError> {
        if rows.is_empty() {
            return Ok(());
        }
        let (mut again, mut new) = (Vec::new(), Vec::new());
        for (n, d) in &rows {
            if self.sink.fingerprint_may_exist(n) {
                again.push((n.as_str(), d));
            } else {
                new.push((n.as_str(), d));
            }
        }
        crate::state::fingerprint_rows::insert_fingerprints(&self.conn, &self.path, &new)?;
        crate::state::fingerprint_rows::put_fingerprints(&self.conn, &self.path, &again)
    }

    pub fn savepoint(&mut self, name: &str) -> Result<(), StateError> {
        let q = savepoint_name(name)?;
        // Read-ahead rows live within one step of the executor (a batch, a job's own
        // namespaces); dropping them at every savepoint keeps them from outliving it.
        self.heads.clear();
        let held = self.sink.hold_savepoint();
        if !held {
            self.conn.batch(&format!("SAVEPOINT {q}")).map_err(sql(&self.path, "savepoint"))?;
        }
        self.savepoints.push(Savepoint { name: name.to_string(), counts: self.counts, held });
        Ok(())
    }

    pub fn release(&mut self, name: &str) -> Result<(), StateError> {
        let q = savepoint_name(name)?;
        self.heads.clear();
        let Some(i) = self.savepoints.iter().rposition(|s| s.name == name) else {
            // Not ours: the server says what is wrong with it.
            self.flush()?;
            return self.conn.batch(&format!("RELEASE {q}")).map_err(sql(&self.path, "release savepoint"));
        };
        let released = self.savepoints.split_off(i);
        let held = released.iter().filter(|s| s.held).count();
        if held > 0 {
            self.sink.release_held(held);
        }
        if !released[0].held {
            self.conn.batch(&format!("RELEASE {q}")).map_err(sql(&self.path, "release savepoint"))?;
        }
        Ok(())
    }

    /// Undo everything since the savepoint `name`, and release it.
    pub fn rollback_to(&mut self, name: &str) -> Result<(), StateError> {
        let q = savepoint_name(name)?;
        let Some(i) = self.savepoints.iter().rposition(|s| s.name == name) else {
            self.flush()?;
            return self
                .conn
                .batch(&format!("ROLLBACK TO {q}; RELEASE {q}"))
                .map_err(sql(&self.path, "roll back to savepoint"));
        };
        let mut undone = self.savepoints.split_off(i);
        let held = undone.iter().filter(|s| s.held).count();
        let sp = undone.swap_remove(0);
        if sp.held {
            // Nothing since it reached the server: drop what was held back after it.
            self.sink.rollback_held(held);
        } else {
            // Everything held back now came after it (a flush sends all savepoints).
            self.sink.discard();
            self.conn
                .batch(&format!("ROLLBACK TO {q}; RELEASE {q}"))
                .map_err(sql(&self.path, "roll back to savepoint"))?;
        }
        // What the fingerprint rows and read-ahead heads hold after the rollback is not
        // tracked: forget all.
        self.fp_written.clear();
        self.heads.clear();
        self.counts = sp.counts;
        Ok(())
    }

    /// Commit. When anything was written or removed: serial + 1, the audit record, and the
    /// lock record. A failed apply that wrote nothing still leaves its audit record. Commits
    /// with `synchronous=FULL`. Returns the state's serial after the commit.
    pub fn commit(mut self, record: ApplyRecord) -> Result<u64, StateError> {
        // Interrupted (`crate::state::interrupt`): refuse, and the drop rolls back.
        let _gate = crate::state::interrupt::commit_gate().map_err(|signal| StateError::Interrupted { signal })?;
        self.flush()?;
        let changed = self.counts.any();
        let serial = if changed { self.next_serial() } else { self.base_serial };
        if let Some(staged) = self.staged.take() {
            fingerprint::finish(&self.conn, &self.path, staged, serial)?;
        }
        if changed {
            self.conn
                .execute("UPDATE meta SET serial = ?1 WHERE id = 1", vals![serial as i64])
                .map_err(sql(&self.path, "bump serial"))?;
            let h = &self.lock.holder;
            self.conn
                .execute(
                    "INSERT INTO lock (id, lock_id, actor, pid, operation, since) VALUES (1, ?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (id) DO UPDATE SET lock_id = excluded.lock_id, actor = excluded.actor,
                        pid = excluded.pid, operation = excluded.operation, since = excluded.since",
                    vals![&h.lock_id, &h.actor, h.pid as i64, &h.operation, h.since],
                )
                .map_err(sql(&self.path, "write lock record"))?;
        }
        if changed || record.status != ApplyStatus::Success {
            let c = self.counts;
            self.conn
                .execute(
                    "INSERT INTO applies (serial, operation, actor, tool_version, started_at, finished_at, duration_ms,
                                          added, changed, destroyed, removed, resealed, status)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    vals![
                        serial as i64,
                        &record.operation,
                        &record.actor,
                        env!("CARGO_PKG_VERSION"),
                        record.started_at,
                        record.finished_at,
                        self.began.elapsed().as_millis() as i64,
                        c.added as i64,
                        c.changed as i64,
                        c.destroyed as i64,
                        c.removed as i64,
                        c.resealed as i64,
                        record.status.as_str(),
                    ],
                )
                .map_err(sql(&self.path, "write audit record"))?;
        }
        if !self.lock.still_held() {
            // The lock's connection died (PostgreSQL released the lock with it): another
            // writer may be in; committing now could interleave two change sets.
            return Err(StateError::Config(format!(
                "state {}: the write lock was lost (its database connection closed); nothing was committed\n  help: run the command again",
                self.path.display()
            )));
        }
        self.conn.batch("COMMIT").map_err(sql(&self.path, "commit"))?;
        self.finished = true;
        crate::state::interrupt::note_commit(serial);
        Ok(serial)
    }

    /// Discard every write of this transaction and release the lock.
    pub fn rollback(mut self) -> Result<(), StateError> {
        self.finished = true;
        self.conn.batch("ROLLBACK").map_err(sql(&self.path, "roll back"))
    }
}
