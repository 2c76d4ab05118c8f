"""Projects: one folder holding ``datasets/``, ``runs/`` and ``models/``.

The default project lives in the user data directory (platformdirs); the environment
variable ``LESSON7_DATA_DIR`` moves that directory (tests, portable installs). The demo
project holds the bundled sample photos and a small paired dataset built from them.
No Qt here: the GUI and the CLI both use this module.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.resources import files
from pathlib import Path
from typing import Any

from .errors import DatasetError, Lesson7Error
from .images import atomic_write

APP_NAME = "lesson7-studio"
PROJECT_FILE = "lesson7-project.json"
DEMO_DATASET = "demo-decrappify-x2"
DEMO_RECIPE = "decrappify-x2"
# every model file restore.load_any_model reads: our checkpoints and community weights
# (.safetensors), ONNX exports, and community PyTorch files (read safely, through spandrel)
MODEL_SUFFIXES = (".safetensors", ".onnx", ".pth", ".pt", ".ckpt", ".bin", ".pkl")


def _package_resources() -> Path:
    """``lesson7_studio/resources`` as importlib.resources finds it: in a checkout, an editable
    or a wheel install and the PyInstaller bundle it is a real folder (the app reads it by path)."""
    root = files("lesson7_studio").joinpath("resources")
    try:
        return Path(os.fspath(root))
    except TypeError:  # a zipped install: no folder to read by path; the starter-model check says so
        return Path(__file__).resolve().parents[1] / "resources"


RESOURCES_DIR = _package_resources()


def resources_dir() -> Path:
    """The bundled resources folder (icons, style, samples, starter model, desktop files):
    package data of ``lesson7_studio``, so a wheel install has them too."""
    return RESOURCES_DIR


def data_dir() -> Path:
    """Where the app keeps its projects: ``$LESSON7_DATA_DIR`` or the platform's user data dir."""
    env = os.environ.get("LESSON7_DATA_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def config_dir() -> Path:
    """Where settings live: ``$LESSON7_CONFIG_DIR`` or the platform's user config dir."""
    env = os.environ.get("LESSON7_CONFIG_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    with atomic_write(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")


@dataclass
class RunInfo:
    """A training run folder as seen from the project (read from its files, nothing loaded)."""

    path: Path
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    has_model: bool = False
    has_checkpoint: bool = False
    n_samples: int = 0
    modified: float = 0.0

    @property
    def model_path(self) -> Path:
        return self.path / "model.safetensors"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def status(self) -> str:
        if self.has_model:
            return "finished"
        if self.has_checkpoint:
            return "resumable"
        return "incomplete"


@dataclass
class DatasetInfo:
    """A paired dataset folder (``dataset.json`` + ``hr/`` + ``lr/``)."""

    path: Path
    name: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_train(self) -> int:
        return len(self.meta.get("train", []))

    @property
    def n_valid(self) -> int:
        return len(self.meta.get("valid", []))

    @property
    def scale(self) -> int | None:
        s = self.meta.get("scale")
        return int(s) if s else None

    @property
    def recipe_name(self) -> str:
        r = self.meta.get("recipe")
        if isinstance(r, str):
            try:
                r = json.loads(r)
            except ValueError:
                return ""
        return str(r.get("name", "")) if isinstance(r, dict) else ""


class Project:
    """A project folder. ``create()`` makes the folders; nothing is written before."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Project) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def meta_path(self) -> Path:
        return self.root / PROJECT_FILE

    @staticmethod
    def is_project(path: str | os.PathLike[str]) -> bool:
        p = Path(path)
        return (p / PROJECT_FILE).is_file() or all(
            (p / d).is_dir() for d in ("datasets", "runs", "models")
        )

    def exists(self) -> bool:
        return self.is_project(self.root)

    def create(self) -> "Project":
        """Make the folder and its datasets/, runs/, models/ (idempotent)."""
        if self.root.exists() and not self.root.is_dir():
            raise Lesson7Error(f"Cannot create a project at {self.root}: a file is in the way.")
        try:
            for d in (self.datasets_dir, self.runs_dir, self.models_dir):
                d.mkdir(parents=True, exist_ok=True)
            if not self.meta_path.exists():
                from lesson7_studio import __version__

                _write_json_atomic(
                    self.meta_path,
                    {
                        "format_version": 1,
                        "app_version": __version__,
                        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    },
                )
        except OSError as err:
            raise Lesson7Error(
                f"Cannot create the project folder {self.root}: {err.strerror or err}.",
                hint="Choose a folder you can write to.",
            ) from None
        return self

    # ------------------------------------------------------------------ contents
    def list_datasets(self) -> list[DatasetInfo]:
        """Dataset folders (those with a dataset.json), sorted by name."""
        out = []
        if self.datasets_dir.is_dir():
            for d in sorted(self.datasets_dir.iterdir()):
                meta_file = d / "dataset.json"
                if d.is_dir() and meta_file.is_file():
                    out.append(DatasetInfo(d, d.name, _read_json(meta_file)))
        return out

    def dataset(self, name: str) -> DatasetInfo:
        for ds in self.list_datasets():
            if ds.name == name:
                return ds
        raise DatasetError(f"No dataset named '{name}' in project {self.root}.")

    def list_runs(self) -> list[RunInfo]:
        """Run folders (those with config.json or metrics.csv), newest first."""
        out = []
        if self.runs_dir.is_dir():
            for d in self.runs_dir.iterdir():
                if not d.is_dir() or d.name.startswith("."):
                    continue
                cfg_file, metrics = d / "config.json", d / "metrics.csv"
                if not (cfg_file.is_file() or metrics.is_file()):
                    continue
                ckpt_dir = d / "checkpoints"
                samples = d / "samples"
                out.append(
                    RunInfo(
                        path=d,
                        name=d.name,
                        config=_read_json(cfg_file),
                        has_model=(d / "model.safetensors").is_file(),
                        has_checkpoint=ckpt_dir.is_dir() and any(ckpt_dir.iterdir()),
                        n_samples=len(list(samples.glob("*.png"))) if samples.is_dir() else 0,
                        modified=max(
                            (p.stat().st_mtime for p in (cfg_file, metrics) if p.exists()),
                            default=d.stat().st_mtime,
                        ),
                    )
                )
        out.sort(key=lambda r: (r.modified, r.name), reverse=True)
        return out

    def list_models(self) -> list[Path]:
        """Every loadable model file in ``models/`` (any of MODEL_SUFFIXES, in any case: .safetensors,
        .onnx, .pth, .pt, ...), sorted by name; temporary and hidden files are left out."""
        if not self.models_dir.is_dir():
            return []
        return sorted((p for p in self.models_dir.iterdir()
                       if p.suffix.lower() in MODEL_SUFFIXES and not p.name.startswith(".") and p.is_file()),
                      key=lambda p: p.name)

    def new_run_dir(self, stem: str) -> Path:
        """A fresh, not yet existing ``runs/<stem>-<timestamp>`` path."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        base = self.runs_dir / f"{stem}-{stamp}"
        path, i = base, 1
        while path.exists():
            i += 1
            path = base.with_name(f"{base.name}-{i}")
        return path


def default_project() -> Project:
    """The project in the user data dir (``<data_dir>/default``), created if missing."""
    return Project(data_dir() / "default").create()


def sample_images() -> list[Path]:
    """The bundled sample photos (lesson7_studio/resources/samples)."""
    folder = RESOURCES_DIR / "samples"
    exts = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"}
    return sorted(p for p in folder.glob("*") if p.suffix.lower() in exts) if folder.is_dir() else []


def starter_models() -> list[Path]:
    """The bundled starter model(s) in lesson7_studio/resources/models."""
    folder = RESOURCES_DIR / "models"
    return sorted(folder.glob("*.safetensors")) if folder.is_dir() else []


def demo_project(
    root: str | os.PathLike[str] | None = None,
    *,
    build: bool = True,
    on_event=None,
    cancel=None,
) -> Project:
    """The demo project (``<data_dir>/demo``): the sample photos in ``photos/`` and, when
    ``build``, a small ``decrappify-x2`` dataset built from them (kept if already there)."""
    project = Project(root if root is not None else data_dir() / "demo").create()
    photos = project.root / "photos"
    photos.mkdir(exist_ok=True)
    for src in sample_images():
        dst = photos / src.name
        if not dst.exists():
            with atomic_write(dst) as tmp:
                shutil.copyfile(src, tmp)
    lic = RESOURCES_DIR / "samples" / "LICENSE.md"
    if lic.is_file() and not (photos / "LICENSE.md").exists():
        shutil.copyfile(lic, photos / "LICENSE.md")
    ds_dir = project.datasets_dir / DEMO_DATASET
    if build and not (ds_dir / "dataset.json").is_file() and sample_images():
        from . import crappify

        crappify.build_pairs(
            photos,
            ds_dir,
            crappify.get_recipe(DEMO_RECIPE),
            seed=0,
            valid_pct=0.25,
            max_size=512,
            workers=1,
            on_event=on_event,
            cancel=cancel,
        )
    return project


def demo_photos(project: Project) -> Path:
    """The demo project's photo folder."""
    return project.root / "photos"
