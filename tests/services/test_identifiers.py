"""Keyed digests of identifiers: the batch digester gives exactly the digest each identifier gives alone."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from cmp.services.identifiers import Digester, parse_identifier


@pytest.mark.parametrize("hmac_key", ["test-hmac-key-fedcba9876543210", "k" * 64, "k" * 65, "clé-" * 30])
@pytest.mark.parametrize("subject", ["user:42", "email:Ada@Example.org", "user:Zoë 🙂", "user:" + "x" * 256])
def test_the_digester_agrees_with_hmac(hmac_key, subject):
    identifier = parse_identifier(subject)
    expected = hmac.new(
        hmac_key.encode(), f"shop\x00{identifier.kind}:{identifier.value}".encode(), hashlib.sha256
    ).hexdigest()
    assert identifier.digest(hmac_key, "shop") == expected
    assert Digester(hmac_key, "shop")(identifier) == expected
    assert Digester(hmac_key, "other")(identifier) != expected
