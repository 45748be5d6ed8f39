-- Credentials that can be ended: server-side admin sessions, token lineage, and
-- sign-in back-off per account-and-address and per address (issue 9).

-- A signed-in browser. The cookie carries only a random id; its SHA-256 is the
-- key, so a copy of this table opens no session. Ending a session deletes its
-- row: a replayed cookie then finds nothing.
CREATE TABLE sdi.sessions (
    id_hash    text PRIMARY KEY,
    user_id    integer NOT NULL REFERENCES sdi.users(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Not indexed, so the touch on every request stays a HOT update.
    seen_at    timestamptz NOT NULL DEFAULT now(),
    user_agent text NOT NULL DEFAULT '',
    address    text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sdi.sessions (user_id);
CREATE INDEX sessions_created ON sdi.sessions (created_at);

-- A token minted with another token: it never outlives it (expiry capped at
-- the parent's, revoked with it).
ALTER TABLE sdi.api_tokens
    ADD COLUMN parent_id integer REFERENCES sdi.api_tokens(id) ON DELETE CASCADE;
CREATE INDEX api_tokens_parent ON sdi.api_tokens (parent_id);

-- Progressive back-off replaces the hard lock: one row per subject
-- ('pair:<e-mail> <address>' or 'ip:<address>') with its recent failures and
-- the moment it may try again.
DROP TABLE sdi.login_failures;
DROP TABLE sdi.login_locks;
CREATE TABLE sdi.login_backoff (
    subject         text PRIMARY KEY,
    failures        integer NOT NULL,
    last_failure_at timestamptz NOT NULL DEFAULT now(),
    blocked_until   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_backoff_last ON sdi.login_backoff (last_failure_at);
