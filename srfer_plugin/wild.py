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

An earlier run's outputs in ``OUT`` are first moved to ``OUT/archived_<time>/``, as in face-crop mode; and as
there, a run whose inputs lie in those outputs (``-i DIR --recursive -o DIR/out`` run twice) is refused.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from srfer_plugin.data.fer_layout import IMAGE_EXTENSIONS
from srfer_plugin.face_detection import FaceDetectorUnavailable, make_face_detector
from srfer_plugin.predictor import FacePrediction, SRFERPredictor
from srfer_plugin.utils.inference_io import read_lr_image
from srfer_plugin.utils.inference_outputs import RowByRowCSV, archive_earlier_outputs, printable_text

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg', '.wmv')
OUTPUT_NAMES = ('faces.csv', 'skipped.csv', 'faces.csv.partial', 'skipped.csv.partial', 'annotated', 'faces')


def is_video(path: str) -> bool:
    """A video file name (by extension)."""
    return path.lower().endswith(VIDEO_EXTENSIONS)


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
        elif glob.has_magic(spec):
            found = sorted(
                p for p in glob.glob(spec, recursive=True) if os.path.isfile(p) and p.lower().endswith(wanted)
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


def _stem(path: str, used: set[str]) -> str:
    stem = os.path.splitext(os.path.basename(path))[0] or 'input'
    name, n = stem, 1
    while name in used:
        n += 1
        name = f'{stem}_{n}'
    used.add(name)
    return name


class WildRun:
    """One ``--detect`` run: writes the outputs of each photo and video as it goes."""

    def __init__(self, predictor: SRFERPredictor, detector: Any, out_dir: str, args: argparse.Namespace):
        self.predictor, self.detector, self.out_dir, self.args = predictor, detector, out_dir, args
        self.summary = WildSummary()
        self.stems: set[str] = set()
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

    def record(self, csv: RowByRowCSV, path: str, stem: str, frame: int | None, faces: list[FacePrediction]) -> None:
        tag = stem if frame is None else f'{stem}_f{frame:06d}'
        for k, face in enumerate(faces, start=1):
            sr_rel = os.path.join('faces', f'{tag}_face{k}_sr.png')
            cv2.imwrite(os.path.join(self.out_dir, sr_rel), to_bgr_uint8(face.sr))
            cv2.imwrite(os.path.join(self.out_dir, 'faces', f'{tag}_face{k}_lr.png'), to_bgr_uint8(face.lr))
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
        cv2.imwrite(os.path.join(self.out_dir, 'annotated', f'{stem}.png'), annotate(image, faces))
        self.record(csv, path, stem, None, faces)
        return bool(faces)

    def video(self, csv: RowByRowCSV, path: str) -> bool:
        capture = cv2.VideoCapture(path)
        if not capture.isOpened():
            raise ValueError('not a readable video (OpenCV cannot open it)')
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        stem = _stem(path, self.stems)
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
                    out = os.path.join(self.out_dir, 'annotated', f'{stem}.mp4')
                    writer = cv2.VideoWriter(out, cv2.VideoWriter_fourcc(*'mp4v'), fps, (w, h))
                writer.write(annotate(image, faces))
                frame += 1
        finally:
            capture.release()
            if writer is not None:
                writer.release()
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
