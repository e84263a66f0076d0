"""Training jobs: state on disk, one worker per device, progress streams, restart recovery.

:class:`JobManager` (:mod:`._manager`) owns the jobs under a folder, each in
``jobs_dir/<id>/job.json`` (schema ``plateforge.job/1``, :mod:`._records`);
:mod:`.service` serves it as plateforge.v1.Training (:func:`add_training_service`).
"""

from __future__ import annotations

from plateforge_server.jobs._manager import JobEvent, JobManager, Watcher, build_config
from plateforge_server.jobs._records import (
    JOB_FILE,
    JOB_SCHEMA,
    KNOWN_JOB_SCHEMAS,
    TRAIN_FOLDER,
    JobRecord,
    JobState,
    read_job,
    write_job,
)
from plateforge_server.jobs.service import TRAINING_SERVICE_NAME, TrainingService, add_training_service

__all__ = [
    "JOB_FILE",
    "JOB_SCHEMA",
    "KNOWN_JOB_SCHEMAS",
    "TRAINING_SERVICE_NAME",
    "TRAIN_FOLDER",
    "JobEvent",
    "JobManager",
    "JobRecord",
    "JobState",
    "TrainingService",
    "Watcher",
    "add_training_service",
    "build_config",
    "read_job",
    "write_job",
]
