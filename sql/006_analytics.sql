-- 006: an index for the admin analytics (GET /api/admin/analytics, app/db/analytics.py).
--
-- Every history figure (completions and points per action, per hour and per day, daily and
-- 7-day active players) reads a range of UTC days of score_history. This index is ordered by
-- (UTC day, player) and holds every other column those reads use, so each is one index-only
-- range scan, and the per-day, per-player counts come out already grouped, with no sort and
-- no hash table. On 1 million rows a 30-day report stays well under a second
-- (perf/analytics_plans.py, perf/results/analytics_plans.txt).
--
-- It serves every query the plain created_at index of 001 served (nothing else in the service
-- reads score_history by time), so that one goes: a completion writes as many indexes as before.
CREATE INDEX score_history_activity_idx
    ON score_history (((created_at AT TIME ZONE 'UTC')::date), user_id)
    INCLUDE (created_at, action_id, score_change);
DROP INDEX score_history_created_at_idx;

-- How many (day, player) pairs there are: without it the planner guesses from each column
-- alone, takes a year of pairs for a few, and picks a hash table that spills to disk
-- (1.2 s on 1 million rows) over the index's ready-grouped order (a fraction of that).
CREATE STATISTICS score_history_day_player (ndistinct)
    ON ((created_at AT TIME ZONE 'UTC')::date), user_id FROM score_history;

-- Registrations per day: a range scan instead of a scan of every account.
CREATE INDEX users_created_at_idx ON users (created_at);
