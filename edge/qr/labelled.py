"""Labelled QR photographs for `edge bench qr --dir DIR`, in the layouts public sets use.

- `labels.json` in DIR: {"file name": ["text", …]} (written by `edge bench qr DIR` for generated
  frames; also the simplest way to label photographs of one's own).
- OpenCV's test data (`opencv_extra/testdata/cv/qrcode/`, Apache-2.0): `dataset_config.json`
  files anywhere under DIR, each a {"<any key>": [{"image_name": …, "info": [texts] or text}, …]}
  beside its images (the corner points `x`, `y` are not used).
- zxing-cpp's and ZXing's black-box samples (`test/samples/qrcode-*`, Apache-2.0): an image and
  a `.txt` of the same stem holding the exact text (images without one are skipped: structured-
  append parts, `.bin` payloads).

Texts are compared as sets per image: one code read twice counts once, as the decoder reports it.

A set whose upstream labels miss a code an image really holds can say so in `label-notes.json`
beside them ({"images": {"relative/path.webp": {"unlabelled": [texts], "why": …}}}): the labels
stay as published, and the bench reports reads of those texts apart instead of hiding them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

LABELS = "labels.json"
OPENCV_CONFIG = "dataset_config.json"
LABEL_NOTES = "label-notes.json"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


class LabelError(ValueError):
    """Error raised when DIR holds no labels we know, or a label file is malformed."""


@dataclass(frozen=True)
class Labelled:
    path: Path
    texts: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.path.name


def find(folder: Path) -> tuple[list[Labelled], str]:
    """Every labelled image under `folder`, and the layout it was read as."""
    if (folder / LABELS).is_file():
        return from_labels_json(folder), LABELS
    configs = sorted(folder.rglob(OPENCV_CONFIG))
    if configs:
        return [item for config in configs for item in from_opencv_config(config)], f"OpenCV {OPENCV_CONFIG}"
    items = from_txt_siblings(folder)
    if items:
        return items, "image + .txt of the same stem (zxing-cpp samples)"
    raise LabelError(f"{folder}: no {LABELS}, no {OPENCV_CONFIG} and no image with a .txt label found")


@dataclass(frozen=True)
class LabelNote:
    """Texts an image truly holds that its label does not list, and why."""

    unlabelled: tuple[str, ...]
    why: str


def notes(folder: Path) -> dict[str, LabelNote]:
    """The set's known label gaps from `label-notes.json`, by path relative to `folder` ({} if none)."""
    path = folder / LABEL_NOTES
    if not path.is_file():
        return {}
    data = _load_json(path)
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, dict):
        raise LabelError(f"{path}: expected {{\"images\": {{image path: {{\"unlabelled\": [texts], \"why\": text}}}}}}")
    found = {}
    for name, note in images.items():
        if not isinstance(note, dict) or not isinstance(note.get("why"), str):
            raise LabelError(f"{path}: {name}: expected \"unlabelled\" texts and a \"why\"")
        if not (folder / name).is_file():
            raise LabelError(f"{path}: {name}: no such image in {folder}")
        found[name] = LabelNote(_texts(note.get("unlabelled"), path, name), note["why"])
    return found


def from_labels_json(folder: Path) -> list[Labelled]:
    labels = _load_json(folder / LABELS)
    if not isinstance(labels, dict):
        raise LabelError(f"{folder / LABELS}: expected an object of file name -> list of texts")
    return [Labelled(folder / name, _texts(texts, folder / LABELS, name)) for name, texts in labels.items()]


def from_opencv_config(config: Path) -> list[Labelled]:
    data = _load_json(config)
    if not isinstance(data, dict):
        raise LabelError(f"{config}: expected an object of lists of images")
    items = []
    for key, entries in data.items():
        if not isinstance(entries, list):
            raise LabelError(f"{config}: '{key}' is not a list of images")
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("image_name"), str):
                raise LabelError(f"{config}: '{key}' has an entry without an image_name")
            name = entry["image_name"]
            items.append(Labelled(config.parent / name, _texts(entry.get("info"), config, name)))
    return items


def from_txt_siblings(folder: Path) -> list[Labelled]:
    items = []
    for image in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        label = image.with_suffix(".txt")
        if label.is_file():
            items.append(Labelled(image, (label.read_bytes().decode("utf-8", "surrogateescape"),)))
    return items


def _texts(value, source: Path, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]  # OpenCV's config has a few single texts not in a list
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise LabelError(f"{source}: {name}: expected a text or a list of texts")
    return tuple(dict.fromkeys(value))  # distinct, in order


def _load_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise LabelError(f"{path}: cannot read labels: {err}") from err
