"""Datasets: the footage a model learns from, each file with its licence and hash.

See :mod:`plateforge.manifest_format` for the manifest format.
"""

from plateforge.manifest_format import (
    KNOWN_SCHEMAS,
    NO_LICENCE,
    ROLES,
    SCHEMA,
    USES,
    Contributor,
    Manifest,
    Pair,
    Source,
    SourceFile,
    check_for_training,
    frame_number,
    load_manifest,
    pairs,
    register,
    to_toml,
)

__all__ = [
    "KNOWN_SCHEMAS",
    "NO_LICENCE",
    "ROLES",
    "SCHEMA",
    "USES",
    "Contributor",
    "Manifest",
    "Pair",
    "Source",
    "SourceFile",
    "check_for_training",
    "frame_number",
    "load_manifest",
    "pairs",
    "register",
    "to_toml",
]
