-- 005: operators. Roles, the append-only admin audit log, and score adjustments.

-- 'admin' may call /api/admin/...; checked in the database on every admin request, so a
-- revoke takes effect at once (the access token carries no role).
ALTER TABLE users
    ADD COLUMN role text NOT NULL DEFAULT 'player'
        CONSTRAINT users_role_kind CHECK (role IN ('player', 'admin'));

-- Every admin action, written in the same transaction as the change it describes.
CREATE TABLE admin_audit (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Who: no foreign key, so deleting an account never rewrites the log. NULL admin_id: an
    -- operator at the command line (`leaderboard admin grant`).
    admin_id   uuid,
    admin_name varchar(50) NOT NULL,
    action     varchar(64) NOT NULL CONSTRAINT admin_audit_action_format
                   CHECK (action ~ '^[a-z][a-z0-9_.-]{0,63}$'),
    -- What it acted on, e.g. 'user:<uuid>', 'board:winter-cup', 'action:quiz_001'.
    target     varchar(200),
    details    jsonb NOT NULL DEFAULT '{}',
    reason     text CONSTRAINT admin_audit_reason_length CHECK (char_length(reason) <= 500)
);

CREATE INDEX admin_audit_target_idx ON admin_audit (target, id DESC);

-- Append-only: nothing edits or removes an entry, whatever the caller.
CREATE FUNCTION admin_audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'admin_audit is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER admin_audit_append_only
    BEFORE UPDATE OR DELETE ON admin_audit
    FOR EACH ROW EXECUTE FUNCTION admin_audit_refuse_change();
CREATE TRIGGER admin_audit_no_truncate
    BEFORE TRUNCATE ON admin_audit
    FOR EACH STATEMENT EXECUTE FUNCTION admin_audit_refuse_change();

-- Adjustments: an operator's correction is a history row of its own kind, so users.score stays
-- the sum of history. A completion earns 1..100 of a real action; an adjustment has no action
-- and any non-zero amount within +-10,000.
ALTER TABLE score_history
    ADD COLUMN kind text NOT NULL DEFAULT 'completion'
        CONSTRAINT score_history_kind CHECK (kind IN ('completion', 'adjustment')),
    ADD COLUMN reason text CONSTRAINT score_history_reason_length CHECK (char_length(reason) <= 500),
    ALTER COLUMN action_id DROP NOT NULL,
    DROP CONSTRAINT score_history_points_range,
    ADD CONSTRAINT score_history_points_range CHECK (
        CASE kind
            WHEN 'completion' THEN score_change BETWEEN 1 AND 100 AND action_id IS NOT NULL
            ELSE score_change BETWEEN -10000 AND 10000 AND score_change <> 0
                 AND action_id IS NULL AND reason IS NOT NULL
        END);

-- Operators find a user by the start of their name (the unique index on lower(username)
-- cannot serve LIKE 'abc%' under a non-C collation).
CREATE INDEX users_username_prefix_idx ON users (lower(username) text_pattern_ops);

-- Banned players (users.banned_at, sql/004) are on no board: every ranking read skips them
-- through this small index of the few there are.
CREATE INDEX users_banned_idx ON users (id) WHERE banned_at IS NOT NULL;

-- A ban or unban made by any means (plain SQL included) moves updated_at, so the reconciler's
-- next incremental pass sees the user and takes them out of (or puts them back into) Redis.
CREATE FUNCTION users_ban_touches() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := clock_timestamp();
    RETURN NEW;
END
$$;

CREATE TRIGGER users_ban_touches
    BEFORE UPDATE OF banned_at ON users
    FOR EACH ROW WHEN (OLD.banned_at IS DISTINCT FROM NEW.banned_at)
    EXECUTE FUNCTION users_ban_touches();
