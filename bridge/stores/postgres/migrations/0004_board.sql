-- A one-at-a-time job's latest result, for every bridge process to read
-- (bridge.coordination.postgres.SharedBoard): e.g. the queue figures one process read
-- from TaskRouter. posted: the database's clock, seconds since the epoch.
CREATE TABLE board (
    name   TEXT PRIMARY KEY,
    text   TEXT NOT NULL,
    posted DOUBLE PRECISION NOT NULL
);
