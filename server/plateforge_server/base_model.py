"""Licence, verify and install a local diffusers base model for generative fill.

commands:
  plateforge base-model licence FOLDER --name NAME --licence ID --holder HOLDER [--uses infer,train] [--json]
  plateforge base-model verify FOLDER [--uses infer] [--json]
  plateforge base-model install FOLDER --name NAME [--version 1] [--models-dir DIR]

`licence` writes the folder's licence record (plateforge-licence.toml, the dataset manifest
format) with every file's SHA-256; `verify` proves the record, the permitted uses and every file's
hash, as the server does before it loads the pipeline (exit 2 if refused); `install` serves the
verified folder as a generative-fill model in the models directory (the pipeline is not copied;
default: $PLATEFORGE_MODELS_DIR, else the one `plateforge serve` uses). Nothing is downloaded.
Needs Python 3.11+; `install` needs plateforge[server], serving it plateforge[server,generative].
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plateforge.errors import UsageError
from plateforge.paths import default_models_dir

if TYPE_CHECKING:  # the server side is imported only inside the subcommands that need it
    from plateforge_server.generative.folder import VerifiedPipeline

__all__ = ["build_parser", "main"]

_EXTRA_HINT = "pip install -c constraints.txt 'plateforge[server,generative]'"


def _uses(text: str) -> tuple[str, ...]:
    """``infer,train`` -> ("infer", "train"): comma-separated, blanks and repeats dropped."""
    uses: list[str] = []
    for item in text.split(","):
        item = item.strip()
        if item and item not in uses:
            uses.append(item)
    return tuple(uses)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plateforge base-model", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    verbs = parser.add_subparsers(dest="action", metavar="{licence,verify,install}", required=True)

    licence = verbs.add_parser("licence", help="write and register the folder's licence record")
    licence.add_argument("folder", type=Path, metavar="FOLDER", help="a diffusers pipeline folder (model_index.json)")
    licence.add_argument("--name", required=True, help="the base model's name in model cards and provenance")
    licence.add_argument("--licence", required=True, metavar="SPDX_OR_ID", help="SPDX id or LicenseRef-… of its files")
    licence.add_argument("--holder", required=True, help="the rights holder")
    licence.add_argument(
        "--uses",
        type=_uses,
        default=("infer",),
        help="permitted uses, comma-separated (default infer; infer,train to fine-tune a LoRA on it)",
    )
    licence.add_argument("--description", default="", help="a line about the model, kept in the record")
    licence.add_argument("--json", action="store_true", help="print JSON instead of text")

    verify = verbs.add_parser("verify", help="prove the licence record and every file's hash")
    verify.add_argument("folder", type=Path, metavar="FOLDER")
    verify.add_argument(
        "--uses", type=_uses, default=("infer",), help="uses that must be permitted, comma-separated (default infer)"
    )
    verify.add_argument("--json", action="store_true", help="print JSON instead of text")

    install = verbs.add_parser("install", help="serve the verified folder as a generative-fill model")
    install.add_argument("folder", type=Path, metavar="FOLDER")
    install.add_argument("--name", required=True, help="the served model's name")
    install.add_argument("--version", default="1", help="the served model's version (default 1)")
    install.add_argument(
        "--force", action="store_true", help="replace a model already installed under that name and version"
    )
    install.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help="install into MODELS_DIR/<name>/<version>/ (default: $PLATEFORGE_MODELS_DIR, "
        f"else {str(default_models_dir()).replace('%', '%%')})",
    )
    return parser


def _check_uses(uses: tuple[str, ...], *, allow_empty: bool) -> None:
    from plateforge.manifest_format import USES

    unknown = [use for use in uses if use not in USES]
    if unknown:
        raise UsageError(f"--uses {','.join(unknown)}: not a use plateforge knows; known uses: {', '.join(USES)}")
    if not uses and not allow_empty:
        raise UsageError(f"--uses names no use; known uses: {', '.join(USES)}")


def _permitted_uses(folder: Path) -> tuple[str, ...]:
    """The uses every source of the folder's licence record permits (what the whole model may do)."""
    from plateforge.manifest_format import USES, load_manifest
    from plateforge_server.generative.folder import LICENCE_FILE

    manifest = load_manifest(folder / LICENCE_FILE)
    return tuple(use for use in USES if all(use in source.permitted_uses for source in manifest.sources))


