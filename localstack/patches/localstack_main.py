"""Starts LocalStack as `python -m localstack.runtime.main` does, with the local environment's one patch of an
emulator hot spot (README "Emulator work per order"; ARCHITECTURE.md section 5).

LocalStack's Step Functions interpreter calls jsonpath_ng's `parse` for every JSONPath of every state on every
visit, and each call builds a new PLY parser: about 10 ms per path, several paths per task state, most of
LocalStack's CPU per order. A state machine has a fixed set of paths, so the parses are cached (by path
string; a parsed path is only read by `find` and `update_or_create`). The results are the same; only the
parsing is done once.

Pinned: the patch is applied only to the LocalStack version `make up` installs (NEXUS_PATCHED_LOCALSTACK, set
from localstack/versions.env); any other version starts unpatched, with a warning on stderr.
"""

import functools
import os
import runpy
import sys
from importlib.metadata import version

# Distinct paths kept parsed: far more than any state machine of ours has.
PARSED_PATHS = 4096


def cache_jsonpath_parsing() -> None:
    # Both modules are patched before LocalStack imports them (its modules bind `parse` at import time).
    import jsonpath_ng
    import jsonpath_ng.ext

    jsonpath_ng.parse = functools.lru_cache(maxsize=PARSED_PATHS)(jsonpath_ng.parse)
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=PARSED_PATHS)(jsonpath_ng.ext.parse)


def main() -> None:
    installed, pinned = version("localstack-core"), os.environ.get("NEXUS_PATCHED_LOCALSTACK", "")
    if installed == pinned:
        cache_jsonpath_parsing()
        print(f"nexus: localstack-core {installed}: Step Functions JSONPath parsing cached", file=sys.stderr)
    else:
        print(f"nexus: localstack-core {installed} is not {pinned!r}: started unpatched", file=sys.stderr)
    sys.argv = ["localstack.runtime.main", *sys.argv[1:]]
    runpy.run_module("localstack.runtime.main", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
