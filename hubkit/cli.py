"""The ``hubkit`` command line.

    hubkit fetch URL [--sha256 H] [--md5 H] [--size N] [--dest DIR] [--filename NAME] [--mirror URL]...
    hubkit cache ls [--json] | verify [--delete] | prune [--dry-run] [--max-size 20G] [--unused-for DAYS]
                | rm PATTERN... | dir
    hubkit mirror sync DIR URL_OR_NAME...
    hubkit datasets [--root DIR]
    hubkit download NAME... [--root DIR] [--no-progress]
    hubkit models [PATTERN] [--modality M] [--task T] [--pretrained] [--json]
    hubkit info NAME [--json]
    hubkit predict NAME IMAGE... [--topk 5] [--device cpu]
    hubkit embed NAME TEXT... [--device cpu] [--json]
    hubkit transcribe NAME WAV... [--device cpu] [--json]
    hubkit fetch-weights NAME... [--no-progress]
    hubkit generate NAME PROMPT [--max-new-tokens 50] [--sample] [--temperature T] [--top-k K] [--top-p P]
                [--repetition-penalty R] [--seed S] [--stop TEXT]... [--no-cache] [--device cpu]
    hubkit generate IMAGE_GENERATOR [--n 4] [--out grid.png] [--seed S] [--nrow 8] [--truncation T] [--device cpu]
    hubkit serve [NAME=]ARCH[.TAG|:CHECKPOINT]... [--port 8080] [--config FILE] (see hubkit serve --help)
    hubkit run --nproc N [--hosts H1:N1,H2:N2] [--launcher mpi|local] [-m] SCRIPT [ARGS...]

Adding a subcommand: write ``_add_<name>(subparsers)`` that creates its parser with
``subparsers.add_parser(...)`` and sets ``func=`` to a handler ``(args) -> int`` (the exit code), then
append it to ``SUBCOMMANDS``. Handlers print; the library never does. A ``HubkitError`` raised by a
handler is printed to stderr as ``hubkit: error: <message>`` and exits 1, without a traceback.

``mirror sync`` takes URLs and names; a name is turned into files by ``resources_for_name``, which
dataset and model registries extend.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hubkit.errors import HubkitError

if TYPE_CHECKING:
    from hubkit.hub.transport.download import Resource

_URL_SCHEMES = ("http://", "https://", "file://")


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


# ---------------------------------------------------------------- hubkit fetch


def _add_fetch(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fetch", help="download a file (verified, cached, resumable) and print its path")
    p.add_argument("url", help="http(s):// or file:// URL")
    p.add_argument("--sha256", help="expected sha256 (hex)")
    p.add_argument("--md5", help="expected md5 (hex)")
    p.add_argument("--sha256-prefix", help="expected leading hex digits of the sha256")
    p.add_argument("--size", type=int, help="expected size in bytes")
    p.add_argument("--dest", help="write into this directory instead of the cache")
    p.add_argument("--filename", help="file name to use instead of the URL's")
    p.add_argument("--mirror", action="append", default=[], help="alternative URL, tried after the primary")
    p.add_argument("--offline", action="store_true", default=None, help="use only the cache and file:// mirrors")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_fetch)


def _cmd_fetch(args: argparse.Namespace) -> int:
    from hubkit.hub import fetch

    path = fetch(
        args.url, sha256=args.sha256, md5=args.md5, sha256_prefix=args.sha256_prefix, size=args.size,
        mirrors=tuple(args.mirror), dest=args.dest, filename=args.filename,
        progress=False if args.no_progress else None, offline=args.offline,
    )
    print(path)
    return 0


# ---------------------------------------------------------------- hubkit cache


def _add_cache(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cache", help="inspect and clean the download cache")
    csub = p.add_subparsers(dest="cache_command", metavar="{ls,verify,prune,rm,dir}", required=True)
    ls = csub.add_parser("ls", help="list cached files")
    ls.add_argument("--json", action="store_true", help="print a JSON list")
    ls.set_defaults(func=_cmd_cache_ls)
    verify = csub.add_parser("verify", help="re-hash every cached file and compare with its record")
    verify.add_argument("--delete", action="store_true", help="delete files that fail")
    verify.set_defaults(func=_cmd_cache_verify)
    prune = csub.add_parser(
        "prune", help="remove interrupted downloads and orphaned bookkeeping files; with --max-size or "
        "--unused-for, also the least recently used files")  # fmt: skip
    prune.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    prune.add_argument("--max-size", type=_parse_size, metavar="SIZE",
                       help="then delete the least recently used files until the cache holds at most SIZE "
                            "(bytes, or with a unit: 500M, 20G)")  # fmt: skip
    prune.add_argument("--unused-for", type=_parse_days, metavar="DAYS",
                       help="then delete files not downloaded or used for more than DAYS days")
    prune.set_defaults(func=_cmd_cache_prune)
    rm = csub.add_parser("rm", help="remove cached files whose path or URL matches a glob")
    rm.add_argument("patterns", nargs="+", metavar="PATTERN", help="glob on 'host/path' or on the URL")
    rm.set_defaults(func=_cmd_cache_rm)
    where = csub.add_parser("dir", help="print the cache directory")
    where.set_defaults(func=_cmd_cache_dir)


def _cmd_cache_ls(args: argparse.Namespace) -> int:
    from hubkit.hub.transport.cache import files_dir, iter_entries

    entries = list(iter_entries())
    if args.json:
        rows = [{"path": str(e.path), "relpath": e.relpath, "size": e.size,
                 "sha256": e.record.sha256 if e.record else None, "url": e.record.url if e.record else None}
                for e in entries]
        print(json.dumps(rows, indent=1))
        return 0
    for e in entries:
        sha = e.record.sha256[:12] if e.record else "-" * 12
        print(f"{_human(e.size):>10}  {sha}  {e.relpath}")
    total = sum(e.size for e in entries)
    print(f"{len(entries)} file(s), {_human(total)} in {files_dir()}")
    return 0


def _cmd_cache_verify(args: argparse.Namespace) -> int:
    from hubkit.hub.transport.cache import remove_entries
    from hubkit.hub.transport.verify import verify_entries

    bad = 0
    for v in verify_entries():
        if v.status == "corrupt":
            bad += 1
            print(f"CORRUPT   {v.entry.relpath}: {v.detail}")
            if args.delete:
                remove_entries([v.entry.relpath])
        elif v.status == "recorded":
            print(f"RECORDED  {v.entry.relpath}: had no record; now {v.detail}")
        else:
            print(f"ok        {v.entry.relpath}")
    if bad:
        action = "deleted" if args.delete else "run 'hubkit cache verify --delete' or fetch them again"
        print(f"{bad} corrupted file(s); {action}", file=sys.stderr)
        return 1
    return 0


_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _parse_size(text: str) -> int:
    """``"20G"`` -> bytes (binary units K, M, G, T, optionally followed by B or iB)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a size like 500M or 20G, got {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def _parse_days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        days = -1.0
    if not days >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of days (0 or more), got {text!r}")
    return days


def _cmd_cache_prune(args: argparse.Namespace) -> int:
    from hubkit.hub.transport.cache import evict, prune

    removed = prune(dry_run=args.dry_run)
    verb = "would remove " if args.dry_run else "removed "
    for path, _ in removed:
        print(verb + str(path))
    freed = sum(n for _, n in removed)
    count = len(removed)
    if args.max_size is not None or args.unused_for is not None:
        unused_s = None if args.unused_for is None else args.unused_for * 86400.0
        for entry in evict(max_bytes=args.max_size, unused_for_s=unused_s, dry_run=args.dry_run):
            print(f"{verb}{entry.relpath} ({_human(entry.size)}, least recently used)")
            freed += entry.size
            count += 1
    print(f"{count} item(s), {_human(freed)}" + (" (dry run)" if args.dry_run else ""))
    return 0


def _cmd_cache_rm(args: argparse.Namespace) -> int:
    from hubkit.errors import CacheError
    from hubkit.hub.transport.cache import files_dir, remove_entries

    removed = remove_entries(args.patterns)
    if not removed:
        raise CacheError(
            f"No cached file matches {' '.join(args.patterns)!s} in {files_dir()}. "
            "Patterns are globs on 'host/path' (see 'hubkit cache ls') or on the URL."
        )
    for e in removed:
        print(f"removed {e.relpath}")
    print(f"{len(removed)} file(s), {_human(sum(e.size for e in removed))}")
    return 0


def _cmd_cache_dir(args: argparse.Namespace) -> int:
    from hubkit.hub import cache_dir

    print(cache_dir())
    return 0


# ---------------------------------------------------------------- hubkit mirror


def resources_for_name(name: str) -> list[Resource]:
    """The files behind a ``mirror sync`` argument that is not a URL (a dataset or model name).

    Dataset and model registries extend this function; a name nobody knows raises ``HubkitError``.
    """
    from hubkit import datasets

    if datasets.canonical_name(name) is not None:
        return datasets.resources(name)
    from hubkit.hub import api

    if api.is_model_name(name):
        return api.weight_resources(name)
    raise HubkitError(
        f"Unknown name {name!r} for 'mirror sync': expected an http://, https:// or file:// URL, "
        "or the name of a dataset or model hubkit knows."
    )


def _resources_for_argument(arg: str) -> list[Resource]:
    from hubkit.hub import Resource

    if arg.startswith(_URL_SCHEMES):
        return [Resource(url=arg)]
    return resources_for_name(arg)


def _add_mirror(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mirror", help="build a mirror directory (serve it, then set HUBKIT_MIRROR)")
    msub = p.add_subparsers(dest="mirror_command", metavar="{sync}", required=True)
    sync = msub.add_parser(
        "sync", help="copy files (cached, or fetched now) into DIR in the <host>/<path> mirror layout"
    )
    sync.add_argument("dir", help="mirror root directory")
    sync.add_argument("items", nargs="+", metavar="URL_OR_NAME", help="URLs, or dataset/model names")
    sync.add_argument("--no-progress", action="store_true", help="no progress bar")
    sync.set_defaults(func=_cmd_mirror_sync)


def _cmd_mirror_sync(args: argparse.Namespace) -> int:
    from hubkit.hub.transport.cache import read_record, url_relpath
    from hubkit.hub.transport.download import copy_into, fetch

    root = Path(args.dir).expanduser()
    resources = [r for item in args.items for r in _resources_for_argument(item)]
    for r in resources:
        cached = fetch(r.url, sha256=r.sha256, md5=r.md5, sha256_prefix=r.sha256_prefix, size=r.size,
                       mirrors=r.mirrors, filename=r.filename, progress=False if args.no_progress else None)
        rel = url_relpath(r.url, r.filename)
        record = read_record(cached)
        copy_into(cached, root.joinpath(*rel.split("/")), sha256=record.sha256 if record else r.sha256)
        print(f"{rel}")
    print(f"{len(resources)} file(s) in {root}; use it with HUBKIT_MIRROR={root.resolve().as_uri()}")
    return 0


# ---------------------------------------------------------------- hubkit datasets / hubkit download


def _add_datasets(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="list the datasets hubkit can download, and which are on disk")
    p.add_argument("--root", help="dataset root (default: <hubkit data dir>/datasets)")
    p.set_defaults(func=_cmd_datasets)


def _cmd_datasets(args: argparse.Namespace) -> int:
    from hubkit import datasets
    from hubkit.datasets._files import resource_filename

    rows = []
    for name in datasets.list_datasets():
        files = datasets.resources(name)
        folder = datasets.resource_folder(name, args.root)
        here = sum((folder / resource_filename(r)).is_file() for r in files)
        known = [r.size for r in files if r.size]
        size = _human(sum(known)) + ("" if len(known) == len(files) else "+") if known else "?"
        rows.append((name, str(len(files)), size, f"{here}/{len(files)}", str(folder)))
    header = ("NAME", "FILES", "SIZE", "ON DISK", "FOLDER")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4])
    return 0


