"""Ralph, the real LRS peer of bioxen's tests and benchmarks, on 127.0.0.1.

Usage: python ralph_server.py DIR PORT USER PASSWORD

Statements are kept by Ralph's filesystem backend under DIR/data; the basic-auth
credentials are made with `ralph auth` (in DIR/auth.json). Ralph's filesystem
backend creates its file on every write unless its default operation type is
"append" (the second POST then fails), so this wrapper sets that before serving
Ralph's app with uvicorn.
"""
import os
import sys
from pathlib import Path

directory, port, user, password = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
(directory / "data").mkdir(parents=True, exist_ok=True)
os.environ["RALPH_APP_DIR"] = str(directory)
os.environ["RALPH_AUTH_FILE"] = str(directory / "auth.json")
os.environ["RALPH_RUNSERVER_BACKEND"] = "fs"
os.environ["RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH"] = str(directory / "data")
os.environ.setdefault("RALPH_RUNSERVER_MAX_SEARCH_HITS_COUNT", "1000")

from ralph.cli import cli  # noqa: E402

if not (directory / "auth.json").exists():
    cli.main(
        ["auth", "-u", user, "-p", password, "-s", "all", "-M", f"mailto:{user}@example.org", "-w"],
        standalone_mode=False,
    )

from ralph.backends.data.base import BaseOperationType  # noqa: E402
from ralph.backends.data.fs import FSDataBackend  # noqa: E402

FSDataBackend.default_operation_type = BaseOperationType.APPEND

import uvicorn  # noqa: E402
from ralph.api import app  # noqa: E402

uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
