"""The live path: ``WS /api/leaderboard/live``.

hub.py knows only this node's sockets; registry.py enforces the per-user limit across nodes
through Redis; connection.py speaks the protocol on one socket; front.py and serve.py put the
live endpoint on the same port as the HTTP API. See docs/websocket.md for the contract.
"""
