-- 004: sessions that end (bans, logout everywhere, deleted accounts) and game-server API keys.
--
-- An access token is a signed JWT that no node can call back, so ending sessions means every
-- node refusing the tokens issued before a moment. `session_revocations` is that moment per
-- user, and why; each node holds the recent rows in memory (app/core/sessions.py) and checks
-- a token against them without I/O, told of new rows by NOTIFY (and Redis, and a poll). Rows
-- are written by the application (logout everywhere)
-- and by the triggers below, so a ban or a deletion made by any means (an admin tool, plain
-- SQL) ends the user's sessions too. No foreign key: a deleted user's row must outlive them.

ALTER TABLE users
    ADD COLUMN banned_at  timestamptz,
    ADD COLUMN ban_reason text CONSTRAINT users_ban_reason_length CHECK (length(ban_reason) <= 500);

CREATE TABLE session_revocations (
    user_id     uuid PRIMARY KEY,
    -- Access tokens of this user issued before this instant are refused.
    not_before  timestamptz NOT NULL,
    reason      text NOT NULL CONSTRAINT session_revocations_reason
                CHECK (reason IN ('logout', 'banned', 'deleted'))
);

-- The nodes' poll reads the rows newer than the access-token lifetime.
CREATE INDEX session_revocations_not_before_idx ON session_revocations (not_before);

-- Every node LISTENs (app/db/sessions.py): a moment recorded by any means reaches them all
-- at commit. The payload is the wire form of app/core/sessions.py Revocation.
CREATE FUNCTION session_revocations_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('session_revocations', NEW.user_id::text || ' '
        || ceil(extract(epoch FROM NEW.not_before) * 1000)::bigint || ' ' || NEW.reason);
    RETURN NULL;
END
$$;

CREATE TRIGGER session_revocations_notify AFTER INSERT OR UPDATE ON session_revocations
    FOR EACH ROW EXECUTE FUNCTION session_revocations_notify();

CREATE FUNCTION record_session_revocation(who uuid, why text) RETURNS timestamptz
LANGUAGE sql AS $$
    INSERT INTO session_revocations AS r (user_id, not_before, reason)
    VALUES (who, clock_timestamp(), why)
    ON CONFLICT (user_id) DO UPDATE
       SET not_before = GREATEST(r.not_before, EXCLUDED.not_before), reason = EXCLUDED.reason
    RETURNING not_before
$$;

CREATE FUNCTION users_end_sessions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM record_session_revocation(OLD.id, 'deleted');
        RETURN OLD;
    END IF;
    PERFORM record_session_revocation(NEW.id, 'banned');
    UPDATE refresh_tokens SET revoked = true WHERE user_id = NEW.id AND NOT revoked;
    RETURN NEW;
END
$$;

CREATE TRIGGER users_deleted_end_sessions AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION users_end_sessions();

CREATE TRIGGER users_banned_end_sessions AFTER UPDATE OF banned_at ON users
    FOR EACH ROW WHEN (NEW.banned_at IS NOT NULL AND OLD.banned_at IS DISTINCT FROM NEW.banned_at)
    EXECUTE FUNCTION users_end_sessions();

-- API keys of game servers: random, shown once, stored as SHA-256 (they are high-entropy, so
-- a fast hash is enough), scoped, revocable. Revoked keys stay, so their names stay taken and
-- their awards keep pointing at them.
CREATE TABLE api_keys (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       varchar(64) NOT NULL UNIQUE
               CONSTRAINT api_keys_name_format CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    key_hash   bytea NOT NULL UNIQUE,
    scopes     text[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- One row per (API key, idempotency key): the first request inserts it in the same
-- transaction as the award it commits, so a concurrent repeat waits on the unique key until
-- that transaction ends, then reads the stored answer instead of awarding again.
CREATE TABLE server_awards (
    api_key_id      uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    idempotency_key varchar(255) NOT NULL,
    -- SHA-256 of the request's canonical JSON: the same key with another body is refused.
    request_hash    bytea NOT NULL,
    user_id         uuid NOT NULL,
    action_id       varchar(64) NOT NULL,
    -- What the commit decided, set in the same transaction (so that a repeat can rebuild
    -- the answer should the first request die before storing it).
    points          integer,
    new_score       bigint,
    -- The response body, stored once the rank is known (first writer wins).
    response        jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (api_key_id, idempotency_key)
);
