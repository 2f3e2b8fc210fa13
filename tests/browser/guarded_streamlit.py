"""Run ``streamlit`` with a socket guard: every non-loopback connect()/sendto() and every DNS lookup of a
name other than localhost is appended to the file named by ``LLMVIZ_CONNECT_LOG`` (and still attempted,
so behaviour is unchanged). Used by test_outbound_browser.py."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import traceback

LOG = os.environ["LLMVIZ_CONNECT_LOG"]
LOCAL_NAMES = {"localhost", "ip6-localhost", "", None}


def _record(kind: str, target) -> None:
    where = "".join(traceback.format_stack(limit=8)[:-2]).replace("\n", " | ")
    with open(LOG, "a", encoding="utf-8") as fh:
        fh.write(f"{kind} {target!r} :: {where}\n")


def _is_local(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if host in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _check_addr(kind, sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple) and not _is_local(address[0]):
        _record(kind, address)


_connect, _connect_ex, _sendto = socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto
_getaddrinfo = socket.getaddrinfo


def connect(self, address):
    _check_addr("connect", self, address)
    return _connect(self, address)


def connect_ex(self, address):
    _check_addr("connect_ex", self, address)
    return _connect_ex(self, address)


def sendto(self, data, *args):
    _check_addr("sendto", self, args[-1])
    return _sendto(self, data, *args)


def getaddrinfo(host, *args, **kwargs):
    if not _is_local(host):
        _record("dns", host)
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto = connect, connect_ex, sendto
socket.getaddrinfo = getaddrinfo

if __name__ == "__main__":
    from streamlit.web.cli import main

    sys.argv = ["streamlit", *sys.argv[1:]]
    sys.exit(main())
