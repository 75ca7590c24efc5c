"""How the zygote starts: `python -s -S -P boot.py dropout_grader.sandbox.zygote CONFIG`
(the second argument only labels the process), with no `site`.

Without `site`, nothing of site-packages is on sys.path and no `.pth` file runs (an editable
install's finder, which maps dropout_grader.reference to its folder, is never loaded). This
script puts on sys.path only the folders holding numpy and pyseccomp, makes the grader's
package importable from its own folder, and runs the zygote. The same in every install:
editable, wheel, `--user`, system. CONFIG is JSON: {"path": [...], "package": folder,
"control": fd, "standins": folder, "remove_workdirs": bool}.
"""

import os
import sys

if sys.path and os.path.realpath(sys.path[0]) == os.path.dirname(os.path.realpath(__file__)):
    del sys.path[0]  # Python 3.10 (no -P): this script's own folder, before any other import

import importlib.util  # noqa: E402
import json  # noqa: E402


def boot() -> None:
    config = json.loads(sys.argv[2])
    sys.path.extend(p for p in config["path"] if p not in sys.path)  # after the stdlib: no shadowing
    package = config["package"]
    spec = importlib.util.spec_from_file_location("dropout_grader", f"{package}/__init__.py",
                                                  submodule_search_locations=[package])
    module = importlib.util.module_from_spec(spec)
    sys.modules["dropout_grader"] = module
    spec.loader.exec_module(module)
    from dropout_grader.sandbox import zygote

    zygote.main(int(config["control"]), config["standins"], bool(config.get("remove_workdirs")))


if __name__ == "__main__":
    boot()
