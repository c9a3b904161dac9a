"""The command line's conventions: `check -` and `check DIR`, colour on a terminal only (NO_COLOR,
--color), help for every argument and the exit codes in every epilog, a clear message where torch is
missing, and missing data files named with the directory they were looked for in."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from nncompile.compiler.commands.common import EXIT_CODES
from nncompile.compiler.files import no_such

from nncompile.cli import main, parser

BROKEN = "nncompile: 1\nname: broken\ninputs: {x: [3]}\nlayers:\n  - {op: linearr, out: 2}\n"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _nncompile(*argv: str, stdin: str | None = None, env: dict[str, str] | None = None, tty: bool = False) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "nncompile", *argv]
    if tty:  # a pseudo-terminal on stdout, as a person's shell gives
        command = ["script", "-qec", " ".join(command), "/dev/null"]
    return subprocess.run(
        command, input=stdin, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})}, timeout=120, check=False
    )


def test_check_reads_standard_input_and_names_it():
    result = _nncompile("check", "-", stdin=BROKEN)
    assert result.returncode == 1
    assert result.stdout.startswith("<stdin>:5:10: error[E0301]:"), result.stdout
    clean = _nncompile("check", "-", stdin=(ROOT / "specs" / "resnet18.yaml").read_text())
    assert clean.returncode == 0 and "checked 1 spec(s): 0 error(s)" in clean.stderr


def test_check_of_a_directory_checks_every_spec_under_it_in_order(tmp_path: Path, capsys):
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "b" / "z.yml").write_text(BROKEN)
    (tmp_path / "a.yaml").write_text(BROKEN)
    (tmp_path / ".hidden" / "c.yaml").write_text(BROKEN)
    (tmp_path / ".pre-commit-config.yaml").write_text("repos: []\n")
    (tmp_path / "notes.txt").write_text("not a spec")
    assert main(["check", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    files = re.findall(r"^(\S+):5:10: error", captured.out, re.MULTILINE)
    assert files == [str(tmp_path / "a.yaml"), str(tmp_path / "b" / "z.yml")]
    assert "checked 2 spec(s): 2 error(s)" in captured.err


def test_a_directory_without_specs_is_a_usage_error(tmp_path: Path, capsys):
    assert main(["check", str(tmp_path)]) == 2
    assert f"{tmp_path}: a directory with no spec in it" in capsys.readouterr().err


@pytest.mark.skipif(not Path("/usr/bin/script").exists(), reason="needs util-linux script for a pseudo-terminal")
def test_colour_only_on_a_terminal_and_never_with_no_color(tmp_path: Path):
    spec = tmp_path / "broken.yaml"
    spec.write_text(BROKEN)
    piped = _nncompile("check", str(spec))
    terminal = _nncompile("check", str(spec), tty=True)
    no_color = _nncompile("check", str(spec), tty=True, env={"NO_COLOR": "1"})
    never = _nncompile("check", str(spec), "--color", "never", tty=True)
    always = _nncompile("check", str(spec), "--color", "always")
    assert not ANSI.search(piped.stdout) and not ANSI.search(no_color.stdout) and not ANSI.search(never.stdout)
    assert "\x1b[1;31merror[E0301]\x1b[0m" in terminal.stdout and "\x1b[1;31merror[E0301]\x1b[0m" in always.stdout
    # colour changes no character of the text (the terminal's copy has CR LF line ends)
    assert ANSI.sub("", always.stdout) == piped.stdout
    assert ANSI.sub("", terminal.stdout).replace("\r\n", "\n") == piped.stdout + piped.stderr


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    return dict(parser()._subparsers._group_actions[0].choices)


def test_every_argument_has_help_and_every_help_ends_with_the_exit_codes():
    epilog = [f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES]
    for name, sub in [("nncompile", parser()), *_subcommands().items()]:
        undocumented = [action.dest for action in sub._actions if not action.help]
        assert not undocumented, f"{name}: arguments without help: {undocumented}"
        text = sub.format_help()
        assert text.rstrip().endswith("\n".join(["exit status:", *epilog])), f"{name} --help:\n{text}"


def test_the_exit_codes_are_what_the_commands_return(tmp_path: Path, capsys):
    spec = tmp_path / "broken.yaml"
    spec.write_text(BROKEN)
    specs = [ROOT / "specs" / "resnet18.yaml", spec, tmp_path / "no.yaml"]
    statuses = [main(["check", str(path)]) for path in specs]
    assert statuses == [code for code, _ in EXIT_CODES[:3]] == [0, 1, 2]


def test_a_command_that_needs_torch_says_how_to_install_it(tmp_path: Path):
    """torch hidden from the process, as in the pre-commit hook's environment: check works, build says why not."""
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['torchvision'] = None\n"
        "from nncompile.cli import main\n"
        "assert main(['check', sys.argv[1]]) == 0\n"
        "sys.exit(main(['build', sys.argv[1], '-o', sys.argv[2]]))\n"
    )
    spec, output = ROOT / "specs" / "resnet18.yaml", tmp_path / "model.pt"
    result = subprocess.run([sys.executable, "-c", code, str(spec), str(output)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2, result.stderr
    assert "this command needs PyTorch, and torch is not installed: pip install 'nncompile[torch]'" in result.stderr
    assert "Traceback" not in result.stderr and not output.exists()


def test_a_missing_relative_path_names_the_directory_it_was_looked_for_in(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert no_such(Path("data/x.pt")) == f"no such file: data/x.pt (looked for in the current directory, {tmp_path})"
    assert no_such(tmp_path / "x.pt") == f"no such file: {tmp_path / 'x.pt'}"
