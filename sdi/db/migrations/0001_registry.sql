-- The registry: agencies, users, licences, layers, versions, API keys, audit log.
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE SCHEMA IF NOT EXISTS sdi;
-- One table per layer lives here; names are the layers' slugs.
CREATE SCHEMA IF NOT EXISTS sdi_data;

CREATE TABLE sdi.agencies (
    id            serial PRIMARY KEY,
    code          text NOT NULL UNIQUE CHECK (code ~ '^[a-z][a-z0-9]{1,15}$'),
    name_en       text NOT NULL,
    name_zh       text NOT NULL DEFAULT '',
    contact_email text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sdi.users (
    id            serial PRIMARY KEY,
    agency_id     integer REFERENCES sdi.agencies(id),
    email         text NOT NULL UNIQUE CHECK (email = lower(email)),
    name          text NOT NULL DEFAULT '',
    password_hash text NOT NULL,
    role          text NOT NULL
                  CHECK (role IN ('platform_admin', 'agency_admin', 'agency_editor')),
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- Agency roles belong to an agency; a platform admin may or may not.
    CHECK (role = 'platform_admin' OR agency_id IS NOT NULL)
);

CREATE TABLE sdi.licences (
    id             serial PRIMARY KEY,
    code           text NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9][a-z0-9.-]*$'),
    name_en        text NOT NULL,
    name_zh        text NOT NULL DEFAULT '',
    url            text NOT NULL DEFAULT '',
    attribution_en text NOT NULL DEFAULT '',
    attribution_zh text NOT NULL DEFAULT '',
    restricted     boolean NOT NULL DEFAULT false
);

INSERT INTO sdi.licences (code, name_en, name_zh, url, attribution_en, attribution_zh, restricted) VALUES
  ('hk-csdi', 'CSDI Portal Terms and Conditions of Use', '空間數據共享平台使用條款及條件',
   'https://portal.csdi.gov.hk/csdi-webpage/doc/TNC', 'Contains data from the CSDI Portal',
   '資料來源：空間數據共享平台', false),
  ('hk-datagovhk', 'DATA.GOV.HK Terms and Conditions of Use', '資料一線通使用條款及條件',
   'https://data.gov.hk/en/terms-and-conditions', 'Contains data from DATA.GOV.HK',
   '資料來源：資料一線通', false),
  ('cc-by-4.0', 'Creative Commons Attribution 4.0 International', '創用CC 姓名標示 4.0 國際',
   'https://creativecommons.org/licenses/by/4.0/', '', '', false),
  ('odbl-1.0', 'Open Data Commons Open Database License 1.0', '開放資料庫授權條款 1.0',
   'https://opendatacommons.org/licenses/odbl/1-0/', '', '', false),
  ('restricted', 'Restricted: use by granted API key holders only', '限制使用：只限獲授權的 API 金鑰持有人',
   '', '', '', true);

CREATE TABLE sdi.layers (
    id               serial PRIMARY KEY,
    slug             text NOT NULL UNIQUE CHECK (slug ~ '^[a-z][a-z0-9_]{0,62}$'),
    agency_id        integer NOT NULL REFERENCES sdi.agencies(id),
    kind             text NOT NULL DEFAULT 'vector' CHECK (kind IN ('vector', 'raster')),
    title_en         text NOT NULL,
    title_zh         text NOT NULL DEFAULT '',
    abstract_en      text NOT NULL DEFAULT '',
    abstract_zh      text NOT NULL DEFAULT '',
    keywords         text[] NOT NULL DEFAULT '{}',
    theme            text NOT NULL DEFAULT '',
    contact          text NOT NULL DEFAULT '',
    update_frequency text NOT NULL DEFAULT '',
    licence_id       integer NOT NULL REFERENCES sdi.licences(id),
    visibility       text NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'restricted')),
    -- Attribute that identifies a feature across versions; NULL: match by content.
    key_column       text,
    -- Optional attribute used for `datetime` queries.
    time_column      text,
    published_version integer,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sdi.layer_versions (
    layer_id        integer NOT NULL REFERENCES sdi.layers(id) ON DELETE CASCADE,
    number          integer NOT NULL CHECK (number > 0),
    created_by      integer REFERENCES sdi.users(id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    source_filename text NOT NULL,
    source_sha256   text NOT NULL,
    source_format   text NOT NULL,
    source_layer    text,
    source_crs      text NOT NULL,
    source_encoding text,
    feature_count   bigint NOT NULL,
    geometry_type   text NOT NULL,
    -- [minx, miny, maxx, maxy] in WGS 84 longitude/latitude; NULL when empty.
    extent          double precision[],
    -- {"fields": [{"name": ..., "type": ...}], "geometry_type": ...}
    schema          jsonb NOT NULL,
    -- {"added": n, "changed": n, "removed": n, "unchanged": n}
    diff            jsonb NOT NULL,
    -- {"repaired": n, "empty": n, "duration_s": x, ...}
    report          jsonb NOT NULL DEFAULT '{}',
    note            text NOT NULL DEFAULT '',
    PRIMARY KEY (layer_id, number)
);

ALTER TABLE sdi.layers
    ADD CONSTRAINT layers_published_version_fkey
    FOREIGN KEY (id, published_version) REFERENCES sdi.layer_versions(layer_id, number)
    DEFERRABLE INITIALLY DEFERRED;

CREATE TABLE sdi.api_keys (
    id          serial PRIMARY KEY,
    agency_id   integer NOT NULL REFERENCES sdi.agencies(id),
    name        text NOT NULL,
    prefix      text NOT NULL UNIQUE,
    key_hash    text NOT NULL,
    created_by  integer REFERENCES sdi.users(id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);

CREATE TABLE sdi.api_key_layers (
    key_id   integer NOT NULL REFERENCES sdi.api_keys(id) ON DELETE CASCADE,
    layer_id integer NOT NULL REFERENCES sdi.layers(id) ON DELETE CASCADE,
    PRIMARY KEY (key_id, layer_id)
);

CREATE TABLE sdi.audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    user_id     integer REFERENCES sdi.users(id),
    actor       text NOT NULL,
    action      text NOT NULL,
    object_type text NOT NULL,
    object_id   text NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_object ON sdi.audit_log (object_type, object_id);

-- Bumped on every change that alters what the API serves; servers watch it.
CREATE TABLE sdi.publication (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    generation bigint NOT NULL DEFAULT 0,
    changed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO sdi.publication DEFAULT VALUES;
