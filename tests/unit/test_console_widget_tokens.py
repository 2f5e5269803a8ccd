"""The widget's customer token: signed by the shop's secret, for this shop, alive now."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from services.console.domain.widget_tokens import AUDIENCE, TokenInvalid, verify

SECRET = "lws_" + "s" * 43
SECRETS = {"k1": SECRET}
# Any instant: the check takes `now` from its caller, never from the machine's clock.
NOW = datetime(2030, 2, 3, 4, 5, 6, tzinfo=UTC)


def mint(
    *,
    secret: str = SECRET,
    kid: str = "k1",
    algorithm: str = "HS256",
    issued: datetime = NOW,
    lives: timedelta = timedelta(minutes=15),
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    body: dict[str, Any] = {
        "iss": "vn-fashion",
        "sub": "cust-1",
        "aud": AUDIENCE,
        "iat": int(issued.timestamp()),
        "exp": int((issued + lives).timestamp()),
    } | claims
    for name in drop:
        body.pop(name)
    return jwt.encode(body, secret, algorithm=algorithm, headers={"kid": kid})


def reason(token: str, *, shop: str = "vn-fashion", now: datetime = NOW) -> str:
    with pytest.raises(TokenInvalid) as refused:
        verify(token, shop_id=shop, secrets=SECRETS, now=now)
    return refused.value.reason


def test_a_token_signed_with_the_shops_secret_names_its_customer() -> None:
    customer = verify(mint(locale="en"), shop_id="vn-fashion", secrets=SECRETS, now=NOW)
    assert (customer.shop_id, customer.customer_id, customer.locale) == (
        "vn-fashion",
        "cust-1",
        "en",
    )


def test_either_secret_of_a_rotation_verifies_its_own_tokens() -> None:
    both = {"k1": SECRET, "k2": "lws_" + "t" * 43}
    token = mint(secret=both["k2"], kid="k2")
    assert verify(token, shop_id="vn-fashion", secrets=both, now=NOW).customer_id == "cust-1"


def test_a_forged_signature_is_refused() -> None:
    assert reason(mint(secret="lws_" + "x" * 43)) == "InvalidSignatureError"


def test_an_unknown_or_revoked_kid_is_refused() -> None:
    assert reason(mint(kid="k9")) == "unknown_kid"


def test_another_shops_token_is_refused_here() -> None:
    assert reason(mint(), shop="us-shop") == "InvalidIssuerError"


def test_a_token_for_another_audience_is_refused() -> None:
    assert reason(mint(aud="someone-else")) == "InvalidAudienceError"


def test_an_expired_token_is_refused_after_the_leeway() -> None:
    token = mint(lives=timedelta(minutes=15))
    assert verify(token, shop_id="vn-fashion", secrets=SECRETS, now=NOW + timedelta(minutes=15))
    assert reason(token, now=NOW + timedelta(minutes=15, seconds=30)) == "expired"


def test_a_token_from_the_future_is_refused_beyond_the_leeway() -> None:
    assert verify(
        mint(issued=NOW + timedelta(seconds=29)), shop_id="vn-fashion", secrets=SECRETS, now=NOW
    )
    assert reason(mint(issued=NOW + timedelta(minutes=2))) == "issued_in_the_future"


def test_a_token_living_more_than_an_hour_is_refused() -> None:
    assert reason(mint(lives=timedelta(hours=1, seconds=1))) == "lives_too_long"


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "iss", "aud"])
def test_a_token_missing_a_required_claim_is_refused(claim: str) -> None:
    assert reason(mint(drop=(claim,))) == "MissingRequiredClaimError"


def test_an_empty_subject_is_refused() -> None:
    assert reason(mint(sub="")) == "bad_subject"


def test_another_hmac_algorithm_is_refused() -> None:
    long_enough_for_hs512 = "lws_" + "s" * 60
    token = mint(secret=long_enough_for_hs512, algorithm="HS512")
    with pytest.raises(TokenInvalid) as refused:
        verify(token, shop_id="vn-fashion", secrets={"k1": long_enough_for_hs512}, now=NOW)
    assert refused.value.reason == "InvalidAlgorithmError"


def test_an_unsigned_token_is_refused() -> None:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = jwt.decode(mint(), options={"verify_signature": False})
    unsigned = f"{part({'alg': 'none', 'typ': 'JWT', 'kid': 'k1'})}.{part(claims)}."
    assert reason(unsigned) == "InvalidAlgorithmError"


def test_garbage_is_refused_as_malformed() -> None:
    assert reason("not-a-token") == "malformed"
