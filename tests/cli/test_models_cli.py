"""``lesson7-studio models``: the registry as a table, one model as text or JSON."""

import json

import pytest

import lesson7_studio.cli as cli
from lesson7_studio.cli.models_cmd import format_params
from lesson7_studio.core import models


@pytest.fixture(autouse=True)
def only_models_command(monkeypatch):
    # Exercise the real dispatcher (errors -> exit 1) without depending on other commands' modules.
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["models_cmd"])


def test_lists_every_model_in_an_aligned_table(capsys):
    assert cli.main(["models"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["NAME", "KIND", "PARAMS", "DESCRIPTION"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert list(rows) == models.names()
    assert rows["unet-resnet34"].split()[2] == "41.4M"
    assert rows["gan-critic"].split()[2] == "44.7M"
    assert "lesson 7's generator" in rows["unet-resnet34"]
    desc_col = lines[0].index("DESCRIPTION")
    for line in lines[1:]:
        name = line.split()[0]
        assert line[desc_col:] == models.describe(name).description  # aligned column


def test_describe_one_as_json(capsys):
    assert cli.main(["models", "unet-resnet34", "--json", "--option", "self_attention=false"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["params"] == 41_229_213
    assert data["options"]["self_attention"] is False
    assert data["options"]["y_range"] == [-3.0, 3.0]
    assert (data["size_multiple"], data["scale"], data["model_scale"]) == (32, 2, 1)
    expected = models.describe("unet-resnet34", self_attention=False).to_dict()
    assert data == json.loads(json.dumps(expected))


def test_describe_one_as_text(capsys):
    assert cli.main(["models", "unet-lite", "-o", "scale=4", "-o", "nf=32"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("unet-lite: ")
    assert "scale         4 (network upsamples x4)" in out
    assert "nf = 32" in out and "one of 1, 2, 3, 4" in out


def test_list_as_json(capsys):
    assert cli.main(["models", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in data] == models.names()


@pytest.mark.parametrize("argv,needle", [
    (["models", "unet-resnet99"], "Known models:"),
    (["models", "unet-lite", "-o", "depth=3"], "Valid options: nf"),
    (["models", "unet-lite", "-o", "scale=5"], "must be one of"),
    (["models", "unet-lite", "-o", "scale"], "KEY=VALUE"),
    (["models", "-o", "nf=3"], "needs a model NAME"),
])
def test_errors_exit_1_with_a_message(capsys, argv, needle):
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and "Traceback" not in err


def test_format_params():
    assert format_params(41_413_534) == "41.4M"
    assert format_params(52_940) == "52.9K"
    assert format_params(342_050_398) == "342.1M"
    assert format_params(999) == "999"
