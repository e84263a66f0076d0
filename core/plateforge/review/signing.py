"""C2PA Content Credentials for review media, made and read with the C2PA SDK (``c2pa-python``).

Every proxy gets an embedded manifest whose ``c2pa.actions`` assertion says a trained model
made (``trainedAlgorithmicMedia``) or altered (``compositeWithTrainedAlgorithmicMedia``) the
picture, an ``org.plateforge.lineage`` assertion naming the model (name, version, hash), its
card's licences, rights holders and contributors, and the source EXR as an ingredient carrying
its sha256. The source EXR gets a detached manifest beside it (``FILE.exr.c2pa``): EXR is not
a format C2PA embeds into, so the SDK binds the sidecar to the whole file by a data hash
(``c2pa.hash.data``) and reading it back with the EXR recomputes that hash, so a changed EXR
fails validation.

Keys come from the studio: a PEM certificate chain (signing certificate first, then the
intermediates, without the root) and its private key. C2PA validators want a real chain: the
signing certificate must not be self-signed or a CA, must allow digitalSignature and must carry
an extended key usage C2PA accepts (emailProtection, documentSigning ...). Whether the chain is
*trusted* is the reader's business (``trust_anchors``).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from plateforge import __version__, atomic
from plateforge.errors import SigningError, UsageError
from plateforge.review.colour import require

__all__ = [
    "DIGITAL_SOURCE_TYPES",
    "LINEAGE_LABEL",
    "SIDECAR_SUFFIX",
    "Credentials",
    "ReadBack",
    "SigningKey",
    "read_credentials",
    "sign_proxy",
    "sign_sidecar",
]

#: IPTC digital source types (https://cv.iptc.org/newscodes/digitalsourcetype/) by short name.
DIGITAL_SOURCE_TYPES = {
    "trained": "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
    "composite": "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia",
}
SourceType = Literal["trained", "composite"]
#: The label of plateforge's own assertion (reverse-domain, as C2PA asks of custom labels).
LINEAGE_LABEL = "org.plateforge.lineage"
#: Suffix of the detached manifest written beside a source EXR.
SIDECAR_SUFFIX = ".c2pa"
_EXR_MIME = "image/x-exr"


def _c2pa() -> Any:
    return require("c2pa", "C2PA signing")


@dataclass(frozen=True)
class SigningKey:
    """A PEM certificate chain (signing certificate first, no root) and its private key."""

    chain: bytes
    private_key: bytes
    #: The C2PA algorithm name (es256, es384, es512, ps256, ed25519), from the key's type.
    algorithm: str
    #: An RFC 3161 time-stamp authority to countersign with, or None.
    timestamp_url: str | None = None

    @classmethod
    def from_files(
        cls, *, cert: str | os.PathLike[str], key: str | os.PathLike[str], timestamp_url: str | None = None
    ) -> SigningKey:
        chain, private_key = _read(cert, "--sign-cert"), _read(key, "--sign-key")
        if b"-----BEGIN CERTIFICATE-----" not in chain:
            raise UsageError(f"--sign-cert {os.fspath(cert)!r} holds no PEM certificate")
        return cls(chain, private_key, _algorithm(private_key, key), timestamp_url)

    def signer(self) -> Any:
        c2pa = _c2pa()
        info = c2pa.C2paSignerInfo(self.algorithm.encode(), self.chain, self.private_key, self.timestamp_url)
        try:
            return c2pa.Signer.from_info(info)
        except c2pa.C2paError as error:
            raise SigningError(f"the C2PA SDK refuses the signing certificate or key: {error}") from None


def _read(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise UsageError(f"{what} {os.fspath(path)!r}: {error.strerror or error}") from None


def _algorithm(pem: bytes, where: str | os.PathLike[str]) -> str:
    """The C2PA algorithm that the private key signs with."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise UsageError(f"--sign-key {os.fspath(where)!r} is not an unencrypted PEM private key: {error}") from None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        curves = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name in curves:
            return curves[key.curve.name]
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    elif isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    raise UsageError(
        f"--sign-key {os.fspath(where)!r}: C2PA signs with ECDSA P-256/384/521, Ed25519 or RSA-PSS keys; "
        f"this is {type(key).__name__}"
    )


@dataclass(frozen=True)
class Credentials:
    """What a signed manifest states about one picture."""

    #: The name shown for the asset (the proxy's or the EXR's file name).
    title: str
    #: The source EXRs (one for a still, every frame for a movie): (file name, sha256).
    sources: Sequence[tuple[str, str]]
    source_type: SourceType = "composite"
    #: The model as the EXR's provenance names it (model, modelVersion, modelHash, tool ...).
    model: Mapping[str, str] = field(default_factory=dict)
    #: From the model card, when it was found: licences, rights holders, contributors, base model.
    licences: Sequence[str] = ()
    rights_holders: Sequence[str] = ()
    contributors: Sequence[Mapping[str, str]] = ()
    base_model: Mapping[str, str] | None = None
    #: The display transform a proxy was made through (config, colour space, display, view).
    display: Mapping[str, str] = field(default_factory=dict)

    def lineage(self) -> dict[str, Any]:
        return {
            "model": dict(self.model),
            "licences": list(self.licences),
            "rights_holders": list(self.rights_holders),
            "contributors": [dict(c) for c in self.contributors],
            "base_model": dict(self.base_model) if self.base_model is not None else None,
            "sources": [{"name": name, "sha256": sha256} for name, sha256 in self.sources],
            "display": dict(self.display),
        }

    def definition(self, *, with_source_ingredient: bool) -> dict[str, Any]:
        """The manifest definition the C2PA Builder takes."""
        agent = {"name": "plateforge", "version": __version__}
        model = self.model.get("model", "")
        version = self.model.get("modelVersion", "")
        action: dict[str, Any] = {
            "action": "c2pa.created",
            "digitalSourceType": DIGITAL_SOURCE_TYPES[self.source_type],
            "softwareAgent": agent,
            "description": f"made by the plateforge model {model}@{version}" if model else "made by plateforge",
        }
        definition: dict[str, Any] = {
            "claim_generator_info": [agent],
            "title": self.title,
            "assertions": [
                {"label": "c2pa.actions", "data": {"actions": [action]}},
                {"label": LINEAGE_LABEL, "data": self.lineage()},
            ],
        }
        if with_source_ingredient:
            # An EXR cannot carry a manifest in its bytes, so the proxy names each source by
            # hash: the instance id and the metadata both hold its sha256.
            definition["ingredients"] = [
                {
                    "title": name,
                    "format": _EXR_MIME,
                    "relationship": "inputTo",
                    "instance_id": f"sha256:{sha256}",
                    "metadata": {"org.plateforge.sha256": sha256},
                }
                for name, sha256 in self.sources
            ]
        return definition


