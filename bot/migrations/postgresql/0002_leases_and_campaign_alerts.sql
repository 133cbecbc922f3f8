-- 1 -> 2 (SQLite's 5 -> 6): work done once for every replica (try_lease): one row per lease, naming its holder until
-- expires_at, judged by the database's clock (one clock for every machine, as lead_locks); a holder that dies
-- without releasing it lapses then, and another replica takes over. And the last alert posted about each campaign to
-- each alert channel, so that every replica's Home tab shows it and a watcher taking over knows what the channel was
-- told (bot.alerts).
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE campaign_alerts (
    channel_id  TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    state       TEXT NOT NULL,
    line        TEXT NOT NULL,
    posted_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (channel_id, campaign_id)
);
