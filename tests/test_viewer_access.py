"""Who may see the viewer, in a real browser (Playwright driving Debian's headless Chromium):
`turnscope view --auth token` and `--auth oidc` (Streamlit's st.login against a small local
OpenID Connect provider). "No data" is checked on what the server sends, every websocket
frame the browser receives, not only on the screen; and database credentials never reach the
page or the server's log. The refusal to listen beyond this machine without access control
is in test_cli_errors.py style, without a browser: tests/test_viewer_bind.py.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("streamlit")

from support.browser import WAIT_MS
from support.viewer import ViewerServer, demo_database

from turnscope.store.queries import Store
from turnscope.viewer.access import COOKIE, cookie_value

pytestmark = pytest.mark.browser

TOKEN = "tok-" + "Zq7" * 12  # what TURNSCOPE_VIEW_TOKEN holds in these tests
PROMPT = "needs its access token"
DATA = re.compile(r"Runs 1–\d+ of \d+\.")  # the runs page drew its list


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_database(tmp_path_factory)


@pytest.fixture(scope="module")
def secrets_of_db(demo_db: Path) -> list[str]:
    """What must not reach a browser that was not let in: every trace id and workflow name
    of the demo's runs and the database's path."""
    store = Store(os.fspath(demo_db))
    try:
        rows = store.list_runs(limit=1000)
    finally:
        store.close()
    names = {r["workflow"] for r in rows if len(r["workflow"] or "") >= 5}
    return [str(demo_db), demo_db.name, *names, *(r["trace_id"] for r in rows)]


@pytest.fixture(scope="module")
def token_server(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """`turnscope view --auth token` on 127.0.0.1 with a known $TURNSCOPE_VIEW_TOKEN."""
    viewer = ViewerServer(
        demo_db,
        args=("--auth", "token"),
        env={"TURNSCOPE_VIEW_TOKEN": TOKEN},
        log_dir=tmp_path_factory.mktemp("token-viewer"),
    )
    try:
        viewer.wait()
        yield viewer
    finally:
        viewer.stop()


class Tab:
    """A page in its own browser context that keeps every websocket frame it receives."""

    def __init__(self, browser: Any, context: Any = None) -> None:
        self.context = context or browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.frames: list[bytes] = []
        self.page.on("websocket", self._socket)

    def _socket(self, ws: Any) -> None:
        def keep(payload: Any) -> None:
            self.frames.append(payload if isinstance(payload, bytes) else payload.encode())

        ws.on("framereceived", keep)

    def goto(self, url: str) -> None:
        self.page.goto(url)
        self.page.locator('[data-testid="stMain"]').wait_for(timeout=WAIT_MS)

    def see(self, text: str | re.Pattern[str]) -> None:
        self.page.get_by_text(text).first.wait_for(timeout=WAIT_MS)
        self.settled()

    def settled(self) -> None:
        self.page.wait_for_timeout(300)
        self.page.locator('[data-testid="stStatusWidget"]').wait_for(
            state="hidden", timeout=WAIT_MS
        )

    def leaked(self, needles: list[str]) -> list[str]:
        """The needles found in any frame received so far."""
        data = b"\n".join(self.frames)
        return [n for n in needles if n.encode() in data]

    def cookie(self, wait: bool = False) -> str | None:
        """The viewer's cookie in this context (``wait``: until the page's script set it)."""
        for _ in range(50 if wait else 1):
            found = [c["value"] for c in self.context.cookies() if c["name"] == COOKIE]
            if found:
                return found[0]
            self.page.wait_for_timeout(200)
        return None

    def close(self) -> None:
        self.context.close()


def test_without_the_token_no_data_reaches_the_browser(
    token_server: ViewerServer, chromium: Any, secrets_of_db: list[str]
) -> None:
    """The runs page, a run's deep link, the failures page and a wrong token: each draws the
    login prompt only; no frame the browser receives holds a trace id, a workflow name or the
    database's path, and no cookie is set."""
    tab = Tab(chromium)
    try:
        trace_id = secrets_of_db[-1]
        for path in ("/", f"/run?trace_id={trace_id}", "/failures", "/?token=wrong-token"):
            tab.goto(token_server.url + path)
            tab.see(PROMPT)
        tab.see("Wrong token.")
        assert tab.page.get_by_text(DATA).count() == 0
        assert tab.frames, "no websocket frames were seen: the check would prove nothing"
        assert tab.leaked(secrets_of_db) == []
        assert tab.leaked(["Database:", TOKEN, cookie_value(TOKEN)]) == []
        assert tab.cookie() is None
    finally:
        tab.close()


def test_the_token_in_the_url_once_then_the_cookie(
    token_server: ViewerServer, chromium: Any, secrets_of_db: list[str]
) -> None:
    """`/?token=...` opens the viewer, leaves the address bar and sets a cookie holding an
    HMAC of the token (not the token); a later visit without the token is let in by that
    cookie alone; a forged cookie is not."""
    tab = Tab(chromium)
    try:
        tab.goto(f"{token_server.url}/?token={TOKEN}")
        tab.see(DATA)
        assert "token=" not in tab.page.url
        assert tab.cookie(wait=True) == cookie_value(TOKEN) and TOKEN not in (tab.cookie() or "")
        assert tab.leaked(secrets_of_db[-3:]), "the runs reached the browser that was let in"

        later = Tab(chromium, context=tab.context)  # a new tab of the same browser profile
        trace_id = secrets_of_db[-1]
        later.goto(f"{token_server.url}/run?trace_id={trace_id}")
        later.see(trace_id)
        assert later.page.get_by_text(PROMPT).count() == 0
    finally:
        tab.close()

    forged = Tab(chromium)
    try:
        forged.context.add_cookies(
            [{"name": COOKIE, "value": cookie_value("not-the-token"), "url": token_server.url}]
        )
        forged.goto(token_server.url + "/")
        forged.see(PROMPT)
        assert forged.leaked(secrets_of_db) == []
    finally:
        forged.close()