def _add_download(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("download", help="download datasets' files (verified, mirrored) into the dataset root")
    p.add_argument("names", nargs="+", metavar="NAME", help="dataset names (see `hubkit datasets`)")
    p.add_argument("--root", help="dataset root (default: <hubkit data dir>/datasets)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_download)


def _cmd_download(args: argparse.Namespace) -> int:
    from hubkit import datasets

    for name in args.names:
        for path in datasets.download(name, args.root, progress=False if args.no_progress else None):
            print(path)
    return 0


# ---------------------------------------------------------------- hubkit models, info, predict, fetch-weights


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the models hubkit can build (and load weights for)")
    p.add_argument("pattern", nargs="?", help="fnmatch pattern on the name, e.g. 'resnet*'")
    p.add_argument("--modality", help="vision, text or audio")
    p.add_argument("--task", help="e.g. image-classification")
    p.add_argument("--pretrained", action="store_true", default=None, help="only models with published weights")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_models)


def _cmd_models(args: argparse.Namespace) -> int:
    from hubkit.hub import api

    names = api.list_models(args.pattern, modality=args.modality, task=args.task, pretrained=args.pretrained)
    infos = [api.model_info(n) for n in names]
    if args.json:
        print(json.dumps(infos, indent=2))
        return 0
    rows = []
    for info in infos:
        default = next((w for w in info["weights"] if w["tag"] == info["default"]), None)
        acc = (default or {}).get("metrics", {}).get("ImageNet-1K", {}).get("acc@1")
        params = f"{info['num_params'] / 1e6:.1f}M" if info["num_params"] else "-"
        tags = ",".join(w["tag"] + ("*" if w["tag"] == info["default"] else "") for w in info["weights"])
        tags = tags or "(architecture only)"
        rows.append((info["name"], params, f"{acc:.2f}" if acc is not None else "-", tags))
    header = ("NAME", "PARAMS", "ACC@1", "WEIGHT TAGS (* = DEFAULT)")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row[:3], widths)) + "  " + row[3])
    if not rows:
        print(f"no model matches {args.pattern!r}" if args.pattern else "no models registered")
    return 0


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="everything the registry knows about a model (tags, URLs, hashes, metrics)")
    p.add_argument("name", help="architecture or architecture.tag, e.g. resnet50 or resnet50.IMAGENET1K_V1")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_info)


