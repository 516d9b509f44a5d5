"""What to do when a test needs a system tool that ``pip`` cannot install (PostgreSQL, Debian's
chromium, node with the npm packages pinned in tests/interop): fail when the environment says
the tool is required, else skip naming what is missing and how to get it.

``.ci/run`` installs PostgreSQL and chromium and sets their ``ATTESTLOG_REQUIRE_*`` variables,
so in CI those tests can only pass or fail. It sets ``ATTESTLOG_REQUIRE_NODE_INTEROP=1`` once
``npm ci`` has installed the pinned packages; when the npm registry cannot be reached it says
so on stderr and the interop tests skip with this reason.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing_system_tool(what: str, require_env: str, get_it: str) -> NoReturn:
    """``what`` is missing: a failure under ``require_env=1``, else a skip that says what is
    missing, how to ``get_it``, and which variable turns the skip into a failure."""
    if os.environ.get(require_env) == "1":
        pytest.fail(f"{require_env}=1 but {what}")
    pytest.skip(f"{what}, and pip cannot install it: {get_it}; with {require_env}=1 (as "
                ".ci/run sets it) this fails instead")
