"""Whether a completion happened: the proof each action's ``verification`` asks for.

- ``claim``: the signed-in player's word (nothing to check).
- ``quiz``: ``data.answers`` matches the answer key, after trimming and case-folding, compared
  in constant time.
- ``receipt``: ``data.receipt`` is an HS256 JWS a registered game server (an issuer) signed for
  this user and this action, at most 10 minutes long; its ``jti`` is spent by the commit (a
  unique index in PostgreSQL refuses a second use, on any node).
- ``server``: a player can never complete it; only a game server awards it.

A refusal is ``VerificationFailed`` with a stable ``reason`` (docs/api.md lists them). No
message or log line repeats an answer, a receipt or a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from typing import Any

import jwt

from app.core.catalog import Action
from app.core.errors import DomainError, ServerOnlyAction, VerificationFailed
from app.core.ports import IssuerDirectory
from app.core.tokens import Identity

log = logging.getLogger(__name__)

RECEIPT_ALGORITHM = "HS256"
# A receipt lives at most this long (exp - iat): a stolen one is soon worthless.
MAX_RECEIPT_LIFETIME_SECONDS = 600
# Tolerated difference between the game server's clock and ours, for exp and iat.
CLOCK_LEEWAY_SECONDS = 5
MAX_RECEIPT_CHARS = 2048
MAX_JTI_CHARS = 128
_REQUIRED_CLAIMS = ["iss", "sub", "actionId", "jti", "iat", "exp"]
# Issuer names (sql/003_verification.sql), unique ignoring case; "leaderboard" (in any case)
# is the access tokens' own issuer.
ISSUER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
RESERVED_ISSUER_NAMES = frozenset({"leaderboard"})


def valid_issuer_name(name: str) -> bool:
    return bool(ISSUER_NAME.match(name)) and name.lower() not in RESERVED_ISSUER_NAMES


@dataclass(frozen=True)
class Proof:
    """What a verified completion carries into the commit."""

    receipt_jti: str | None = None


async def verify_completion(
    action: Action, identity: Identity, data: Any, issuers: IssuerDirectory
) -> Proof:
    """The proof that ``identity`` completed ``action``, or VerificationFailed /
    ServerOnlyAction. ``data`` is the request's raw ``data`` value (any JSON)."""
    if action.verification == "claim":
        return Proof()
    if action.verification == "quiz":
        check_quiz(action, data)
        return Proof()
    if action.verification == "receipt":
        return Proof(await check_receipt(action, identity, data, issuers))
    # "server", and any kind this build does not know: closed, never open.
    raise ServerOnlyAction(action.id)


def verification_changed(action_id: str, kind: str) -> DomainError:
    """The action's verification changed after this node read the catalog: refused on the
    new rule (the node's copy catches up within CATALOG_REFRESH_SECONDS)."""
    if kind == "server":
        return ServerOnlyAction(action_id)
    return _refused(
        "verification_changed",
        f"This action now needs {kind} verification; reload the catalog (GET /api/actions).",
    )


# -- quiz --------------------------------------------------------------------------------------


def check_quiz(action: Action, data: Any) -> None:
    answers = data.get("answers") if isinstance(data, dict) else None
    if answers is None:
        raise VerificationFailed(
            "answers_missing",
            f"This quiz needs data.answers: a list of {len(action.questions)} strings, one "
            "per question.",
        )
    if (
        not isinstance(answers, list)
        or len(answers) != len(action.answers)
        or not all(isinstance(a, str) for a in answers)
    ):
        raise VerificationFailed(
            "answers_malformed",
            f"data.answers must be a list of {len(action.questions)} strings, one per question.",
        )
    if not answers_match(answers, action.answers):
        # Which answer was wrong is not said: it would let the key be found one at a time.
        raise VerificationFailed("answers_wrong", "The answers are not all correct.")


def answers_match(given: list[str], key: tuple[str, ...]) -> bool:
    """Every answer equals the key's after trim + casefold. Constant-time: each pair is
    compared as SHA-256 digests with hmac.compare_digest (so not even a length leaks), and
    every pair is compared whatever the earlier ones gave."""
    if len(given) != len(key):
        return False
    matched = True
    for answer, expected in zip(given, key, strict=True):
        matched &= hmac.compare_digest(_normalised_digest(answer), _normalised_digest(expected))
    return matched


