"""Colour management and signed review media (``plateforge proxy``, ``--input-colorspace``).

The modules import OpenColorIO, the C2PA SDK, Pillow and PyAV (the ``review`` extra) only when
a transform, a proxy or a signature is made, so ``import plateforge.review`` works without them.
"""

from __future__ import annotations

from plateforge.review.colour import DEFAULT_CONFIG, DEFAULT_DISPLAY, ColourConversion, load_config, to_display
from plateforge.review.media import movie_available, write_movie, write_still
from plateforge.review.proxy import ProxyJob, ProxyResult, card_facts, make_proxies
from plateforge.review.signing import (
    DIGITAL_SOURCE_TYPES,
    LINEAGE_LABEL,
    SIDECAR_SUFFIX,
    Credentials,
    ReadBack,
    SigningKey,
    read_credentials,
    sign_proxy,
    sign_sidecar,
)

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_DISPLAY",
    "DIGITAL_SOURCE_TYPES",
    "LINEAGE_LABEL",
    "SIDECAR_SUFFIX",
    "ColourConversion",
    "Credentials",
    "ProxyJob",
    "ProxyResult",
    "ReadBack",
    "SigningKey",
    "card_facts",
    "load_config",
    "make_proxies",
    "movie_available",
    "read_credentials",
    "sign_proxy",
    "sign_sidecar",
    "to_display",
    "write_movie",
    "write_still",
]
