from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aquifer.cli import app
from aquifer.settings import PROJECT_ROOT, get_settings

runner = CliRunner()


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(PROJECT_ROOT / "policies", tmp_path / "policies")
    shutil.copytree(PROJECT_ROOT / "catalog", tmp_path / "catalog")
    monkeypatch.setenv("AQUIFER_POLICY_DIR", str(tmp_path / "policies"))
    monkeypatch.setenv("AQUIFER_CATALOG_DIR", str(tmp_path / "catalog"))
    monkeypatch.setenv("AQUIFER_CREDENTIALS_FILE", str(tmp_path / "catalog" / "credentials.yaml"))
    monkeypatch.setenv("AQUIFER_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_policy_test_prints_each_test_and_fails_on_a_failure(workspace: Path) -> None:
    ok = runner.invoke(app, ["policy", "test"])
    assert ok.exit_code == 0, ok.output
    assert "data.aquifer.context_test.test_untrusted_denied: PASS" in ok.output
    assert "PASS: " in ok.output.splitlines()[-1]
    trust = workspace / "policies/aquifer/context/trust.rego"
    trust.write_text(trust.read_text().replace("_trusted if input.resource.untrusted == false", "_trusted := true"))
    bad = runner.invoke(app, ["policy", "test", "--quiet"])
    assert bad.exit_code == 1
    assert "test_untrusted_denied: FAIL" in bad.output and "test_trusted_served" not in bad.output
    trust.write_text("package aquifer.context\n\nthis is not rego\n")
    broken = runner.invoke(app, ["policy", "test"])
    assert broken.exit_code == 2 and "does not compile" in broken.output


def test_policy_eval_reads_an_input_file(workspace: Path) -> None:
    doc = {
        "action": "read_context",
        "agent": "marketing_assistant",
        "purpose": "marketing",
        "model": "external_gpt",
        "resources": [
            {
                "dataset": "product_docs",
                "layer": "platinum",
                "classification": "public",
                "pii_types": [],
                "untrusted": False,
                "acl": {"listed": False},
            },
            {
                "dataset": "finance_reports",
                "layer": "platinum",
                "classification": "restricted",
                "pii_types": [],
                "untrusted": False,
                "acl": {"listed": False},
            },
        ],
    }
    path = workspace / "input.json"
    path.write_text(json.dumps(doc))
    result = runner.invoke(app, ["policy", "eval", "--input", str(path)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["entrypoint"] == "data.aquifer.context.decisions" and len(out["revision"]) == 16
    assert [d["allow"] for d in out["result"]] == [True, False]
    assert "model_locality" in out["result"][1]["reasons"]
    request = runner.invoke(app, ["policy", "eval", "--input", str(path), "--entrypoint", "request"])
    assert json.loads(request.output)["result"]["allow"] is True
    path.write_text("[1, 2")
    bad = runner.invoke(app, ["policy", "eval", "--input", str(path)])
    assert bad.exit_code == 1 and "input.json: not valid JSON or YAML" in bad.output
    missing = runner.invoke(app, ["policy", "eval", "--input", str(workspace / "nope.json")])
    assert missing.exit_code == 1 and "nope.json: cannot read" in missing.output
    path.write_text(json.dumps({"agent": "x"}))
    wrong = runner.invoke(app, ["policy", "eval", "--input", str(path), "--entrypoint", "allow_all"])
    assert wrong.exit_code == 1 and "--entrypoint must be one of" in wrong.output


def test_policy_explain_a_request_and_see_an_edit_take_effect(workspace: Path) -> None:
    args = ["policy", "explain", "--agent", "hr_case_assistant", "--purpose", "hr_casework", "--model", "sovereign_eu"]
    alone = runner.invoke(app, args)
    assert "DENY" in alone.output and "user_token_required" in alone.output, alone.output
    args += ["--user", "amira.haddad", "--group", "hr-partners-north", "--group", "employees"]
    before = runner.invoke(app, args)
    assert "DENY" in before.output and "model_not_allowed" in before.output
    assert "user_token_required" not in before.output and "for user amira.haddad" in before.output
    agent = workspace / "catalog/agents/hr_case_assistant.yaml"
    agent.write_text(agent.read_text().replace("models: [local_smollm2]", "models: [local_smollm2, sovereign_eu]"))
    after = runner.invoke(app, args)
    assert "ALLOW" in after.output, after.output


def test_agents_issue_list_and_revoke_tokens(workspace: Path) -> None:
    issued = runner.invoke(app, ["agents", "issue-token", "support_assistant", "--note", "CI bot"])
    assert issued.exit_code == 0, issued.output
    token = issued.stdout.strip().splitlines()[-1]
    assert token.startswith("aq_")
    stored = (workspace / "catalog/credentials.yaml").read_text()
    assert token not in stored and "CI bot" in stored
    key_id = token.split("_")[1]
    listed = runner.invoke(app, ["agents", "list"])
    assert key_id in listed.output and "devsupport (dev)" in listed.output
    revoked = runner.invoke(app, ["agents", "revoke-token", key_id])
    assert revoked.exit_code == 0 and key_id not in (workspace / "catalog/credentials.yaml").read_text()
    again = runner.invoke(app, ["agents", "revoke-token", key_id])
    assert again.exit_code == 1 and "no token with key id" in again.output
    ghost = runner.invoke(app, ["agents", "issue-token", "ghost"])
    assert ghost.exit_code == 1 and "unknown agent 'ghost'" in ghost.output


def test_audit_prove_on_an_empty_log_and_bad_parameters(workspace: Path) -> None:
    empty = runner.invoke(app, ["audit", "prove", "--classification", "restricted", "--locality", "external"])
    assert empty.exit_code == 0 and "decisions scanned: 0" in empty.output
    bad = runner.invoke(app, ["audit", "prove", "--classification", "secret", "--locality", "external"])
    assert bad.exit_code == 1 and "--classification must be one of" in bad.output
    bad_since = runner.invoke(
        app, ["audit", "prove", "--classification", "public", "--locality", "local", "--since", "last week"]
    )
    assert bad_since.exit_code == 1 and "--since 'last week'" in bad_since.output
