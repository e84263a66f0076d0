"""Whether a model's sources permit exporting it.

An export is a file that runs the model anywhere, outside this server's control: what the model
learned from the footage leaves with it. That is the manifest's ``distribute`` use
(:data:`plateforge.manifest_format.USES`), so every source the card lists must name it.
A card that records no permitted uses (trained before cards kept them) cannot prove that, and is
refused the same way: retrain it, or export nothing.
"""

from __future__ import annotations

from typing import Final

from plateforge.errors import LicenceError
from plateforge_server.modelcard import ModelCard

__all__ = ["EXPORT_USE", "check_export_permitted"]

#: The permitted use an export needs from every source.
EXPORT_USE: Final = "distribute"


def check_export_permitted(card: ModelCard) -> None:
    """Refuse (:class:`LicenceError` naming the first offending source) unless every source of
    ``card`` permits :data:`EXPORT_USE`."""
    for source in card.sources:
        uses = source.permitted_uses
        if EXPORT_USE not in uses:
            allowed = ", ".join(uses) if uses else "no recorded uses"
            raise LicenceError(
                f"model {card.name}@{card.version} cannot be exported: source '{source.path}' "
                f"(licence {source.licence}, {source.rights_holder}) permits {allowed}, not {EXPORT_USE!r}; "
                "an export takes what the model learned outside the server"
            )
