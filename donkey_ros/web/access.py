"""Who may use the web controller: pure functions of (peer, bind host, token, request headers).

Bound to loopback (the default), only this machine can connect and no token is needed. Bound to a
network address, every request from another machine must carry the token (``?token=`` in the URL,
then a cookie). Two browser-side attacks are closed as well, on every request and WebSocket,
on loopback and on the network alike:

- DNS rebinding: a page of ``evil.example`` whose name the attacker re-points at this machine
  sends ``Host: evil.example``. Only the names and addresses the server is reachable by are
  accepted (``HostCheck``): loopback names and addresses, this machine's host names (``NAME``,
  ``NAME.local``, its FQDN), the bound address, for a wildcard bind (0.0.0.0, ::) any address
  of this machine, and the names listed in the ``allowed_hosts`` parameter (a reverse proxy,
  a DNS name of the car).
- Cross-site requests: a request with an ``Origin`` must come from the page itself (same
  host:port as its ``Host``).
"""
from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket
from urllib.parse import urlsplit

from donkey_ros.common.errors import DonkeyRosError

COOKIE = 'donkey_ros_token'
LOOPBACK_NAMES = ('localhost', 'localhost.localdomain', 'ip6-localhost')


class AccessError(DonkeyRosError):
    """The server's host/token settings are not usable."""


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8, ::1, ::ffff:127.x and the name ``localhost``."""
    address = (address or '').strip().strip('[]')
    if address.lower() in LOOPBACK_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(address.split('%')[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def needs_token(host: str) -> bool:
    """A server bound to ``host`` needs a token unless only this machine can reach it."""
    return not is_loopback(host)


def generate_token() -> str:
    """A fresh URL-safe token (96 bits)."""
    return secrets.token_urlsafe(12)


def token_matches(token: str, supplied: str | None) -> bool:
    """Constant-time comparison; an empty configured token never matches."""
    if not token or not supplied:
        return False
    return hmac.compare_digest(token.encode(), supplied.encode())


def access_allowed(peer: str | None, host: str, token: str, supplied: str | None) -> bool:
    """Whether a request from ``peer`` may use a server bound to ``host`` with ``token``.

    Requests from this machine (a loopback peer) are always allowed; any other peer must supply
    the token. A non-loopback server without a token refuses every remote request.
    """
    if peer is not None and is_loopback(peer):
        return True
    return token_matches(token, supplied)


def _host_name(host_header: str) -> str:
    """The host part of a ``Host`` header or URL netloc (``[::1]:8887`` -> ``::1``)."""
    try:
        return urlsplit('//' + (host_header or '')).hostname or ''
    except ValueError:  # an unbalanced '[' and the like: no name of ours
        return ''


WILDCARDS = ('0.0.0.0', '::', '')


def machine_names() -> set[str]:
    """This machine's host names: ``NAME``, ``NAME.local`` (mDNS) and its FQDN, lower case."""
    names = set()
    for name in (socket.gethostname(), _fqdn()):
        name = (name or '').lower().rstrip('.')
        if name:
            short = name.split('.')[0]
            names.update({name, short, f'{short}.local'})
    return names


def _fqdn() -> str:
    try:
        return socket.getfqdn()
    except OSError:
        return ''


def is_local_address(address: str) -> bool:
    """True if ``address`` (an IP literal) is an address of this machine: it can be bound."""
    address = address.strip('[]')
    try:
        ip = ipaddress.ip_address(address.split('%')[0])
    except ValueError:
        return False
    if ip.is_unspecified or ip.is_multicast:
        return False
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
    return True


class HostCheck:
    """Which ``Host`` header names a server bound to ``host`` answers to (see module docstring).

    Args:
        host: the bound address or name.
        extra: further names or addresses (the ``allowed_hosts`` parameter).
    """

    def __init__(self, host: str, extra: tuple[str, ...] | list[str] = ()) -> None:
        self.host = (host or '').strip('[]').lower()
        self.wildcard = self.host in WILDCARDS
        self.names = machine_names() | {n.strip().strip('[]').lower().rstrip('.')
                                        for n in extra if n.strip()}
        if not self.wildcard:
            self.names.add(self.host)

    def allows(self, host_header: str | None) -> bool:
        name = _host_name(host_header or '').lower().rstrip('.')
        if not name:
            return False
        if is_loopback(name) or name in self.names:
            return True
        return self.wildcard and is_local_address(name)


def host_header_allowed(host_header: str | None, check: HostCheck) -> bool:
    """Rejects DNS rebinding: only names and addresses this server is reachable by."""
    return check.allows(host_header)


def origin_allowed(origin: str | None, host_header: str | None) -> bool:
    """A browser request must come from our own page (same host:port), not another site.

    Non-browser clients send no ``Origin`` and are allowed (``Host`` and the token are still
    checked, and ``Host`` must name this server, so the page's own origin is one of its names).
    """
    if not origin:
        return True
    return urlsplit(origin).netloc.lower() == (host_header or '').lower()


def check_host(host: str) -> str:
    """Validates the ``host`` parameter (an IP address or a resolvable name)."""
    if not host:
        raise AccessError("parameter 'host' is empty (use 127.0.0.1, or 0.0.0.0 for the network)")
    try:
        socket.getaddrinfo(host, None)
    except socket.gaierror as error:
        raise AccessError(f"parameter 'host' = {host!r} cannot be resolved ({error})") from None
    return host


def local_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses (what ``hostname -I`` shows), best first."""
    found = []
    # No packet is sent: connecting a UDP socket only picks the outgoing interface.
    for target in ('10.255.255.255', '192.168.255.255', '8.8.8.8'):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect((target, 9))
                found.append(probe.getsockname()[0])
            except OSError:
                continue
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.append(info[4][0])
    except OSError:
        pass
    return [a for i, a in enumerate(found) if a not in found[:i] and not is_loopback(a)]


def page_urls(host: str, port: int, token: str) -> list[str]:
    """The URLs to print for people: one per address a phone can use."""
    query = f'/?token={token}' if token and needs_token(host) else '/'
    if host in ('0.0.0.0', '::', ''):
        hosts = local_addresses() or [socket.gethostname()]
    else:
        hosts = [host]
    return [f"http://{f'[{h}]' if ':' in h else h}:{port}{query}" for h in hosts]
