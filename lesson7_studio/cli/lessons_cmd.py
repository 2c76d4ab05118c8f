"""``lesson7-studio lesson ...``: the resnet-mnist classifiers and the human-numbers RNNs.

    lesson7-studio lesson list
    lesson7-studio lesson train human-numbers [--arch rnn-model5] --out RUN
    lesson7-studio lesson train resnet-mnist [--arch resnet-classifier] [--data mnist|DIR] --out RUN
    lesson7-studio lesson train --resume --out RUN [--epochs N]
    lesson7-studio lesson predict RUN "eight thousand one , eight thousand"
    lesson7-studio lesson classify RUN IMAGE...
    lesson7-studio lesson interpret RUN
    lesson7-studio lesson progress RUNS_DIR
    lesson7-studio lesson data human-numbers|digits|shapes|mnist --out DIR
"""

from __future__ import annotations

import argparse

from ._common import non_negative_int, positive_float, positive_int
from .progress import Console, ProgressBars, advance, progress_bar, showing

LESSONS = ("resnet-mnist", "human-numbers")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "lesson",
        help="the lesson's classifiers (resnet-mnist) and RNNs (human-numbers): train and explore",
        description="Train the rest of lesson 7 (the MNIST CNN / ResNet / DenseNet and the six human-numbers "
        "RNNs) into run folders, then explore them: class probabilities, confusion matrix, next words.",
    )
    sub = p.add_subparsers(dest="lesson_command", metavar="ACTION")

    q = sub.add_parser("list", help="the lessons, their models (with parameters) and schedules")
    q.set_defaults(func=run_list)

    t = sub.add_parser("train", help="train a lesson model into a run folder",
                       description="Train with the notebook's schedule (override it with --epochs/--lr). Ctrl-C "
                       "stops after the current batch and writes a checkpoint; --resume continues there, and "
                       "with a larger --epochs extends a finished run.")
    t.add_argument("lesson", nargs="?", choices=LESSONS, help="which lesson (not with --resume)")
    t.add_argument("--arch", metavar="NAME", help="model: cnn-classifier, resnet-classifier, densenet-classifier; "
                   "rnn-model0 .. rnn-model5 (default: the lesson's own)")
    t.add_argument("--data", metavar="DIR", help="resnet-mnist: 'mnist' (default; downloaded once) or an image folder "
                   "(DIR/train + DIR/valid, DIR/training + DIR/testing, or DIR/<class>); human-numbers: a folder "
                   "with train.txt and valid.txt (default: generated)")
    t.add_argument("--out", metavar="RUN", help="run folder to create (or to continue with --resume)")
    t.add_argument("--epochs", type=positive_int, metavar="N")
    t.add_argument("--lr", type=positive_float, metavar="LR", help="peak learning rate of the one-cycle schedule")
    t.add_argument("--batch-size", type=positive_int, metavar="B")
    t.add_argument("--bptt", type=positive_int, metavar="T", help="human-numbers: tokens per batch row")
    t.add_argument("--valid-pct", type=positive_float, metavar="F", help="share of a single class folder held out (0.2)")
    t.add_argument("--seed", type=non_negative_int)
    t.add_argument("--device", metavar="D", help="auto (default), cpu, cuda, cuda:N or mps")
    t.add_argument("--threads", type=positive_int, metavar="N",
                   help="CPU threads (default 1: the lesson's nets are too small to gain from more)")
    t.add_argument("--max-minutes", type=positive_float, metavar="M", help="stop (resumably) after M minutes")
    t.add_argument("--steps-per-epoch", type=positive_int, metavar="N", help="at most N training batches per epoch")
    t.add_argument("--resume", action="store_true", help="continue the run in --out")
    t.set_defaults(func=run_train)

    pr = sub.add_parser("predict", help="next-word predictions of a human-numbers model")
    pr.add_argument("model", metavar="RUN", help="run folder or .safetensors of an rnn-model")
    pr.add_argument("text", help="the start of a sequence, e.g. 'eight thousand one , eight thousand'")
    pr.add_argument("--top", type=positive_int, default=5, help="how many next words (default 5)")
    pr.add_argument("--continue", dest="n_words", type=non_negative_int, default=0, metavar="N",
                    help="also continue the text greedily by N words")
    pr.set_defaults(func=run_predict)

    c = sub.add_parser("classify", help="class probabilities of images under a resnet-mnist model")
    c.add_argument("model", metavar="RUN", help="run folder or .safetensors of a classifier")
    c.add_argument("images", nargs="+", metavar="IMAGE")
    c.add_argument("--top", type=positive_int, default=3, help="classes shown per image (default 3)")
    c.set_defaults(func=run_classify)

    i = sub.add_parser("interpret", help="confusion matrix and most-confused pairs of a classifier run")
    i.add_argument("run", metavar="RUN")
    i.add_argument("--top", type=positive_int, default=10, help="most-confused pairs shown (default 10)")
    i.set_defaults(func=run_interpret)

    g = sub.add_parser("progress", help="the human-numbers models' accuracies beside the notebook's")
    g.add_argument("runs", metavar="RUNS_DIR", help="folder holding lesson run folders")
    g.set_defaults(func=run_progress)

    d = sub.add_parser("data", help="write a lesson data set to a folder")
    d.add_argument("which", choices=("human-numbers", "digits", "shapes", "mnist"),
                   help="human-numbers: train.txt + valid.txt; digits: scikit-learn's digits as 28 px PNG "
                   "folders; shapes: a small generated image-class set; mnist: download MNIST into the cache")
    d.add_argument("--out", metavar="DIR", help="destination folder (mnist: the cache folder, optional)")
    d.set_defaults(func=run_data)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


