"""The README stays true: every op and every error code is documented, the zoo's line counts are the
files', and the complete specs it shows check clean."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT
from nncompile.compiler.ops import BUILTIN

from nncompile import compiler

README = (ROOT / "README.md").read_text()


def test_every_op_is_in_the_ops_table():
    documented = set(re.findall(r"^\| `([a-z0-9_]+)` \|", README, re.M))
    assert set(BUILTIN.names) <= documented


def test_every_error_code_is_documented_and_every_documented_code_exists():
    from nncompile.compiler.codes import CODES

    used = set()
    for path in [*(ROOT / "compiler").rglob("*.py"), *(ROOT / "runtime").rglob("*.py")]:
        if path.name != "codes.py":
            used |= set(re.findall(r'"([EW]0\d{3})"', path.read_text()))
    documented = dict(re.findall(r"^\| ([EW]0\d{3}) \| [a-z]+ \| (.*) \|$", README, re.M))
    assert used == set(CODES) == set(documented)
    assert documented == {code: entry.meaning for code, entry in CODES.items()}


def test_the_zoo_table_counts_the_specs_lines():
    rows = re.findall(r"^\| \[`([a-z0-9_]+)`\]\(specs/zoo/[a-z0-9_]+\.yaml\) \| [^|]+ \| (\d+) \| (\d+) ", README, re.M)
    assert {name for name, _, _ in rows} == {path.stem for path in (ROOT / "specs" / "zoo").glob("*.yaml")}
    for name, count, reference in rows:
        text = (ROOT / "specs" / "zoo" / f"{name}.yaml").read_text()
        assert int(count) == sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith("#")), name
        assert int(count) < int(reference), f"{name}: the README says every spec is shorter than its reference"


def test_the_bad_spec_count_is_true():
    count = len(list((ROOT / "tests" / "bad_specs").glob("*.yaml")))
    assert f"diagnostics of {count} broken and hostile specs" in README


SPECS = [
    block for block in re.findall(r"```yaml\n(.*?)```", README, re.S) if block.lstrip("# \n").startswith(("nncompile:", "yaml-language"))
]


@pytest.mark.parametrize("text", SPECS, ids=[f"spec{i}" for i in range(len(SPECS))])
def test_complete_specs_in_the_readme_check_clean(text, write_spec):
    assert compiler.check(write_spec(text)) == []


def test_the_python_examples_run_as_written(tmp_path, monkeypatch):
    """The README's Python blocks, run in order in one namespace from the project's root (the run
    directory they name is moved to a temporary folder)."""
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    for block in re.findall(r"```python\n(.*?)```", README, re.S):
        exec(compile(block.replace('"runs/mine"', repr(str(tmp_path / "mine"))), "README.md", "exec"), namespace)
    assert namespace["run"].stopped == "completed" and (tmp_path / "mine" / "last.pt").is_file()


def test_the_exit_status_table_is_the_commands():
    from nncompile.compiler.commands.common import EXIT_CODES

    documented = re.findall(r"^\| (\d+) \| (.+) \|$", README, re.M)
    assert [(int(code), meaning) for code, meaning in documented] == list(EXIT_CODES)


def _git(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


def test_the_pre_commit_rev_is_a_commit_of_main_whose_hook_installs_without_torch():
    """The README's `rev` names a commit this repository's history holds (a clone of main brings it),
    whose .pre-commit-hooks.yaml has the hook the README names and whose base install has no torch."""
    if _git("rev-parse", "--is-inside-work-tree").stdout.strip() != "true":
        pytest.skip("not a git checkout")
    if _git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        pytest.skip("a shallow clone does not hold the history the rev names")
    snippet = re.search(r"# \.pre-commit-config\.yaml\n(.*?)```", README, re.S).group(1)
    config = yaml.safe_load(snippet)["repos"][0]
    rev = config["rev"]
    assert re.fullmatch(r"[0-9a-f]{40}", rev), f"rev {rev!r}: a full commit id (the repository has no tags to name)"
    assert _git("merge-base", "--is-ancestor", rev, "HEAD").returncode == 0, f"{rev} is not a commit of this branch"
    hooks = yaml.safe_load(_git("show", f"{rev}:.pre-commit-hooks.yaml").stdout)
    assert [hook["id"] for hook in config["hooks"]] == [hook["id"] for hook in hooks]
    assert hooks[0]["entry"].startswith("nncompile check")
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    dependencies = tomllib.loads(_git("show", f"{rev}:pyproject.toml").stdout)["project"]["dependencies"]
    assert not [d for d in dependencies if re.match(r"torch|torchvision|nvidia", d)], dependencies


def test_the_diagnostics_example_is_what_check_prints(tmp_path):
    spec = re.search(r"```yaml\n# specs/model\.yaml\n(.*?)```", README, re.S).group(1)
    shown = re.search(r"prints \(and exits (\d)\):\n\n```\n(.*?)```", README, re.S)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "model.yaml").write_text(spec)
    result = subprocess.run(
        [sys.executable, "-m", "nncompile", "check", "specs/model.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == int(shown.group(1))
    assert result.stdout + result.stderr == shown.group(2)
