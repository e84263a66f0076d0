"""Read and validate the C2PA Content Credentials of review proxies and EXR sidecar manifests.

  plateforge credentials review/clean.1003.png [review/clean.mp4 clean/clean.1003.exr ...] [--trust ROOTS.pem] [--json]

A PNG, JPEG or MP4 is read with its embedded manifest; an EXR with FILE.exr.c2pa beside it (see
`plateforge proxy`). The C2PA SDK checks the signature, the certificate chain and that the
file's bytes are the ones signed, and each file's state is printed: Trusted (valid, and the
chain leads to a root in --trust), Valid (valid, chain not trusted here) or Invalid (with the
failure codes, e.g. assertion.dataHash.mismatch for a file changed after signing); then what the
manifest states: the signer, the digitalSourceType, the model and its licences and contributors,
and each source EXR's sha256.

Exit status: 0 every file valid (Trusted, or Valid without --trust); 1 some file invalid, or not
trusted though --trust was given; 2 a file without credentials or unreadable.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from plateforge.errors import UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plateforge credentials", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="a signed proxy, or an EXR with its .c2pa sidecar")
    parser.add_argument("--trust", metavar="PEM", help="root certificates to trust (the studio's CA)")
    parser.add_argument("--json", action="store_true", help="print the C2PA SDK's whole report as JSON")
    return parser


def _summary(path: str, state: str, failures: list[str], manifest: dict[str, Any]) -> list[str]:
    from plateforge.review import LINEAGE_LABEL

    lines = [f"{path}: {state}" + (f" ({', '.join(failures)})" if failures else "")]
    signer = manifest.get("signature_info", {})
    if signer:
        lines.append(f"  signed by      {signer.get('common_name', '?')} ({signer.get('issuer', '?')})")
    for assertion in manifest.get("assertions", []):
        data = assertion.get("data", {})
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            for action in data.get("actions", []):
                kind = str(action.get("digitalSourceType", "")).rsplit("/", 1)[-1]
                lines.append(f"  action         {action.get('action')} {kind}".rstrip())
        elif assertion.get("label") == LINEAGE_LABEL:
            model = data.get("model", {})
            if model.get("model"):
                lines.append(f"  model          {model['model']}@{model.get('modelVersion', '?')}")
                lines.append(f"  model sha256   {model.get('modelHash', '')}")
            if data.get("licences"):
                lines.append(f"  licences       {', '.join(data['licences'])}")
            for person in data.get("contributors", []):
                lines.append(f"  contributor    {person.get('name', '?')} ({person.get('role', '')})")
            for source in data.get("sources", []):
                lines.append(f"  source         {source['name']} sha256 {source['sha256']}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from plateforge.review import SIDECAR_SUFFIX, read_credentials
    from plateforge.review.media import mime_type

    trust = None
    if args.trust:
        try:
            trust = Path(args.trust).read_bytes()
        except OSError as error:
            raise UsageError(f"--trust {args.trust!r}: {error.strerror or error}") from None
    reports = {}
    code = 0
    for path in args.files:
        sidecar: str | None = None
        if path.lower().endswith(".exr"):
            sidecar, mime = path + SIDECAR_SUFFIX, "image/x-exr"
            if not os.path.isfile(sidecar):
                raise UsageError(f"{path} has no C2PA sidecar {sidecar} (plateforge proxy writes one when signing)")
        else:
            mime = mime_type(path)
        read = read_credentials(path, mime_type=mime, sidecar=sidecar, trust_anchors=trust)
        if not read.manifest:
            raise UsageError(f"{path} carries no C2PA manifest")
        good = read.state == "Trusted" or (read.state == "Valid" and trust is None)
        code = code if good else 1
        reports[path] = {"state": read.state, "failures": read.failures, "report": read.report}
        if not args.json:
            print("\n".join(_summary(path, read.state, read.failures, read.manifest)))
    if args.json:
        print(json.dumps(reports, indent=2, sort_keys=True))
    return code
