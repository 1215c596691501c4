-- 002: boards (daily, weekly, monthly, tournaments, custom), per-board scores, action tags.
--
-- A board's scores per period are written by the same single statement that records a
-- completion (COMMIT_SQL in app/db/completions.py), so for every board and period a user's
-- score equals the sum of their matching history rows in that window, by construction.
-- The all-time board of every action is `users.score` itself and has no rows here.

ALTER TABLE actions
    ADD COLUMN tags text[] NOT NULL DEFAULT '{}'
        -- Each tag a slug (so ',' never occurs in one), at most 16.
        CONSTRAINT actions_tags_format CHECK (
            cardinality(tags) <= 16
            AND array_to_string(tags, ',') ~ '^([a-z0-9][a-z0-9_-]{0,31}(,|$))*$'
        );

CREATE TABLE boards (
    id          varchar(40) PRIMARY KEY
                CONSTRAINT boards_id_format CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,39}$'),
    name        varchar(100) NOT NULL,
    -- 'tournament' is a fixed [starts_at, ends_at) range whose one period is the board's id.
    window_kind text NOT NULL
                CONSTRAINT boards_window_kind CHECK (
                    window_kind IN ('all', 'day', 'week', 'month', 'tournament')),
    starts_at   timestamptz,
    ends_at     timestamptz,
    -- NULL: every action counts; else only actions carrying this tag.
    action_tag  varchar(32)
                CONSTRAINT boards_action_tag_format CHECK (action_tag ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    -- Set by `leaderboard boards end`: nothing counts from then on; its periods stay readable.
    ended_at    timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT boards_range CHECK (
        (window_kind = 'tournament') = (starts_at IS NOT NULL AND ends_at IS NOT NULL)
        AND (starts_at IS NULL OR ends_at > starts_at))
);

-- Every action over all time is one board only (users.score): a second would double it.
CREATE UNIQUE INDEX boards_one_all_time ON boards ((true))
    WHERE window_kind = 'all' AND action_tag IS NULL;

INSERT INTO boards (id, name, window_kind) VALUES
    ('all-time', 'All time', 'all'),
    ('daily', 'Today', 'day'),
    ('weekly', 'This week', 'week'),
    ('monthly', 'This month', 'month');

CREATE TABLE board_scores (
    board_id   varchar(40) NOT NULL REFERENCES boards (id) ON DELETE CASCADE,
    period     text NOT NULL,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    score      bigint NOT NULL CONSTRAINT board_scores_positive CHECK (score > 0),
    -- The user's users.reached_at of the commit that last changed this row: grows with every
    -- change, so it orders ties (earliest first) and the apply script's idempotence.
    reached_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (board_id, period, user_id)
);

-- The ranking order of one (board, period), for pages, around-a-user and top 10.
CREATE INDEX board_scores_ranking_idx
    ON board_scores (board_id, period, score DESC, reached_at ASC, user_id DESC);
-- A user's boards (profiles).
CREATE INDEX board_scores_user_idx ON board_scores (user_id);
-- The reconciler's incremental pass over a current period.
CREATE INDEX board_scores_updated_idx ON board_scores (board_id, period, updated_at);

-- A profile's recent completions, newest first.
CREATE INDEX score_history_user_recent_idx ON score_history (user_id, created_at DESC);

-- completion_period (001) at a given instant: the commit decides the repeat period, the
-- history row's time and every board's period from one instant, so a daily action done at
-- midnight cannot count in one day for its repeat and in the next on the daily board.
CREATE FUNCTION completion_period(repeat text, at timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN repeat = 'daily'
                THEN to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
                ELSE '' END
$$;

-- The period of a board that a completion at `at` counts in (NULL: outside a tournament).
-- Mirrored by app/core/boards.py Board.period_at; tests check they agree.
CREATE FUNCTION board_period(window_kind text, board_id text, starts_at timestamptz,
                             ends_at timestamptz, at timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE window_kind
        WHEN 'all' THEN 'all'
        WHEN 'day' THEN to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
        WHEN 'week' THEN to_char(at AT TIME ZONE 'UTC', 'IYYY-"W"IW')
        WHEN 'month' THEN to_char(at AT TIME ZONE 'UTC', 'YYYY-MM')
        WHEN 'tournament' THEN CASE WHEN at >= starts_at AND at < ends_at THEN board_id END
    END
$$;

-- When that period ends (NULL: never). Redis keys of a period expire after it.
CREATE FUNCTION board_period_end(window_kind text, starts_at timestamptz, ends_at timestamptz,
                                 at timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT CASE window_kind
        WHEN 'day' THEN (date_trunc('day', at AT TIME ZONE 'UTC') + interval '1 day') AT TIME ZONE 'UTC'
        WHEN 'week' THEN (date_trunc('week', at AT TIME ZONE 'UTC') + interval '7 days') AT TIME ZONE 'UTC'
        WHEN 'month' THEN (date_trunc('month', at AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'
        WHEN 'tournament' THEN ends_at
    END
$$;

