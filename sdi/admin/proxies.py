"""Honour X-Forwarded-For/-Proto only from trusted reverse proxies.

Behind a reverse proxy every request comes from the proxy's address, so the
sign-in back-off per address would see one address for everyone. With
``SDI_TRUSTED_PROXIES`` set, a request whose immediate peer is in one of those
networks goes through werkzeug's ``ProxyFix``: ``request.remote_addr`` becomes
the client the proxy saw (walking back over further trusted proxies in the
X-Forwarded-For chain) and ``request.scheme`` the proxy's X-Forwarded-Proto.
Any other peer's X-Forwarded-* headers are ignored, so a client cannot pick
its own address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.middleware.proxy_fix import ProxyFix

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["TrustedProxies", "trust_proxies"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# More forwarding hops than any sane deployment has; the rest is ignored.
_MAX_HOPS = 8


class TrustedProxies:
    """WSGI middleware: ``ProxyFix`` for requests from trusted proxies only."""

    def __init__(self, app: WSGIApplication, networks: Iterable[str]) -> None:
        self.app = app
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in networks
        )
        self._fixes = {
            hops: ProxyFix(app, x_for=hops, x_proto=1)
            for hops in range(1, _MAX_HOPS + 1)
        }

    def trusted(self, address: str) -> bool:
        """Whether ``address`` is one of the trusted proxies."""
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Serve the request, through ``ProxyFix`` when the peer is trusted."""
        if not self.trusted(environ.get("REMOTE_ADDR", "")):
            return self.app(environ, start_response)
        chain = [
            a.strip()
            for a in environ.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if a.strip()
        ]
        if not chain:
            return self.app(environ, start_response)
        # The last entry is the address our peer saw; while that is another
        # trusted proxy, the one before it is closer to the client.
        hops = 1
        while hops < min(len(chain), _MAX_HOPS) and self.trusted(chain[-hops]):
            hops += 1
        fix: Any = self._fixes[hops]
        result: Iterable[bytes] = fix(environ, start_response)
        return result


def trust_proxies(app: Any, networks: Iterable[str]) -> Any:
    """``app`` behind :class:`TrustedProxies`, or ``app`` itself without networks."""
    networks = tuple(networks)
    return TrustedProxies(app, networks) if networks else app
