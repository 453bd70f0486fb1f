"""Reaching a running Ray cluster (``run.address``): a bounded check that the address is Ray's.

Why a check before ``ray.init``: connecting to an address that is not a Ray head blocks inside
Ray's C++ client for many minutes, deaf to Ctrl-C, and a head that wants an auth token we do not
send fails after 20 s of retries as a ``ConnectionError`` (an ``OSError``, which reads as a full
disk). So before Ray is touched, :func:`check_address` asks the head's GCS for its cluster id
over gRPC, with a timeout of a few seconds: it answers (a Ray head), refuses without a token, or
fails, and each failure is one :class:`~autophagy.errors.ClusterError` line naming
``run.address`` and what to check.

Auth tokens (Ray 2.5x): ``ray start --head`` turns token auth on when a token file exists
(``~/.ray/auth_token``, which any local ``ray.init()`` writes), but ``ray.init(address=...)``
sends the token only when ``RAY_AUTH_MODE=token``. For a head on this machine (a loopback
address) the token here is the head's, so :func:`check_address` says to send it, as Ray itself
does for ``address="auto"``; for another host the user sets ``RAY_AUTH_MODE=token``, as Ray
asks (a token is never sent to a remote address unasked).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

from autophagy.errors import ClusterError

PROBE_SECONDS = 5.0
"""How long each step of :func:`check_address` waits (TCP connect, gRPC handshake, one call)."""
_CLUSTER_ID = "/ray.rpc.NodeInfoGcsService/GetClusterId"
"""The first call Ray's own client makes to a head: an empty request, answered by any GCS."""


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:port`` for IPv6) as (host, port); a one-line error otherwise."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(
            f"run.address: {address!r} is not host:port (e.g. 127.0.0.1:6379, the address "
            "'ray start --head' prints), 'auto' or ray://host:10001"
        )
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine's loopback (``127.0.0.1``, ``::1``, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_token() -> tuple[str, str] | None:
    """(token, where it came from) as Ray looks for it: ``RAY_AUTH_TOKEN``, the file
    ``RAY_AUTH_TOKEN_PATH`` names, ``~/.ray/auth_token``; None when there is none."""
    if token := os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return token, "RAY_AUTH_TOKEN"
    named = os.environ.get("RAY_AUTH_TOKEN_PATH")
    for path, where in ((named, "RAY_AUTH_TOKEN_PATH"), (Path.home() / ".ray" / "auth_token",
                                                         "~/.ray/auth_token")):
        if path and Path(path).is_file():
            token = Path(path).read_text().strip()
            if token:
                return token, where
    return None


def check_address(address: str, *, timeout: float = PROBE_SECONDS) -> bool:
    """Check within a few ``timeout`` that ``address`` (host:port) is a Ray head's GCS that lets
    us in; returns whether ``ray.init`` must send this machine's auth token (see the module).

    Raises:
        ClusterError: the address is malformed, refuses connections, is not Ray (no gRPC
            answer, or not a GCS), or asks for a token this process cannot send.
    """
    host, port = split_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as err:
        raise ClusterError(
            f"run.address: cannot reach a Ray cluster at {address!r} ({err}); start one with "
            "'ray start --head' and give its address, or leave run.address empty for a local Ray"
        ) from None
    code = _ask_cluster_id(host, port, None, timeout, address)
    if code is None:
        return False
    mode = os.environ.get("RAY_AUTH_MODE", "").lower()
    found = local_token()
    if found is None or mode == "disabled" or (mode != "token" and not is_loopback(host)):
        where = "" if found is None else f" (one is in {found[1]}: set RAY_AUTH_MODE=token)"
        raise ClusterError(
            f"run.address: the Ray cluster at {address!r} asks for an auth token{where}; give "
            "this machine the head's token (as 'ray get-auth-token' prints it on the head) in "
            "~/.ray/auth_token or RAY_AUTH_TOKEN, with RAY_AUTH_MODE=token"
        )
    if _ask_cluster_id(host, port, found[0], timeout, address) is not None:
        raise ClusterError(
            f"run.address: the Ray cluster at {address!r} refuses the auth token in {found[1]}; "
            "use the head's (as 'ray get-auth-token' prints it on the head)"
        )
    return True


def _ask_cluster_id(
    host: str, port: int, token: str | None, timeout: float, address: str
) -> str | None:
    """Ask the GCS for its cluster id: None when it answers, ``"token"`` when it wants one."""
    import grpc

    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    metadata = [("authorization", f"Bearer {token}")] if token else None
    check = ("check that it is the head's GCS port (the --port of 'ray start --head', 6379 by "
             "default, not the dashboard's or Ray Client's)")
    with grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)]) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise ClusterError(
                f"run.address: {address!r} accepts connections but does not answer as Ray "
                f"within {timeout:g} s; {check}"
            ) from None
        ask = channel.unary_unary(_CLUSTER_ID)
        try:
            ask(b"", timeout=timeout, metadata=metadata)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                return "token"
            raise ClusterError(
                f"run.address: {address!r} is not a Ray head ({err.code().name}: "
                f"{err.details()}); {check}"
            ) from None
    return None
