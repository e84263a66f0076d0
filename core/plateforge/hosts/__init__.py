"""What host plugins (Nuke gizmos, Blender nodes) share, without importing any host.

Each host keeps only its own glue (``plugins/nuke``, ``plugins/blender``); everything else it needs
is here and tested outside the host: knobs from a model's declared parameters
(:mod:`~plateforge.hosts.knobs`), the node cache and which frames to send
(:mod:`~plateforge.hosts.cache`, :mod:`~plateforge.hosts.process`), background work with progress
and cancel (:mod:`~plateforge.hosts.worker`), the server connection and its status
(:mod:`~plateforge.hosts.connection`) and the train panel (:mod:`~plateforge.hosts.training`).
"""

from plateforge.hosts.cache import CacheLayout, CachePlan, chunk_frames, plan_frames
from plateforge.hosts.connection import ServerSettings, ServerStatus, check_server, models_for, resolve_settings
from plateforge.hosts.knobs import InputSlot, KnobSpec, input_slots, knob_specs, params_from_knobs
from plateforge.hosts.process import ProcessReport, process_cached
from plateforge.hosts.training import KeyframeDataset, TrainingMonitor, TrainingRequest, parse_keyframes, start_job
from plateforge.hosts.worker import BackgroundTask, ProgressUpdate, TaskContext

__all__ = [
    "BackgroundTask",
    "CacheLayout",
    "CachePlan",
    "InputSlot",
    "KeyframeDataset",
    "KnobSpec",
    "ProcessReport",
    "ProgressUpdate",
    "ServerSettings",
    "ServerStatus",
    "TaskContext",
    "TrainingMonitor",
    "TrainingRequest",
    "check_server",
    "chunk_frames",
    "input_slots",
    "knob_specs",
    "models_for",
    "params_from_knobs",
    "parse_keyframes",
    "plan_frames",
    "process_cached",
    "resolve_settings",
    "start_job",
]
