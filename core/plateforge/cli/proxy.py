"""Make signed review proxies (PNG/JPEG stills, an MP4) of output EXRs, with C2PA Content Credentials.

  plateforge proxy out/clean.*.exr --out review/ [--format png|jpg] [--movie review/clean.mp4 --fps 24]
      [--ocio CONFIG] [--colorspace NAME] [--display NAME] [--view NAME]
      --sign-cert chain.pem --sign-key key.pem [--models-dir DIR] [--source-type composite|trained]

Pixels go through an OpenColorIO display/view transform: --ocio names a config file or a
built-in (default $OCIO, else ocio://studio-config-latest, OCIO's ACES studio config);
--colorspace is the EXRs' space (default the config's scene_linear role); --display defaults to
"sRGB - Display", --view to the display's default. A frame without R, G, B (a matte) is shown as
grey, untransformed.

With --sign-cert (a PEM chain: signing certificate first, then intermediates) and --sign-key (its
private key), each proxy carries an embedded C2PA manifest: a c2pa.actions assertion with the
IPTC digitalSourceType (compositeWithTrainedAlgorithmicMedia, or trainedAlgorithmicMedia with
--source-type trained), an org.plateforge.lineage assertion (the model, version and hash from
the EXR's provenance; licences, rights holders and contributors from the model's card when
--models-dir, default $PLATEFORGE_MODELS_DIR or the one `plateforge serve` uses,
holds it) and each source EXR as an ingredient
named by its sha256. EXR is not a format C2PA embeds into: beside each EXR a detached manifest
FILE.exr.c2pa is written, bound to the EXR's bytes by a C2PA data hash, so a changed EXR fails
validation (--no-sidecar skips them). Read any of them back with c2pa tools, or
plateforge.review.read_credentials. Without keys the proxies are written unsigned.

Needs the review extra: pip install 'plateforge[review]' (MP4 needs PyAV, part of it).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from plateforge.errors import UsageError
from plateforge.paths import default_models_dir


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plateforge proxy", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("exrs", nargs="+", metavar="FILE.exr", help="output EXRs, one proxy each")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the stills (made if absent)")
    parser.add_argument("--format", default="png", choices=("png", "jpg", "none"), help="still format (default png)")
    parser.add_argument("--movie", default="", metavar="FILE.mp4", help="also gather every frame into this MP4")
    parser.add_argument("--fps", type=int, default=24, help="movie frame rate (default 24)")
    parser.add_argument(
        "--ocio", metavar="CONFIG", help="OpenColorIO config (default $OCIO, else the ACES studio config)"
    )
    parser.add_argument("--colorspace", metavar="NAME", help="the EXRs' colour space (default: scene_linear role)")
    parser.add_argument("--display", default="", metavar="NAME", help='display (default "sRGB - Display")')
    parser.add_argument("--view", default="", metavar="NAME", help="view (default: the display's default view)")
    parser.add_argument("--part", help="EXR part to show from multipart files (default: the first)")
    parser.add_argument("--sign-cert", metavar="PEM", help="the studio's signing certificate chain")
    parser.add_argument("--sign-key", metavar="PEM", help="the signing certificate's private key")
    parser.add_argument("--timestamp-url", metavar="URL", help="an RFC 3161 time-stamp authority (optional)")
    parser.add_argument("--no-sidecar", action="store_true", help="do not write FILE.exr.c2pa beside each EXR")
    parser.add_argument("--models-dir", metavar="DIR", help="where model folders are (default $PLATEFORGE_MODELS_DIR)")
    parser.add_argument(
        "--source-type",
        choices=("composite", "trained"),
        default="composite",
        help="IPTC digitalSourceType: composite (a plate altered by a model, default) or trained (made by one)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from plateforge.review import ProxyJob, SigningKey, make_proxies

    if bool(args.sign_cert) != bool(args.sign_key):
        raise UsageError("--sign-cert and --sign-key go together: give both to sign, neither to write unsigned proxies")
    if args.fps <= 0:
        raise UsageError(f"--fps must be a whole number above 0, got {args.fps}")
    key = None
    if args.sign_cert:
        key = SigningKey.from_files(cert=args.sign_cert, key=args.sign_key, timestamp_url=args.timestamp_url)
    job = ProxyJob(
        exrs=list(args.exrs),
        out_dir=args.out,
        still="" if args.format == "none" else args.format,
        movie=args.movie,
        fps=args.fps,
        ocio=args.ocio,
        colorspace=args.colorspace,
        display=args.display,
        view=args.view,
        part=args.part,
        key=key,
        sidecars=not args.no_sidecar,
        models_dir=args.models_dir or os.environ.get("PLATEFORGE_MODELS_DIR") or str(default_models_dir()),
        source_type=args.source_type,
    )
    result = make_proxies(job)
    for path in result.proxies:
        print(path)
    signed = "signed" if key is not None else "unsigned (no --sign-cert/--sign-key)"
    sidecars = f", {len(result.sidecars)} EXR sidecar manifest(s)" if result.sidecars else ""
    print(f"wrote {len(result.proxies)} proxy file(s), {signed}{sidecars}", file=sys.stderr)
    return 0
