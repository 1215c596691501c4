-- 001: users, the action catalog, the score history (audit log) and refresh tokens.

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username      varchar(50) NOT NULL
                  CONSTRAINT users_username_format CHECK (username ~ '^[A-Za-z0-9_.-]{3,50}$'),
    -- NULL for accounts made by operators (`leaderboard token`): they cannot log in.
    password_hash text,
    score         bigint NOT NULL DEFAULT 0 CONSTRAINT users_score_non_negative CHECK (score >= 0),
    -- When the user reached the current score: ties are listed earliest first. Grows strictly
    -- with every change of the user's score, so it also orders that user's updates.
    reached_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- "Alice" and "alice" are one name: two would let one player pose as another.
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
-- Serves the ranking order (top 10 and rank counts) without a sort; unranked users stay out.
CREATE INDEX users_ranking_idx ON users (score DESC, reached_at ASC, id DESC) WHERE score > 0;
-- The reconciler's incremental pass reads users changed since a watermark.
CREATE INDEX users_updated_at_idx ON users (updated_at);

CREATE TABLE actions (
    id          varchar(64) PRIMARY KEY
                CONSTRAINT actions_id_format CHECK (id ~ '^[a-z0-9][a-z0-9_.:-]{0,63}$'),
    name        varchar(100) NOT NULL,
    description text NOT NULL DEFAULT '',
    -- Server-authoritative points; a client never names a value.
    points      integer NOT NULL CONSTRAINT actions_points_range CHECK (points BETWEEN 1 AND 100),
    -- 'once': a user earns it one time; 'daily': once per calendar day (UTC, the server's day).
    repeat      text NOT NULL DEFAULT 'once' CONSTRAINT actions_repeat_kind CHECK (repeat IN ('once', 'daily')),
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE score_history (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    action_id    varchar(64) NOT NULL REFERENCES actions (id),
    -- '' for a one-time action, the UTC date ('2026-11-28') for a daily one: the unique key
    -- below then allows one completion per user and action, or per user, action and day.
    period       text NOT NULL DEFAULT '',
    score_change integer NOT NULL CONSTRAINT score_history_points_range CHECK (score_change BETWEEN 1 AND 100),
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT score_history_once UNIQUE (user_id, action_id, period)
);

CREATE INDEX score_history_created_at_idx ON score_history (created_at);

CREATE TABLE refresh_tokens (
    -- SHA-256 of the token: a leaked table does not leak usable tokens.
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Every rotation stays in one family; presenting a used token again revokes the family.
    family     uuid NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked    boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family);
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);

-- The period a completion counts in: '' for a one-time action, today's UTC date for a daily
-- one. The server's (database's) clock decides the day, never the client.
CREATE FUNCTION completion_period(repeat text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN repeat = 'daily'
                THEN to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')
                ELSE '' END
$$;
