"""SDI_TRUSTED_PROXIES: parsing, and which peers' X-Forwarded-* are honoured.

The sign-in back-off behind a proxy is tested over HTTP in
``test_credentials_http.py``; here the middleware's rules, on a tiny WSGI app.
"""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from sdi.admin.proxies import TrustedProxies, trust_proxies
from sdi.settings import load_settings


@Request.application  # type: ignore[arg-type]
def _echo(request: Request) -> Response:
    return Response(f"{request.remote_addr} {request.scheme}")


def _seen(app: Any, peer: str, **headers: str) -> str:
    environ = {"REMOTE_ADDR": peer}
    response = Client(app).get("/", headers=headers, environ_overrides=environ)
    return response.get_data(as_text=True)


def test_settings_parse_addresses_and_networks() -> None:
    settings = load_settings({"SDI_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8 ::1"})
    assert settings.trusted_proxies == ("127.0.0.1/32", "10.0.0.0/8", "::1/128")
    assert load_settings({}).trusted_proxies == ()
    with pytest.raises(ValueError, match=r"SDI_TRUSTED_PROXIES.*'proxy\.local'"):
        load_settings({"SDI_TRUSTED_PROXIES": "proxy.local"})


def test_only_trusted_peers_are_believed() -> None:
    app = TrustedProxies(_echo, ["10.0.0.0/8", "127.0.0.1"])
    forwarded = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}
    assert _seen(app, "10.1.2.3", **forwarded) == "198.51.100.7 https"
    assert _seen(app, "::ffff:127.0.0.1", **forwarded) == "198.51.100.7 https"
    # Anyone else's headers are ignored.
    assert _seen(app, "192.0.2.1", **forwarded) == "192.0.2.1 http"
    # A trusted peer without the header is itself the client.
    assert _seen(app, "10.1.2.3") == "10.1.2.3 http"


def test_chains_of_trusted_proxies_are_walked_back() -> None:
    app = TrustedProxies(_echo, ["10.0.0.0/8"])
    # A client-supplied first entry is never taken while a hop is untrusted.
    chain = "6.6.6.6, 198.51.100.7, 10.0.0.2"
    assert _seen(app, "10.0.0.1", **{"X-Forwarded-For": chain}).startswith(
        "198.51.100.7 "
    )
    assert _seen(app, "10.0.0.1", **{"X-Forwarded-For": "10.0.0.3"}).startswith(
        "10.0.0.3 "
    )


def test_no_networks_no_middleware() -> None:
    assert trust_proxies(_echo, ()) is _echo
