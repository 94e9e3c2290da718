"""Who may see the viewer: nobody but this machine by default, else a token or an OpenID
Connect login (Streamlit's ``st.login``).

``turnscope view`` decides the mode and passes it (and the token) to the server in the
environment; :func:`gate` runs first in every script run of ``viewer/app.py``, before any
page code touches the database, and stops the run with a login prompt unless the visitor is
let in. Everything the viewer shows travels over the websocket of a script run, so a run that
stops at the gate sends no run, workflow or database name to the browser.

The token: ``?token=...`` in the URL once (as Jupyter's), or typed into the prompt. A
session that showed the right token is remembered in its (server-side) session state, and
the browser gets a cookie holding an HMAC of the token, not the token, so a later visit (a new
tab, a deep link) is let in by the cookie its websocket handshake carries. Streamlit has no
API to set a cookie from a script, so a one-line script in the page sets it
(``document.cookie``); it cannot be HttpOnly. This module imports Streamlit only inside
:func:`gate`: the CLI and the warm-up use the rest.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from pathlib import Path

ENV_AUTH = "TURNSCOPE_VIEW_AUTH"  # none, token or oidc: set by `turnscope view`
ENV_TOKEN = "TURNSCOPE_VIEW_TOKEN"
MODES = ("none", "token", "oidc")
COOKIE = "turnscope_view"
COOKIE_DAYS = 30
QUERY = "token"
_SESSION_KEY = "_turnscope_access"  # session state: this session showed the token
_SET_COOKIE = "_turnscope_set_cookie"
_WRONG = "_turnscope_wrong_token"
_COOKIE_LABEL = b"turnscope view cookie v1"


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    value = host.strip().strip("[]").lower()
    if value == "localhost":
        return True
    try:
        return ipaddress.ip_address(value).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def refusal(host: str, auth: str, allow_no_auth: bool) -> str | None:
    """Why the viewer must not listen on ``host`` with ``auth`` (None: it may)."""
    if auth != "none" or allow_no_auth or is_loopback(host):
        return None
    return (
        f"refusing to serve runs on {host} without access control: add --auth token "
        "(or --auth oidc), or listen on 127.0.0.1"
    )


def new_token() -> str:
    """The token of a viewer started without ``$TURNSCOPE_VIEW_TOKEN``."""
    return secrets.token_urlsafe(32)


def cookie_value(token: str) -> str:
    """What the browser keeps: an HMAC of the token (the cookie never holds the token)."""
    return hmac.new(token.encode(), _COOKIE_LABEL, hashlib.sha256).hexdigest()


def token_matches(given: str | None, token: str) -> bool:
    """``given`` is the token (constant-time comparison)."""
    return bool(given) and hmac.compare_digest(str(given).encode(), token.encode())


def cookie_matches(given: str | None, token: str) -> bool:
    """``given`` is the cookie of the token (constant-time comparison)."""
    return bool(given) and hmac.compare_digest(str(given).encode(), cookie_value(token).encode())


def mode() -> str:
    """The access mode the server was started with (``none`` when not said)."""
    value = (os.environ.get(ENV_AUTH) or "none").strip().lower()
    return value if value in MODES else "token"  # an unknown mode fails closed


def gate() -> None:
    """Let the visitor in, or draw the login prompt and stop this script run."""
    how = mode()
    if how == "none":
        return
    if how == "oidc":
        _gate_oidc()
    else:
        _gate_token()


def _gate_token() -> None:
    import streamlit as st

    token = os.environ.get(ENV_TOKEN) or ""
    if not token:  # misconfigured: let nobody in rather than everybody
        st.error("This viewer was started with token access but no token.")
        st.stop()
    given = st.query_params.get(QUERY)
    if given is not None:
        del st.query_params[QUERY]  # out of the address bar, history and shared links
        if token_matches(given, token):
            _admit()
        elif not st.session_state.get(_SESSION_KEY):
            st.session_state[_WRONG] = True
    if not st.session_state.get(_SESSION_KEY) and cookie_matches(
        st.context.cookies.get(COOKIE), token
    ):
        st.session_state[_SESSION_KEY] = True  # the cookie came with this session's handshake
    if not st.session_state.get(_SESSION_KEY):
        _token_prompt(token)
        st.stop()
    if st.session_state.get(_SET_COOKIE):
        # on every run of this session, not once: a run superseded by a rerun takes its
        # elements away, perhaps before the browser ran the script
        _set_cookie(token)


def _admit() -> None:
    """Remember this session; its runs past the gate give the browser the cookie."""
    import streamlit as st

    st.session_state[_SESSION_KEY] = True
    st.session_state[_SET_COOKIE] = True
    st.session_state.pop(_WRONG, None)


def _set_cookie(token: str) -> None:
    """The cookie for the browser's next visits (a script: Streamlit cannot set cookies)."""
    import streamlit as st

    script = (
        "<script>document.cookie = '"
        f"{COOKIE}={cookie_value(token)}; path=/; max-age={COOKIE_DAYS * 86400}; SameSite=Strict'"
        " + (location.protocol === 'https:' ? '; Secure' : '');</script>"
    )
    try:
        st.sidebar.html(script, unsafe_allow_javascript=True)
    except TypeError:  # an older Streamlit runs no script in st.html; an iframe of the page's
        from streamlit.components.v1 import html  # own origin sets the cookie as well

        with st.sidebar:
            html(script, height=0)


