"""Free loopback ports, for private servers (influxd, a local Bytewax cluster) and tests."""

from __future__ import annotations

import socket


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """`n` distinct ports free on `host` right now (all bound at once, so none is handed out twice).

    Another process may take a port between this call and its use; callers that start a server
    on it see a clear bind error rather than a silent clash."""
    socks = [socket.socket() for _ in range(n)]
    try:
        ports: list[int] = []
        for s in socks:
            s.bind((host, 0))
            ports.append(s.getsockname()[1])
        return ports
    finally:
        for s in socks:
            s.close()


def free_port(host: str = "127.0.0.1") -> int:
    return free_ports(1, host)[0]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on host:port (binding as a server would: TIME_WAIT does not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
        return False
