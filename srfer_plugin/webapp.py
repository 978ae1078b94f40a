"""``srfer web``: a web page (Gradio) that super-resolves and classifies the faces of a dropped photo or face crop.

Needs the ``web`` extra (``pip install "srfer_plugin[web]"``; with ``[wild]`` too, faces are found in photos)::

    srfer web --opt results/demo/options/demo_srfer_quick_seed0.yml --fer-size 112 \\
        --sr-model experiments/demo_srfer_quick_seed0/models/net_g_latest.pth

The model arguments are those of ``srfer-infer`` (``--opt``, ``--sr-model``, ``--network-g``, ``--scale``,
``--fer-config``, ``--fer-checkpoint``, ``--classes``, ...). For each face the page shows the LR input the SR
network read, its bicubic upscaling, the SR-FER output, the classifier's attention on it (the deepest stage, see
:func:`srfer_plugin.utils.visualize.attention_heatmaps`) and the expression probabilities. Without a model the page
(and the terminal) explain how to get one. The page listens on 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from srfer_plugin.utils.cli_args import at_least

WEB_EXTRA = 'pip install "srfer_plugin[web]" (in a clone: pip install -e ".[web,wild]")'
NO_MODEL_HELP = """### No model loaded

Start the page with a trained SR network and a classifier, as for `srfer-infer`:

```bash
srfer web --opt OPTIONS.yml --sr-model net_g_latest.pth [--fer-checkpoint fer.pth]
```

No model yet? The demo trains a small one on synthetic faces in a few minutes on a CPU, nothing to download:

```bash
srfer-demo --quick
srfer web --opt results/demo/options/demo_srfer_quick_seed0.yml --fer-size 112 \\
    --sr-model experiments/demo_srfer_quick_seed0/models/net_g_latest.pth
```

