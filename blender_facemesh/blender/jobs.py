"""Video processing jobs still running (a modal Process Video), so that unregistering the add-on
or stopping everything can end them: the operator adds a job, the job removes itself."""

from __future__ import annotations

running: set = set()


def stop_all() -> None:
    for job in list(running):
        job.cancel()
