"""A dataset that names the classifier's classes in another order is refused: every label would be misread."""

from __future__ import annotations

import logging

import pytest
from fer_fixtures import make_tiny_fer_dataset

from srfer_plugin.models.fer_option_checks import check_dataset_classes

CLASSIFIER_CLASSES = ['neutral', 'happy', 'sad', 'surprise']


def _opt(root: str) -> dict:
    return {'datasets': {'train': {'type': 'PairedFERDataset', 'dataroot_gt': root}}}


def test_same_classes_in_another_order_are_refused(tmp_path):
    root = make_tiny_fer_dataset(str(tmp_path / 'abc'), classes=('happy', 'neutral', 'sad', 'surprise'))
    with pytest.raises(ValueError) as err:
        check_dataset_classes(_opt(root), 4, CLASSIFIER_CLASSES)
    message = str(err.value)
    assert "datasets.train names its classes in the order ['happy', 'neutral', 'sad', 'surprise']" in message
    assert f'network_fer was trained with {CLASSIFIER_CLASSES}' in message and 'classes.txt' in message


def test_same_order_passes_ignoring_case_and_no_names_is_not_checked(tmp_path):
    root = make_tiny_fer_dataset(str(tmp_path / 'same'), classes=('Neutral', 'Happy', 'Sad', 'Surprise'))
    check_dataset_classes(_opt(root), 4, CLASSIFIER_CLASSES)
    check_dataset_classes(_opt(root), 4, None)  # weights that record no class names: the count alone


def test_other_names_are_matched_by_index_with_a_warning(tmp_path, caplog):
    root = make_tiny_fer_dataset(str(tmp_path / 'other'), classes=('calm', 'joy', 'sorrow', 'shock'))
    logger = logging.getLogger('basicsr')
    logger.addHandler(caplog.handler)
    try:
        check_dataset_classes(_opt(root), 4, CLASSIFIER_CLASSES)
    finally:
        logger.removeHandler(caplog.handler)
    assert 'they are matched by index' in caplog.text
