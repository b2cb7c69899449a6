-- Request log, SLO rollups, incidents and uptime for PostgreSQL.
-- Timestamps are unix milliseconds (BIGINT): the Any driver reads every
-- integer as i64, and NUMERIC or INT4 sums would not round-trip.

CREATE TABLE requests (
    id             TEXT    PRIMARY KEY NOT NULL,
    at_ms          BIGINT NOT NULL,
    route          TEXT    NOT NULL,
    client_format  TEXT    NOT NULL,
    stream         BOOLEAN NOT NULL,
    status         BIGINT NOT NULL,
    error_class    TEXT,
    target         TEXT,
    fallback       BOOLEAN NOT NULL,
    cache          TEXT,
    degraded       TEXT,
    latency_ms     DOUBLE PRECISION NOT NULL,
    first_token_ms DOUBLE PRECISION,
    input_tokens   BIGINT,
    output_tokens  BIGINT,
    key_id         TEXT,
    request_body   TEXT
);
CREATE INDEX requests_at ON requests (at_ms);

CREATE TABLE attempts (
    request_id     TEXT    NOT NULL,
    seq            BIGINT NOT NULL,
    request_at_ms  BIGINT NOT NULL,
    target         TEXT    NOT NULL,
    at_ms          BIGINT NOT NULL,
    latency_ms     DOUBLE PRECISION NOT NULL,
    first_token_ms DOUBLE PRECISION,
    status         BIGINT,
    error_class    TEXT,
    hedge          BOOLEAN NOT NULL,
    PRIMARY KEY (request_id, seq)
);
CREATE INDEX attempts_request_at ON attempts (request_at_ms);

CREATE TABLE route_hourly (
    route          TEXT    NOT NULL,
    hour_start_ms  BIGINT NOT NULL,
    total          BIGINT NOT NULL,
    good           BIGINT NOT NULL,
    PRIMARY KEY (route, hour_start_ms)
);

CREATE TABLE incidents (
    id                TEXT    PRIMARY KEY NOT NULL,
    title             TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    worst             TEXT    NOT NULL,
    components        TEXT    NOT NULL,
    started_at_ms     BIGINT NOT NULL,
    updated_at_ms     BIGINT NOT NULL,
    resolved_at_ms    BIGINT,
    affected          BIGINT NOT NULL,
    saved_by_fallback BIGINT NOT NULL,
    from_cache        BIGINT NOT NULL,
    degraded          BIGINT NOT NULL,
    failed            BIGINT NOT NULL
);
CREATE INDEX incidents_started ON incidents (started_at_ms);

CREATE TABLE incident_timeline (
    incident_id TEXT    NOT NULL,
    seq         BIGINT NOT NULL,
    at_ms       BIGINT NOT NULL,
    kind        TEXT    NOT NULL,
    component   TEXT,
    status      TEXT    NOT NULL,
    message     TEXT    NOT NULL,
    PRIMARY KEY (incident_id, seq)
);

CREATE TABLE uptime_daily (
    component              TEXT    NOT NULL,
    kind                   TEXT    NOT NULL,
    day_start_ms           BIGINT NOT NULL,
    operational_s          DOUBLE PRECISION NOT NULL,
    under_maintenance_s    DOUBLE PRECISION NOT NULL,
    degraded_performance_s DOUBLE PRECISION NOT NULL,
    partial_outage_s       DOUBLE PRECISION NOT NULL,
    major_outage_s         DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (component, day_start_ms)
);
