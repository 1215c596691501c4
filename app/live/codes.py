"""Close codes and error codes of the live protocol (documented in docs/websocket.md)."""

from __future__ import annotations

from enum import IntEnum

LIVE_PATH = "/api/leaderboard/live"


class Close(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001  # the node is shutting down: reconnect (to any node) with backoff
    INVALID_DATA = 1007  # a text message that is not UTF-8 (RFC 6455 §8.1)
    MESSAGE_TOO_BIG = 1009  # sent by the WebSocket layer for a frame over the size limit
    INTERNAL_ERROR = 1011
    UNAUTHORIZED = 4001  # missing or invalid token: log in again, do not retry as is
    TOKEN_EXPIRED = 4002  # refresh the access token, then reconnect
    AUTH_TIMEOUT = 4003  # no AUTH frame within the auth timeout
    HEARTBEAT_TIMEOUT = 4004  # no PONG within the pong timeout
    REPLACED = 4005  # a newer connection of the same user took this one's place
    # The user's sessions were ended (logout everywhere) or the account deleted: log in again.
    SESSION_ENDED = 4006
    ACCOUNT_BANNED = 4007  # the account is banned: do not reconnect
    TOO_SLOW = 4008  # the client did not read its messages within the send timeout


# Error frames ({"type":"ERROR","code":...}) for client frames the server cannot use; the
# connection stays open.
BAD_FRAME = "BAD_FRAME"  # not a JSON object with a string "type", or a binary frame
UNKNOWN_TYPE = "UNKNOWN_TYPE"
NOT_AUTHENTICATED = "NOT_AUTHENTICATED"  # a frame other than AUTH/PING before authenticating
ALREADY_AUTHENTICATED = "ALREADY_AUTHENTICATED"
BOARD_NOT_FOUND = "BOARD_NOT_FOUND"  # SUBSCRIBE named a board that does not exist (or ended)
