"""JWT validation: only HS256 tokens signed with our key, unexpired, with a user id, pass."""

from __future__ import annotations

import base64
import json
import time
import uuid

import jwt
import pytest

from app.core.errors import TokenExpired, Unauthorized
from app.core.tokens import Identity, issue_access_token, verify_access_token
from app.http.request import bearer_token

SECRET = "s" * 48
ALICE = Identity(str(uuid.uuid4()), "alice")


def claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {
        "sub": ALICE.user_id,
        "username": ALICE.username,
        "iss": "leaderboard",
        "typ": "access",
        "iat": now,
        "exp": now + 60,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def code_of(token: str) -> str:
    with pytest.raises((Unauthorized, TokenExpired)) as caught:
        verify_access_token(token, SECRET)
    return caught.value.code


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_token_we_issued_verifies_to_its_identity() -> None:
    token = issue_access_token(ALICE, SECRET, 900)
    assert verify_access_token(token, SECRET) == ALICE
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["exp"] - int(time.time()) in range(
        895, 901
    )


def test_expired() -> None:
    assert code_of(jwt.encode(claims(exp=int(time.time()) - 1), SECRET, "HS256")) == "TOKEN_EXPIRED"


def test_signed_with_another_key() -> None:
    assert code_of(jwt.encode(claims(), "k" * 48, "HS256")) == "UNAUTHORIZED"


def test_alg_none_is_refused() -> None:
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}."
    assert code_of(unsigned) == "UNAUTHORIZED"


@pytest.mark.parametrize("algorithm", ["HS512", "HS384"])
def test_another_algorithm_with_the_same_key_is_refused(algorithm: str) -> None:
    assert code_of(jwt.encode(claims(), SECRET, algorithm)) == "UNAUTHORIZED"


def test_algorithm_swap_to_rs256_is_refused() -> None:
    # The classic confusion attack: an RS256 header with the HMAC key as "public key".
    forged_header = b64({"alg": "RS256", "typ": "JWT"})
    good = jwt.encode(claims(), SECRET, "HS256")
    assert code_of(f"{forged_header}.{good.split('.', 1)[1]}") == "UNAUTHORIZED"


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c", "....", "x" * 5000])
def test_malformed(token: str) -> None:
    assert code_of(token) == "UNAUTHORIZED"


@pytest.mark.parametrize(
    "overrides",
    [
        {"sub": None},
        {"sub": "not-a-uuid"},
        {"exp": None},
        {"iss": "someone-else"},
        {"typ": "refresh"},
        {"username": None},
    ],
    ids=["missing-sub", "bad-sub", "missing-exp", "wrong-issuer", "wrong-type", "missing-username"],
)
def test_claims_we_require(overrides: dict[str, object]) -> None:
    assert code_of(jwt.encode(claims(**overrides), SECRET, "HS256")) == "UNAUTHORIZED"


@pytest.mark.parametrize("header", [None, "", "Bearer ", "Token abc", "bearer"])
def test_bearer_header_must_be_well_formed(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        bearer_token(header)


def test_bearer_scheme_is_case_insensitive() -> None:
    assert bearer_token("bearer abc.def.ghi") == "abc.def.ghi"
