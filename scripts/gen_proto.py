"""Generate the protocol stubs in core/plateforge/v1/ from proto/plateforge/v1/*.proto.

Run after editing a .proto:  python scripts/gen_proto.py
Check they are current:      python scripts/gen_proto.py --check   (exit 1 and a list if not)

The stubs are checked in so hosts (Nuke, Blender) need no code generator. grpcio-tools is
pinned in pyproject's [dev] extra because another version writes different bytes.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PROTO_DIR = PROTO_ROOT / "plateforge" / "v1"
# Generated `plateforge/v1/x_pb2.py` lands in core/plateforge/v1/ (core/ is the host package's source root).
STUB_DIR = ROOT / "core" / "plateforge" / "v1"
INIT = '"""Generated protocol v1 stubs; regenerate with scripts/gen_proto.py, never edit."""\n'


def generate(out_dir: Path) -> Path:
    """Write the stubs under ``out_dir`` and return the folder holding them."""
    from grpc_tools import protoc  # dev-only dependency

    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_DIR.glob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    stubs = out_dir / "plateforge" / "v1"
    (stubs / "__init__.py").write_text(INIT)
    return stubs


def differences(fresh: Path, current: Path) -> list[str]:
    names = {p.name for p in fresh.iterdir()} | {
        p.name for p in current.iterdir() if p.is_file() and p.suffix in (".py", ".pyi")
    }
    return sorted(
        n
        for n in names
        if not (fresh / n).exists()
        or not (current / n).exists()
        or not filecmp.cmp(fresh / n, current / n, shallow=False)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if the checked-in stubs are stale")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        if args.check:
            stale = differences(fresh, STUB_DIR)
            if stale:
                print("stale protocol stubs (run scripts/gen_proto.py):", *stale, sep="\n  ")
                return 1
            print("protocol stubs are current")
            return 0
        STUB_DIR.mkdir(parents=True, exist_ok=True)
        for old in STUB_DIR.glob("*.py*"):
            old.unlink()
        for new in fresh.iterdir():
            shutil.copy2(new, STUB_DIR / new.name)
    print(f"wrote {STUB_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
