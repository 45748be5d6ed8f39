-- Accounts: personal API tokens for the admin JSON API, and sign-in throttling.
-- (users, api_keys, api_key_layers and audit_log come from 0001.)

-- A user's bearer tokens for /admin/api/. Only the SHA-256 of the token is kept;
-- the prefix (public, unique) names the token in lists and audit entries.
CREATE TABLE sdi.api_tokens (
    id           serial PRIMARY KEY,
    user_id      integer NOT NULL REFERENCES sdi.users(id) ON DELETE CASCADE,
    name         text NOT NULL,
    prefix       text NOT NULL UNIQUE,
    token_hash   text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_tokens_user ON sdi.api_tokens (user_id);

-- Failed sign-ins, counted per e-mail and per client address over a window.
-- Shared by every worker process, so the limit holds across gunicorn workers.
CREATE TABLE sdi.login_failures (
    id    bigserial PRIMARY KEY,
    at    timestamptz NOT NULL DEFAULT now(),
    email text NOT NULL,
    ip    text NOT NULL
);
CREATE INDEX login_failures_email ON sdi.login_failures (email, at);
CREATE INDEX login_failures_ip ON sdi.login_failures (ip, at);
CREATE INDEX login_failures_at ON sdi.login_failures (at);

-- A subject ('email:<address>' or 'ip:<address>') refused until locked_until.
CREATE TABLE sdi.login_locks (
    subject      text PRIMARY KEY,
    locked_until timestamptz NOT NULL
);

CREATE INDEX api_key_layers_layer ON sdi.api_key_layers (layer_id);
CREATE INDEX audit_log_user ON sdi.audit_log (user_id);
