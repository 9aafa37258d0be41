"""edge.hw.camera is the one place that turns a camera spec into a frame source."""

import pytest

from edge.errors import DeviceError
from edge.hw import camera
from edge.vision import camera as vision_camera


def test_sim_spec_is_built_by_the_callers_factory_and_refused_without_one():
    scene = object()
    assert camera.open_source("sim", sim=lambda: scene) is scene
    with pytest.raises(DeviceError, match="'sim'"):
        camera.open_source("sim")
    with pytest.raises(DeviceError, match="unknown camera source 'webcam'"):
        camera.open_source("webcam")


def test_vision_keeps_its_old_names_from_the_one_camera_module():
    assert vision_camera.open_source is camera.open_source
    assert vision_camera.ReplaySource is camera.ReplaySource
