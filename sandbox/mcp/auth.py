"""Bearer-token protection for the HTTP transport.

Anyone who can reach the port can run code and use its CPU, so a server reachable from other
hosts must demand a token; on loopback a token is optional (other local users can still reach
it, which the docs point out). The token is checked by the SDK's bearer middleware, which
answers 401 to a missing or wrong token before any MCP handling happens.
"""

from __future__ import annotations

import hmac
import ipaddress

from mcp.server.auth.provider import AccessToken

TOKEN_ENV = "LLM_WASM_SANDBOX_MCP_TOKEN"
# Every holder of the shared token is the same principal; clients are told apart by their MCP
# session instead (see identity.py).
_PRINCIPAL = "llm-wasm-sandbox-token"


class ServerConfigError(ValueError):
    """The server was asked to start in a way that is unsafe or cannot work."""


class StaticTokenVerifier:
    """Accepts exactly one shared token, compared in constant time."""

    def __init__(self, token: str) -> None:
        self._expected = token.encode("utf-8")

    async def verify_token(self, token: str) -> AccessToken | None:
        if not hmac.compare_digest(token.encode("utf-8"), self._expected):
            return None
        return AccessToken(token=token, client_id=_PRINCIPAL, scopes=[])


def _is_loopback(host: str) -> bool:
    """True only for addresses no other machine can reach; unknown host names count as remote."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_http_exposure(host: str, auth_token: str | None) -> None:
    """Refuse to serve a non-loopback address without a token, and refuse useless tokens."""
    if auth_token is not None and not auth_token.strip():
        raise ServerConfigError(f"the auth token is empty; set a long random value in {TOKEN_ENV}")
    if auth_token is None and not _is_loopback(host):
        raise ServerConfigError(
            f"refusing to serve {host!r} without authentication: anyone who can reach it could "
            f"run code on this machine. Pass --auth-token (or set {TOKEN_ENV}) to a long random "
            "secret, or bind to 127.0.0.1."
        )
