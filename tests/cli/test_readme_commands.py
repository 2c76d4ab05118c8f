"""Every `lesson7-studio ...` command the README shows is accepted as written (issue 14).

The commands are taken from the README itself (its code blocks and inline code), so a new or
changed command is checked without editing this file. Each is parsed by the real argument
parser; the resume command is also run up to the point where training would start.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
PROG = "lesson7-studio"


def readme_commands(text: str) -> list[str]:
    """The README's `lesson7-studio ...` command lines, comments and prompts removed."""
    found: list[str] = []
    in_code = False
    pending = ""  # a code line continued with a backslash
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_code, pending = not in_code, ""
            continue
        if in_code and line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        if in_code:
            line, pending = pending + line, ""
        candidates = [line] if in_code else re.findall(r"`([^`]+)`", line)
        for cand in candidates:
            for part in re.split(r"&&|;", cand):
                words = shlex.split(part, comments=True)
                if words and words[0] == PROG:
                    found.append(shlex.join(words))
    return list(dict.fromkeys(found))


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))


def test_the_readme_has_the_commands_it_promises():
    assert len(COMMANDS) >= 10
    subcommands = {shlex.split(c)[1] for c in COMMANDS if len(shlex.split(c)) > 1}
    assert {"app", "models", "crappify", "train", "restore", "eval", "export"} <= subcommands


def test_extraction_drops_comments_and_prose():
    text = ("```bash\nlesson7-studio models   # the registry\npython3 -m pip install -e . && lesson7-studio\n"
            "lesson7-studio restore IN OUT \\\n  --ensemble\nsudo apt-get install a \\\n  b\n```\n"
            "Run `lesson7-studio restore A B --model m.safetensors` or `pip install x`.\n")
    assert readme_commands(text) == ["lesson7-studio models", "lesson7-studio", "lesson7-studio restore IN OUT --ensemble",
                                     "lesson7-studio restore A B --model m.safetensors"]


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_parses(command, capsys):
    from lesson7_studio.cli import build_parser

    argv = shlex.split(command)[1:]
    try:
        args = build_parser().parse_args(argv or ["app"])  # no arguments opens the app
    except SystemExit as exc:
        pytest.fail(f"the README's `{command}` is refused by the parser (exit {exc.code}): "
                    f"{capsys.readouterr().err.strip()}")
    assert getattr(args, "func", None) is not None, command


RESUME = [c for c in COMMANDS if " train " in f" {c} " and "--resume" in c]


@pytest.mark.parametrize("command", RESUME)
def test_readme_resume_command_is_accepted(command, tmp_path, monkeypatch):
    """`train --recipe quick ... --resume --epochs 6`: the run folder was started with that recipe,
    so the command must go on to training (here a stand-in), not stop at a refusal."""
    import lesson7_studio.core.train as core_train
    from lesson7_studio.cli import main

    argv = shlex.split(command)[1:]
    recipe = argv[argv.index("--recipe") + 1] if "--recipe" in argv else "quick"

    def saved_run(out, **overrides):  # what resume_config reads from the run folder
        return core_train.apply_overrides(core_train.get_recipe(recipe), data=str(tmp_path / "data"),
                                          out=str(out), **{k: v for k, v in overrides.items() if k != "data"})

    class Started(BaseException):  # not an Exception: main() would report it
        pass

    def train(cfg, **kw):
        assert kw.get("resume") is True and cfg.recipe == recipe
        raise Started

    monkeypatch.setattr(core_train, "resume_config", saved_run)
    monkeypatch.setattr(core_train, "train", train)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Started):
        main(argv)