def _cmd_info(args: argparse.Namespace) -> int:
    from hubkit.hub import api

    info = api.model_info(args.name)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['name']}: {info['description']}")
    print(f"  modality/task:  {info['modality']} / {info['task']}")
    print(f"  paper:          {info['paper']}")
    print(f"  builder:        {info['builder']}")
    if not info["weights"]:
        print("  weights:        none published (architecture only)")
    else:
        legacy = (f"; torchvision's legacy pretrained=True loads {info['legacy_default']}"
                  if info["legacy_default"] else "")  # fmt: skip
        print(f"  default tag:    {info['default']}  (pretrained=True{legacy})")
    for w in info["weights"]:
        pre = w["preprocessing"]
        print(f"  [{w['tag']}]")
        print(f"    url:          {w['url']}")
        digest = w["sha256"] or f"{w['sha256_prefix']}... (prefix; the full hash is recorded on first download)"
        print(f"    sha256:       {digest}")
        size = _human(w["size"]) if w["size"] else f"{w['file_size_mb']} MB" if w["file_size_mb"] else "?"
        print(f"    size/format:  {size}, {w['format']}")
        print(f"    params:       {w['num_params']:,}" + (f", {w['gflops']} GFLOPS" if w["gflops"] else ""))
        for dataset, values in w["metrics"].items():
            print(f"    metrics:      {dataset}: " + ", ".join(f"{k} {v}" for k, v in values.items()))
        if pre["kind"] == "audio":
            print(f"    preprocess:   mono waveform at {pre['sample_rate']} Hz")
        elif pre["kind"] == "image-generation":
            side = f"{pre['image_size']}x{pre['image_size']}" if pre["image_size"] else "checkpoint-sized"
            dim = pre["latent_dim"] or "checkpoint-sized"
            print(f"    generates:    {side} RGB images in {pre['output_range']} from {dim}-d N(0, 1) latents "
                  "(the checkpoint's config decides)")
        elif pre["kind"] == "text":
            print(f"    preprocess:   {pre['tokenizer']} tokenizer ({pre['vocab']}), "
                  f"lower-case {pre['do_lower_case']}, max {pre['max_length']} tokens")
        else:
            print(f"    preprocess:   resize {pre['resize_size']} ({pre['interpolation']}), crop {pre['crop_size']}, "
                  f"mean {pre['mean']}, std {[round(x, 5) for x in pre['std']]}")
        for f in w["files"]:
            digest = f"sha256 {f['sha256'][:12]}..." if f["sha256"] else "sha256 recorded on first download"
            print(f"    file:         {f['name']}: {f['url']} ({digest})")
        print(f"    license:      {w['license']}")
        print(f"    source:       {w['source']}" + (f"; recipe {w['recipe']}" if w["recipe"] else ""))
        for alias in w["aliases"]:
            print(f"    alias:        {alias['url']} ({alias['note']})")
        if w["cached"]:
            print(f"    cached:       {w['cached']}")
    return 0


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="classify images with a pretrained model and print the top classes")
    p.add_argument("name", help="model (its DEFAULT weights) or model.tag, e.g. resnet18")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (anything Pillow reads)")
    p.add_argument("--topk", type=int, default=5, help="how many classes to print per image (default 5)")
    p.add_argument("--device", default=None, help="cpu (default), cuda or cuda:N")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--no-progress", action="store_true", help="no download progress bar")
    p.set_defaults(func=_cmd_predict)


