"""``srfer-infer --detect``: faces in photos, folders of photos and videos (the CLI side of faces in the wild).

For each photo (or video frame) the faces are detected (:mod:`srfer_plugin.face_detection`, the ``wild`` extra),
cut as squares around their boxes, resized to the LR size the SR network expects, super-resolved and classified by
:meth:`srfer_plugin.predictor.SRFERPredictor.predict_photo`. Outputs in ``OUT``:

- ``annotated/<name>``: a copy of each photo with a box and ``label probability`` per face; a video becomes
  ``annotated/<stem>.mp4`` (cv2.VideoWriter, ``mp4v``), every frame written, the faces of every ``--every``-th
  frame drawn (and held until the next analysed frame);
- ``faces/<stem>[_f<frame>]_face<k>_sr.png`` and ``..._lr.png``: each face's SR image and the LR crop it came from;
- ``faces.csv``: one row per face: file, frame (empty for photos), face, x, y, w, h, score, sr_file, label,
  label_index, confidence, ``prob_<class>``...;
- ``skipped.csv``: unreadable inputs and photos without a face (``no face found``), each also printed.

``<stem>`` is the input's file name without its extension, written as :func:`printable_text` writes it (bytes that
are not UTF-8 become ``\\xHH``, as in face-crop mode), with ``_2``, ``_3``... when another input of the run has
it (case-insensitively) or would write the same face files (a photo ``clip_f000000.png`` beside frame 0 of
``clip.mp4``). Images are encoded in memory and written by Python as new files (never over a file, never over an
input), since OpenCV crashes on path names that are not UTF-8; a video whose name is not UTF-8 is skipped (OpenCV
cannot open it), and so is a FIFO, device or folder named like a video (never opened: a FIFO would block forever).

An earlier run's outputs in ``OUT`` are first moved to ``OUT/archived_<time>/``, as in face-crop mode; and as
there, a run whose inputs lie in those outputs (``-i DIR --recursive -o DIR/out`` run twice) is refused.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from srfer_plugin.data.fer_layout import IMAGE_EXTENSIONS
from srfer_plugin.data.image_check import file_kind
from srfer_plugin.face_detection import FaceDetectorUnavailable, make_face_detector
from srfer_plugin.predictor import FacePrediction, SRFERPredictor
from srfer_plugin.utils.inference_io import read_lr_image
from srfer_plugin.utils.inference_outputs import RowByRowCSV, archive_earlier_outputs, printable_text, write_new_file

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg', '.wmv')
OUTPUT_NAMES = ('faces.csv', 'skipped.csv', 'faces.csv.partial', 'skipped.csv.partial', 'annotated', 'faces')
FRAME_TAG = re.compile(r'(.*)_f[0-9]+')  # how a video frame's outputs are named: <video stem>_f<frame>


def is_video(path: str) -> bool:
    """A video file name (by extension)."""
    return path.lower().endswith(VIDEO_EXTENSIONS)


def opencv_can_take(path: str) -> bool:
    """Whether a path may be given to OpenCV: it crashes (segfault) on names that are not UTF-8 (``b'caf\\xe9'``)."""
    try:
        path.encode('utf-8')
    except UnicodeEncodeError:
        return False
    return True


@dataclass
class WildSummary:
    """What a ``--detect`` run did."""

    files: int = 0
    frames: int = 0
    faces: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    faces_csv: str | None = None


def collect_media(specs: Sequence[str], recursive: bool = False) -> tuple[list[str], list[tuple[str, str]]]:
    """Photos and videos named by files, folders and glob patterns; ``(files, [(spec, reason)])``."""
    wanted = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS
    files: list[str] = []
    bad: list[tuple[str, str]] = []
    for spec in specs:
        if os.path.isdir(spec):
            found = []
            for dirpath, dirnames, names in os.walk(spec):
                dirnames.sort()
                found += [os.path.join(dirpath, n) for n in sorted(names) if n.lower().endswith(wanted)]
                if not recursive:
                    break
            files += found
            if not found:
                bad.append((spec, 'folder holds no photos or videos'))
        elif os.path.exists(spec):
            files.append(spec)
        elif glob.has_magic(spec):  # FIFOs and devices are kept, as in a folder: they are skipped with the reason
            found = sorted(
                p
                for p in glob.glob(spec, recursive=True)
                if os.path.exists(p) and not os.path.isdir(p) and p.lower().endswith(wanted)
            )
            files += found
            if not found:
                bad.append((spec, 'no photo or video matches the pattern'))
        else:
            bad.append((spec, 'does not exist'))
    unique = list(dict.fromkeys(files))
    return unique, bad


def csv_fields(class_names: Sequence[str] | None) -> list[str]:
    """The columns of ``faces.csv``."""
    fields = ['file', 'frame', 'face', 'x', 'y', 'w', 'h', 'score', 'sr_file']
    if class_names is not None:
        fields += ['label', 'label_index', 'confidence'] + [f'prob_{name}' for name in class_names]
    return fields


def caption(face: FacePrediction) -> str:
    """``label 0.87`` (``face`` without a classifier)."""
    return f'{face.label_name} {face.confidence:.2f}' if face.label_name is not None else 'face'


def annotate(image: np.ndarray, faces: Sequence[FacePrediction]) -> np.ndarray:
    """A BGR copy of ``image`` with a box and its caption per face."""
    out = to_bgr_uint8(image).copy()
    thick = max(1, round(max(out.shape[:2]) / 400))
    for face in faces:
        x, y, w, h = face.box
        cv2.rectangle(out, (x, y), (x + w, y + h), (0, 255, 0), thick)
        text = caption(face)
        font = 0.4 * thick
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
        ty = y - 4 if y - th - base - 4 >= 0 else y + h + th + 4
        cv2.rectangle(out, (x, ty - th - base), (x + tw, ty + base), (0, 255, 0), -1)
        cv2.putText(out, text, (x, ty), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), thick, cv2.LINE_AA)
    return out


def to_bgr_uint8(image: np.ndarray) -> np.ndarray:
    """``HW3`` BGR uint8 of a grayscale or BGR image (uint8, or float in [0, 1])."""
    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else np.ascontiguousarray(image[..., :3])


def _stem(path: str, used: dict[str, bool], video: bool = False) -> str:
    """A new output stem for ``path``: its printable file stem, with ``_2``, ``_3``... when taken.

    Args:
        path: The input.
        used: The stems given so far (casefolded), each mapped to whether it is a video's; the new one is added.
        video: ``path`` is a video (its frames write ``<stem>_f<frame>_face<k>_*.png``).

    Returns:
        A stem no other input has (case-insensitively) and whose face files no other input writes.
    """
    base = printable_text(os.path.splitext(os.path.basename(path))[0]) or 'input'
    name, n = base, 1
    while _stem_clashes(name.casefold(), used, video):
        n += 1
        name = f'{base}_{n}'
    used[name.casefold()] = video
    return name


def _stem_clashes(key: str, used: dict[str, bool], video: bool) -> bool:
    """Whether stem ``key`` is taken, or names face files like a frame of a video (or a photo like its frames)."""
    if key in used:
        return True
    if video:
        return any(not was_video and _frame_of(other) == key for other, was_video in used.items())
    return used.get(_frame_of(key) or '', False)


def _frame_of(stem: str) -> str | None:
    """The video stem whose frame outputs a stem ``<video>_f<digits>`` would share, else None."""
    match = FRAME_TAG.fullmatch(stem)
    return match.group(1) if match else None


def _temporary_video() -> str:
    """A new temporary ``.mp4`` file whose path OpenCV can take (for an output folder whose name it cannot)."""
    fd, path = tempfile.mkstemp(prefix='srfer_annotated_', suffix='.mp4')
    os.close(fd)
    if not opencv_can_take(path):
        os.remove(path)
        raise OSError('neither the output folder nor the temporary folder has a UTF-8 name: OpenCV cannot write video')
    return path


class WildRun:
    """One ``--detect`` run: writes the outputs of each photo and video as it goes."""

    def __init__(self, predictor: SRFERPredictor, detector: Any, out_dir: str, args: argparse.Namespace):
        self.predictor, self.detector, self.out_dir, self.args = predictor, detector, out_dir, args
        self.summary = WildSummary()
        self.stems: dict[str, bool] = {}
        self.inputs: set[str] = set()  # real paths of the inputs: never written over
        self.warned: set[str] = set()
        self.class_names = predictor.label_names
        self.fields = csv_fields(self.class_names)
        for sub in ('annotated', 'faces'):
            os.makedirs(os.path.join(out_dir, sub), exist_ok=True)

    def faces_of(self, image: np.ndarray, path: str = '') -> list[FacePrediction]:
        args = self.args
        smallest = getattr(self.detector, 'effective_min_face', lambda shape: args.min_face)(image.shape)
        if smallest > args.min_face and path not in self.warned:
            self.warned.add(path)
            print(
                f'note: {printable_text(path)} is large: faces under {smallest} px are not looked for (the detector '
                f'works on at most {self.detector.max_pixels / 1e6:g} Mpixels after enlarging for --min-face)',
                file=sys.stderr,
            )
        return self.predictor.predict_photo(
            image, self.detector, args.lr_size or None, args.face_margin, args.max_faces or None
        )

    def write_image(self, sub: str, name: str, image: np.ndarray) -> str:
        """Write ``image`` as a new PNG file ``OUT/sub/name`` (encoded in memory, written by Python).

        Returns:
            ``sub/name``.

        Raises:
            OSError: The image cannot be encoded, or the file exists or is an input (nothing is overwritten).
        """
        ok, buf = cv2.imencode('.png', to_bgr_uint8(image))
        if not ok:
            raise OSError(f'cannot encode {printable_text(os.path.join(sub, name))!r} as PNG')
        write_new_file(os.path.join(self.out_dir, sub), name, buf.tobytes(), self.inputs)
        return os.path.join(sub, name)

    def record(self, csv: RowByRowCSV, path: str, stem: str, frame: int | None, faces: list[FacePrediction]) -> None:
        tag = stem if frame is None else f'{stem}_f{frame:06d}'
        for k, face in enumerate(faces, start=1):
            sr_rel = self.write_image('faces', f'{tag}_face{k}_sr.png', face.sr)
            self.write_image('faces', f'{tag}_face{k}_lr.png', face.lr)
            row = {'file': path, 'frame': frame, 'face': k, 'score': round(face.score, 4), 'sr_file': sr_rel}
            row.update(zip('xywh', face.box))
            if face.label_name is not None:
                row.update(label=face.label_name, label_index=face.label, confidence=face.confidence)
                row.update({f'prob_{c}': float(p) for c, p in zip(self.class_names, face.probs)})
            csv.add([row.get(name) for name in self.fields])
            self.summary.faces.append(row)

    def photo(self, csv: RowByRowCSV, path: str) -> bool:
        image = to_bgr_uint8(read_lr_image(path))
        faces = self.faces_of(image, path)
        stem = _stem(path, self.stems)
        self.summary.frames += 1
        self.write_image('annotated', f'{stem}.png', annotate(image, faces))
        self.record(csv, path, stem, None, faces)
        return bool(faces)

    def video(self, csv: RowByRowCSV, path: str) -> bool:
        kind = file_kind(os.stat(path).st_mode)
        if kind is not None:  # a FIFO would block VideoCapture forever
            raise ValueError(f'not a regular file ({kind}): not read')
        if not opencv_can_take(path):
            raise ValueError('file name is not valid UTF-8: OpenCV cannot open such a video (rename it)')
        capture = cv2.VideoCapture(path)
        if not capture.isOpened():
            capture.release()
            raise ValueError('not a readable video (OpenCV cannot open it)')
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        stem = _stem(path, self.stems, video=True)
        out = os.path.join(self.out_dir, 'annotated', f'{stem}.mp4')
        try:
            if os.path.lexists(out):
                raise OSError(f'{printable_text(out)!r} already exists: not overwritten')
            target = out if opencv_can_take(out) else _temporary_video()  # then moved to ``out`` by Python
        except OSError:
            capture.release()
            raise
        writer, frame, found, faces = None, 0, False, []
        every = max(1, self.args.every)
        try:
            while True:
                ok, image = capture.read()
                if not ok:
                    break
                if frame % every == 0:
                    faces = self.faces_of(image, path)
                    self.record(csv, path, stem, frame, faces)
                    self.summary.frames += 1
                    found = found or bool(faces)
                if writer is None:
                    h, w = image.shape[:2]
                    writer = cv2.VideoWriter(target, cv2.VideoWriter_fourcc(*'mp4v'), fps, (w, h))
                writer.write(annotate(image, faces))
                frame += 1
        finally:
            capture.release()
            if writer is not None:
                writer.release()
            if target != out:
                if writer is not None and os.path.exists(target):
                    shutil.move(target, out)
                elif os.path.exists(target):
                    os.remove(target)
        if frame == 0:
            raise ValueError('not a readable video (no frame decoded)')
        return found

    def run(self, files: Sequence[str], skipped: Sequence[tuple[str, str]] = ()) -> WildSummary:
        start = time.time()
        faces_csv = RowByRowCSV(os.path.join(self.out_dir, 'faces.csv'), self.fields)
        skips = RowByRowCSV(os.path.join(self.out_dir, 'skipped.csv'), ['file', 'reason'], keep_empty=False)
        with faces_csv, skips:

            def skip(path: str, reason: str) -> None:
                self.summary.skipped.append((path, reason))
                skips.add([path, reason])
                print(f'{printable_text(path)}: {printable_text(reason)}', file=sys.stderr)

            for spec, reason in skipped:
                skip(spec, reason)
            self.inputs = {os.path.realpath(path) for path in files}
            for path in files:
                try:
                    found = self.video(faces_csv, path) if is_video(path) else self.photo(faces_csv, path)
                except (ValueError, OSError, cv2.error) as err:
                    skip(path, str(err))
                    continue
                self.summary.files += 1
                if not found:
                    where = ' in any analysed frame' if is_video(path) else ''
                    skip(path, f'no face found{where} (--min-face {self.args.min_face} px)')
            self.summary.faces_csv = faces_csv.finish()
            skips.finish()
        self.summary.seconds = time.time() - start
        return self.summary


def main_detect(args: argparse.Namespace) -> int:
    """``srfer-infer --detect``: 0 when at least one face was processed, 1 when none, 2 for a bad setup."""
    from srfer_plugin import infer
    from srfer_plugin.predictor import resolve_device
    from srfer_plugin.utils.run_lock import acquire_folder, release_folder

    try:
        try:
            opt = infer.read_model_options(args.opt)
            device = resolve_device(args.device)
            detector = make_face_detector(min_face=args.min_face)
            files, bad = collect_media(args.input, args.recursive)
            if not files:
                raise infer.InferenceError('no input photos or videos found')
            acquire_folder(args.output, 'output folder')
            os.makedirs(args.output, exist_ok=True)
            if getattr(args, 'backend', 'torch') == 'onnxruntime':  # as face-crop mode chooses its networks
                from srfer_plugin.onnx_io import predictor_from_args

                predictor = predictor_from_args(args, device)
            else:
                predictor = infer.build_predictor(args, opt, device)
            archived = archive_earlier_outputs(args.output, files, OUTPUT_NAMES)  # refused if it holds an input
        except (*infer.SETUP_ERRORS, FaceDetectorUnavailable) as err:
            print(f'error: {printable_text(str(err))}', file=sys.stderr)
            return 2
        if archived:
            folder, names = archived
            print(f'note: moved the earlier outputs ({", ".join(names)}) to {printable_text(folder)}', file=sys.stderr)
        summary = WildRun(predictor, detector, args.output, args).run(files, bad)
    finally:
        release_folder(args.output)
    print(
        f'Found {len(summary.faces)} face(s) in {summary.frames} photo(s)/frame(s) of {summary.files} file(s) in '
        f'{summary.seconds:.1f} s on {device}; wrote {printable_text(summary.faces_csv or "")}'
    )
    return 0 if summary.faces else 1
