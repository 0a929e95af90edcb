from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from aquifer.catalog import Catalog
from aquifer.credentials import AuthenticationError, Authenticator, CredentialStore, hash_token
from aquifer.settings import PROJECT_ROOT

DEV_TOKENS = {
    "support_assistant": "aq_devsupport_development-only-support-assistant",
    "hr_case_assistant": "aq_devhrcase_development-only-hr-case-assistant",
    "finance_analyst": "aq_devfinance_development-only-finance-analyst",
    "marketing_assistant": "aq_devmarketing_development-only-marketing-assistant",
    "audit_reviewer": "aq_devaudit_development-only-audit-reviewer",
}


def test_issued_token_is_stored_only_as_its_hash_and_authenticates(tmp_path: Path, catalog: Catalog) -> None:
    store = CredentialStore(tmp_path / "credentials.yaml")
    token = store.issue("support_assistant", catalog=catalog, note="ticket bot")
    text = store.path.read_text()
    assert token not in text and token.split("_", 2)[2] not in text
    assert hash_token(token) in text
    assert len(token.split("_", 2)[2]) >= 43, "256 bits of secret"
    auth = Authenticator(store, production=True)
    assert auth.authenticate(token, catalog=catalog) == "support_assistant"
    assert store.issue("support_assistant", catalog=catalog) != token


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "missing bearer token"),
        ("", "missing bearer token"),
        ("Bearer x", "invalid token"),
        ("aq_nosuchkey_" + "x" * 43, "invalid token"),
    ],
)
def test_bad_tokens_are_refused_without_echoing_them(
    tmp_path: Path, catalog: Catalog, token: str | None, reason: str
) -> None:
    auth = Authenticator(CredentialStore(tmp_path / "credentials.yaml"), production=False)
    with pytest.raises(AuthenticationError, match=reason) as info:
        auth.authenticate(token, catalog=catalog)
    assert not token or token not in str(info.value)


def test_a_tampered_secret_is_refused(tmp_path: Path, catalog: Catalog) -> None:
    store = CredentialStore(tmp_path / "credentials.yaml")
    token = store.issue("hr_case_assistant", catalog=catalog)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(AuthenticationError, match="invalid token"):
        Authenticator(store, production=False).authenticate(tampered, catalog=catalog)


def test_revocation_and_expiry_apply_to_the_next_request(tmp_path: Path, catalog: Catalog) -> None:
    store = CredentialStore(tmp_path / "credentials.yaml")
    auth = Authenticator(store, production=False)
    token = store.issue("finance_analyst", catalog=catalog)
    assert auth.authenticate(token, catalog=catalog) == "finance_analyst"
    store.revoke(token.split("_")[1])
    with pytest.raises(AuthenticationError, match="invalid token"):
        auth.authenticate(token, catalog=catalog)
    old = store.issue("finance_analyst", catalog=catalog, expires_in=dt.timedelta(days=1))
    raw = yaml.safe_load(store.path.read_text())
    raw["tokens"][0]["expires_at"] = "2020-01-01T00:00:00Z"
    store.path.write_text(yaml.safe_dump(raw))
    with pytest.raises(AuthenticationError, match="expired"):
        auth.authenticate(old, catalog=catalog)


def test_unknown_agent_is_refused_at_issue(tmp_path: Path, catalog: Catalog) -> None:
    with pytest.raises(KeyError, match="unknown agent 'ghost'"):
        CredentialStore(tmp_path / "c.yaml").issue("ghost", catalog=catalog)


def test_the_readme_dev_tokens_work_in_development_only(catalog: Catalog) -> None:
    store = CredentialStore(PROJECT_ROOT / "catalog" / "credentials.yaml")
    dev = Authenticator(store, production=False)
    prod = Authenticator(store, production=True)
    for agent, token in DEV_TOKENS.items():
        assert dev.authenticate(token, catalog=catalog) == agent
        with pytest.raises(AuthenticationError, match="development token, refused in production"):
            prod.authenticate(token, catalog=catalog)
    readme = (PROJECT_ROOT / "README.md").read_text()
    for token in DEV_TOKENS.values():
        assert token in readme, "the README lists every dev token"


def test_a_broken_store_names_the_file_and_field(tmp_path: Path, catalog: Catalog) -> None:
    path = tmp_path / "credentials.yaml"
    path.write_text("tokens:\n- key_id: abcd\n  agent: x\n  sha256: nothex\n  created_at: 2026-01-01T00:00:00Z\n")
    with pytest.raises(ValueError, match=r"credentials\.yaml: tokens\.0\.sha256"):
        Authenticator(CredentialStore(path), production=False).authenticate("aq_abcd_" + "x" * 43, catalog=catalog)