def _cmd_predict(args: argparse.Namespace) -> int:
    from hubkit import tasks

    results = tasks.predict(args.name, args.images, topk=args.topk, device=args.device,
                          progress=False if args.no_progress else None)
    if args.json:
        print(json.dumps([{"image": str(img), "top": [{"class": c, "probability": p} for c, p in top]}
                          for img, top in zip(args.images, results)], indent=2))
        return 0
    for img, top in zip(args.images, results):
        print(img)
        for label, prob in top:
            print(f"  {prob:7.2%}  {label}")
    return 0


def _add_embed(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help="embed texts with a pretrained text model and print their similarities")
    p.add_argument("name", help="text model (its DEFAULT weights) or model.tag, e.g. all-MiniLM-L6-v2")
    p.add_argument("texts", nargs="+", metavar="TEXT", help="texts to embed")
    p.add_argument("--device", default=None, help="cpu (default), cuda or cuda:N")
    p.add_argument("--json", action="store_true", help="print the embeddings as JSON")
    p.add_argument("--no-progress", action="store_true", help="no download progress bar")
    p.set_defaults(func=_cmd_embed)


def _cmd_embed(args: argparse.Namespace) -> int:
    from hubkit import tasks

    emb = tasks.embed(args.name, args.texts, device=args.device, progress=False if args.no_progress else None)
    if args.json:
        print(json.dumps({"model": args.name, "texts": args.texts, "embeddings": emb.round(7).tolist()}))
        return 0
    print(f"{len(args.texts)} text(s) -> embeddings of {emb.shape[1]} dims")
    norms = (emb * emb).sum(axis=1) ** 0.5
    unit = emb / norms.clip(min=1e-12)[:, None]
    sim = unit @ unit.T
    labels = [t if len(t) <= 40 else t[:37] + "..." for t in args.texts]
    width = max(len(label) for label in labels)
    print("cosine similarity:")
    for i, label in enumerate(labels):
        print(f"  [{i}] {label:<{width}}  " + "  ".join(f"{v:6.3f}" for v in sim[i]))
    return 0