def _token_prompt(token: str) -> None:
    import streamlit as st

    st.markdown("### :material/lock: turnscope")
    st.write(
        "This viewer needs its access token. Open the URL `turnscope view` printed when it "
        "started (`http://HOST:PORT/?token=...`), or enter the token here."
    )
    if st.session_state.get(_WRONG):
        st.error("Wrong token.", icon=":material/error:")
    with st.form("turnscope_login", border=False):
        given = st.text_input("Access token", type="password")
        if st.form_submit_button("Open the viewer"):
            if token_matches(given.strip(), token):
                _admit()
            else:
                st.session_state[_WRONG] = True
            st.rerun()


def _gate_oidc() -> None:
    import streamlit as st

    if st.user.is_logged_in:
        with st.sidebar:
            st.caption(f"Signed in as {st.user.get('email') or st.user.get('name') or 'you'}")
            st.button("Log out", on_click=st.logout)
        return
    st.markdown("### :material/lock: turnscope")
    st.write("This viewer needs you to log in.")
    st.button("Log in", on_click=st.login, type="primary")
    st.stop()


def open_url(host: str, port: int, token: str) -> str:
    """The URL ``turnscope view --auth token`` prints: ``http://HOST:PORT/?token=...`` (a
    wildcard address is shown as this machine's name, as Jupyter does)."""
    import socket
    from urllib.parse import quote

    shown = host.strip("[]")
    if shown in ("0.0.0.0", "::", ""):
        shown = socket.gethostname() or "127.0.0.1"
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/?{QUERY}={quote(token, safe='')}"


AUTH_KEYS = ("server_metadata_url", "client_id", "client_secret", "redirect_uri", "cookie_secret")


def secrets_files(given: str | None) -> list[Path]:
    """Where Streamlit reads secrets for ``turnscope view``: ``given``, else the project's
    ``./.streamlit/secrets.toml`` and the user's ``~/.streamlit/secrets.toml``."""
    if given:
        return [Path(given).expanduser().resolve()]
    return [Path.cwd() / ".streamlit" / "secrets.toml", Path.home() / ".streamlit" / "secrets.toml"]


def oidc_secrets(given: str | None) -> Path:
    """The secrets file holding a complete ``[auth]`` section (ValueError: none does); its
    values are never printed."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    candidates = secrets_files(given)
    for path in candidates:
        if not path.is_file():
            continue
        try:
            auth = tomllib.loads(path.read_text()).get("auth")
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read {path}: {exc}") from None
        if not isinstance(auth, dict):
            continue
        missing = [key for key in AUTH_KEYS if not auth.get(key)]
        if missing:
            raise ValueError(f"the [auth] section of {path} lacks {', '.join(missing)}")
        if not _has_authlib():
            raise ValueError("--auth oidc needs Authlib: pip install 'turnscope[oidc]'")
        return path
    raise ValueError(
        "--auth oidc needs an [auth] section ("
        + ", ".join(AUTH_KEYS)
        + ") in "
        + " or ".join(str(p) for p in candidates)
    )


def _has_authlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("authlib") is not None
