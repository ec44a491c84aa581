"""What a Python user would pick instead of this project, run side by side with it by the benchmarks.

Importing this package needs nothing beyond the project; each peer's module needs the `bench` extra
(`pip install -e '.[bench]'`) and, for Celery, `redis-server` on the PATH.
"""

from __future__ import annotations

import importlib.util
import shutil

REDIS_HINT = "redis-server is not installed: `apt-get install redis-server` (Debian/Ubuntu) to run the Celery peer"
CELERY_HINT = "celery is not installed: `pip install -e '.[bench]'` (or `make bench`) to run the Celery peer"


def peer_missing() -> str | None:
    """What the Celery peer lacks on this machine, as advice; None when it can run."""
    if shutil.which("redis-server") is None:
        return REDIS_HINT
    if importlib.util.find_spec("celery") is None or importlib.util.find_spec("redis") is None:
        return CELERY_HINT
    return None