class _Bars(Console):
    """Batch bar per epoch, one line per epoch, downloads as bars."""

    def __init__(self) -> None:
        super().__init__()
        self.key = None
        self.other: dict[str, ProgressBars] = {}

    def close(self) -> None:
        super().close()
        for b in self.other.values():
            b.close()
        self.other.clear()

    def __call__(self, ev) -> None:
        from lesson7_studio.core.events import BatchEnd, EpochEnd, Log, Progress

        if isinstance(ev, BatchEnd):
            key = (ev.stage, ev.epoch)
            if key != self.key:
                self.close()
                self.key = key
                self.bar = progress_bar(total=ev.n_iter, initial=ev.iteration, desc=f"epoch {ev.epoch + 1}",
                                        unit="batch", leave=False)
            advance(self.bar, ev.iteration + 1, f"loss {ev.smooth_loss:.4f}")
        elif isinstance(ev, EpochEnd):
            self.close()
            self.key = None
            m = ev.metrics
            acc = m.get("accuracy")
            self.say(f"epoch {ev.epoch + 1}/{ev.n_epochs}: train_loss {m.get('train_loss', float('nan')):.4f}  "
                     f"valid_loss {m.get('valid_loss', float('nan')):.4f}"
                     + (f"  accuracy {acc:.4f}" if acc is not None else "") + f"  ({ev.seconds:.1f} s)")
        elif isinstance(ev, Progress):
            bars = self.other.setdefault(ev.stage + ev.message, ProgressBars(ev.message, "it", ev.stage))
            bars.progress(ev)
            if ev.total and ev.done >= ev.total:
                bars.close()
                self.other.pop(ev.stage + ev.message, None)
        elif isinstance(ev, Log):
            self.say(ev.message)


