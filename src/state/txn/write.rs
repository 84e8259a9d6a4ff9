//! The writes of a [`WriteTxn`]: a new version of a key ([`Write`]), a tombstone, a
//! purge, a reseal.

use super::*;

impl WriteTxn {
    /// Write a key ([`Write`]): append a version unless identical (value, ttl, type and
    /// description) to the live latest row. Revives a tombstone. The value is trimmed and
    /// checked against its type first (nothing is written when it does not fit). In
    /// `secrets/*` namespaces `value` is plaintext and is sealed here for the new version.
    pub fn put(&mut self, w: Write<'_>) -> Result<WriteOutcome, StateError> {
        let kv_type = match w.meta {
            Meta::Set(t) => t.kv_type,
            Meta::Keep(t) => t,
        };
        if w.expect_new
            && let Meta::Keep(kv_type) = w.meta
            && !is_secret_key(w.ns, w.key)
        {
            return self.put_first(w.ns, w.key, w.value, w.ttl, w.writer, w.now, kv_type);
        }
        check_type(kv_type, w.ns, w.key, w.value)?;
        self.write(w.ns, w.key, w.value, w.ttl, w.writer, w.now, w.meta)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn write(
        &mut self,
        ns: &str,
        key: &str,
        value: &str,
        ttl: u64,
        writer: &str,
        now: i64,
        typed: Meta<'_>,
    ) -> Result<WriteOutcome, StateError> {
        self.flush()?;
        check_name("namespace", ns)?;
        check_name("key", key)?;
        refuse_derived(ns, key)?;
        // What both backends can store, whoever writes (the doors check more, first).
        let description = match typed {
            Meta::Set(t) => t.description.as_str(),
            Meta::Keep(_) => "",
        };
        crate::kv::validate::check_storable(ns, key, value, ttl, description).map_err(StateError::Refused)?;
        self.touch(ns);
        let value = value.trim();
        let secret = is_secret_key(ns, key);
        let head = self.head(ns, key)?;
        let meta = match (typed, &head) {
            (Meta::Set(t), _) => t.clone(),
            (Meta::Keep(kv_type), Some(h)) => Typed { kv_type, description: h.description.clone() },
            (Meta::Keep(kv_type), None) => Typed { kv_type, description: String::new() },
        };
        if let Some(h) = &head
            && !h.deleted
            && h.ttl == ttl
            && h.kv_type == meta.kv_type
            && h.description == meta.description
        {
            let same = if secret {
                // A stored value that does not open (a damaged row) equals nothing: writing
                // over it is its repair (SPEC §8 re-issues such a certificate key).
                self.need_keyring(ns, key)?.open(ns, key, h.version, &h.value).is_ok_and(|p| p.as_str() == value)
            } else {
                h.value == value
            };
            if same {
                self.note_write(ns, writer)?;
                return Ok(WriteOutcome::Unchanged { version: h.version });
            }
        }
        let version = head.as_ref().map_or(1, |h| h.version + 1);
        let sealed;
        let stored = if secret {
            sealed = self.need_keyring(ns, key)?.seal(ns, key, version, value)?;
            sealed.as_str()
        } else {
            value
        };
        self.note_write(ns, writer)?;
        let outcome = match head {
            None => {
                self.insert_first(ns, key, stored, ttl, writer, now, &meta)?;
                WriteOutcome::Created { version }
            }
            Some(h) => {
                self.append(ns, key, version, stored, false, ttl, writer, now, &meta)?;
                if h.deleted {
                    self.counts.added += 1;
                    WriteOutcome::Revived { version }
                } else {
                    self.counts.changed += 1;
                    WriteOutcome::Updated { version }
                }
            }
        };
        Ok(outcome)
    }

    /// [`Write::expect_new`]: one insert instead of a read then an insert, which halves
    /// the B-tree work of a first apply (and the sink may hold it back). If the key exists
    /// after all (a hook wrote it meanwhile), this is exactly `put`.
    #[allow(clippy::too_many_arguments)]
    fn put_first(
        &mut self,
        ns: &str,
        key: &str,
        value: &str,
        ttl: u64,
        writer: &str,
        now: i64,
        kv_type: KvType,
    ) -> Result<WriteOutcome, StateError> {
        check_type(kv_type, ns, key, value)?;
        check_name("namespace", ns)?;
        check_name("key", key)?;
        refuse_derived(ns, key)?;
        crate::kv::validate::check_storable(ns, key, value, ttl, "").map_err(StateError::Refused)?;
        if self.sink.would_hold(ns, key) {
            // Held back and sent in bulk: one statement per few thousand keys instead of a
            // round trip per key, in a namespace this transaction has not written yet (the
            // caller's "no row" holds there unless the key existed before the transaction:
            // then `flush` writes it as `put` does and the audit counts say so, but this
            // returns `Created`).
            let value = value.trim();
            self.forget_head(ns, key);
            self.sink.hold(NewRow {
                namespace: ns.to_string(),
                key: key.to_string(),
                value: value.to_string(),
                ttl: ttl as i64,
                writer: writer.to_string(),
                now,
                kv_type,
            });
            self.note_write(ns, writer)?;
            if self.sink.full() {
                self.flush()?;
            }
            return Ok(WriteOutcome::Created { version: 1 });
        }
        self.flush()?;
        let meta = Typed { kv_type, description: String::new() };
        if !self.insert_first(ns, key, value.trim(), ttl, writer, now, &meta)? {
            return self.write(ns, key, value, ttl, writer, now, Meta::Keep(kv_type));
        }
        self.note_write(ns, writer)?;
        Ok(WriteOutcome::Created { version: 1 })
    }

    /// Version 1 of a key that has no row; `false` (nothing written) when it has one.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn insert_first(
        &mut self,
        ns: &str,
        key: &str,
        stored: &str,
        ttl: u64,
        writer: &str,
        now: i64,
        meta: &Typed,
    ) -> Result<bool, StateError> {
        self.forget_head(ns, key);
        let serial = self.next_serial() as i64;
        let inserted = self
            .conn
            .execute(
                "INSERT INTO latest (namespace, key, version, value, deleted, ttl, created_at, serial, writer,
                                     type, description, key_created_at)
                 VALUES (?1, ?2, 1, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9, ?5) ON CONFLICT (namespace, key) DO NOTHING",
                vals![ns, key, stored, ttl as i64, now, serial, writer, meta.kv_type.as_str(), &meta.description],
            )
            .map_err(sql(&self.path, "write key"))?;
        if inserted > 0 {
            self.counts.added += 1;
        }
        Ok(inserted > 0)
    }

    /// Tombstone a live key (a new version with `deleted = 1`). `false` if the key was
    /// absent or already tombstoned.
    pub fn tombstone(&mut self, ns: &str, key: &str, writer: &str, now: i64) -> Result<bool, StateError> {
        self.flush()?;
        self.touch(ns);
        match self.head(ns, key)? {
            Some(h) if !h.deleted => {
                self.note_write(ns, writer)?;
                // A tombstone keeps the key's type and description (a revival shows them).
                let meta = Typed { kv_type: h.kv_type, description: h.description };
                self.append(ns, key, h.version + 1, "", true, 0, writer, now, &meta)?;
                self.counts.destroyed += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Tombstone every live key of a namespace. Returns how many keys were tombstoned.
    pub fn purge_namespace(&mut self, ns: &str, writer: &str, now: i64) -> Result<usize, StateError> {
        self.flush()?;
        let keys: Vec<String> = self
            .conn
            .query_map("SELECT key FROM latest WHERE namespace = ?1 AND deleted = 0 ORDER BY key", vals![ns], |r| {
                r.text(0)
            })
            .map_err(sql(&self.path, "list namespace"))?;
        for key in &keys {
            self.tombstone(ns, key, writer, now)?;
        }
        Ok(keys.len())
    }

    /// Re-seal every secret row (all versions) under the keyring's current key; the keyring
    /// must also hold the key(s) the rows were sealed with. Used by `secrets rotate-key`.
    pub fn reseal_secrets(&mut self) -> Result<u64, StateError> {
        self.flush()?;
        self.heads.clear();
        let mut n = 0;
        for table in ["latest", "history"] {
            let rows: Vec<(String, String, i64, String)> = self
                .conn
                .query_map(
                    &format!(
                        "SELECT namespace, key, version, value FROM {table} WHERE {} AND deleted = 0",
                        self.conn.secret_rows()
                    ),
                    &[],
                    |r| Ok((r.text(0)?, r.text(1)?, r.i64(2)?, r.text(3)?)),
                )
                .map_err(sql(&self.path, "read secrets"))?;
            let update = format!("UPDATE {table} SET value = ?4 WHERE namespace = ?1 AND key = ?2 AND version = ?3");
            for (ns, key, version, stored) in rows {
                let ring = self.need_keyring(&ns, &key)?;
                let plain = ring.open(&ns, &key, version as u64, &stored)?;
                let sealed = ring.seal(&ns, &key, version as u64, &plain)?;
                self.conn
                    .execute(&update, vals![&ns, &key, version, sealed.as_str()])
                    .map_err(sql(&self.path, "reseal secret"))?;
                n += 1;
            }
        }
        self.counts.resealed += n;
        Ok(n)
    }

    /// Move the latest row of an existing key to history, write `version` as the latest and
    /// trim history to `max_versions` rows in all.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn append(
        &mut self,
        ns: &str,
        key: &str,
        version: u64,
        stored: &str,
        deleted: bool,
        ttl: u64,
        writer: &str,
        now: i64,
        meta: &Typed,
    ) -> Result<(), StateError> {
        self.forget_head(ns, key);
        let v = NextVersion {
            ns,
            key,
            version: version as i64,
            stored,
            deleted,
            ttl: ttl as i64,
            now,
            serial: self.next_serial() as i64,
            writer,
            kv_type: meta.kv_type.as_str(),
            description: &meta.description,
            max_versions: self.max_versions,
        };
        self.sink.append(&self.conn, &v).map_err(sql(&self.path, "write key"))
    }
}
