"""Licence, verify and install a local diffusers base model for generative fill.

commands:
  plateforge base-model licence FOLDER --name NAME --licence ID --holder HOLDER [--uses infer,train] [--json]
  plateforge base-model verify FOLDER [--uses infer] [--json]
  plateforge base-model install FOLDER --name NAME [--version 1] [--models-dir DIR]

Base models are the server's business: this verb runs the server package's own entry point
(`python -m plateforge_server.base_model`, whose --help says more). Needs Python 3.11+ and
plateforge[server] (serving the model needs plateforge[server,generative]).
"""

from __future__ import annotations

from collections.abc import Sequence

from plateforge.commands import server_main


def main(argv: Sequence[str] | None = None) -> int:
    return server_main("base_model")(list(argv or ()))
