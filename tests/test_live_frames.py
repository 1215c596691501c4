"""Pre-encoded frames and the front dispatcher's routing rule."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from app.edge.front import is_live_request
from app.live import frames


@pytest.mark.parametrize("size", [0, 1, 125, 126, 1000, 65535, 65536, 200_000])
def test_a_pre_encoded_frame_parses_as_the_same_text_message(size: int) -> None:
    payload = b"x" * size
    reader = StreamReader()
    reader.feed_data(frames.text_frame(payload))
    parser = Frame.parse(reader.read_exact, mask=False, max_size=None)
    with pytest.raises(StopIteration) as done:
        next(parser)
    frame = done.value.value
    assert (frame.opcode, frame.fin, frame.data) == (Opcode.TEXT, True, payload)


def test_client_frames_parse_or_are_refused() -> None:
    assert frames.parse_client_frame(b'{"type":"AUTH","token":"t"}') == frames.ClientFrame(
        "AUTH", "t"
    )
    assert frames.parse_client_frame(b'{"type":"PONG"}') == frames.ClientFrame("PONG", None)
    for bad in (b"", b"nope", b"[]", b'{"type":1}', b'{"kind":"PONG"}'):
        assert frames.parse_client_frame(bad) is None


@pytest.mark.parametrize(
    ("line", "live"),
    [
        (b"GET /api/leaderboard/live HTTP/1.1", True),
        (b"GET /api/leaderboard/live?token=abc HTTP/1.1", True),
        (b"GET /api/leaderboard HTTP/1.1", False),
        (b"GET /api/leaderboard/live2 HTTP/1.1", False),
        (b"GET /api/leaderboard/lives HTTP/1.1", False),
        (b"POST /api/leaderboard/live HTTP/1.1", False),
        (b"PRI * HTTP/2.0", False),
        (b"", False),
    ],
)
def test_only_the_live_path_goes_to_the_live_endpoint(line: bytes, live: bool) -> None:
    assert is_live_request(line) is live
