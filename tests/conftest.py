import json
import os
import sys

import pytest

HERE = os.path.dirname(__file__)
# Progress lines of slow steps (bnncc.progress) are real output, but tests that count
# stderr lines about errors should not depend on how loaded the machine is: in this
# suite they appear after a minute, not 5 s (tests of progress set their own interval).
os.environ.setdefault("BNNCC_PROGRESS_INTERVAL", "60")
FIXTURES = os.path.join(HERE, "fixtures")
sys.path.insert(0, HERE)


def fixture_index() -> list[dict]:
    with open(os.path.join(FIXTURES, "index.json")) as f:
        return json.load(f)


def fixture_path(rel: str) -> str:
    return os.path.join(FIXTURES, rel)


def cli_run_fixture(cli, case: dict, tmp_path):
    """`bnncc run` of an indexed fixture on its reference inputs -> (outputs shaped like
    the reference outputs, the references)."""
    import numpy as np
    refs = np.load(fixture_path(case["refs"]))
    np.save(tmp_path / "in.npy", refs["inputs"])
    rc, _, err = cli("run", fixture_path(case["model"]), "-i", tmp_path / "in.npy",
                     "-o", tmp_path / "out.npy")
    assert rc == 0, err
    return np.load(tmp_path / "out.npy").reshape(refs["outputs"].shape), refs


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    from bnncc.cli import main

    def run(*argv):
        rc = main([str(a) for a in argv])
        out = capsys.readouterr()
        return rc, out.out, out.err
    return run