(run it where the demo ran; the options file names the demo's classifier, `experiments/demo_fer_quick/fer_final.pth`;
`--fer-size 112` is the demo's face size, so faces are cut at 28 px). The demo's faces are synthetic drawings: on
real photos its expressions mean little; train on RAF-DB for real faces (see the README).
"""
MODES = ('auto', 'photo', 'face crop')
MAX_FACES = 8


def _gradio():
    os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')  # a local page: no usage reports
    try:
        import gradio as gr
    except ImportError as err:
        raise ImportError(f'the web page needs gradio: {WEB_EXTRA}') from err
    return gr


def build_parser() -> argparse.ArgumentParser:
    """``srfer web``'s arguments: the model arguments of ``srfer-infer``, the detector's and the server's."""
    parser = argparse.ArgumentParser(
        prog='srfer web',
        description='A web page: drop a photo or a face, see its SR-FER faces, attention and expressions.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    from srfer_plugin import infer

    infer.add_model_arguments(parser, no_fer_help='super-resolve only (no expressions)')
    parser.add_argument(
        '--fer-size', type=at_least(0), help='resize SR to this size for the classifier (see srfer-infer)'
    )
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N')
    parser.add_argument(
        '--pad-multiple', type=infer.at_least(1), help='pad LR sides to a multiple of this (default: window_size)'
    )
    parser.add_argument(
        '--min-face', type=infer.at_least(8), default=24, help='smallest face to detect in photos, in pixels'
    )
    parser.add_argument(
        '--face-margin', type=infer.at_least(0.0, float), default=0.7, help="square crop: the box's side times 1 + this"
    )
    parser.add_argument(
        '--lr-size', type=infer.at_least(4), help='LR crop side (default: the classifier input size / scale, or 32)'
    )
    parser.add_argument('--host', default='127.0.0.1', help='address to listen on')
    parser.add_argument('--port', type=int, default=7860, help='port')
    return parser


def load_predictor(args: argparse.Namespace):
    """The predictor of the model arguments (as ``srfer-infer`` builds it), or None when none is given."""
    if not (args.opt or args.sr_model or args.network_g):
        return None
    from srfer_plugin import infer
    from srfer_plugin.predictor import resolve_device

    opt = infer.read_model_options(args.opt)
    full = infer.build_parser().parse_args(['-i', '-', '-o', '-'])  # srfer-infer's defaults, then ours
    vars(full).update(vars(args), batch_size=MAX_FACES)
    return infer.build_predictor(full, opt, resolve_device(args.device))


def _detector(min_face: int):
    try:
        from srfer_plugin.face_detection import make_face_detector

        return make_face_detector(min_face=min_face), None
    except ImportError as err:
        return None, str(err)


def _display(image: np.ndarray, side: int, nearest: bool = False) -> np.ndarray:
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_CUBIC
    return image if image.shape[0] == side else cv2.resize(image, (side, side), interpolation=interp)


class FacePage:
    """What the page does with one dropped image (kept apart from Gradio, so it is testable without a browser)."""

    def __init__(self, predictor: Any, detector: Any = None, lr_size: int | None = None, margin: float = 0.7):
        self.predictor, self.detector, self.margin = predictor, detector, margin
        self.lr_size = int(lr_size or predictor.lr_size)

    def faces(self, image: np.ndarray, mode: str = 'auto') -> tuple[list[Any], str]:
        """The face predictions of an RGB image and a note on how they were found."""
        from srfer_plugin.face_detection import square_face_crop
        from srfer_plugin.predictor import FacePrediction

        if mode != 'face crop' and self.detector is not None:
            found = self.predictor.predict_photo(image, self.detector, self.lr_size, self.margin, MAX_FACES, rgb=True)
            if found:
                return found, f'{len(found)} face(s) detected'
            if mode == 'photo':
                return [], f'no face found (smallest face looked for: {self.detector.min_face} px)'
        h, w = image.shape[:2]
        side = min(h, w)
        box = ((w - side) // 2, (h - side) // 2, side, side)
        crop, square = square_face_crop(image, box, self.lr_size, margin=0.0)
        (result,) = self.predictor.predict_images([crop], rgb=True)
        note = 'the image read as one face crop'
        if mode == 'auto':
            note += ' (no face detected)' if self.detector is not None else ' (no face detector: the wild extra)'
        return [FacePrediction(**vars(result), box=box, crop_box=square, score=0.0, lr=crop)], note

    def panels(self, face: Any, k: int) -> list[tuple[np.ndarray, str]]:
        """LR input, bicubic, SR-FER output and attention of one face, as ``(RGB uint8, caption)``."""
        from srfer_plugin.utils.inference_io import as_float_image, images_to_tensor
        from srfer_plugin.utils.visualize import overlay_heatmap

        sr = face.sr
        side = sr.shape[0]
        lr_rgb = face.lr if face.lr.ndim == 3 else cv2.cvtColor(face.lr, cv2.COLOR_GRAY2RGB)
        sr_rgb = sr if sr.ndim == 3 else cv2.cvtColor(sr, cv2.COLOR_GRAY2RGB)
        lr_px = face.lr.shape[0]
        out = [
            (_display(lr_rgb, side, nearest=True), f'face {k}: LR input ({lr_px} px)'),
            (cv2.resize(lr_rgb, (side, side), interpolation=cv2.INTER_CUBIC), f'face {k}: bicubic x{side // lr_px}'),
            (sr_rgb, f'face {k}: SR-FER ({side} px)'),
        ]
        if self.predictor.fer_network is not None:
            maps, _ = self.predictor.attention(images_to_tensor([as_float_image(sr_rgb)], rgb=True))
            fer_in = maps[-1][0]
            face_in = cv2.resize(sr_rgb, fer_in.shape[::-1], interpolation=cv2.INTER_AREA) / 255.0
            heat = (overlay_heatmap(face_in, fer_in) * 255).round().astype(np.uint8)
            out.append((_display(heat, side), f'face {k}: attention (last stage)'))
        return out

    def analyse(self, image: np.ndarray | None, mode: str = 'auto'):
        """``(annotated photo, gallery, probabilities of face 1, summary markdown)`` for the page."""
        from srfer_plugin.wild import annotate

        if image is None:
            return None, [], None, 'Drop a photo or a face first.'
        if image.ndim == 3 and image.shape[2] == 4:
            image = image[..., :3]
        image = np.ascontiguousarray(image)
        faces, note = self.faces(image, mode)
        annotated = annotate(image[..., ::-1] if image.ndim == 3 else image, faces)[..., ::-1]
        gallery = [panel for k, face in enumerate(faces, start=1) for panel in self.panels(face, k)]
        names = self.predictor.label_names
        label = None
        lines = [f'**{note}**', '']
        if faces and names is not None:
            label = {name: float(p) for name, p in zip(names, faces[0].probs)}
            lines += ['| face | box (x, y, w, h) | expression | probability |', '|---|---|---|---|']
            lines += [
                f'| {k} | {face.box} | {face.label_name} | {face.confidence:.3f} |'
                for k, face in enumerate(faces, start=1)
            ]
        return np.ascontiguousarray(annotated), gallery, label, '\n'.join(lines)


def build_app(page: FacePage | None, message: str = ''):
    """The Gradio Blocks of the page; ``page`` None: the page explains how to get a model."""
    gr = _gradio()
    with gr.Blocks(title='SR-FER faces') as app:
        gr.Markdown('# SR-FER: super-resolved faces and their expressions')
        if page is None:
            gr.Markdown((f'**{message}**\n\n' if message else '') + NO_MODEL_HELP, elem_id='no-model')
            return app
        predictor = page.predictor
        about = f'x{predictor.scale} SR on {page.lr_size}-pixel faces'
        about += f', {len(predictor.label_names)} expressions' if predictor.label_names else ', no classifier'
        gr.Markdown(about + (f'. {message}' if message else ''))
        with gr.Row():
            with gr.Column():
                image = gr.Image(type='numpy', label='photo or face', image_mode='RGB', elem_id='input-image')
                mode = gr.Radio(list(MODES), value='auto', label='the image is', elem_id='mode')
                button = gr.Button('Analyse', variant='primary', elem_id='analyse')
            with gr.Column():
                annotated = gr.Image(type='numpy', label='faces found', interactive=False, elem_id='annotated')
                label = gr.Label(label='expression of face 1', num_top_classes=7, elem_id='expression')
        summary = gr.Markdown(elem_id='summary')
        gallery = gr.Gallery(label='per face: LR input, bicubic, SR-FER, attention', columns=4, elem_id='faces')
        button.click(page.analyse, [image, mode], [annotated, gallery, label, summary])
    return app


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``srfer web`` until interrupted; 2 for a bad setup."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f'argument --port: {args.port} is not a port (1-65535)')
    try:
        _gradio()
        predictor = load_predictor(args)
    except Exception as err:  # noqa: BLE001  (any setup problem ends the command with its message)
        print(f'error: {err}', file=sys.stderr)
        return 2
    if predictor is None:
        print('note: no model given (--opt / --sr-model); the page explains how to get one:', file=sys.stderr)
        print(NO_MODEL_HELP, file=sys.stderr)
        app = build_app(None)
    else:
        detector, why = _detector(args.min_face)
        if why:
            print(f'note: {why}; every image is read as one face crop', file=sys.stderr)
        app = build_app(FacePage(predictor, detector, args.lr_size, args.face_margin), why or '')
    app.launch(server_name=args.host, server_port=args.port)
    return 0


if __name__ == '__main__':
    sys.exit(main())
