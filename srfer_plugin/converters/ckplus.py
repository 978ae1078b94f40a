"""CK+: the original ``cohn-kanade-images/`` + ``Emotion/`` tree, or the 48x48 class-folder variant."""

from __future__ import annotations

import os
import re

from srfer_plugin.converters.class_tree import read_class_tree
from srfer_plugin.converters.image_io import file_loader, list_images, rel_path, require_dir
from srfer_plugin.converters.records import PrepareError, PrepareReport, ReaderOptions, Sample, canonical_class

# CK+ emotion codes of the ``*_emotion.txt`` files mapped to the canonical class names of FER8_CLASSES.
CKPLUS_LABELS = {0: 'neutral', 1: 'angry', 2: 'contempt', 3: 'disgust', 4: 'fear', 5: 'happy', 6: 'sad', 7: 'surprise'}

_CK_SUBJECT = re.compile(r'^(S\d+)')

# Frames per labelled sequence in the 48x48 class-folder variant (its last, peak frames; no first frames).
CKPLUS_48_FRAMES = 3


def _ckplus_subject(fname: str) -> str | None:
    """Subject id (``Sxxx``) at the start of a file name, or None."""
    m = _CK_SUBJECT.match(fname)
    return m.group(1) if m else None


def _ckplus_label(path: str, report: PrepareReport, src: str) -> str | None:
    """Label of an ``*_emotion.txt`` file; None (and a bad row) when unreadable or unknown."""
    where = rel_path(path, src)
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read().strip()
        value = float(text)
    except (OSError, UnicodeDecodeError, ValueError):
        report.bad_row(where, 'unreadable emotion file (expected one number 0-7)')
        return None
    label = CKPLUS_LABELS.get(int(value)) if value == int(value) else None
    if label is None:
        report.bad_row(where, f'unknown emotion {text!r} (expected 0-7)')
    return label


def _first_dir(paths: tuple[str, ...]) -> str | None:
    """The first of ``paths`` that is a folder, or None."""
    return next((p for p in paths if os.path.isdir(p)), None)


def _read_sequence(
    seq_dir: str, emo_dir: str, subject: str, report: PrepareReport, src: str, opts: ReaderOptions
) -> list[Sample]:
    """Samples of one labelled sequence: its last frames (and with ``ckplus_neutral_first`` the first as neutral)."""
    emo_files = sorted(f for f in os.listdir(emo_dir) if f.endswith('_emotion.txt')) if os.path.isdir(emo_dir) else []
    if not emo_files:
        report.skip('ckplus unlabelled sequence')
        return []
    label = _ckplus_label(os.path.join(emo_dir, emo_files[-1]), report, src)
    if label is None:
        return []
    frames = list_images(seq_dir)
    if not frames:
        report.bad_row(rel_path(seq_dir, src), 'labelled sequence has no frames')
        return []
    picks = [(f, label) for f in frames[-opts.ckplus_last_frames :]]
    if opts.ckplus_neutral_first and label != 'neutral':
        picks = [(frames[0], 'neutral')] + [(f, lab) for f, lab in picks if f != frames[0]]
    samples = []
    for fname, lab in picks:
        path = os.path.join(seq_dir, fname)
        samples.append(Sample(os.path.splitext(fname)[0], lab, file_loader(path), rel_path(path, src), subject=subject))
    return samples


def _refuse_tree_only_options(src: str, opts: ReaderOptions) -> None:
    """Stop on options that only the original CK+ tree can honour, instead of ignoring them on the 48x48 variant.

    Args:
        src: The 48x48 variant's folder (named in the message).
        opts: The reader options.

    Raises:
        PrepareError: ``ckplus_neutral_first`` is set, or ``ckplus_last_frames`` differs from the variant's
            :data:`CKPLUS_48_FRAMES`.
    """
    variant = f'--src {src!r} is the CK+ 48x48 class-folder variant'
    if opts.ckplus_neutral_first:
        raise PrepareError(
            f'--ckplus-neutral-first needs the original CK+ tree (cohn-kanade-images/ and Emotion/): {variant}, which '
            f'holds only the last {CKPLUS_48_FRAMES} (peak) frames of each labelled sequence and no first '
            'frames; leave the flag out, or point --src at the original tree'
        )
    if opts.ckplus_last_frames != CKPLUS_48_FRAMES:
        raise PrepareError(
            f'--ckplus-last-frames {opts.ckplus_last_frames} needs the original CK+ tree (cohn-kanade-images/ and '
            f'Emotion/): {variant}, which already holds the last {CKPLUS_48_FRAMES} frames of each labelled '
            f'sequence; leave the flag out (default {CKPLUS_48_FRAMES}), or point --src at the original tree'
        )


def read_ckplus(src: str, report: PrepareReport, opts: ReaderOptions) -> list[Sample]:
    """Read CK+; the subject is ``Sxxx``.

    Original tree: ``cohn-kanade-images/Sxxx/yyy/*.png`` + ``Emotion/Sxxx/yyy/*_emotion.txt``; the last
    ``ckplus_last_frames`` frames of each labelled sequence get its label, and with ``ckplus_neutral_first``
    the first frame is added as neutral. Unlabelled sequences are skipped. The 48x48 variant is read as it is: it
    holds the last 3 frames of each labelled sequence and no first frames, so ``ckplus_neutral_first`` and a
    ``ckplus_last_frames`` other than 3 are refused there.

    Args:
        src: The CK+ root, or the 48x48 variant's folder of class folders (file names start with ``Sxxx``).
        report: Receives bad emotion files, empty sequences and names without a subject id.
        opts: ``ckplus_last_frames`` and ``ckplus_neutral_first``.

    Returns:
        The frames taken, named after their file stems.

    Raises:
        PrepareError: ``src`` is not a CK+ layout, the tree has no label folder, ``ckplus_last_frames`` < 1, or an
            option the 48x48 variant cannot honour is set.
    """
    expected = (
        'the CK+ root with cohn-kanade-images/ and Emotion/, or the 48x48 variant with class folders '
        '(anger, contempt, disgust, fear, happy, sadness, surprise)'
    )
    require_dir(src, expected)
    img_root = _first_dir(
        (
            os.path.join(src, 'cohn-kanade-images'),
            os.path.join(src, 'extended-cohn-kanade-images', 'cohn-kanade-images'),
        )
    )
    if img_root is None:
        if any(canonical_class(d) for d in os.listdir(src) if os.path.isdir(os.path.join(src, d))):
            _refuse_tree_only_options(src, opts)
            return read_class_tree(src, None, report, src, expected, subject_of=_ckplus_subject)
        raise PrepareError(f'--src {src!r} is not a CK+ layout; expected {expected}')
    emo_root = _first_dir((os.path.join(src, 'Emotion'), os.path.join(src, 'Emotion_labels', 'Emotion')))
    if emo_root is None:
        raise PrepareError(f'{src!r} has cohn-kanade-images/ but no Emotion/ label folder; expected {expected}')
    if opts.ckplus_last_frames < 1:
        raise PrepareError(f'--ckplus-last-frames must be >= 1, got {opts.ckplus_last_frames}')
    samples = []
    for subject in sorted(os.listdir(img_root)):
        subject_dir = os.path.join(img_root, subject)
        if not os.path.isdir(subject_dir):
            continue
        for seq in sorted(os.listdir(subject_dir)):
            seq_dir = os.path.join(subject_dir, seq)
            if os.path.isdir(seq_dir):
                samples += _read_sequence(seq_dir, os.path.join(emo_root, subject, seq), subject, report, src, opts)
    return samples