def _add_transcribe(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transcribe", help="transcribe speech in WAV files with a pretrained recognizer")
    p.add_argument("name", help="speech recognizer (its DEFAULT weights) or model.tag, e.g. wav2vec2_asr_base_960h")
    p.add_argument("audio", nargs="+", metavar="WAV", help="PCM WAV files (any rate: resampled to the model's)")
    p.add_argument("--device", default=None, help="cpu (default), cuda or cuda:N")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--no-progress", action="store_true", help="no download progress bar")
    p.set_defaults(func=_cmd_transcribe)


def _cmd_transcribe(args: argparse.Namespace) -> int:
    from hubkit import tasks

    texts = tasks.transcribe(args.name, args.audio, device=args.device, progress=False if args.no_progress else None)
    if args.json:
        print(json.dumps([{"audio": a, "text": t} for a, t in zip(args.audio, texts)], indent=2))
        return 0
    for path, text in zip(args.audio, texts):
        print(f"{path}: {text}")
    return 0


def _add_fetch_weights(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fetch-weights", help="download and verify models' weights into the cache (pre-warm)")
    p.add_argument("names", nargs="+", metavar="NAME",
                   help="model (its DEFAULT weights), model.tag, or model.* for every tag")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_fetch_weights)


def _cmd_fetch_weights(args: argparse.Namespace) -> int:
    from hubkit.hub import api, fetch_many

    resources = [r for name in args.names for r in api.weight_resources(name)]
    for path in fetch_many(resources, progress=False if args.no_progress else None):
        print(path)
    return 0


def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="continue a text prompt with a pretrained language model, streaming tokens, "
                                        "or draw images with a pretrained image generator into a PNG grid")
    p.add_argument("name", help="text generator (its DEFAULT weights) or model.tag, e.g. gpt2, distilgpt2; or an "
                                "image generator, e.g. pgan-celebahq-512, dcgan-fashiongen")
    p.add_argument("prompt", nargs="?", help="the text to continue (text generators only)")
    p.add_argument("--n", type=int, default=4, help="image generators: how many images (default 4)")
    p.add_argument("--out", default="grid.png", help="image generators: the grid image to write (default grid.png)")
    p.add_argument("--nrow", type=int, default=8, help="image generators: images per grid row (default 8)")
    p.add_argument("--truncation", type=float, default=None,
                   help="image generators: redraw latent values beyond +-T (more typical images)")
    p.add_argument("--max-new-tokens", type=int, default=50, help="at most this many new tokens (default 50)")
    p.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)")
    p.add_argument("--top-k", type=int, default=50, help="sample among the k most likely tokens (0: all; default 50)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default 1.0: off)")
    p.add_argument("--repetition-penalty", type=float, default=1.0, help="> 1 discourages repeats (default 1.0)")
    p.add_argument("--seed", type=int, default=None, help="makes sampling (and generated images) repeatable")
    p.add_argument("--stop", action="append", default=None, metavar="TEXT", help="stop at this text (repeatable)")
    p.add_argument("--no-cache", action="store_true", help="recompute the whole sequence for every token")
    p.add_argument("--device", default=None, help="cpu (default), cuda or cuda:N")
    p.add_argument("--no-progress", action="store_true", help="no download progress bar")
    p.set_defaults(func=_cmd_generate)


