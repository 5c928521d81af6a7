"""The Celery app of the baseline: one no-op task on a local Redis broker and result backend.

Workers load it with ``celery -A celery_app worker`` (bench/ on PYTHONPATH); the client side
(celery_baseline.py) imports it with the same environment. The broker and the backend are two
databases of one Redis server, so the number of stored results is ``DBSIZE`` of the backend.
Settings are Celery's fast path for tiny tasks: JSON, no events, no gossip, early ack.
"""

from __future__ import annotations

import os
import time

from celery import Celery

BROKER = os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/0")
BACKEND = os.environ.get("BENCH_CELERY_BACKEND", "redis://127.0.0.1:6379/1")

app = Celery("bench", broker=BROKER, backend=BACKEND)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_acks_late=False,
    worker_prefetch_multiplier=int(os.environ.get("BENCH_CELERY_PREFETCH", "4")),
    worker_send_task_events=False,
    task_send_sent_event=False,
    task_track_started=False,
    result_expires=3600,
    broker_pool_limit=64,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    worker_redirect_stdouts=False,
)


@app.task(name="bench.noop")
def noop(submitted: float) -> dict[str, float]:
    """Do nothing; say when the task body started (wall clock) and when it was sent."""
    return {"started": time.time(), "submitted": submitted}