def _summary(verified: VerifiedPipeline) -> dict[str, Any]:
    return {
        "folder": str(verified.folder),
        "name": verified.name,
        "licence": verified.licence,
        "rights_holder": verified.rights_holder,
        "permitted_uses": list(_permitted_uses(verified.folder)),
        "files": len(verified.files),
        "sha256": verified.sha256,
    }


def _licence(args: argparse.Namespace) -> int:
    from plateforge_server.generative.folder import verify_pipeline_folder, write_licence

    _check_uses(args.uses, allow_empty=False)
    record = write_licence(
        args.folder,
        name=args.name,
        licence=args.licence,
        rights_holder=args.holder,
        permitted_uses=args.uses,
        description=args.description,
    )
    # Verified at once, so what is printed is what the server will accept (and a hash to note down).
    verified = verify_pipeline_folder(args.folder, uses=args.uses)
    summary = {"record": str(record.absolute()), **_summary(verified)}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"licence record: {summary['record']}")
        print(f"files: {summary['files']}")
        print(f"sha256: {summary['sha256']}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from plateforge_server.generative.folder import verify_pipeline_folder

    _check_uses(args.uses, allow_empty=True)
    summary = _summary(verify_pipeline_folder(args.folder, uses=args.uses))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['folder']}: verified")
        print(f"name: {summary['name']}")
        print(f"licence: {summary['licence']}")
        print(f"rights holder: {summary['rights_holder']}")
        print(f"permitted uses: {', '.join(summary['permitted_uses']) or 'none'}")
        print(f"files: {summary['files']}")
        print(f"sha256: {summary['sha256']}")
    return 0


def _install(args: argparse.Namespace) -> int:
    # The same default as `plateforge serve`, so a plain `serve` afterwards serves it.
    models_dir = args.models_dir or Path(os.environ.get("PLATEFORGE_MODELS_DIR") or default_models_dir())
    models_dir = models_dir.expanduser().absolute()
    try:
        from plateforge_server.generative.inpaint import TOOL, install_base_model
    except ImportError as error:
        raise UsageError(
            f"installing a base model needs the [server] extra ({error}); {_EXTRA_HINT} "
            "(the server needs [generative] as well to run it)"
        ) from None
    from plateforge_server.roots import check_model_name

    # Name and version become folders under the models directory: never let them climb out.
    for value, what in ((args.name, "--name"), (args.version, "--version")):
        if not value:
            raise UsageError(f"{what} must not be empty")
        check_model_name(value, what)
    # A served version is what outputs' provenance names: replacing it silently would make two
    # different models answer to one name and version.
    existing = models_dir / args.name / args.version
    if existing.exists() and not args.force:
        raise UsageError(f"{args.name}@{args.version} is already installed in '{existing}'; give --force to replace it")
    folder = install_base_model(args.folder, models_dir, name=args.name, version=args.version)
    print(folder)  # alone on stdout, for scripts
    print(f"served as {args.name}@{args.version} ({TOOL}) by a server with --models-dir {models_dir}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    action = {"licence": _licence, "verify": _verify, "install": _install}[args.action]
    try:
        import plateforge_server.generative.folder  # noqa: F401  (tomllib: Python 3.11+)
    except ImportError as error:
        raise UsageError(
            f"this Python cannot handle base models ({error}); it needs Python 3.11+ and {_EXTRA_HINT}"
        ) from None
    return action(args)


if __name__ == "__main__":
    from plateforge.commands import run_command

    sys.exit(run_command("plateforge base-model", main, sys.argv[1:]))
