"""The private attributes `toolkit/redis.py` relies on, against the installed redis-py and
Django and the real Redis: when an upgrade renames or changes one, these tests fail and say
that the adapter needs updating."""

from __future__ import annotations

import socket
import struct

import pytest
from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.test import override_settings

from toolkit.redis import connect, is_connected, new_connection, redis_client

ADAPTER = "toolkit/redis.py (the Redis adapter) relies on"


@pytest.fixture
def connection():
    """A connection made by the adapter, disconnected at the end."""
    made = new_connection(redis_client())
    yield made
    made.disconnect()


def kernel_limits(sock: socket.socket) -> tuple[float, float]:
    """SO_RCVTIMEO and SO_SNDTIMEO of a socket, in seconds."""
    limits = []
    for option in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
        seconds, micros = struct.unpack("ll", sock.getsockopt(socket.SOL_SOCKET, option, 16))
        limits.append(seconds + micros / 1e6)
    return limits[0], limits[1]


def test_redis_client__from_the_cache_backends_private_client__works_and_is_kept():
    backend = caches[DEFAULT_CACHE_ALIAS]
    assert hasattr(backend, "_cache"), f"{ADAPTER} Django's RedisCache._cache, which is gone"
    assert callable(getattr(backend._cache, "get_client", None)), (
        f"{ADAPTER} Django's RedisCache._cache.get_client(write=True), which is gone"
    )

    client = redis_client()

    assert client is redis_client()
    cache.set("adapter-test", 41, timeout=60)  # integers are stored raw
    assert client.get(cache.make_key("adapter-test")) == b"41"
    client.incr(cache.make_key("adapter-test"))
    assert cache.get("adapter-test") == 42


def test_new_connection__made_from_the_pools_settings():
    pool = redis_client().connection_pool
    assert hasattr(pool, "connection_class") and isinstance(pool.connection_kwargs, dict), (
        f"{ADAPTER} redis-py's ConnectionPool.connection_class and connection_kwargs"
    )

    made = new_connection(redis_client())

    assert type(made) is pool.connection_class
    assert (made.host, made.port, made.db) == (
        pool.connection_kwargs["host"],
        pool.connection_kwargs["port"],
        pool.connection_kwargs.get("db", 0),
    )


def test_socket_attribute__none_before_connect__a_socket_after__none_after_disconnect(connection):
    assert hasattr(connection, "_sock"), f"{ADAPTER} redis-py's AbstractConnection._sock, which is gone"
    assert connection._sock is None, f"{ADAPTER} AbstractConnection._sock being None before connect()"
    assert not is_connected(connection)

    connect(connection)

    assert isinstance(connection._sock, socket.socket), (
        f"{ADAPTER} AbstractConnection._sock being the socket once connected"
    )
    assert is_connected(connection)
    connection.send_command("PING")
    assert connection.read_response() in (b"PONG", "PONG")

    connection.disconnect()

    assert connection._sock is None, f"{ADAPTER} AbstractConnection._sock being None after disconnect()"
    assert not is_connected(connection)


def test_connect__waits_bounded_by_the_kernel_with_the_sockets_timeout(connection):
    connect(connection)
    sock = connection._sock

    assert sock.gettimeout() is None, f"{ADAPTER} setting the kernel timeouts on AbstractConnection._sock"
    assert kernel_limits(sock) == pytest.approx((connection.socket_timeout,) * 2)


def test_connect__a_fractional_socket_timeout__kept_to_the_microsecond(settings):
    caches_setting = {
        "default": {**settings.CACHES["default"], "OPTIONS": {"socket_timeout": 0.3}},
    }
    with override_settings(CACHES=caches_setting):
        made = new_connection(redis_client())
        try:
            connect(made)
            assert kernel_limits(made._sock) == pytest.approx((0.3, 0.3))
        finally:
            made.disconnect()


def test_connect__a_dropped_connection__connects_again(connection):
    connect(connection)
    connection.disconnect()

    connect(connection)

    assert is_connected(connection)
    connection.send_command("PING")
    assert connection.read_response() in (b"PONG", "PONG")
