-- Versions taken down (published in error: personal data, a wrong file) and
-- versions that were published once. A withdrawn version keeps its row (its
-- number is never reused; the audit log names who and why) but its features
-- and file are purged and the API answers 410 Gone for it.
ALTER TABLE sdi.layer_versions
    -- First time this version was published; NULL: never published. The API
    -- answers 410 (not 404) for a version above the published one that was
    -- published once (a link pinned to it before a rollback).
    ADD COLUMN first_published_at timestamptz,
    ADD COLUMN withdrawn_at       timestamptz,
    ADD COLUMN withdrawn_by       integer REFERENCES sdi.users(id),
    ADD COLUMN withdrawn_reason   text,
    ADD CONSTRAINT layer_versions_withdrawn_reason
        CHECK ((withdrawn_at IS NULL) = (withdrawn_reason IS NULL));

-- Versions published before this migration: from the audit log's publish and
-- roll-back entries, and the versions published now.
UPDATE sdi.layer_versions v SET first_published_at = p.at
FROM (
    SELECT l.id AS layer_id, (a.details->>'version')::integer AS number, min(a.at) AS at
    FROM sdi.audit_log a JOIN sdi.layers l ON l.slug = a.object_id
    WHERE a.object_type = 'layer' AND a.action IN ('publish', 'rollback')
      AND a.details->>'version' ~ '^[0-9]+$'
    GROUP BY 1, 2
) p
WHERE v.layer_id = p.layer_id AND v.number = p.number;

UPDATE sdi.layer_versions v SET first_published_at = coalesce(v.first_published_at, l.updated_at)
FROM sdi.layers l
WHERE l.id = v.layer_id AND l.published_version = v.number;