def _normalised_digest(text: str) -> bytes:
    return hashlib.sha256(text.strip().casefold().encode("utf-8")).digest()


# -- receipt -----------------------------------------------------------------------------------


def _refused(reason: str, message: str) -> VerificationFailed:
    return VerificationFailed(reason, message)


def receipt_reused() -> VerificationFailed:
    """A receipt whose ``jti`` was already spent (raised by the store's commit as well)."""
    return _refused("receipt_reused", "This receipt has already been used.")


async def check_receipt(
    action: Action, identity: Identity, data: Any, issuers: IssuerDirectory
) -> str:
    """The receipt's ``jti`` once its signature, issuer, subject, action and times hold."""
    receipt = data.get("receipt") if isinstance(data, dict) else None
    if not isinstance(receipt, str) or not receipt:
        raise _refused(
            "receipt_missing", "This action needs data.receipt: a receipt from the game server."
        )
    try:
        return _check_receipt_claims(await _decode(receipt, issuers), action, identity)
    except VerificationFailed as refusal:
        log.info(
            "receipt refused for user %s, action %s: %s",
            identity.user_id,
            action.id,
            refusal.reason,
        )
        raise


async def _decode(receipt: str, issuers: IssuerDirectory) -> dict[str, Any]:
    if len(receipt) > MAX_RECEIPT_CHARS:
        raise _refused("receipt_malformed", "The receipt is not a valid compact JWS.")
    try:
        header = jwt.get_unverified_header(receipt)
        unverified = jwt.decode(receipt, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise _refused("receipt_malformed", "The receipt is not a valid compact JWS.") from None
    if header.get("alg") != RECEIPT_ALGORITHM:
        raise _refused("unsupported_algorithm", "Receipts must be signed with HS256.")
    name = unverified.get("iss")
    if not isinstance(name, str) or not name:
        raise _refused("missing_claim", "The receipt lacks the iss claim.")
    issuer = await issuers.find(name) if ISSUER_NAME.match(name) else None
    if issuer is None:
        raise _refused("unknown_issuer", "The receipt's issuer is not registered.")
    if issuer.revoked:
        raise _refused("issuer_revoked", "The receipt's issuer has been revoked.")
    try:
        claims: dict[str, Any] = jwt.decode(
            receipt,
            issuer.secret,
            algorithms=[RECEIPT_ALGORITHM],  # pinned: the header never chooses
            options={"require": _REQUIRED_CLAIMS},
            leeway=CLOCK_LEEWAY_SECONDS,
        )
    except jwt.InvalidSignatureError:
        raise _refused("bad_signature", "The receipt's signature does not verify.") from None
    except jwt.ExpiredSignatureError:
        raise _refused("receipt_expired", "The receipt has expired.") from None
    except jwt.ImmatureSignatureError:
        raise _refused("receipt_not_yet_valid", "The receipt is issued in the future.") from None
    except jwt.MissingRequiredClaimError as error:
        raise _refused("missing_claim", f"The receipt lacks the {error.claim} claim.") from None
    except jwt.InvalidTokenError:
        raise _refused("receipt_malformed", "The receipt's claims are malformed.") from None
    return claims


def _check_receipt_claims(claims: dict[str, Any], action: Action, identity: Identity) -> str:
    iat, exp, jti = claims["iat"], claims["exp"], claims["jti"]
    if not all(isinstance(t, int | float) and not isinstance(t, bool) for t in (iat, exp)):
        raise _refused("receipt_malformed", "The iat and exp claims must be numbers.")
    if not isinstance(jti, str) or not 1 <= len(jti) <= MAX_JTI_CHARS:
        raise _refused("receipt_malformed", f"The jti claim must be 1-{MAX_JTI_CHARS} characters.")
    if exp - iat > MAX_RECEIPT_LIFETIME_SECONDS:
        raise _refused(
            "receipt_lifetime_too_long",
            f"A receipt may live at most {MAX_RECEIPT_LIFETIME_SECONDS} s (exp - iat).",
        )
    if claims["sub"] != identity.user_id:
        raise _refused("wrong_user", "The receipt was issued for another user.")
    if claims["actionId"] != action.id:
        raise _refused("wrong_action", "The receipt was issued for another action.")
    return jti