def test_the_token_typed_into_the_prompt(
    token_server: ViewerServer, chromium: Any, secrets_of_db: list[str]
) -> None:
    """A wrong token typed into the prompt is refused; the right one opens the viewer and
    sets the cookie. The server's log shows the token once: the URL printed at start."""
    tab = Tab(chromium)
    try:
        tab.goto(token_server.url + "/")
        field = tab.page.get_by_label("Access token")
        field.fill("nope")
        tab.page.get_by_role("button", name="Open the viewer").click()
        tab.see("Wrong token.")
        assert tab.leaked(secrets_of_db) == []
        field.fill(TOKEN)
        tab.page.get_by_role("button", name="Open the viewer").click()
        tab.see(DATA)
        assert tab.cookie(wait=True) == cookie_value(TOKEN)
    finally:
        tab.close()
    log = token_server.log.read_text()
    opened = [line for line in log.splitlines() if TOKEN in line]
    assert opened == [f"turnscope: open http://127.0.0.1:{token_server.port}/?token={TOKEN}"]
    assert "token required" in log and "warm-up skipped" not in log, log
    assert "error box" not in log and "Traceback" not in log, log


@pytest.fixture(scope="module")
def oidc(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A local OpenID Connect provider and `turnscope view --auth oidc` configured for it in
    a secrets file of its own (``--secrets``)."""
    pytest.importorskip("authlib")
    from support.net import free_port
    from support.oidc_provider import OidcProvider

    folder = tmp_path_factory.mktemp("oidc-viewer")
    port = free_port()
    redirect = f"http://127.0.0.1:{port}/oauth2callback"
    provider = OidcProvider("turnscope-viewer", "client-secret-for-tests", redirect).start()
    secrets = folder / "secrets.toml"
    secrets.write_text(
        "[auth]\n"
        f'redirect_uri = "{redirect}"\n'
        'cookie_secret = "cookie-secret-for-tests-0123456789"\n'
        f'client_id = "{provider.client_id}"\n'
        f'client_secret = "{provider.client_secret}"\n'
        f'server_metadata_url = "{provider.metadata_url}"\n'
    )
    viewer = ViewerServer(
        demo_db, args=("--auth", "oidc", "--secrets", str(secrets)), log_dir=folder, port=port
    )
    try:
        viewer.wait()
        yield viewer, provider
    finally:
        viewer.stop()
        provider.stop()


def test_an_openid_connect_login(
    oidc: tuple[ViewerServer, Any], chromium: Any, secrets_of_db: list[str]
) -> None:
    """Before login: a "Log in" button and no data on the websocket. A click goes to the
    provider, which signs the test user in and sends the browser back with a code; Streamlit
    trades it for an RS256 id_token, checks it against the provider's keys, and the viewer
    opens with the user named in the sidebar."""
    viewer, provider = oidc
    tab = Tab(chromium)
    try:
        tab.goto(viewer.url + "/")
        tab.see("This viewer needs you to log in.")
        assert tab.leaked(secrets_of_db) == []
        tab.page.get_by_role("button", name="Log in").click()
        tab.see(DATA)
        assert provider.logins == 1 and provider.errors == []
        tab.see("Signed in as ada@example.test")
        assert tab.leaked(secrets_of_db[-3:])
    finally:
        tab.close()
    log = viewer.log.read_text()
    assert "OpenID Connect" in log and "client-secret-for-tests" not in log, log


@pytest.mark.postgres
def test_database_credentials_never_reach_the_page_or_the_log(
    pg_url: str, chromium: Any, tmp_path: Path
) -> None:
    """A PostgreSQL URL with a password: the sidebar shows it masked, and neither the page
    (every websocket frame), nor an error about the database, nor the start lines, nor
    Streamlit's log ever hold the password."""
    from diagnosed import write_diagnosed

    write_diagnosed(pg_url)
    password = "pw-S3cret-9f1x"
    good = pg_url.replace("postgres@", f"postgres:{password}@", 1)
    bad = good.rsplit("/", 1)[0] + "/no_such_database"
    for db, expect in ((good, DATA), (bad, "Cannot open the database")):
        viewer = ViewerServer(
            db, args=("--auth", "token"), env={"TURNSCOPE_VIEW_TOKEN": TOKEN}, log_dir=tmp_path
        )
        tab = Tab(chromium)
        try:
            viewer.wait()
            tab.goto(f"{viewer.url}/?token={TOKEN}")
            tab.see(expect)
            if db == good:
                tab.see("postgres:***@")  # the sidebar names the database, masked
            else:  # the error on another page too
                tab.goto(f"{viewer.url}/failures")
                tab.see(expect)
            assert tab.frames and tab.leaked([password]) == []
            assert password not in tab.page.content()
        finally:
            tab.close()
            viewer.stop()
        log = viewer.log.read_text()
        assert "turnscope viewer on http://127.0.0.1" in log and "postgres:***@" in log, log
        assert password not in log, log
    assert "no_such_database" in log  # the warning at start named the database, masked
