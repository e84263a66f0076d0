"""Every RPC plateforge serves, found from the generated descriptors, so a new .proto service or
rpc is covered by the security and fuzz tests without editing them."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import MethodDescriptor

import plateforge.v1


@dataclass(frozen=True)
class Rpc:
    service: str
    name: str
    descriptor: MethodDescriptor

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.name}"

    @property
    def id(self) -> str:
        return f"{self.service.rsplit('.', 1)[-1]}.{self.name}"

    def invoke(
        self,
        channel: grpc.Channel,
        requests: list[bytes],
        *,
        metadata: tuple[tuple[str, str], ...] = (),
        timeout: float = 10.0,
    ) -> list[bytes]:
        """Call the method with serialised ``requests`` (one for a unary request); the replies.
        Raises grpc.RpcError as the server answered."""
        client_streams = self.descriptor.client_streaming
        server_streams = self.descriptor.server_streaming
        kind: Callable[..., Any]
        if client_streams and server_streams:
            kind = channel.stream_stream(self.path, None, None)
            return list(kind(iter(requests), metadata=metadata, timeout=timeout))
        if client_streams:
            kind = channel.stream_unary(self.path, None, None)
            return [kind(iter(requests), metadata=metadata, timeout=timeout)]
        if server_streams:
            kind = channel.unary_stream(self.path, None, None)
            return list(kind(requests[0] if requests else b"", metadata=metadata, timeout=timeout))
        kind = channel.unary_unary(self.path, None, None)
        return [kind(requests[0] if requests else b"", metadata=metadata, timeout=timeout)]


def all_rpcs() -> list[Rpc]:
    """Every rpc of every service in the plateforge.v1 stubs."""
    found = []
    for module in _stub_modules():
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                found.append(Rpc(service.full_name, method.name, method))
    return sorted(found, key=lambda r: r.path)


def _stub_modules() -> Iterator[Any]:
    for info in pkgutil.iter_modules(plateforge.v1.__path__):
        if info.name.endswith("_pb2"):
            yield importlib.import_module(f"plateforge.v1.{info.name}")