def _cmd_generate(args: argparse.Namespace) -> int:
    import hubkit
    from hubkit.errors import ArgumentError
    from hubkit.hub import api

    entry, _ = api.split_name(args.name)
    if entry.task == "image-generation":
        if args.prompt is not None:
            raise ArgumentError(f"{entry.name} draws images from random latents and takes no prompt; drop "
                                f"{args.prompt!r} (use --n, --seed, --out)")
        from hubkit.tasks import generate_images

        path = generate_images(args.name, args.n, seed=args.seed, out=args.out, nrow=args.nrow,
                               truncation=args.truncation, device=args.device,
                               progress=False if args.no_progress else None)  # fmt: skip
        print(path)
        return 0
    if entry.task != "text-generation":
        raise ArgumentError(
            f"{entry.name} does not generate text or images (it is a {entry.modality} model, {entry.task}); text "
            f"generators: {', '.join(api.list_models(task='text-generation'))}; image generators: "
            f"{', '.join(api.list_models(task='image-generation'))}"
        )
    if args.prompt is None:
        raise ArgumentError(f"hubkit generate {entry.name} needs a PROMPT, the text to continue")
    model = hubkit.load(args.name, pretrained=True, device=args.device, progress=False if args.no_progress else None)
    if not callable(getattr(model, "stream", None)):
        raise ArgumentError(f"{args.name} does not generate text; text generators: "
                            f"{', '.join(hubkit.list_models(task='text-generation'))}")  # fmt: skip
    print(args.prompt, end="", flush=True)
    for piece in model.stream(args.prompt, args.max_new_tokens, do_sample=args.sample, temperature=args.temperature,
                              top_k=args.top_k, top_p=args.top_p, repetition_penalty=args.repetition_penalty,
                              seed=args.seed, stop=args.stop, use_cache=not args.no_cache):  # fmt: skip
        print(piece, end="", flush=True)
    print()
    return 0


