-- Request log, SLO rollups, incidents and uptime for SQLite.
-- Timestamps are unix milliseconds (INTEGER); booleans are 0/1 INTEGERs
-- because sqlx's Any driver cannot read SQLite's BOOLEAN affinity.

CREATE TABLE requests (
    id             TEXT    PRIMARY KEY NOT NULL,
    at_ms          INTEGER NOT NULL,
    route          TEXT    NOT NULL,
    client_format  TEXT    NOT NULL,
    stream         INTEGER NOT NULL,
    status         INTEGER NOT NULL,
    error_class    TEXT,
    target         TEXT,
    fallback       INTEGER NOT NULL,
    cache          TEXT,
    degraded       TEXT,
    latency_ms     REAL    NOT NULL,
    first_token_ms REAL,
    input_tokens   INTEGER,
    output_tokens  INTEGER,
    key_id         TEXT,
    request_body   TEXT
);
CREATE INDEX requests_at ON requests (at_ms);

CREATE TABLE attempts (
    request_id     TEXT    NOT NULL,
    seq            INTEGER NOT NULL,
    request_at_ms  INTEGER NOT NULL,
    target         TEXT    NOT NULL,
    at_ms          INTEGER NOT NULL,
    latency_ms     REAL    NOT NULL,
    first_token_ms REAL,
    status         INTEGER,
    error_class    TEXT,
    hedge          INTEGER NOT NULL,
    PRIMARY KEY (request_id, seq)
);
CREATE INDEX attempts_request_at ON attempts (request_at_ms);

CREATE TABLE route_hourly (
    route          TEXT    NOT NULL,
    hour_start_ms  INTEGER NOT NULL,
    total          INTEGER NOT NULL,
    good           INTEGER NOT NULL,
    PRIMARY KEY (route, hour_start_ms)
);

CREATE TABLE incidents (
    id                TEXT    PRIMARY KEY NOT NULL,
    title             TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    worst             TEXT    NOT NULL,
    components        TEXT    NOT NULL,
    started_at_ms     INTEGER NOT NULL,
    updated_at_ms     INTEGER NOT NULL,
    resolved_at_ms    INTEGER,
    affected          INTEGER NOT NULL,
    saved_by_fallback INTEGER NOT NULL,
    from_cache        INTEGER NOT NULL,
    degraded          INTEGER NOT NULL,
    failed            INTEGER NOT NULL
);
CREATE INDEX incidents_started ON incidents (started_at_ms);

CREATE TABLE incident_timeline (
    incident_id TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    component   TEXT,
    status      TEXT    NOT NULL,
    message     TEXT    NOT NULL,
    PRIMARY KEY (incident_id, seq)
);

CREATE TABLE uptime_daily (
    component              TEXT    NOT NULL,
    kind                   TEXT    NOT NULL,
    day_start_ms           INTEGER NOT NULL,
    operational_s          REAL    NOT NULL,
    under_maintenance_s    REAL    NOT NULL,
    degraded_performance_s REAL    NOT NULL,
    partial_outage_s       REAL    NOT NULL,
    major_outage_s         REAL    NOT NULL,
    PRIMARY KEY (component, day_start_ms)
);
