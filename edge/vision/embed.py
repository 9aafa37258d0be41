"""Face embedding: dlib's ResNet as ONNX (`Embedder.embed_chips`) and the whole-frame pipeline
(`Embedder.embed`: MTCNN detection -> alignment -> quality -> 128-d descriptor).

The descriptor is dlib's raw output (not normalised), so dlib's Euclidean threshold 0.6 applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.vision.align import CHIP_SIZE, align
from edge.vision.convert import EMBEDDING_MODEL
from edge.vision.detect import MtcnnDetector
from edge.vision.models import find_model_dir, session
from edge.vision.quality import face_quality

EMBEDDING_DIM = 128


@dataclass
class Face:
    box: np.ndarray  # (x1, y1, x2, y2) pixels
    landmarks: np.ndarray  # 5 x 2: left eye, right eye, nose, left/right mouth corner
    quality: float  # 0..1, higher is better (detection score, size, sharpness, pose)
    embedding: np.ndarray  # 128 float32, dlib's raw descriptor
    score: float = 1.0  # detector confidence
    chip: np.ndarray | None = field(default=None, repr=False)  # 150x150x3 aligned RGB chip


class Embedder:
    """Loads the models once; `embed_chips` for aligned chips, `embed` for whole RGB frames."""

    def __init__(self, model_dir: str | Path | None = None, *, mtcnn_dir: str | Path | None = None,
                 threads: int = 0, min_face_px: int = 40, batch: int = 8):
        directory = find_model_dir(str(model_dir) if model_dir else None)
        self.session = session(directory / EMBEDDING_MODEL, threads=threads)
        self.threads = threads
        self.batch = batch
        self._mtcnn_dir = mtcnn_dir
        self._min_face_px = min_face_px
        self._detector: MtcnnDetector | None = None

    @property
    def detector(self) -> MtcnnDetector:
        if self._detector is None:  # chips-only users never pay for the detector
            self._detector = MtcnnDetector(self._mtcnn_dir, min_face_px=self._min_face_px, threads=self.threads)
        return self._detector

    def embed_chips(self, chips) -> np.ndarray:
        """N x 150 x 150 x 3 uint8 RGB dlib-style chips -> N x 128 float32 descriptors."""
        chips = np.asarray(chips)
        if chips.ndim == 3:
            chips = chips[None]
        if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"expected N x {CHIP_SIZE} x {CHIP_SIZE} x 3 chips, got shape {chips.shape}")
        if chips.dtype != np.uint8:
            raise ValueError(f"expected uint8 chips, got {chips.dtype}")
        if len(chips) == 0:
            return np.zeros((0, EMBEDDING_DIM), np.float32)
        out = [self.session.run(None, {"chips": np.ascontiguousarray(chips[i:i + self.batch])})[0]
               for i in range(0, len(chips), self.batch)]
        return np.concatenate(out).astype(np.float32)

    def detect(self, image_rgb: np.ndarray) -> list[Face]:
        """Faces with chips and quality, without embeddings (cheap pre-check for gates)."""
        found = self.detector.detect(_check_frame(image_rgb))
        faces = []
        for box, score, points in zip(found.boxes, found.scores, found.landmarks):
            chip = align(image_rgb, points)
            faces.append(Face(box=box, landmarks=points, score=float(score), chip=chip,
                              quality=face_quality(box, points, float(score), chip),
                              embedding=np.zeros(EMBEDDING_DIM, np.float32)))
        return faces

    def embed(self, image_rgb: np.ndarray) -> list[Face]:
        """Every face in an RGB frame, largest first, with its 128-d embedding."""
        faces = self.detect(image_rgb)
        faces.sort(key=lambda f: -(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        if faces:
            vectors = self.embed_chips(np.stack([f.chip for f in faces]))
            for face, vector in zip(faces, vectors):
                face.embedding = vector
        return faces


def _check_frame(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise ValueError(f"expected an RGB uint8 H x W x 3 frame, got {getattr(image, 'dtype', type(image))} {shape}")
    if image.shape[0] < 24 or image.shape[1] < 24:
        raise ValueError(f"frame too small: {image.shape[1]}x{image.shape[0]} pixels")
    return image
