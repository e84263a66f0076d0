"""``python -m plateforge_server``: the inference server's own entry point (``plateforge serve`` runs it)."""

import sys

from plateforge.commands import quiet_grpc, run_command

quiet_grpc(serving=True)  # before gRPC loads

from plateforge_server.serve import main  # noqa: E402  (after quiet_grpc)

sys.exit(run_command("plateforge serve", main, sys.argv[1:]))
