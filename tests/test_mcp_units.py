"""The MCP server's pieces that need no server: where a call's credentials come from, and how errors look."""

from __future__ import annotations

from pathlib import Path

import pytest

from aquifer.service.errors import Forbidden, Unauthenticated
from aquifer.service.mcp_server import env_credentials, error_result


def test_stdio_credentials_come_from_the_environment_and_the_user_token_file_is_reread(tmp_path: Path) -> None:
    token_file = tmp_path / "user.jwt"
    token_file.write_text("first.token.sig\n")
    source = env_credentials({"AQUIFER_AGENT_TOKEN": "aq_a_b", "AQUIFER_USER_TOKEN_FILE": str(token_file)})
    assert source(None).agent_token == "aq_a_b"
    assert source(None).user_token == "first.token.sig"
    token_file.write_text("second.token.sig")
    assert source(None).user_token == "second.token.sig"  # a refresher replaced it: the next call uses it
    assert env_credentials({"AQUIFER_AGENT_TOKEN": "aq_a_b"})(None).user_token is None
    inline = env_credentials({"AQUIFER_USER_TOKEN": "inline", "AQUIFER_USER_TOKEN_FILE": str(token_file)})
    assert inline(None).user_token == "inline"


def test_an_unreadable_user_token_file_is_refused_naming_the_variable(tmp_path: Path) -> None:
    source = env_credentials({"AQUIFER_AGENT_TOKEN": "x", "AQUIFER_USER_TOKEN_FILE": str(tmp_path / "missing")})
    with pytest.raises(Unauthenticated, match="AQUIFER_USER_TOKEN_FILE: cannot read"):
        source(None)


def test_a_refusal_is_a_tool_error_with_reasons_and_no_chunks() -> None:
    result = error_result(
        Forbidden("agent a may not read context", reasons=["purpose_not_allowed"], explanations=["because"])
    )
    assert result.is_error
    assert result.structured_content == {
        "error": "forbidden",
        "detail": "agent a may not read context",
        "reasons": ["purpose_not_allowed"],
        "explanations": ["because"],
    }
    assert "purpose_not_allowed" in result.content[0].text