def run_list(args: argparse.Namespace) -> int:
    from lesson7_studio.core import models
    from lesson7_studio.core.lessons import LESSONS as ALL

    from .models_cmd import format_params

    for name, les in ALL.items():
        print(f"{name} (batch {les.batch_size}; default model {les.default_arch})")
        print(f"  {les.description}")
        for arch, s in les.schedules.items():
            nb = f"; notebook accuracy {s.notebook_accuracy:.4f}" if s.notebook_accuracy else ""
            bptt = f", bptt {s.bptt}" if s.bptt else ""
            print(f"  {arch:<20} {format_params(models.describe(arch).params):>6} params  "
                  f"fit_one_cycle({s.epochs}, {s.lr:g}{', pct_start=' + str(s.pct_start) if s.pct_start != 0.3 else ''})"
                  f"{bptt}{nb}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from lesson7_studio.core.errors import TrainingError
    from lesson7_studio.core.events import CancelToken
    from lesson7_studio.core.lessons import lesson_config, lesson_of_arch, resume_lesson_config, train_lesson

    if args.resume:
        if args.lesson or args.arch:
            raise TrainingError("--resume continues the run in --out with its saved settings; do not name a "
                                "lesson or --arch.")
        if not args.out:
            raise TrainingError("--resume needs --out RUN (the run folder to continue).")
        cfg = resume_lesson_config(args.out, epochs=args.epochs, device=args.device, max_minutes=args.max_minutes,
                                   data=args.data, threads=args.threads)
        bad = [n for n in ("lr", "batch_size", "bptt", "seed", "steps_per_epoch", "valid_pct")
               if getattr(args, n) is not None]
        if bad:
            raise TrainingError(f"A resumed run keeps its settings; cannot change {', '.join(bad)} on resume.")
    else:
        lesson = args.lesson or (lesson_of_arch(args.arch) if args.arch else None)
        if lesson is None:
            raise TrainingError("Which lesson? Give resnet-mnist or human-numbers (see `lesson7-studio lesson list`).")
        if not args.out:
            raise TrainingError("No run folder: pass --out RUN.")
        cfg = lesson_config(lesson, args.arch, out=args.out, data=args.data, epochs=args.epochs, lr=args.lr,
                            batch_size=args.batch_size, bptt=args.bptt, seed=args.seed, device=args.device,
                            max_minutes=args.max_minutes, steps_per_epoch=args.steps_per_epoch,
                            valid_pct=args.valid_pct, threads=args.threads)
    cancel = CancelToken()
    bars = _Bars()
    bars.say(f"{cfg.lesson}: {cfg.arch}, {cfg.epochs} epochs at lr {cfg.lr:g}, batch {cfg.batch_size} -> {cfg.out}")
    with showing(bars, cancel, "stopping after this batch and writing a checkpoint (Ctrl-C again to abort) ..."):
        result = train_lesson(cfg, on_event=bars, cancel=cancel, resume=args.resume)
    acc = result.metrics.get("accuracy")
    state = "finished" if result.finished else f"stopped ({result.stopped}); continue with --resume"
    print(f"{state}: {result.epochs_done} epochs, {result.steps} steps in {result.seconds:.0f} s"
          + (f"; accuracy {acc:.4f}" if acc is not None else ""))
    print(f"model: {result.model_path}")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from lesson7_studio.core.lessons import continue_text, load_lesson_model, next_words

    m = load_lesson_model(args.model)
    for word, p in next_words(m, args.text, k=args.top):
        print(f"{p:7.2%}  {word}")
    if args.n_words:
        print(f"{args.text} … {continue_text(m, args.text, args.n_words)}")
    return 0


def run_classify(args: argparse.Namespace) -> int:
    from lesson7_studio.core.lessons import classify

    probs, classes = classify(args.model, args.images)
    for path, p in zip(args.images, probs):
        order = p.argsort()[::-1][: args.top]
        print(f"{path}: " + ", ".join(f"{classes[i]} {p[i]:.1%}" for i in order))
    return 0


def run_interpret(args: argparse.Namespace) -> int:
    from lesson7_studio.core.lessons import read_interpretation

    it = read_interpretation(args.run)
    print(f"validation accuracy {it.accuracy:.4f} on {it.n:,} images")
    w = max(3, max(len(c) for c in it.classes), len(str(int(it.confusion.max()))))
    print("actual \\ predicted")
    print(" " * (w + 1) + " ".join(f"{c:>{w}}" for c in it.classes))
    for c, row in zip(it.classes, it.confusion):
        print(f"{c:>{w}} " + " ".join(f"{int(v):>{w}}" for v in row))
    pairs = it.most_confused()[: args.top]
    if pairs:
        print("most confused (actual, predicted, count): " + ", ".join(f"({a}, {p}, {n})" for a, p, n in pairs))
    top = ", ".join(f"{it.classes[a]}->{it.classes[p]} loss {lo:.2f}"
                    for a, p, lo in zip(it.top_actual[:5], it.top_pred[:5], it.top_loss[:5]))
    print(f"top losses: {top}")
    return 0


def run_progress(args: argparse.Namespace) -> int:
    from lesson7_studio.core.lessons import progression

    print(f"{'MODEL':<12} {'NOTEBOOK':>9} {'HERE':>9} {'EPOCHS':>7} {'SECONDS':>8}  RUN")
    for r in progression(args.runs):
        here = f"{r['accuracy']:.4f}" if r["accuracy"] is not None else "—"
        secs = f"{r['seconds']:.0f}" if r["seconds"] is not None else "—"
        print(f"{r['arch']:<12} {r['notebook_accuracy']:>9.4f} {here:>9} {r['epochs_done']:>3}/{r['epochs']:<3} "
              f"{secs:>8}  {r['run'] or ''}")
    return 0


def run_data(args: argparse.Namespace) -> int:
    from lesson7_studio.core.errors import DatasetError

    if args.which == "human-numbers":
        from lesson7_studio.core.lessons.numbers import write_text_files

        if not args.out:
            raise DatasetError("Pass --out DIR for train.txt and valid.txt.")
        for p in write_text_files(args.out):
            print(p)
    elif args.which in ("digits", "shapes"):
        from lesson7_studio.core.lessons.images import BUILTIN_FOLDERS

        if not args.out:
            raise DatasetError(f"Pass --out DIR for the {args.which}' train/ and valid/ folders.")
        print(BUILTIN_FOLDERS[args.which](args.out))
    else:
        from lesson7_studio.core.lessons.images import lessons_data_dir, load_mnist

        bars = _Bars()
        try:
            train, valid = load_mnist(args.out, on_event=bars)
        finally:
            bars.close()
        print(f"MNIST: {len(train):,} training and {len(valid):,} test images in {args.out or lessons_data_dir()}")
    return 0
