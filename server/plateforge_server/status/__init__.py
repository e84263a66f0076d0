"""The server's status port: a read-only web page and ``/metrics`` for Prometheus.

:mod:`.metrics` counts (frame requests, training pace) and reads states at scrape time;
:mod:`.snapshot` turns the server's parts into plain data; :mod:`.page` renders it;
:mod:`.auth` says who may read it; :mod:`.http` serves it on the gRPC server's event loop.
"""

from __future__ import annotations

from plateforge_server.status.auth import StatusAuth, check_exposure
from plateforge_server.status.http import StatusSite, start_status_site
from plateforge_server.status.metrics import ServerMetrics, Tracked
from plateforge_server.status.snapshot import ServerView

__all__ = ["ServerMetrics", "ServerView", "StatusAuth", "StatusSite", "Tracked", "check_exposure", "start_status_site"]
