"""Without the wild extra (dlib) --detect stops with a message naming the extra; face-crop mode needs nothing."""

from __future__ import annotations

import sys

import pytest

from srfer_plugin import infer
from srfer_plugin.face_detection import FaceDetectorUnavailable, make_face_detector


def test_missing_dlib_names_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, 'dlib', None)  # import dlib raises ImportError
    with pytest.raises(FaceDetectorUnavailable, match=r'srfer_plugin\[wild\]'):
        make_face_detector()
    photo = tmp_path / 'photo.png'
    photo.write_bytes(b'')
    assert infer.main(['--detect', '-i', str(photo), '-o', str(tmp_path / 'out'), '--sr-model', 'x.pth']) == 2
    assert 'face detection needs dlib: pip install "srfer_plugin[wild]"' in capsys.readouterr().err


def test_unknown_detector():
    with pytest.raises(ValueError, match='unknown face detector'):
        make_face_detector('yolo')
