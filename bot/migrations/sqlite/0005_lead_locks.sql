-- 4 -> 5: one change of a lead at a time across every process sharing this file (lock_lead); a lock left by a
-- crashed process lapses at expires_at.
CREATE TABLE lead_locks (
    list_id    TEXT NOT NULL,
    lead_id    TEXT NOT NULL,
    holder     TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (list_id, lead_id)
);
