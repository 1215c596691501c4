"""Every Redis key and channel name, in one place.

The leaderboard keys share one hash tag (``{namespace}``) so that the apply script, which
touches all of them atomically, also works on a Redis Cluster. Rate-limit keys deliberately
do not carry it: they spread over the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.boards import ALL_PERIOD, ALL_TIME


@dataclass(frozen=True)
class BoardKeys:
    """The keys of one board's ranking in one period, all under one hash tag: every script
    that touches them is one atomic step, also on a Redis Cluster, and each (board, period)
    can live on its own slot. The all-time board keeps the names it always had."""

    tag: str
    board: str
    period: str

    # The ranking of every user with points: a sorted set scored by points.
    @property
    def ranking(self) -> str:
        return f"{self.tag}:ranking"

    # user id -> the member under which the user currently stands in the ranking.
    @property
    def members(self) -> str:
        return f"{self.tag}:members"

    # user id -> username, so the script can build the top-10 message by itself.
    @property
    def names(self) -> str:
        return f"{self.tag}:names"

    # Ordered "user:score" pairs of the last published top 10 (the change detector).
    @property
    def top10(self) -> str:
        return f"{self.tag}:top10"

    # The last published LEADERBOARD_UPDATE message, as sent to clients.
    @property
    def message(self) -> str:
        return f"{self.tag}:message"

    @property
    def version(self) -> str:
        return f"{self.tag}:version"

    @property
    def epoch(self) -> str:
        return f"{self.tag}:epoch"

    def leaderboard_keys(self) -> list[str]:
        """The keys of every leaderboard script, in their KEYS order (lua/lib_top10.lua)."""
        return [
            self.ranking,
            self.members,
            self.names,
            self.top10,
            self.message,
            self.version,
            self.epoch,
        ]

    # Set once, "first one wins", by the node that starts this period (app/repair/rollover.py).
    @property
    def started(self) -> str:
        return f"{self.tag}:started"

    # The reconciler's lock token, copied under this tag for the duration of a full rebuild
    # of this board, so the swap script can check it without naming a key of another slot.
    @property
    def rebuild_lock(self) -> str:
        return f"{self.tag}:rebuild:lock"

    @property
    def reconcile_watermark(self) -> str:
        return f"{self.tag}:reconcile:watermark"

    def rebuild_keys(self) -> list[str]:
        """Where a full rebuild stages the ranking, members and names before renaming them
        over the live ones (same hash tag, so RENAME stays within one cluster slot)."""
        return [
            f"{self.tag}:rebuild:ranking",
            f"{self.tag}:rebuild:members",
            f"{self.tag}:rebuild:names",
        ]


@dataclass(frozen=True)
class Keys:
    namespace: str

    @property
    def _tag(self) -> str:
        return "{" + self.namespace + "}"

    def board(self, board_id: str, period: str) -> BoardKeys:
        """The keys of a board's ranking in a period (ids are slugs: no braces in a tag)."""
        if board_id == ALL_TIME:
            return BoardKeys(self._tag, ALL_TIME, ALL_PERIOD)
        return BoardKeys(
            "{" + f"{self.namespace}:board:{board_id}:{period}" + "}", board_id, period
        )

    @property
    def all_time(self) -> BoardKeys:
        return self.board(ALL_TIME, ALL_PERIOD)

    # The ranking of every user with points: a sorted set scored by points.
    @property
    def ranking(self) -> str:
        return f"{self._tag}:ranking"

    # user id -> the member under which the user currently stands in the ranking.
    @property
    def members(self) -> str:
        return f"{self._tag}:members"

    # user id -> username, so the script can build the top-10 message by itself.
    @property
    def names(self) -> str:
        return f"{self._tag}:names"

    # Ordered "user:score" pairs of the last published top 10 (the change detector).
    @property
    def top10(self) -> str:
        return f"{self._tag}:top10"

    # The last published LEADERBOARD_UPDATE message, as sent to clients.
    @property
    def message(self) -> str:
        return f"{self._tag}:message"

    @property
    def version(self) -> str:
        return f"{self._tag}:version"

    @property
    def epoch(self) -> str:
        return f"{self._tag}:epoch"

    @property
    def updates_channel(self) -> str:
        return f"{self.namespace}:updates"

    def leaderboard_keys(self) -> list[str]:
        """The keys of every leaderboard script, in their KEYS order (lua/lib_top10.lua)."""
        return [
            self.ranking,
            self.members,
            self.names,
            self.top10,
            self.message,
            self.version,
            self.epoch,
        ]

    # The reconciler (app/repair/reconcile.py): the lock that lets one node at a time run it,
    # and the database time its last pass began (where the next incremental pass starts).
    # Under the hash tag: the swap script checks the lock in the same atomic step as the rename.
    @property
    def reconcile_lock(self) -> str:
        return f"{self._tag}:reconcile:lock"

    @property
    def reconcile_watermark(self) -> str:
        return f"{self._tag}:reconcile:watermark"

    def rebuild_keys(self) -> list[str]:
        """Where a full rebuild stages the ranking, members and names before renaming them
        over the live ones (same hash tag, so RENAME stays within one cluster slot)."""
        return [
            f"{self._tag}:rebuild:ranking",
            f"{self._tag}:rebuild:members",
            f"{self._tag}:rebuild:names",
        ]

    # A user's live WebSocket connections on every node (app/redis/live_registry.py). Not under the
    # hash tag: one key per user, touched alone, so they spread over a cluster.
    def live_connections(self, user_id: str) -> str:
        return f"{self.namespace}:live:user:{user_id}"

    # Control messages for one node (e.g. "close this connection"); the node id completes it.
    @property
    def live_control_prefix(self) -> str:
        return f"{self.namespace}:live:node:"

    def live_control_channel(self, node_id: str) -> str:
        return self.live_control_prefix + node_id

    def rate_limit(self, user_id: str) -> str:
        return f"{self.namespace}:ratelimit:{user_id}"

    def login_limit_user(self, username: str) -> str:
        return f"{self.namespace}:ratelimit:login:user:{username.lower()}"

    def login_limit_client(self, client: str) -> str:
        return f"{self.namespace}:ratelimit:login:client:{client}"

    # "This user's sessions ended" (app/core/sessions.py): every node refuses their older tokens
    # and closes their sockets. On each node's one subscription, beside the board updates.
    @property
    def sessions_channel(self) -> str:
        return f"{self.namespace}:sessions:ended"

    # The per-API-key limit of server awards (app/core/awards.py).
    def api_key_limit(self, key_id: str) -> str:
        return f"{self.namespace}:ratelimit:apikey:{key_id}"
