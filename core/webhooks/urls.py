"""Endpoint URL checks: http(s) only, and no loopback, private, link-local or otherwise internal target
(SSRF) unless the operator allows it (KEEL_WEBHOOKS_ALLOW_PRIVATE). Checked when an endpoint is registered
and again before every delivery (a name may resolve elsewhere later); redirects are never followed."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from core.errors import InvalidRequest


def _internal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidRequest(f"The webhook URL's host {host!r} does not resolve.", param="url") from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def check(url: str, allow_private: bool) -> str:
    """The URL, if Keel may post to it; else InvalidRequest (param ``url``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest("The webhook URL must be an absolute http(s) URL.", param="url")
    if parts.username or parts.password:
        raise InvalidRequest("The webhook URL must not carry credentials.", param="url")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise InvalidRequest("The webhook URL's port is invalid.", param="url") from exc
    if allow_private:
        return url
    bad = [str(ip) for ip in resolve(parts.hostname, port) if _internal(ip)]
    if bad:
        raise InvalidRequest(
            f"The webhook URL resolves to a loopback, private or link-local address ({bad[0]}); refused.",
            param="url",
            code="url_not_allowed",
        )
    return url
