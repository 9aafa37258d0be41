"""The ONNX embedding equals dlib's `compute_face_descriptor` on the same chips (dlib-bin wheel)."""

import numpy as np
import pytest

from tests.vision.conftest import load_rgb

dlib = pytest.importorskip("dlib", reason="dlib-bin (dev extra) is needed to compare against dlib")
face_recognition_models = pytest.importorskip("face_recognition_models")

SAMPLES = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "two_people.jpg"]


@pytest.fixture(scope="module")
def dlib_chips():
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
    chips = []
    for name in SAMPLES:
        image = load_rgb(name)
        for rect in detector(image, 1):
            chips.append(dlib.get_face_chip(image, predictor(image, rect), 150, 0.25))
    assert len(chips) >= len(SAMPLES)
    return np.stack(chips)


def test_embed_chips_equals_dlib(embedder, dlib_chips):
    recogniser = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
    expected = np.array(recogniser.compute_face_descriptor(list(dlib_chips)), dtype=np.float32)
    ours = embedder.embed_chips(dlib_chips)
    assert ours.shape == (len(dlib_chips), 128) and ours.dtype == np.float32
    assert np.linalg.norm(ours - expected, axis=1).max() <= 1e-4


def test_embed_chips_refuses_wrong_shapes(embedder):
    with pytest.raises(ValueError, match="150"):
        embedder.embed_chips(np.zeros((1, 112, 112, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        embedder.embed_chips(np.zeros((1, 150, 150, 3), np.float32))
    assert embedder.embed_chips(np.zeros((0, 150, 150, 3), np.uint8)).shape == (0, 128)


def test_whole_frame_faces_have_landmarks_quality_and_embedding(embedder):
    faces = embedder.embed(load_rgb("two_people.jpg"))
    assert len(faces) == 2
    for face in faces:
        assert face.box.shape == (4,) and face.landmarks.shape == (5, 2)
        assert 0.0 < face.quality <= 1.0
        assert face.embedding.shape == (128,) and np.linalg.norm(face.embedding) > 0.1


def test_our_alignment_stays_close_to_dlibs(embedder, dlib_chips):
    """MTCNN + our template vs dlib's detector + 5-point alignment, same face, same model."""
    ours = embedder.embed(load_rgb("obama.jpg"))[0].embedding
    theirs = embedder.embed_chips(dlib_chips[:1])[0]
    assert np.linalg.norm(ours - theirs) < 0.25


def test_bad_frames_are_refused_with_a_clear_error(embedder):
    with pytest.raises(ValueError, match="RGB uint8"):
        embedder.embed(np.zeros((480, 640), np.uint8))
    with pytest.raises(ValueError, match="too small"):
        embedder.embed(np.zeros((10, 10, 3), np.uint8))
    assert embedder.embed(np.zeros((480, 640, 3), np.uint8)) == []
