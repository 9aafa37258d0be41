"""Shared fixtures for the face pipeline tests: the converted model, sample faces, the embedder."""

from pathlib import Path

import cv2
import numpy as np
import pytest

FACES = Path(__file__).resolve().parents[1] / "data" / "faces"
REPO_MODELS = Path(__file__).resolve().parents[2] / "models"


def load_rgb(name: str) -> np.ndarray:
    image = cv2.imread(str(FACES / name))
    assert image is not None, f"sample image {name} missing"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="session")
def model_dir() -> Path:
    from edge.vision.convert import EMBEDDING_MODEL

    if not (REPO_MODELS / EMBEDDING_MODEL).is_file():
        pytest.skip(f"{REPO_MODELS / EMBEDDING_MODEL} missing: run `make setup` (it converts the face models)")
    return REPO_MODELS


@pytest.fixture(scope="session")
def embedder(model_dir):
    from edge.vision.embed import Embedder

    return Embedder(model_dir, threads=1)
