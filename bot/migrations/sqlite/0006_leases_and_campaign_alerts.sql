-- 5 -> 6: work done once for every process sharing this store (try_lease): one row per lease, naming its holder
-- until expires_at (a holder that dies without releasing it lapses then, and another takes over); and the last alert
-- posted about each campaign to each alert channel, so that every process's Home tab shows it and a watcher taking
-- over knows what the channel was told (bot.alerts).
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE campaign_alerts (
    channel_id  TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    state       TEXT NOT NULL,
    line        TEXT NOT NULL,
    posted_at   TEXT NOT NULL,
    PRIMARY KEY (channel_id, campaign_id)
);
