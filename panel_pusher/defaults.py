"""Defaults of the embedded server, meant for loopback use only.

The app id is numeric because the ``pusher`` SDK (3.3.4) rejects any other
app id. The key and secret are public knowledge, so a server that binds a
non-loopback address must be given its own secret.
"""

from __future__ import annotations

import ipaddress
import socket

DEFAULT_HOST = "127.0.0.1"

DEFAULT_PORT = 6001

DEFAULT_APP_ID = "1001"

DEFAULT_KEY = "panel-pusher-local-key"

DEFAULT_SECRET = "panel-pusher-local-secret"


def is_loopback(host: str) -> bool:
    """Tell whether every address that ``host`` resolves to is a loopback address."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass

    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False

    addresses = {info[4][0].split("%")[0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)