# ---------------------------------------------------------------- entry point

def _add_baselines(sub: argparse._SubParsersAction) -> None:
    from hubkit.baselines._cli import add_parser

    add_parser(sub)


def _add_serve(sub: argparse._SubParsersAction) -> None:
    from hubkit.serve.cli import add_parser  # argparse only; starlette/uvicorn are imported when `serve` runs

    add_parser(sub)


# ---------------------------------------------------------------- hubkit run


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a training script as N processes (MPI, or one per GPU) to train in parallel",
                       description="Start SCRIPT as N ranks of a distributed job (hubkit.distributed).")
    p.add_argument("--nproc", type=int, required=True, help="number of processes (ranks) in all")
    p.add_argument("--hosts", help="machines for the mpi launcher, e.g. node1:4,node2:4 (default: this one)")
    p.add_argument("--launcher", choices=("mpi", "local"),
                   help="mpi: mpiexec (default when installed); local: one process per rank on this machine with "
                        "RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT set, as torchrun does")
    p.add_argument("-m", dest="module", action="store_true", help="SCRIPT is a module name (python -m SCRIPT)")
    p.add_argument("script", help="the Python script (or module, with -m) to run")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    p.set_defaults(func=_run_distributed)


def _run_distributed(args: argparse.Namespace) -> int:
    from hubkit.distributed.launch import program_argv, run

    return run(args.nproc, program_argv(args.script, args.args, module=args.module), hosts=args.hosts,
               launcher=args.launcher)


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_fetch, _add_cache, _add_mirror, _add_datasets, _add_download,
    _add_models, _add_info, _add_predict, _add_embed, _add_transcribe, _add_fetch_weights,
    _add_baselines, _add_serve, _add_run, _add_generate,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hubkit", description="hubkit: model zoo and dataset toolkit")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log progress (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 a hubkit error, 2 a usage error, 130 interrupted, 141 the
    reader of the output went away, as in ``hubkit models | head``)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help and usage errors
        return e.code if isinstance(e.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("hubkit: %(message)s"))
    log = logging.getLogger("hubkit")
    log.addHandler(handler)
    log.setLevel(logging.WARNING - 10 * min(args.verbose, 2))
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, where a closed pipe can still be handled, not at interpreter exit
        return code
    except HubkitError as e:
        print(f"hubkit: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hubkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _discard_stdout()
        return 141
    finally:
        log.removeHandler(handler)


def _discard_stdout() -> None:
    """After the reader of stdout went away: send what is still buffered to /dev/null, so that Python's
    flush at exit does not fail again with a traceback (the recipe of Python's signal docs)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (captured in tests)
        pass


if __name__ == "__main__":
    sys.exit(main())
