"""The notebooks' own tests, as `make nbtest` (nbdev_test) runs them, but in pytest's processes: each notebook's cells
run in a process whose Spark session is already up and warm (the `spark` fixture), instead of two more processes that
start Spark and compile everything again. nbdev's flags apply: cells marked `notest` or `slow` are skipped, and a
notebook whose front matter says `skip_exec` is not run."""
import pytest
from conftest import ROOT

NBS = ROOT/"nbs"

def _notebooks() -> list:
    "The notebooks nbdev_test would test: nbdev's own glob of nbs/ (folders and files starting with _ or . left out)."
    from nbdev.doclinks import nbglob
    return sorted(p.resolve() for p in nbglob(str(NBS), as_path=True))

NOTEBOOKS = _notebooks()

@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: str(p.relative_to(NBS)))
def test_notebook(nb, spark, capfd):
    from nbdev.config import get_config
    from nbdev.test import test_nb
    cfg = get_config(path=ROOT)
    ok, _ = test_nb(nb, skip_flags=cfg.tst_flags.split(), basepath=cfg.config_path) # the notebook's get_spark() finds this session
    assert ok, f"{nb.relative_to(ROOT)}: a cell failed:\n{capfd.readouterr().err[-4000:]}"
