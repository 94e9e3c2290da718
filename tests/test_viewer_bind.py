"""`turnscope view` listens beyond this machine only with access control: the refusal (one
line, exit status 2), what counts as this machine, the URL it prints, the cookie it gives, and
the checks of an OpenID Connect set-up. No server is started (the browser tests in
test_viewer_access.py start real ones)."""

from __future__ import annotations

from pathlib import Path

import pytest

from turnscope import cli
from turnscope.cli.view import view_command
from turnscope.viewer import access


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "[2001:db8::1]", "viewer.lan"])
def test_a_non_loopback_host_without_access_control_is_refused(
    host: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["view", "--db", str(tmp_path / "x.db"), "--host", host])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "--auth token" in err and f"on {host} " in err, err


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_this_machine_needs_no_access_control(host: str) -> None:
    assert access.is_loopback(host)
    assert access.refusal(host, "none", allow_no_auth=False) is None


def test_access_control_or_the_explicit_opt_out_allows_any_host() -> None:
    assert access.refusal("0.0.0.0", "token", allow_no_auth=False) is None
    assert access.refusal("0.0.0.0", "oidc", allow_no_auth=False) is None
    assert access.refusal("0.0.0.0", "none", allow_no_auth=True) is None  # docker/compose.yaml


def test_the_url_to_open_and_the_cookie() -> None:
    """The printed URL carries the token (quoted); a wildcard address is shown as this
    machine's name; the cookie is an HMAC of the token, never the token itself."""
    import socket

    token = access.new_token()
    assert len(token) >= 40 and token != access.new_token()
    assert access.open_url("127.0.0.1", 8501, "a/b+c") == "http://127.0.0.1:8501/?token=a%2Fb%2Bc"
    assert access.open_url("0.0.0.0", 8502, "t") == f"http://{socket.gethostname()}:8502/?token=t"
    assert access.open_url("::1", 8501, "t") == "http://[::1]:8501/?token=t"
    cookie = access.cookie_value(token)
    assert token not in cookie and cookie == access.cookie_value(token)
    assert cookie != access.cookie_value(token + "x")
    assert access.cookie_matches(cookie, token) and not access.cookie_matches(cookie, "other")
    assert access.token_matches(token, token) and not access.token_matches(token[:-1], token)
    assert not access.token_matches("", token) and not access.cookie_matches(None, token)


def test_an_unknown_mode_in_the_environment_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(access.ENV_AUTH, "nonsense")
    assert access.mode() == "token"
    monkeypatch.delenv(access.ENV_AUTH)
    assert access.mode() == "none"


def test_oidc_needs_a_complete_auth_section_and_never_prints_its_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("streamlit")
    db = str(tmp_path / "x.db")
    missing = tmp_path / "missing.toml"
    assert cli.main(["view", "--db", db, "--auth", "oidc", "--secrets", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "[auth]" in err and str(missing) in err, err

    partial = tmp_path / "secrets.toml"
    partial.write_text('[auth]\nclient_id = "viewer"\nclient_secret = "DO-NOT-PRINT-ME"\n')
    assert cli.main(["view", "--db", db, "--auth", "oidc", "--secrets", str(partial)]) == 2
    err = capsys.readouterr().err
    assert "lacks server_metadata_url, redirect_uri, cookie_secret" in err, err
    assert "DO-NOT-PRINT-ME" not in err and err.count("\n") == 1


def test_streamlit_is_not_asked_to_look_up_an_external_address() -> None:
    """On 0.0.0.0 Streamlit's welcome lines ask a public service for the external IP; turnscope
    prints its own start lines, so the welcome is off."""
    command = view_command("0.0.0.0", 8501)
    assert command[command.index("--logger.hideWelcomeMessage") + 1] == "true"