def _builder(definition: Mapping[str, Any]) -> Any:
    c2pa = _c2pa()
    try:
        return c2pa.Builder(json.dumps(definition))
    except c2pa.C2paError as error:
        raise SigningError(f"the C2PA SDK refuses the manifest: {error}") from None


def sign_proxy(
    source: str | os.PathLike[str],
    *,
    dest: str | os.PathLike[str] | None = None,
    mime_type: str,
    credentials: Credentials,
    key: SigningKey,
) -> Path:
    """The proxy ``source`` with a signed manifest embedded, written atomically to ``dest``
    (default: over ``source``). Nothing is written to ``dest`` when signing fails."""
    c2pa = _c2pa()
    builder = _builder(credentials.definition(with_source_ingredient=True))
    target = Path(dest if dest is not None else source)
    try:
        with atomic.atomic_path(target) as temp, open(source, "rb") as unsigned, open(temp, "w+b") as signed:
            builder.sign(key.signer(), mime_type, unsigned, signed)
    except c2pa.C2paError as error:
        raise SigningError(f"cannot sign {os.fspath(target)!r}: {error}") from None
    return target


def sign_sidecar(exr: str | os.PathLike[str], *, credentials: Credentials, key: SigningKey) -> Path:
    """Write ``EXR.c2pa``: a detached manifest bound to the EXR's bytes by a data hash."""
    c2pa = _c2pa()
    builder = _builder(credentials.definition(with_source_ingredient=False))
    builder.set_no_embed()
    sidecar = Path(os.fspath(exr) + SIDECAR_SUFFIX)
    try:
        with open(exr, "rb") as source:
            manifest = builder.sign(key.signer(), _EXR_MIME, source, io.BytesIO())
    except c2pa.C2paError as error:
        raise SigningError(f"cannot sign {os.fspath(exr)!r}: {error}") from None
    except OSError as error:
        raise UsageError(f"cannot read {os.fspath(exr)!r}: {error.strerror or error}") from None
    if not manifest:
        raise SigningError(f"the C2PA SDK gave no detached manifest for {os.fspath(exr)!r}")
    try:
        atomic.write_bytes(sidecar, manifest)
    except OSError as error:
        raise UsageError(f"cannot write the C2PA sidecar {sidecar}: {error.strerror or error}") from None
    return sidecar


@dataclass(frozen=True)
class ReadBack:
    """A manifest as the C2PA SDK reads and validates it."""

    #: "Trusted" (valid, chain to a trust anchor), "Valid" (valid, chain not trusted here) or
    #: "Invalid"; see the C2PA specification's validation states.
    state: str
    #: The active manifest (title, assertions, ingredients, signature_info ...).
    manifest: dict[str, Any]
    #: Failure codes (``assertion.dataHash.mismatch``, ``signingCredential.untrusted`` ...).
    failures: list[str]
    #: Everything the SDK reported, as JSON.
    report: dict[str, Any]

    def assertion(self, label: str) -> Any:
        for assertion in self.manifest.get("assertions", []):
            if assertion.get("label") in (label, f"{label}.v2"):
                return assertion.get("data")
        raise KeyError(label)


def read_credentials(
    path: str | os.PathLike[str],
    *,
    mime_type: str,
    sidecar: str | os.PathLike[str] | None = None,
    trust_anchors: bytes | None = None,
) -> ReadBack:
    """Read and validate the manifest of ``path`` (embedded, or the detached ``sidecar``);
    ``trust_anchors`` (PEM roots) makes a valid chain to one of them "Trusted"."""
    c2pa = _c2pa()
    context = None
    if trust_anchors is not None:
        settings = {"verify": {"verify_trust": True}, "trust": {"trust_anchors": trust_anchors.decode()}}
        context = c2pa.Context.from_dict(settings)
    try:
        manifest_data = Path(sidecar).read_bytes() if sidecar is not None else None
        with open(path, "rb") as stream:
            reader = c2pa.Reader(mime_type, stream, manifest_data, context=context)
            report = json.loads(reader.json())
            state = str(reader.get_validation_state())
    except c2pa.C2paError as error:
        raise SigningError(f"cannot read the C2PA manifest of {os.fspath(path)!r}: {error}") from None
    except OSError as error:
        raise UsageError(f"cannot read {error.filename!r}: {error.strerror or error}") from None
    active = report.get("manifests", {}).get(report.get("active_manifest", ""), {})
    results = report.get("validation_results", {}).get("activeManifest", {})
    failures = [str(item.get("code")) for item in results.get("failure", [])]
    return ReadBack(state=state, manifest=active, failures=failures, report=report)
