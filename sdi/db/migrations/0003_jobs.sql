-- Background jobs: a PostgreSQL-backed queue (no broker). Workers claim queued
-- jobs with SELECT ... FOR UPDATE SKIP LOCKED; NOTIFY sdi_jobs wakes them.
CREATE TABLE sdi.jobs (
    id           bigserial PRIMARY KEY,
    -- What to do: 'ingest' (payload: the spooled upload and ingest options).
    kind         text NOT NULL CHECK (kind ~ '^[a-z][a-z_]*$'),
    status       text NOT NULL DEFAULT 'queued'
                 CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    payload      jsonb NOT NULL DEFAULT '{}',
    layer_id     integer REFERENCES sdi.layers(id) ON DELETE CASCADE,
    created_by   integer REFERENCES sdi.users(id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    -- Work done so far and the total when known (features for an ingest).
    progress     bigint NOT NULL DEFAULT 0,
    total        bigint,
    -- What the job is doing now, for the status page.
    message      text NOT NULL DEFAULT '',
    -- Why it failed, in words the user can act on.
    error        text,
    -- What it produced, e.g. {"version": 3}.
    result       jsonb,
    attempts     integer NOT NULL DEFAULT 0,
    -- Which worker runs it (host:pid:n), and when that worker last said so.
    worker       text,
    heartbeat_at timestamptz
);

-- The queue proper: the oldest queued job first.
CREATE INDEX jobs_queued ON sdi.jobs (id) WHERE status = 'queued';
-- Running jobs, for finding those whose worker died.
CREATE INDEX jobs_running ON sdi.jobs (heartbeat_at) WHERE status = 'running';
-- A layer's jobs, newest first.
CREATE INDEX jobs_layer ON sdi.jobs (layer_id, id DESC);
