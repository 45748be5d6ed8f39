"""Background jobs: a PostgreSQL-backed queue and its worker.

``queue`` moves ``sdi.jobs`` rows through their states; ``ingest`` spools
uploads and turns them into jobs; ``worker`` runs them (``sdi worker``).
"""

from sdi.jobs import queue
from sdi.jobs.ingest import discard_upload, enqueue_ingest, spool_dir, spool_path
from sdi.jobs.queue import Job, JobLostError, get_job, list_jobs
from sdi.jobs.worker import Worker

__all__ = [
    "Job",
    "JobLostError",
    "Worker",
    "discard_upload",
    "enqueue_ingest",
    "get_job",
    "list_jobs",
    "queue",
    "spool_dir",
    "spool_path",
]
