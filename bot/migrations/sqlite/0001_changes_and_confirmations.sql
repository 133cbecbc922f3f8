-- Schema version 1: the audit trail of write attempts, and the held "apply anyway?" confirmations.
CREATE TABLE changes (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            TEXT NOT NULL,
    finished_at   TEXT,
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
    undo_of       INTEGER,
    undone_by     INTEGER
);
-- A request id is reserved while its attempt has not FAILED; NULL (no request id) may repeat.
CREATE UNIQUE INDEX changes_request_id ON changes (request_id) WHERE outcome <> 'failed';
CREATE INDEX changes_list_lead_id ON changes (list_id, lead_id);
CREATE INDEX changes_list_lead_uid ON changes (list_id, lead_uid);
CREATE INDEX changes_list_before_uid ON changes (list_id, before_uid);
CREATE INDEX changes_list_after_uid ON changes (list_id, after_uid);
CREATE TABLE confirmations (
    token         TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    team_id       TEXT,
    enterprise_id TEXT,
    channel_id    TEXT,
    command_json  TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    state         TEXT NOT NULL,
    settled_at    TEXT
);
CREATE INDEX confirmations_expires_at ON confirmations (expires_at);
