"""docker/compose.yaml and docker/Dockerfile, checked without a Docker engine (these machines
run none): the file parses, it has the services and ports the README and docs/teams.md name,
every published port is bound to the address documented for it, and every `turnscope view`
in them passes the viewer's own refusal to serve beyond this machine without access control.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # the dev extra's PyYAML

from turnscope import cli
from turnscope.viewer import access

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker" / "compose.yaml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"

# (service, host address, host port, container port), as documented at the top of the file,
# in README "For teams" and docs/teams.md
PUBLISHED = {
    ("jaeger", "127.0.0.1", 16686, 16686),
    ("jaeger", "127.0.0.1", 4317, 4317),
    ("jaeger", "127.0.0.1", 4318, 4318),
    ("viewer", "127.0.0.1", 8501, 8501),
    ("postgres", "127.0.0.1", 5432, 5432),
    ("team-viewer", "0.0.0.0", 8502, 8501),
}
TEAM = {"postgres", "team-viewer"}


def _defaults(text: str) -> str:
    """Compose's interpolation with nothing set: ``${VAR:-default}`` -> default."""
    return re.sub(r"\$\{[A-Z_]+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(_defaults(COMPOSE.read_text()))


def _ports(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    out = []
    for entry in service.get("ports", []):
        parts = str(entry).rsplit(":", 2)
        assert len(parts) == 3, f"{entry!r}: a port published without an address binds them all"
        out.append((parts[0].strip("[]"), int(parts[1]), int(parts[2])))
    return out


def test_services_profiles_and_published_ports(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"jaeger", "demo", "viewer", *TEAM}
    for name, service in services.items():
        assert (service.get("profiles") == ["team"]) == (name in TEAM), name
    published = {(name, *port) for name, s in services.items() for port in _ports(s)}
    assert published == PUBLISHED
    assert {"turnscope-data", "turnscope-pg"} <= set(compose["volumes"])


def _view_args(command: list[str]) -> Any:
    assert command[:2] == ["turnscope", "view"], command
    return cli.build_parser().parse_args([str(part) for part in command[1:]])


def test_every_viewer_passes_the_refusal_and_only_a_loopback_one_opts_out(
    compose: dict[str, Any],
) -> None:
    """A viewer published beyond 127.0.0.1 asks for a token; --allow-no-auth only where every
    published port is on 127.0.0.1."""
    for name in ("viewer", "team-viewer"):
        service = compose["services"][name]
        args = _view_args(service["command"])
        assert access.refusal(args.host, args.auth, args.allow_no_auth) is None, name
        loopback_only = all(access.is_loopback(ip) for ip, _, _ in _ports(service))
        assert args.auth == "token" or (args.allow_no_auth and loopback_only), name
    team = compose["services"]["team-viewer"]
    assert _view_args(team["command"]).auth == "token"
    assert team["environment"]["TURNSCOPE_DB"].startswith("postgresql+psycopg://turnscope:")
    assert "@postgres:5432/turnscope" in team["environment"]["TURNSCOPE_DB"]
    assert "TURNSCOPE_VIEW_TOKEN" in team["environment"]
    assert team["depends_on"]["postgres"]["condition"] == "service_healthy"
    raw = COMPOSE.read_text()  # the password comes from the environment, never the file
    assert "POSTGRES_PASSWORD: ${TURNSCOPE_PG_PASSWORD:-}" in raw
    assert "turnscope:${TURNSCOPE_PG_PASSWORD:-}@postgres" in raw


def test_the_image_serves_with_a_token_and_has_the_postgres_driver() -> None:
    text = DOCKERFILE.read_text()
    command = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    args = _view_args(command)
    assert args.host == "0.0.0.0" and args.auth == "token"
    assert access.refusal(args.host, args.auth, args.allow_no_auth) is None
    assert 'pip install ".[viewer,postgres]"' in text


def test_the_readme_and_docs_name_the_same_ports() -> None:
    readme = (ROOT / "README.md").read_text()
    teams = readme[readme.index("## For teams") :]
    assert "--profile team" in teams and "8502" in teams and "--auth token" in teams
    docs = (ROOT / "docs" / "teams.md").read_text()
    for _, ip, port, _ in PUBLISHED:
        assert f"{ip}:{port}" in docs, (ip, port)
