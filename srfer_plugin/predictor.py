"""SR-FER inference as a library: super-resolve LR faces and classify their expressions.

:class:`SRFERPredictor` holds an SR network (``network_g``) and optionally a classifier (``network_fer``), much as
Real-ESRGAN's ``RealESRGANer`` and GFPGAN's ``GFPGANer`` do. Example::

    from srfer_plugin.predictor import SRFERPredictor
    from srfer_plugin.utils.inference_io import load_yaml

    opt = load_yaml('options/test_RCAN_srfer_x4.yml')
    predictor = SRFERPredictor.from_options(opt['network_g'], 'net_g_latest.pth', opt['network_fer'], scale=4)
    (result,) = predictor.predict_images([cv2.imread('face.png')])  # BGR, any size: result.sr, result.label_name

Nothing is resized before SR: an LR side that is not a multiple of ``pad_multiple`` (default
``network_g.window_size``, else 1) is reflect-padded and the SR image cropped back. The classifier reads the SR
image as it is, or resized to ``fer_size``; a classifier that resizes by itself (``network_fer.input_size`` of
MMPretrainFER) wins, and ``fer_size`` is then ignored, so faces are never resized twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from srfer_plugin.archs.mmpretrain_config import as_hw
from srfer_plugin.inference_networks import build_fer_network, load_sr_network, resolve_device, sr_param_key
from srfer_plugin.prediction_types import (
    FacePrediction,
    ImagePrediction,
    InferenceError,
    Prediction,
    ScaleMismatchError,
)
from srfer_plugin.utils.inference_io import as_float_image, images_to_tensor, tensor_to_image
from srfer_plugin.utils.sr_network import check_upscale
from srfer_plugin.utils.visualize import attention_heatmaps

__all__ = [
    'FacePrediction',
    'ImagePrediction',
    'InferenceError',
    'Prediction',
    'SRFERPredictor',
    'ScaleMismatchError',
    'build_fer_network',
    'load_sr_network',
    'resolve_device',
    'sr_param_key',
]


# ----------------------------------------------------------------------------------------- predictor
class SRFERPredictor:
    """Super-resolve LR faces and classify the SR faces.

    Args:
        sr_network: SR network (``NCHW`` RGB in [0, 1] in, ``scale`` times larger out).
        fer_network: Classifier whose ``forward`` returns ``(feats, logits)`` (or logits); None: SR only.
        scale: Upscale factor of ``sr_network``.
        device: Where the networks run.
        pad_multiple: Reflect-pad LR sides to a multiple of this (SwinIR's ``window_size``).
        fer_size: Resize SR faces to this size (int or ``(h, w)``) before classifying; None or 0: as they are.
            Ignored when the classifier resizes by itself (a non-empty ``input_size`` attribute).
        batch_size: Images per batch in :meth:`predict_images`.
        class_names: Names of the classifier's classes (default ``class_<i>``).
    """

    def __init__(
        self,
        sr_network: torch.nn.Module,
        fer_network: torch.nn.Module | None = None,
        scale: int = 4,
        device: str | torch.device = 'cpu',
        pad_multiple: int = 1,
        fer_size: int | tuple[int, int] | None = None,
        batch_size: int = 8,
        class_names: Sequence[str] | None = None,
    ):
        if int(scale) < 1 or int(pad_multiple) < 1 or int(batch_size) < 1:
            raise ValueError(
                f'scale, pad_multiple and batch_size must be >= 1, got {scale}, {pad_multiple}, {batch_size}'
            )
        self.device = torch.device(device)
        self.sr_network = sr_network.eval().to(self.device)
        self.fer_network = fer_network.eval().to(self.device) if fer_network is not None else None
        self.scale = int(scale)
        self.pad_multiple = int(pad_multiple)
        self.batch_size = int(batch_size)
        self.requested_fer_size = as_hw(fer_size, 'fer_size')
        self.fer_size = None if getattr(fer_network, 'input_size', None) else self.requested_fer_size
        self.class_names = list(class_names) if class_names else None
        self._probed_classes: int | None = None

    @classmethod
    def from_options(
        cls,
        network_g: Mapping[str, Any],
        sr_weights: str,
        network_fer: Mapping[str, Any] | torch.nn.Module | None = None,
        scale: int = 4,
        device: str | torch.device = 'cpu',
        param_key: str | None = None,
        pad_multiple: int | None = None,
        **kwargs: Any,
    ) -> SRFERPredictor:
        """Build the networks from BasicSR options and check that ``network_g`` upscales by ``scale``.

        Args:
            network_g: The SR network's options (``type`` plus the arch's arguments).
            sr_weights: Its weights file (see :func:`load_sr_network`).
            network_fer: The classifier's options, an already built classifier (to share it between
                predictors), or None for SR only.
            scale: The upscale factor.
            device: Where the networks run.
            param_key: Key of the SR weights (default ``params_ema``, else ``params``).
            pad_multiple: Default ``network_g.window_size``, else 1.
            **kwargs: ``fer_size``, ``batch_size``, ``class_names`` of :class:`SRFERPredictor`.

        Returns:
            The predictor.

        Raises:
            InferenceError: The weights do not fit ``network_g``.
            ScaleMismatchError: ``network_g`` does not turn an LR face into one ``scale`` times larger.
        """
        sr_network = load_sr_network(network_g, sr_weights, param_key, device)
        try:
            check_upscale(sr_network, int(scale), network_g, device)
        except ValueError as err:
            raise ScaleMismatchError(str(err)) from err
        fer_network = network_fer
        if network_fer is not None and not isinstance(network_fer, torch.nn.Module):
            fer_network = build_fer_network(network_fer, device)
        pad_multiple = pad_multiple or int(network_g.get('window_size') or 1)
        return cls(sr_network, fer_network, int(scale), device, pad_multiple, **kwargs)

    @classmethod
    def from_onnx(cls, path: str, device: str = 'cpu', **kwargs: Any) -> SRFERPredictor:
        """The same predictor on the files of ``srfer export``, run by onnxruntime (the ``onnx`` extra).

        Args:
            path: The export folder (``sr.onnx``, ``fer.onnx``, ``srfer_onnx.json``) or its JSON file.
            device: ``cpu`` or ``cuda[:N]`` for onnxruntime.
            **kwargs: ``batch_size``, ``class_names``, ``threads``, ``with_fer`` of
                :func:`srfer_plugin.onnx_io.load_onnx_predictor`.
        """
        from srfer_plugin.onnx_io import load_onnx_predictor

        return load_onnx_predictor(path, device, **kwargs)

    # --------------------------------------------------------------------------------- properties
    @property
    def num_classes(self) -> int | None:
        """Outputs of the classifier (its ``num_classes``, else probed); None without one."""
        if self.fer_network is None:
            return None
        known = getattr(self.fer_network, 'num_classes', None)
        if not isinstance(known, int):
            if self._probed_classes is None:
                self._probed_classes = int(self.classify(torch.zeros(1, 3, *(self.fer_size or (32, 32)))).shape[1])
            known = self._probed_classes
        return known

    @property
    def label_names(self) -> list[str] | None:
        """``class_names``, else ``class_<i>``; None without a classifier. ValueError when their count is wrong."""
        if self.fer_network is None:
            return None
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(f'{len(self.class_names)} class_names for a classifier of {self.num_classes} classes')
        return self.class_names or [f'class_{k}' for k in range(self.num_classes or 0)]

    # ---------------------------------------------------------------------------------- tensors
    def super_resolve(self, lr: torch.Tensor) -> torch.Tensor:
        """Super-resolve a batch, reflect-padding its sides to ``pad_multiple`` and cropping the result back.

        Args:
            lr: ``NCHW`` RGB in [0, 1].

        Returns:
            ``(N, C, scale*H, scale*W)`` in [0, 1], on the predictor's device.
        """
        lr = lr.to(self.device, torch.float32)
        h, w = lr.shape[-2:]
        pad_h, pad_w = (-h) % self.pad_multiple, (-w) % self.pad_multiple
        if pad_h or pad_w:
            mode = 'reflect' if pad_h < h and pad_w < w else 'replicate'
            lr = F.pad(lr, (0, pad_w, 0, pad_h), mode=mode)
        with torch.no_grad():
            return self.sr_network(lr)[..., : h * self.scale, : w * self.scale].clamp(0, 1)

    def _fer_input(self, images: torch.Tensor) -> torch.Tensor:
        if self.fer_network is None:
            raise InferenceError('this SRFERPredictor has no classifier (fer_network)')
        images = images.to(self.device, torch.float32)
        if self.fer_size and tuple(images.shape[-2:]) != self.fer_size:
            images = F.interpolate(images, size=self.fer_size, mode='bilinear', align_corners=False, antialias=True)
        return images.clamp(0, 1)

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """Classify faces (resized to ``fer_size`` when it is set).

        Args:
            images: ``NCHW`` RGB in [0, 1].

        Returns:
            ``(N, K)`` float logits on the predictor's device.
        """
        x = self._fer_input(images)
        with torch.no_grad():
            out = self.fer_network(x)
        return (out[1] if isinstance(out, (tuple, list)) else out).float()

    def attention(self, images: torch.Tensor, p: float = 2.0) -> tuple[list[np.ndarray], torch.Tensor]:
        """Attention heat maps of each classifier stage (:func:`~srfer_plugin.utils.visualize.attention_heatmaps`).

        Args:
            images: ``NCHW`` RGB in [0, 1] (resized to ``fer_size`` when it is set).
            p: Exponent of the attention map.

        Returns:
            ``(maps, logits)``: per stage an ``(N, H, W)`` array in [0, 1] at the classifier input's size, and the
            ``(N, K)`` logits on the CPU.
        """
        return attention_heatmaps(self.fer_network, self._fer_input(images), p)

    def predict(self, lr: torch.Tensor) -> Prediction:
        """Super-resolve a batch and classify the SR faces.

        Args:
            lr: ``NCHW`` RGB in [0, 1], one batch.

        Returns:
            The SR batch and, with a classifier, logits, probabilities, labels and their names.
        """
        sr = self.super_resolve(lr)
        if self.fer_network is None:
            return Prediction(sr)
        logits = self.classify(sr)
        probs = torch.softmax(logits, dim=1)
        labels = probs.argmax(dim=1)
        names = self.label_names or []
        return Prediction(sr, logits, probs, labels, [names[k] for k in labels.tolist()])

    # ----------------------------------------------------------------------------------- images
    def predict_images(self, images: Sequence[np.ndarray], rgb: bool = False) -> list[ImagePrediction]:
        """Super-resolve and classify images of any sizes, in same-size batches of up to ``batch_size``.

        Args:
            images: ``HW`` (grayscale), ``HW3`` or ``HW4`` (alpha dropped) images, uint8, uint16 or float in
                [0, 1]; BGR as OpenCV reads them unless ``rgb``.
            rgb: The colour images are RGB.

        Returns:
            One result per image, in order.
        """
        results = dict(self.iter_predict_images(enumerate(images), rgb))
        return [results[i] for i in range(len(images))]

    def iter_predict_images(
        self,
        items: Iterable[tuple[Any, np.ndarray]],
        rgb: bool = False,
        on_error: Callable[[list[Any], Exception], None] | None = None,
    ) -> Iterator[tuple[Any, ImagePrediction]]:
        """Stream ``(key, image)`` pairs through the networks, grouped by size; for many or large inputs.

        Each size has a bucket, sent as a batch when it holds ``batch_size`` images (the rest at the end): only the
        buckets are held in memory.

        Args:
            items: ``(key, image)`` pairs; images as in :meth:`predict_images`.
            rgb: The colour images are RGB.
            on_error: Called with the keys of a failing image or batch (e.g. out of memory) and the error; those
                are then skipped. None: the error is raised.

        Yields:
            ``(key, result)`` batch by batch (not in input order).
        """
        buckets: dict[tuple[int, int], list[tuple[Any, np.ndarray]]] = {}
        for key, image in items:
            try:
                image = as_float_image(image)
            except ValueError as err:
                if on_error is None:
                    raise
                on_error([key], err)
                continue
            size = image.shape[:2]
            buckets.setdefault(size, []).append((key, image))
            if len(buckets[size]) >= self.batch_size:
                yield from self._run_bucket(buckets.pop(size), rgb, on_error)
        for size in list(buckets):
            yield from self._run_bucket(buckets.pop(size), rgb, on_error)

    def _run_bucket(
        self,
        bucket: list[tuple[Any, np.ndarray]],
        rgb: bool,
        on_error: Callable[[list[Any], Exception], None] | None,
    ) -> Iterator[tuple[Any, ImagePrediction]]:
        keys = [key for key, _ in bucket]
        try:
            pred = self.predict(images_to_tensor([image for _, image in bucket], rgb))
            sr, probs = pred.sr.cpu(), None if pred.probs is None else pred.probs.cpu().numpy()
            labels = None if pred.labels is None else pred.labels.tolist()
            results = []
            for i, (_, image) in enumerate(bucket):
                result = ImagePrediction(tensor_to_image(sr[i], rgb, gray=image.ndim == 2))
                if probs is not None:
                    k = labels[i]
                    result.probs, result.label, result.label_name = probs[i], k, pred.label_names[i]
                    result.confidence = float(probs[i, k])
                results.append(result)
        except Exception as err:  # noqa: BLE001  (one failing batch must not end a stream that handles errors)
            if on_error is None:
                raise
            on_error(keys, err)
            return
        yield from zip(keys, results)

    # ------------------------------------------------------------------------------------ photos
    @property
    def lr_size(self) -> int:
        """Side of the LR face crops of :meth:`predict_photo`: the classifier's input size (``input_size``, else
        ``fer_size``) divided by ``scale``, else 32."""
        size = getattr(self.fer_network, 'input_size', None) or self.requested_fer_size
        return max(4, int(as_hw(size)[0]) // self.scale) if size else 32

    def predict_photo(
        self,
        image: np.ndarray,
        detector: Any = None,
        lr_size: int | None = None,
        margin: float = 0.7,
        max_faces: int | None = None,
        rgb: bool = False,
    ) -> list[FacePrediction]:
        """Detect the faces of a photo (or a video frame), then super-resolve and classify each one.

        Each face is cut as a square around its box (:func:`~srfer_plugin.face_detection.square_face_crop`) and
        resized to ``lr_size``, the LR size the SR network was trained on.

        Args:
            image: ``HW``, ``HW3`` or ``HW4`` image, BGR as OpenCV reads it unless ``rgb``.
            detector: An object with ``detect(image, rgb) -> list[FaceBox]`` (default: dlib's, with 24-pixel faces;
                needs the ``wild`` extra).
            lr_size: Side of the LR crops (default :attr:`lr_size`).
            margin: The crop's side is the box's longer side times ``1 + margin`` (0.7: the framing of the demo's
                training faces, see :mod:`srfer_plugin.face_detection`).
            max_faces: Keep the largest faces only; None: all.
            rgb: The colour image is RGB.

        Returns:
            One result per face, largest first; empty when no face is found.
        """
        from srfer_plugin.face_detection import make_face_detector, square_face_crop

        detector = detector or make_face_detector()
        faces = detector.detect(image, rgb)
        if max_faces:
            faces = faces[: int(max_faces)]
        if not faces:
            return []
        crops = [square_face_crop(image, face, int(lr_size or self.lr_size), margin) for face in faces]
        results = self.predict_images([crop for crop, _ in crops], rgb)
        return [
            FacePrediction(**vars(result), box=face.xywh, crop_box=square, score=face.score, lr=crop)
            for face, (crop, square), result in zip(faces, crops, results)
        ]
