"""meta_info lines never read from outside the dataset, and a path listed twice is reported (file:line of both)."""

from __future__ import annotations

import os
import re

import pytest
from basicsr.data import build_dataset
from fer_fixtures import make_tiny_fer_dataset

from srfer_plugin.data.fer_layout import read_classes, read_meta_info


@pytest.fixture
def data_and_outside(tmp_path) -> tuple[str, str]:
    """A tiny dataset and a valid face image outside it (so an escaping line would load without the check)."""
    root = make_tiny_fer_dataset(str(tmp_path / 'data'), per_class={'train': 1})
    outside = make_tiny_fer_dataset(str(tmp_path / 'outside'), per_class={'train': 1})
    return root, os.path.join(outside, 'train', 'happy', 'happy_000.png')


def build(root: str, meta: str, **overrides):
    opt = {
        'name': 'tiny',
        'type': 'PairedFERDataset',
        'phase': 'train',
        'scale': 4,
        'dataroot_gt': root,
        'meta_info_file': meta,
        'io_backend': {'type': 'disk'},
        **overrides,
    }
    return build_dataset(opt)


def write_meta(tmp_path, lines: list[str]) -> str:
    path = tmp_path / 'meta.txt'
    path.write_text(''.join(f'{line}\n' for line in lines))
    return str(path)


def test_absolute_path_is_rejected_with_file_and_line(tmp_path, data_and_outside):
    root, outside_image = data_and_outside
    meta = write_meta(tmp_path, ['train/happy/happy_000.png 1', f'{outside_image} 1'])
    with pytest.raises(ValueError, match=re.escape(f'{meta}:2: {outside_image!r} is absolute')):
        build(root, meta)


def test_path_escaping_the_root_is_rejected_with_file_and_line(tmp_path, data_and_outside):
    root, outside_image = data_and_outside
    escaping = os.path.relpath(outside_image, root)
    assert escaping.startswith('..') and os.path.isfile(os.path.join(root, escaping))
    meta = write_meta(tmp_path, ['train/happy/happy_000.png 1', '', f'{escaping} 1'])
    with pytest.raises(ValueError, match=re.escape(f'{meta}:3: {escaping!r} leaves the dataset root')):
        build(root, meta)
    hidden = f'train/../../{escaping}'  # starts inside, leaves after normalisation
    with pytest.raises(ValueError, match=re.escape(f'{meta}:1: {hidden!r} leaves the dataset root')):
        build(root, write_meta(tmp_path, [f'{hidden} 1']))


def test_dot_dot_that_stays_inside_is_accepted(tmp_path, data_and_outside):
    root, _ = data_and_outside
    ds = build(root, write_meta(tmp_path, ['train/sad/../happy/happy_000.png 1']))
    assert len(ds) == 1


def test_duplicate_lines_are_an_error_naming_both_lines(tmp_path, data_and_outside):
    root, _ = data_and_outside
    meta = write_meta(
        tmp_path, ['train/happy/happy_000.png 1', 'train/sad/sad_000.png 2', 'train/happy/happy_000.png 1']
    )
    with pytest.raises(
        ValueError, match=re.escape(f"{meta}:3: 'train/happy/happy_000.png' is listed twice (first at {meta}:1)")
    ):
        build(root, meta)


def test_duplicates_kept_on_request_but_not_with_two_labels(tmp_path, data_and_outside):
    root, _ = data_and_outside
    meta = write_meta(tmp_path, ['train/happy/happy_000.png 1', './train/happy/happy_000.png 1'])
    assert len(build(root, meta, meta_info_duplicates='keep')) == 2
    conflicting = write_meta(tmp_path, ['train/happy/happy_000.png 1', 'train/happy/happy_000.png 2'])
    with pytest.raises(ValueError, match=re.escape(f'{conflicting}:2: ') + '.*label 2, but .*:1 lists it with label 1'):
        build(root, conflicting, meta_info_duplicates='keep')
    with pytest.raises(ValueError, match=r"meta_info_duplicates: 'drop' is not one of \['error', 'keep'\]"):
        build(root, meta, meta_info_duplicates='drop')


def test_every_bad_line_is_reported_at_once(tmp_path):
    meta = write_meta(tmp_path, ['/abs/a.png 0', '../b.png 0', 'c.png 0', 'c.png 0', 'd.png 9', 'no_label'])
    with pytest.raises(ValueError) as caught:
        read_meta_info(meta, num_classes=4)
    message = str(caught.value)
    assert message.startswith(f'meta_info_file {meta!r} has 5 bad lines')
    for line_no in (1, 2, 4, 5, 6):
        assert f'{meta}:{line_no}: ' in message


def test_latin1_meta_info_names_the_file_and_line(tmp_path, data_and_outside):
    root, _ = data_and_outside
    meta = tmp_path / 'meta.txt'
    meta.write_bytes('train/happy/happy_000.png 1\ntrain/sad/caf\xe9.png 2\n'.encode('latin-1'))
    with pytest.raises(ValueError, match=re.escape(f'{meta}:2: meta_info_file is not UTF-8 (byte 0xe9')):
        build(root, str(meta))


def test_utf8_bom_is_ignored_in_meta_info_and_classes(tmp_path, data_and_outside):
    root, _ = data_and_outside
    meta = tmp_path / 'meta.txt'
    meta.write_bytes(b'\xef\xbb\xbftrain/happy/happy_000.png 1\r\ntrain/sad/sad_000.png 2\r\n')  # Notepad's UTF-8
    classes = os.path.join(root, 'classes.txt')
    with open(classes, 'rb') as f:
        names = f.read()
    with open(classes, 'wb') as f:
        f.write(b'\xef\xbb\xbf' + names)
    ds = build(root, str(meta))
    assert len(ds) == 2 and ds.classes == ['neutral', 'happy', 'sad', 'surprise']
    assert [p for p, _ in read_meta_info(str(meta))] == ['train/happy/happy_000.png', 'train/sad/sad_000.png']


def test_classes_file_that_is_not_utf8_names_the_file_and_line(tmp_path, data_and_outside):
    root, _ = data_and_outside
    classes = os.path.join(root, 'classes.txt')
    with open(classes, 'wb') as f:
        f.write('neutral\nhappy\nsad\nsurpris\xe9\n'.encode('latin-1'))
    with pytest.raises(ValueError, match=re.escape(f'{classes}:4: classes file is not UTF-8')):
        read_classes(classes)
    with pytest.raises(ValueError, match=re.escape(f'{classes}:4: classes file is not UTF-8')):
        build(root, os.path.join(root, 'meta_info_train.txt'))
