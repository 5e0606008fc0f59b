"""Stage check: the whole of ``params.yaml`` (and the git repository holding the project) validated
before anything expensive runs. Writes OUT, which the fetch stage waits for; its content stays the
same whatever the params, so a passing check never makes a later stage re-run. Usage: check.py OUT"""

from vdlib.check import check_params, check_repository
from vdlib.core.common import run_stage, write_json


def main(out: str) -> None:
    check_repository()
    planned = check_params()
    names = planned["labels"]["names"]
    print(f"params.yaml: ok; models will know {planned['labels']['kind']} labels ({len(names)} values)")
    write_json({"params.yaml": "checked"}, out)


if __name__ == "__main__":
    run_stage(main)
