"""API keys and the settings that guard exposure: parsing, hashing, refusals at start-up."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from core.auth import LOCAL_PRINCIPAL, Authenticator
from core.errors import UnauthorizedError
from core.settings import Settings

ALICE_KEY = "alice-key-0123456789abcdef"
BOB_KEY = "bob-key-0123456789abcdef"


def test_keys_map_to_their_principals_and_others_are_refused() -> None:
    auth = Authenticator({ALICE_KEY: "alice", BOB_KEY: "bob"})
    assert auth.enabled
    assert auth.principal_for(ALICE_KEY) == "alice"
    assert auth.principal_for(BOB_KEY) == "bob"
    for wrong in (None, "", ALICE_KEY[:-1], ALICE_KEY + "x", "Bearer " + ALICE_KEY):
        with pytest.raises(UnauthorizedError) as refused:
            auth.principal_for(wrong)
        assert (refused.value.status_code, refused.value.error_code) == (401, "unauthorized")


def test_a_key_may_be_configured_as_its_digest() -> None:
    digest = hashlib.sha256(ALICE_KEY.encode()).hexdigest()
    auth = Authenticator(Settings.model_validate({"api_keys": f"sha256:{digest}:alice"}).api_keys)
    assert auth.principal_for(ALICE_KEY) == "alice"
    with pytest.raises(UnauthorizedError):
        auth.principal_for(f"sha256:{digest}")  # the digest itself is not a key


def test_a_bare_key_belongs_to_the_default_principal() -> None:
    keys = Settings.model_validate({"api_keys": f"{ALICE_KEY}, {BOB_KEY}:bob"}).api_keys
    assert keys == {ALICE_KEY: "default", BOB_KEY: "bob"}
    digest = hashlib.sha256(ALICE_KEY.encode()).hexdigest()
    hashed = Settings.model_validate({"api_keys": f"sha256:{digest}"}).api_keys
    assert Authenticator(hashed).principal_for(ALICE_KEY) == "default"


def test_without_keys_everyone_is_the_local_principal() -> None:
    auth = Authenticator({})
    assert not auth.enabled
    assert auth.principal_for(None) == LOCAL_PRINCIPAL


@pytest.mark.parametrize(
    "raw",
    [
        f"{ALICE_KEY}:alice, {BOB_KEY}:bob",
        f'{{"{ALICE_KEY}": "alice", "{BOB_KEY}": "bob"}}',
    ],
)
def test_api_keys_are_read_as_pairs_or_json(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("DOCCHAT_API_KEYS", raw)
    monkeypatch.setenv("DOCCHAT_CORS_ORIGINS", "https://a.example, https://b.example")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.api_keys == {ALICE_KEY: "alice", BOB_KEY: "bob"}
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert ALICE_KEY not in repr(settings)


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"api_keys": "short:alice"}, "at least 16 characters"),
        ({"api_keys": "key with spaces 0123456789:alice"}, "A-Z a-z 0-9"),
        ({"api_keys": f"{ALICE_KEY}:al ice"}, "no spaces"),
        ({"api_keys": "sha256:abc:alice"}, "64 hex digits"),
        ({"api_keys": f"{ALICE_KEY}:alice", "auth_disabled": True}, "contradicts"),
        ({"api_keys": f"{ALICE_KEY}:alice", "cors_origins": "*"}, "cannot be '*'"),
    ],
)
def test_unsafe_or_malformed_auth_settings_are_refused(
    values: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings.model_validate(values)
    assert fragment in str(refused.value)


def test_serving_beyond_loopback_needs_keys_or_an_explicit_opt_out() -> None:
    assert Settings(host="127.0.0.1").exposure_problem() is None
    assert Settings(host="localhost").exposure_problem() is None
    assert Settings(host="::1").exposure_problem() is None
    problem = Settings(host="0.0.0.0").exposure_problem()
    assert problem is not None and "DOCCHAT_API_KEYS" in problem
    assert Settings(host="0.0.0.0", auth_disabled=True).exposure_problem() is None
    keyed = Settings.model_validate({"host": "0.0.0.0", "api_keys": {ALICE_KEY: "alice"}})
    assert keyed.exposure_problem() is None


def test_the_app_refuses_to_start_exposed_without_keys() -> None:
    from api.app import create_app

    with pytest.raises(RuntimeError, match="Refusing to serve on '0.0.0.0' without API keys"):
        create_app(Settings(host="0.0.0.0"))
