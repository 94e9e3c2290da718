"""A small OpenID Connect provider on 127.0.0.1 for the viewer's login test: a discovery
document, an authorize endpoint that logs a fixed test user in at once (no page), a token
endpoint that issues an RS256-signed id_token (Authlib's JOSE), a JWKS and userinfo. It
checks what a real provider checks: the client id and secret, the redirect URI, the code
(once), PKCE when the client sent a challenge."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import authlib.deprecate  # noqa: F401  (importing it adds an "always" filter for its warnings)

with warnings.catch_warnings():  # Authlib 1.7+ points to joserfc; Streamlit itself uses this
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, jwt

from .net import free_port

USER = {"sub": "test-user-1", "email": "ada@example.test", "name": "Ada Tester"}


class OidcProvider:
    """The provider; ``issuer`` is its base URL, ``logins`` counts the id tokens issued."""

    def __init__(self, client_id: str, client_secret: str, redirect_uri: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.key = JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": "k1"})
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.codes: dict[str, dict[str, Any]] = {}
        self.logins = 0
        self.errors: list[str] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                provider._get(self)

            def do_POST(self) -> None:
                provider._post(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def start(self) -> OidcProvider:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- endpoints ---------------------------------------------------------------------------

    def _get(self, req: BaseHTTPRequestHandler) -> None:
        url = urlparse(req.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/.well-known/openid-configuration":
            self._json(req, self._discovery())
        elif url.path == "/jwks":
            self._json(req, {"keys": [self.key.as_dict(is_private=False)]})
        elif url.path == "/authorize":
            self._authorize(req, query)
        elif url.path == "/userinfo":
            self._json(req, USER)
        else:
            self._json(req, {"error": "not_found"}, 404)

    def _post(self, req: BaseHTTPRequestHandler) -> None:
        if urlparse(req.path).path != "/token":
            self._json(req, {"error": "not_found"}, 404)
            return
        length = int(req.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(req.rfile.read(length).decode()).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = req.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
        grant = self.codes.pop(form.get("code", ""), None)
        problem = None
        if (client_id, client_secret) != (self.client_id, self.client_secret):
            problem = "invalid_client"
        elif form.get("grant_type") != "authorization_code" or grant is None:
            problem = "invalid_grant"
        elif form.get("redirect_uri") != self.redirect_uri:
            problem = "invalid_grant (redirect_uri)"
        elif grant.get("code_challenge"):
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["code_challenge"]:
                problem = "invalid_grant (pkce)"
        if problem:
            self.errors.append(problem)
            self._json(req, {"error": problem}, 400)
            return
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": grant["nonce"],
            **USER,
        }
        header = {"alg": "RS256", "kid": "k1"}
        id_token = jwt.encode(header, claims, self.key).decode()
        self.logins += 1
        self._json(
            req,
            {
                "access_token": secrets.token_urlsafe(16),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            },
        )

    def _authorize(self, req: BaseHTTPRequestHandler, query: dict[str, str]) -> None:
        if query.get("client_id") != self.client_id or query.get("redirect_uri") != (
            self.redirect_uri
        ):
            self.errors.append(f"authorize: bad client or redirect_uri {query}")
            self._json(req, {"error": "invalid_request"}, 400)
            return
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "nonce": query.get("nonce"),
            "code_challenge": query.get("code_challenge"),
        }
        back = f"{self.redirect_uri}?{urlencode({'code': code, 'state': query.get('state', '')})}"
        req.send_response(302)
        req.send_header("Location", back)
        req.end_headers()

    def _discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
        }

    @staticmethod
    def _json(req: BaseHTTPRequestHandler, body: dict[str, Any], status: int = 200) -> None:
        data = json.dumps(body).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.send_header("Cache-Control", "no-store")
        req.end_headers()
        req.wfile.write(data)
