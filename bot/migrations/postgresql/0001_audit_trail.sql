-- The audit trail on PostgreSQL, as SQLite's schema version 5 (bot/migrations/sqlite/0001 ... 0005) leaves it.
-- Timestamps are timestamptz; snapshots stay JSON text, kept exactly as written (key order too), as in SQLite.
CREATE SEQUENCE changes_id_seq;
CREATE TABLE changes (
    id            BIGINT PRIMARY KEY,  -- drawn by the trigger changes_in_commit_order, below
    at            TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ,
    user_id       TEXT NOT NULL,
    team_id       TEXT,
    enterprise_id TEXT,
    channel_id    TEXT,
    action        TEXT NOT NULL,
    command       TEXT NOT NULL,
    list_id       TEXT,
    list_name     TEXT,
    lead_id       TEXT,
    lead_uid      TEXT,
    before_json   TEXT,
    after_json    TEXT,
    before_uid    TEXT,
    after_uid     TEXT,
    caveat        TEXT,
    outcome       TEXT NOT NULL,
    detail        TEXT,
    request_id    TEXT,
    undo_of       BIGINT,
    undone_by     BIGINT,
    reply_to      TEXT
);
-- A request id is reserved while its attempt has not FAILED; NULL (no request id) may repeat.
CREATE UNIQUE INDEX changes_request_id ON changes (request_id) WHERE outcome <> 'failed';
CREATE INDEX changes_list_lead_id ON changes (list_id, lead_id);
CREATE INDEX changes_list_lead_uid ON changes (list_id, lead_uid);
CREATE INDEX changes_list_before_uid ON changes (list_id, before_uid);
CREATE INDEX changes_list_after_uid ON changes (list_id, after_uid);
-- A user's latest change, walked backwards (`/lead undo` without a number, the Home tab).
CREATE INDEX changes_user_id ON changes (user_id, id);
CREATE INDEX changes_unsettled ON changes (outcome) WHERE outcome IN ('pending', 'unknown');
CREATE INDEX changes_undo_of ON changes (undo_of) WHERE undo_of IS NOT NULL;
ALTER SEQUENCE changes_id_seq OWNED BY changes.id;
-- Ids in commit order, as SQLite's single writer gives them: "what was recorded after id N" (last_id, written_since)
-- must never miss a row that drew a smaller id but committed later. So an insert takes a transaction-scoped advisory
-- lock (held until it commits) before it draws its id. Under that lock it also skips, as ON CONFLICT DO NOTHING
-- would, an attempt whose request id is reserved already, before drawing an id: change numbers do not skip one per
-- duplicate delivery. (The unique index changes_request_id still guards; an explicit id is kept.)
CREATE FUNCTION changes_in_commit_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('leadbot.audit.changes'));
    IF NEW.request_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM changes WHERE request_id = NEW.request_id AND outcome <> 'failed'
    ) THEN
        RETURN NULL;
    END IF;
    IF NEW.id IS NULL THEN
        NEW.id := nextval('changes_id_seq');
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER changes_in_commit_order BEFORE INSERT ON changes
    FOR EACH ROW EXECUTE FUNCTION changes_in_commit_order();
CREATE TABLE confirmations (
    token         TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    team_id       TEXT,
    enterprise_id TEXT,
    channel_id    TEXT,
    command_json  TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    state         TEXT NOT NULL,
    settled_at    TIMESTAMPTZ
);
CREATE INDEX confirmations_expires_at ON confirmations (expires_at);
-- One change of a lead at a time across every replica (lock_lead); a lock left by a crashed process lapses at
-- expires_at, judged by the database's clock (one clock for every machine).
CREATE TABLE lead_locks (
    list_id    TEXT NOT NULL,
    lead_id    TEXT NOT NULL,
    holder     TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (list_id, lead_id)
);
