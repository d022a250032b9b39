"""A small LUPerson-style dataset cut from OpenCV's ``vtest.avi``.

``vtest.avi`` (Debian package ``opencv-doc``, ``examples/data/vtest.avi``:
795 frames of 768x576 at 10 fps from a static camera over a campus, people
walking) is the same kind of street video that LUPerson was cut from. This
module turns it into

- ``train/`` and ``heldout/``: person crops found by OpenCV's HOG people
  detector, split by time (the last frames are held out, after a gap) so
  that held-out crops are not near-duplicates of training crops;
- ``backgrounds/``: person-free images for
  :class:`~mmdpal.datasets.transforms.CopyPasteMultiPerson`, cut from the
  per-pixel median over time of the static camera (person-free by
  construction) and from frame regions away from every detection;
- ``meta.json``: every crop with its frame, box, score, split and a
  ``track_id`` linking the same person over consecutive sampled frames
  (greedy IoU; vtest has no identity labels);
- ``heldout_reid/``: the held-out crops again, as a Market-1501 folder
  (``query/``, ``bounding_box_test/``) for the ReID probe: tracks are the
  identities, and since vtest has one camera, times far apart stand in for
  cameras (:func:`write_reid_heldout`).

Everything is deterministic: the same video and arguments give
byte-identical files. Only cv2 and numpy are needed; the CLI is
``demo/vtest_to_lup.py``.

Boxes are ``(x1, y1, x2, y2)`` in frame pixels, ``x2``/``y2`` exclusive.
"""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import tarfile
import tempfile
import time
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

#: Where ``vtest.avi`` lies inside the ``opencv-doc`` package.
VTEST_IN_DEB = 'usr/share/doc/opencv-doc/examples/data/vtest.avi'
#: The cache folder (relative to the repo root) the converter fetches into.
DEFAULT_CACHE_DIR = osp.join('data', 'opencv-doc')
#: How to get the video by hand, for error messages.
VTEST_HOWTO = ('get it with `apt-get download opencv-doc && dpkg-deb -x '
               'opencv-doc_*.deb data/opencv-doc` (or `apt-get install '
               'opencv-doc`), or pass --video PATH')

#: ``detectMultiScale`` arguments of :func:`detect_people` (fixed, so that
#: runs are comparable). ``upscale`` enlarges the frame first: vtest's people
#: are 60-110 px tall, smaller than HOG's 128 px window at scale 1.
HOG_PARAMS = dict(
    upscale=1.5, win_stride=8, padding=8, scale=1.1, hit_threshold=0.0)


class VTestNotFoundError(FileNotFoundError):
    """``vtest.avi`` is not there and could not be fetched."""


# ---------------------------------------------------------------------------
# Finding / fetching the video
# ---------------------------------------------------------------------------
def vtest_candidates(cache_dir: str = DEFAULT_CACHE_DIR) -> List[str]:
    """The standard places of ``vtest.avi``, in the order they are tried.

    Args:
        cache_dir (str): The converter's cache folder, where
            ``dpkg-deb -x opencv-doc_*.deb`` was (or will be) unpacked.

    Returns:
        list[str]: The system doc folder (``apt-get install opencv-doc``),
        then ``cache_dir/usr/share/doc/.../vtest.avi`` and
        ``cache_dir/vtest.avi``.
    """
    return [
        '/' + VTEST_IN_DEB,
        osp.join(cache_dir, VTEST_IN_DEB),
        osp.join(cache_dir, 'vtest.avi'),
    ]


def fetch_vtest(cache_dir: str = DEFAULT_CACHE_DIR,
                apt_get: str = 'apt-get',
                dpkg_deb: str = 'dpkg-deb',
                timeout: float = 600) -> str:
    """Download ``opencv-doc`` with apt and unpack ``vtest.avi`` from it.

    ``apt-get download opencv-doc`` (no install, works without root where
    the package lists are there) into a temporary folder, then
    ``dpkg-deb --fsys-tarfile`` streams the package and only
    ``vtest.avi`` (8 MB of the 274 MB) is written, at the place
    ``dpkg-deb -x opencv-doc_*.deb cache_dir`` would put it.

    Args:
        cache_dir (str): Folder to unpack into.
        apt_get (str): The apt-get executable. Defaults to 'apt-get'.
        dpkg_deb (str): The dpkg-deb executable. Defaults to 'dpkg-deb'.
        timeout (float): Seconds allowed for the download.

    Returns:
        str: Path of the unpacked ``vtest.avi``.

    Raises:
        VTestNotFoundError: apt-get / dpkg-deb are missing, the download
            failed (no network, no package lists) or the package has no
            ``vtest.avi``. The message is one line.
    """
    for exe in (apt_get, dpkg_deb):
        if shutil.which(exe) is None:
            raise VTestNotFoundError(
                f'vtest.avi not found and cannot be fetched: {exe!r} is not '
                f'available; {VTEST_HOWTO}')
    dst = osp.join(cache_dir, VTEST_IN_DEB)
    with tempfile.TemporaryDirectory(prefix='opencv-doc-') as tmp:
        try:
            subprocess.run([apt_get, 'download', 'opencv-doc'],
                           cwd=tmp,
                           check=True,
                           capture_output=True,
                           text=True,
                           timeout=timeout)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
            err = (getattr(e, 'stderr', '') or '').strip().splitlines()
            reason = err[-1] if err else str(e)
            hint = ' (run `apt-get update` first)' if \
                'locate package' in reason else ''
            raise VTestNotFoundError(
                f'vtest.avi not found and `apt-get download opencv-doc` '
                f'failed: {reason}{hint}; {VTEST_HOWTO}') from e
        debs = sorted(glob.glob(osp.join(tmp, 'opencv-doc_*.deb')))
        if not debs:
            raise VTestNotFoundError(
                f'vtest.avi not found and `apt-get download opencv-doc` '
                f'wrote no .deb; {VTEST_HOWTO}')
        proc = subprocess.Popen([dpkg_deb, '--fsys-tarfile', debs[0]],
                                stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        found = False
        try:
            with tarfile.open(fileobj=proc.stdout, mode='r|*') as tar:
                for member in tar:
                    if member.isfile() and \
                            member.name.lstrip('./') == VTEST_IN_DEB:
                        os.makedirs(osp.dirname(dst), exist_ok=True)
                        part = dst + '.part'
                        with tar.extractfile(member) as src, \
                                open(part, 'wb') as f:
                            shutil.copyfileobj(src, f)
                        os.replace(part, dst)
                        found = True
                        break
        finally:
            proc.stdout.close()
            proc.kill()
            proc.wait()
    if not found:
        raise VTestNotFoundError(
            f'{debs[0]} has no {VTEST_IN_DEB}; {VTEST_HOWTO}')
    return dst


def find_vtest_video(video: Optional[str] = None,
                     cache_dir: str = DEFAULT_CACHE_DIR,
                     download: bool = False,
                     fetch: Callable[[str], str] = fetch_vtest) -> str:
    """Locate ``vtest.avi``, fetching it into ``cache_dir`` if allowed.

    Args:
        video (str, optional): An explicit path; if given it must exist and
            nothing else is tried.
        cache_dir (str): Cache folder, see :func:`vtest_candidates`.
        download (bool): Fetch ``opencv-doc`` with apt into ``cache_dir``
            when the video is in none of the standard places.
            Defaults to False.
        fetch (callable): ``fetch(cache_dir) -> path``, the downloader.
            Defaults to :func:`fetch_vtest`.

    Returns:
        str: Path of the video.

    Raises:
        VTestNotFoundError: With a one-line message saying how to get it.
    """
    if video is not None:
        if not osp.isfile(video):
            raise VTestNotFoundError(
                f'video not found: {video!r}; check --video, or drop it to '
                f'use vtest.avi from opencv-doc ({VTEST_HOWTO})')
        return video
    for path in vtest_candidates(cache_dir):
        if osp.isfile(path):
            return path
    if not download:
        raise VTestNotFoundError(
            f'vtest.avi not found in {vtest_candidates(cache_dir)}; '
            f'{VTEST_HOWTO}')
    return fetch(cache_dir)


# ---------------------------------------------------------------------------
# Video reading
# ---------------------------------------------------------------------------
def count_frames(video: str) -> int:
    """Number of frames of ``video``, counted by decoding (exact).

    Args:
        video (str): Path of the video.

    Returns:
        int: The number of frames that :func:`read_frames` can return.
    """
    cap = _open_video(video)
    num = 0
    while cap.grab():
        num += 1
    cap.release()
    return num


def read_frames(
    video: str,
    indices: Optional[Sequence[int]] = None
) -> Iterator[Tuple[int, np.ndarray]]:
    """Decode frames of ``video`` in order.

    Args:
        video (str): Path of the video.
        indices (Sequence[int], optional): Frame indices to return (others
            are grabbed but not decoded into arrays). All frames if None.

    Yields:
        tuple[int, np.ndarray]: Frame index and the BGR frame.
    """
    wanted = None if indices is None else set(int(i) for i in indices)
    last = None if wanted is None else max(wanted, default=-1)
    cap = _open_video(video)
    idx = 0
    try:
        while cap.grab():
            if wanted is None or idx in wanted:
                ok, frame = cap.retrieve()
                if not ok:
                    raise OSError(f'frame {idx} of {video!r} cannot be '
                                  'decoded')
                yield idx, frame
            idx += 1
            if last is not None and idx > last:
                break
    finally:
        cap.release()


def _open_video(video: str) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(video)
    if not cap.isOpened():
        raise OSError(f'cannot open the video {video!r} with OpenCV '
                      f'{cv2.__version__} (missing codec or not a video)')
    return cap


# ---------------------------------------------------------------------------
# Boxes
# ---------------------------------------------------------------------------
def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of two sets of boxes.

    Args:
        a (np.ndarray): (N, >=4) boxes ``x1, y1, x2, y2`` (extra columns,
            e.g. a score, are ignored).
        b (np.ndarray): (M, >=4) boxes.

    Returns:
        np.ndarray: (N, M) float64 IoU.
    """
    a = np.asarray(a, np.float64).reshape(-1, np.shape(a)[-1])[:, :4]
    b = np.asarray(b, np.float64).reshape(-1, np.shape(b)[-1])[:, :4]
    inter = _intersection(a, b)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def _intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(
        a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(
        a[:, None, 1], b[None, :, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def nms(boxes: np.ndarray,
        iou_thr: float = 0.45,
        contain_thr: float = 0.8) -> np.ndarray:
    """Greedy non-maximum suppression, highest score first.

    A box is dropped if its IoU with a kept box exceeds ``iou_thr`` or if
    more than ``contain_thr`` of the smaller of the two lies inside the
    other (HOG often fires on a person and on a larger window around them).

    Args:
        boxes (np.ndarray): (N, 5) ``x1, y1, x2, y2, score``.
        iou_thr (float): IoU above which a box is suppressed.
        contain_thr (float): Intersection over the smaller box's area above
            which it is suppressed.

    Returns:
        np.ndarray: (K, 5) kept boxes, highest score first (ties: by
        position, so the result does not depend on the input order).
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 5)
    order = np.lexsort((boxes[:, 1], boxes[:, 0], -boxes[:, 4]))
    boxes = boxes[order]
    inter = _intersection(boxes, boxes)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    iou = inter / np.maximum(area[:, None] + area[None] - inter, 1e-9)
    contain = inter / np.maximum(np.minimum(area[:, None], area[None]), 1e-9)
    keep = []
    for i in range(len(boxes)):
        if all(iou[i, j] <= iou_thr and contain[i, j] <= contain_thr
               for j in keep):
            keep.append(i)
    return boxes[keep]


def filter_boxes(boxes: np.ndarray,
                 frame: np.ndarray,
                 background: Optional[np.ndarray] = None,
                 min_score: float = 0.3,
                 min_height: float = 64,
                 max_height_frac: float = 0.5,
                 min_inside: float = 0.85,
                 aspect_range: Tuple[float, float] = (1.6, 2.6),
                 fg_thr: int = 30,
                 min_fg: float = 0.1) -> np.ndarray:
    """Drop unlikely person boxes and clip the rest to the frame.

    A box is kept if its score is at least ``min_score``; its height is in
    ``[min_height, max_height_frac * frame height]``; at least
    ``min_inside`` of its area lies inside the frame; after clipping its
    height / width is within ``aspect_range``; and, given a person-free
    ``background`` of the static camera, at least ``min_fg`` of its pixels
    differ from it by more than ``fg_thr`` (in some channel). HOG's false
    positives on a static camera are mostly static structures (poles,
    signs, the tripod, bins) that do not differ from the background.

    Args:
        boxes (np.ndarray): (N, 5) ``x1, y1, x2, y2, score``.
        frame (np.ndarray): The frame (H, W, 3) the boxes were found in.
        background (np.ndarray, optional): Person-free image of the same
            size (see :func:`median_background`); no foreground test if
            None.
        min_score (float): Minimum HOG SVM score. Defaults to 0.3.
        min_height (float): Minimum box height in pixels. Defaults to 64.
        max_height_frac (float): Maximum box height over the frame height.
            Defaults to 0.5.
        min_inside (float): Minimum fraction of the box area inside the
            frame. Defaults to 0.85.
        aspect_range (tuple): Allowed height / width after clipping.
            Defaults to (1.6, 2.6).
        fg_thr (int): Difference to the background counted as foreground.
            Defaults to 30.
        min_fg (float): Minimum foreground fraction of a box.
            Defaults to 0.1.

    Returns:
        np.ndarray: (K, 5) kept boxes, clipped and rounded to integer
        pixels, in the input order.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 5)
    H, W = frame.shape[:2]
    fg = None
    if background is not None and len(boxes):
        if background.shape != frame.shape:
            raise ValueError(f'background {background.shape} and frame '
                             f'{frame.shape} differ in size')
        fg = _fg_mask(frame, background, fg_thr)
    kept = []
    for x1, y1, x2, y2, score in boxes:
        w, h = x2 - x1, y2 - y1
        if w <= 0 or h <= 0 or score < min_score:
            continue
        if not min_height <= h <= max_height_frac * H:
            continue
        cx1, cy1 = max(0., round(x1)), max(0., round(y1))
        cx2, cy2 = min(float(W), round(x2)), min(float(H), round(y2))
        cw, ch = cx2 - cx1, cy2 - cy1
        if cw <= 0 or ch <= 0 or cw * ch < min_inside * w * h:
            continue
        if not aspect_range[0] <= ch / cw <= aspect_range[1]:
            continue
        if fg is not None and \
                fg[int(cy1):int(cy2), int(cx1):int(cx2)].mean() < min_fg:
            continue
        kept.append((cx1, cy1, cx2, cy2, score))
    return np.array(kept, np.float64).reshape(-1, 5)


def _fg_mask(frame: np.ndarray, background: np.ndarray,
             thr: int) -> np.ndarray:
    """Pixels of ``frame`` that differ from ``background`` by > ``thr``."""
    diff = cv2.absdiff(frame, background)
    if diff.ndim == 3:
        diff = diff.max(axis=2)
    return diff > thr


# ---------------------------------------------------------------------------
# Detection
# ---------------------------------------------------------------------------
def build_hog() -> cv2.HOGDescriptor:
    """OpenCV's HOG descriptor with its built-in people detector (Dalal &
    Triggs, 64x128 window).

    Returns:
        cv2.HOGDescriptor: Ready for ``detectMultiScale``.
    """
    if not hasattr(cv2, 'HOGDescriptor'):
        raise ImportError(
            f'cv2 {cv2.__version__} has no HOGDescriptor (opencv-python 5 '
            'dropped it): install opencv-python 4.x, e.g. 4.14.0.94')
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    return hog


def foreground_regions(
    frame: np.ndarray,
    background: np.ndarray,
    fg_thr: int = 30,
    min_area: int = 100,
    pad: Tuple[int, int] = (32, 64),
    min_size: Tuple[int, int] = (96, 48)
) -> List[Tuple[int, int, int, int]]:
    """Regions of a static-camera frame where something moves.

    Pixels that differ from the person-free ``background`` by more than
    ``fg_thr`` are opened (3x3) to remove noise; each connected blob of at
    least ``min_area`` pixels gives its bounding box grown by ``pad``
    (x, y) and to at least ``min_size`` (h, w), clipped to the frame; boxes
    that overlap are merged until none do.

    Args:
        frame (np.ndarray): BGR frame (H, W, 3).
        background (np.ndarray): Person-free image of the same size.
        fg_thr (int): Difference counted as foreground. Defaults to 30.
        min_area (int): Smallest blob in pixels. Defaults to 100.
        pad (tuple): Growth ``(x, y)`` of each blob box (a person is often
            only partly foreground). Defaults to (32, 64).
        min_size (tuple): Smallest region ``(h, w)``. Defaults to (96, 48).

    Returns:
        list[tuple]: Disjoint ``x1, y1, x2, y2`` regions, sorted.
    """
    H, W = frame.shape[:2]
    fg = _fg_mask(frame, background, fg_thr).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    _, _, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    regions = []
    for x, y, w, h, area in stats[1:]:
        if area < min_area:
            continue
        cx, cy = x + w / 2, y + h / 2
        w, h = max(w + 2 * pad[0], min_size[1]), max(h + 2 * pad[1],
                                                     min_size[0])
        regions.append([
            max(0, int(cx - w / 2)),
            max(0, int(cy - h / 2)),
            min(W, int(np.ceil(cx + w / 2))),
            min(H, int(np.ceil(cy + h / 2)))
        ])
    merged = True
    while merged:
        merged = False
        out: List[List[int]] = []
        for r in sorted(regions):
            for o in out:
                if r[0] < o[2] and o[0] < r[2] and r[1] < o[3] and o[1] < r[3]:
                    o[:] = [
                        min(o[0], r[0]),
                        min(o[1], r[1]),
                        max(o[2], r[2]),
                        max(o[3], r[3])
                    ]
                    merged = True
                    break
            else:
                out.append(list(r))
        regions = out
    return [tuple(r) for r in sorted(regions)]


def detect_people(
        frame: np.ndarray,
        hog: Optional[cv2.HOGDescriptor] = None,
        background: Optional[np.ndarray] = None,
        upscale: float = HOG_PARAMS['upscale'],
        win_stride: int = HOG_PARAMS['win_stride'],
        padding: int = HOG_PARAMS['padding'],
        scale: float = HOG_PARAMS['scale'],
        hit_threshold: float = HOG_PARAMS['hit_threshold']) -> np.ndarray:
    """Raw HOG people detections in one frame.

    The frame (or, given a person-free ``background`` of a static camera,
    each of its :func:`foreground_regions`, which is about 4x faster on
    vtest and finds ~96% of the same boxes) is enlarged by ``upscale``
    (people smaller than the 128 px window are found), ``detectMultiScale``
    runs with the given fixed arguments (OpenCV groups overlapping windows)
    and boxes are mapped back to frame pixels. No further filtering: see
    :func:`nms` and :func:`filter_boxes`. OpenCV runs single-threaded here,
    so that the scores are reproducible.

    Args:
        frame (np.ndarray): BGR frame (H, W, 3).
        hog (cv2.HOGDescriptor, optional): From :func:`build_hog`; built
            if None.
        background (np.ndarray, optional): Person-free image of the scene:
            search only where the frame differs from it.
        upscale (float): Enlargement before detection. Defaults to 1.5.
        win_stride (int): Window stride in (enlarged) pixels.
            Defaults to 8.
        padding (int): Padding around the image. Defaults to 8.
        scale (float): Pyramid scale step. Defaults to 1.1.
        hit_threshold (float): SVM score threshold. Defaults to 0.

    Returns:
        np.ndarray: (N, 5) float64 ``x1, y1, x2, y2, score``, sorted by
        position.
    """
    hog = hog if hog is not None else build_hog()
    H, W = frame.shape[:2]
    if background is None:
        regions = [(0, 0, W, H)]
    else:
        regions = foreground_regions(frame, background)
    found = []
    for x1, y1, x2, y2 in regions:
        img = frame[y1:y2, x1:x2]
        if upscale != 1:
            img = cv2.resize(
                img,
                None,
                fx=upscale,
                fy=upscale,
                interpolation=cv2.INTER_LINEAR)
        if img.shape[0] < 128 or img.shape[1] < 64:  # smaller than a window
            continue
        # single-threaded: with several threads the scores OpenCV gives
        # grouped windows depend on the order the threads finish (seen on
        # vtest: same box, score 3.60 or 4.58), and scores order the NMS
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            rects, weights = hog.detectMultiScale(
                img,
                hitThreshold=hit_threshold,
                winStride=(win_stride, win_stride),
                padding=(padding, padding),
                scale=scale)
        finally:
            cv2.setNumThreads(threads)
        if len(rects) == 0:
            continue
        rects = np.asarray(rects, np.float64).reshape(-1, 4) / upscale
        weights = np.asarray(weights, np.float64).reshape(-1)
        found.append(
            np.column_stack([
                rects[:, 0] + x1, rects[:, 1] + y1,
                rects[:, 0] + rects[:, 2] + x1, rects[:, 1] + rects[:, 3] + y1,
                weights
            ]))
    if not found:
        return np.zeros((0, 5), np.float64)
    boxes = np.concatenate(found)
    return boxes[np.lexsort((boxes[:, 1], boxes[:, 0]))]


class HOGPeopleDetector:
    """A callable ``detector(frame, frame_idx) -> (N, 5) boxes`` around
    :func:`detect_people`, holding one HOG descriptor.

    Args:
        background (np.ndarray, optional): Person-free image of the static
            camera: search only the foreground regions.
        **kwargs: Arguments of :func:`detect_people` (default
            :data:`HOG_PARAMS`).
    """

    def __init__(self, background: Optional[np.ndarray] = None, **kwargs):
        self.hog = build_hog()
        self.background = background
        self.params = {**HOG_PARAMS, **kwargs}

    def __call__(self, frame: np.ndarray, frame_idx: int = -1) -> np.ndarray:
        return detect_people(frame, self.hog, self.background, **self.params)


# ---------------------------------------------------------------------------
# Tracks, crops, backgrounds, split
# ---------------------------------------------------------------------------
def link_tracks(boxes_per_frame: Sequence[np.ndarray],
                iou_thr: float = 0.3,
                max_gap: int = 1) -> List[np.ndarray]:
    """Give boxes of the same person in consecutive sampled frames one id.

    Greedy IoU linking, tracker-free: in each sampled frame, the pairs
    (live track, box) are taken by decreasing IoU (ties by track id, then
    box index) and linked if both are still free and the IoU is at least
    ``iou_thr``; boxes left over start new tracks. A track is live while it
    was last seen at most ``max_gap`` sampled frames before (1: only the
    previous sampled frame; 2: one missed detection is bridged).

    Args:
        boxes_per_frame (Sequence[np.ndarray]): Per sampled frame, in time
            order, (N_t, >=4) boxes.
        iou_thr (float): Minimum IoU to link. Defaults to 0.3.
        max_gap (int): Sampled frames a track may look back. Defaults to 1.

    Returns:
        list[np.ndarray]: Per sampled frame, (N_t,) int64 track ids,
        numbered 0, 1, ... in order of first appearance.
    """
    if max_gap < 1:
        raise ValueError(f'max_gap must be >= 1, got {max_gap}')
    last_box: Dict[int, np.ndarray] = {}
    last_seen: Dict[int, int] = {}
    ids_per_frame = []
    next_id = 0
    for t, boxes in enumerate(boxes_per_frame):
        boxes = np.asarray(boxes, np.float64)
        boxes = boxes.reshape(-1, boxes.shape[-1] if boxes.size else 4)
        ids = np.full(len(boxes), -1, np.int64)
        live = sorted(k for k, s in last_seen.items() if t - s <= max_gap)
        if live and len(boxes):
            iou = box_iou(np.stack([last_box[k] for k in live]), boxes)
            pairs = [(-iou[i, j], live[i], j) for i in range(len(live))
                     for j in range(len(boxes)) if iou[i, j] >= iou_thr]
            used = set()
            for _, track, j in sorted(pairs):
                if track in used or ids[j] >= 0:
                    continue
                ids[j] = track
                used.add(track)
        for j in range(len(boxes)):
            if ids[j] < 0:
                ids[j] = next_id
                next_id += 1
            last_box[int(ids[j])] = boxes[j, :4]
            last_seen[int(ids[j])] = t
        ids_per_frame.append(ids)
    return ids_per_frame


def person_crop_box(box: Sequence[float],
                    size: Tuple[int, int] = (256, 128),
                    margin: float = 0.05) -> Tuple[int, int, int, int]:
    """The region cut around a person box: the box grown by ``margin`` on
    each side, then widened or heightened about its centre to the aspect of
    ``size`` (h, w), so that the person is not distorted by the resize.

    Args:
        box (Sequence[float]): ``x1, y1, x2, y2`` (more entries ignored).
        size (tuple): ``(h, w)`` of the crop. Defaults to (256, 128).
        margin (float): Growth on each side, relative to the box size.
            Defaults to 0.05.

    Returns:
        tuple[int]: ``x1, y1, x2, y2`` (may reach outside the frame).
    """
    x1, y1, x2, y2 = [float(v) for v in box[:4]]
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    w, h = (x2 - x1) * (1 + 2 * margin), (y2 - y1) * (1 + 2 * margin)
    ratio = size[0] / size[1]
    if h / w < ratio:
        h = w * ratio
    else:
        w = h / ratio
    x1, y1 = int(round(cx - w / 2)), int(round(cy - h / 2))
    return x1, y1, x1 + max(int(round(w)), 1), y1 + max(int(round(h)), 1)


def cut_crops(
    frame: np.ndarray,
    boxes: np.ndarray,
    size: Tuple[int, int] = (256, 128),
    margin: float = 0.05
) -> Tuple[List[np.ndarray], List[Tuple[int, int, int, int]]]:
    """Cut person crops of a fixed size around boxes.

    Each region from :func:`person_crop_box` is cut from the frame (parts
    outside the frame are filled by replicating the border) and resized to
    ``size`` (area interpolation when shrinking, cubic when enlarging).

    Args:
        frame (np.ndarray): BGR frame (H, W, 3).
        boxes (np.ndarray): (N, >=4) person boxes.
        size (tuple): ``(h, w)`` of the crops. Defaults to (256, 128), the
            DPAL global view.
        margin (float): See :func:`person_crop_box`. Defaults to 0.05.

    Returns:
        tuple[list[np.ndarray], list[tuple]]: The (h, w, 3) uint8 crops
        and the regions they were cut from.
    """
    crops, regions = [], []
    for box in np.asarray(boxes).reshape(
            -1,
            np.shape(boxes)[-1] if np.size(boxes) else 4):
        region = person_crop_box(box, size, margin)
        crops.append(_cut_region(frame, region, size, cv2.INTER_CUBIC))
        regions.append(region)
    return crops, regions


def _cut_region(img: np.ndarray, region: Sequence[int], size: Tuple[int, int],
                enlarge: int) -> np.ndarray:
    """``img[region]`` (the border replicated outside the image) resized to
    ``size`` (h, w): area interpolation when shrinking, ``enlarge`` when
    enlarging."""
    H, W = img.shape[:2]
    x1, y1, x2, y2 = region
    pad = (max(0, -y1), max(0, y2 - H), max(0, -x1), max(0, x2 - W))
    patch = img[max(0, y1):min(H, y2), max(0, x1):min(W, x2)]
    if any(pad):
        patch = cv2.copyMakeBorder(patch, *pad, cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if patch.shape[0] > size[0] else enlarge
    return cv2.resize(patch, (size[1], size[0]), interpolation=interp)


def person_mask(frame: np.ndarray,
                background: np.ndarray,
                fg_thr: int = 30) -> np.ndarray:
    """Where the people are in a frame of the static camera: the pixels
    that differ from the person-free median background by more than
    ``fg_thr`` in some channel, opened with a 3x3 square (single-pixel
    noise off) and closed with a 7x7 one (small holes where clothes look
    like the background filled).

    Returns:
        np.ndarray: (H, W) uint8, 255 on the people, 0 elsewhere.
    """
    fg = _fg_mask(frame, background, fg_thr).astype(np.uint8) * 255
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return cv2.morphologyEx(fg, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))


def cut_masks(mask: np.ndarray, regions: Sequence[Sequence[int]],
              size: Tuple[int, int]) -> List[np.ndarray]:
    """The crops of :func:`cut_crops` cut from a frame's
    :func:`person_mask`: the same regions and size, so that mask and crop
    align pixel for pixel (values in between 0 and 255 where the resize
    mixes person and background).

    Returns:
        list[np.ndarray]: (h, w) uint8 masks.
    """
    return [
        _cut_region(mask, region, size, cv2.INTER_LINEAR) for region in regions
    ]


def median_background(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Per-pixel median over frames of a static camera.

    People move, so at almost every pixel the background is what is seen
    most of the time: the median is a person-free image of the scene (a
    person standing still for half of the frames would remain).

    Args:
        frames (Sequence[np.ndarray]): Frames of one size, uint8; an odd
            number gives an exact (not averaged) median.

    Returns:
        np.ndarray: The median image, uint8, of the frames' shape.
    """
    if len(frames) == 0:
        raise ValueError('median_background needs at least one frame')
    stack = np.stack(frames)
    k = (len(frames) - 1) // 2
    if len(frames) % 2:
        return np.partition(stack, k, axis=0)[k]
    part = np.partition(stack, (k, k + 1), axis=0)
    return ((part[k].astype(np.uint16) + part[k + 1] + 1) // 2).astype(
        np.uint8)


def grid_boxes(shape: Sequence[int], size: int,
               stride: int) -> List[Tuple[int, int, int, int]]:
    """Square windows of side ``size`` on a grid with ``stride`` covering
    an image of ``shape`` (the last row / column flush with the border).

    Args:
        shape (Sequence[int]): ``(H, W, ...)``.
        size (int): Window side.
        stride (int): Grid step.

    Returns:
        list[tuple]: ``x1, y1, x2, y2`` windows, row-major. Empty if the
        image is smaller than ``size``.
    """
    H, W = shape[:2]
    if H < size or W < size:
        return []

    def starts(n):
        s = list(range(0, n - size + 1, stride))
        if s[-1] != n - size:
            s.append(n - size)
        return s

    return [(x, y, x + size, y + size) for y in starts(H) for x in starts(W)]


def background_boxes(frame: np.ndarray,
                     person_boxes: np.ndarray,
                     size: int = 256,
                     stride: int = 128,
                     margin: int = 8,
                     background: Optional[np.ndarray] = None,
                     fg_thr: int = 30,
                     max_fg: float = 0.002) -> List[Tuple[int, int, int, int]]:
    """Grid windows of a frame that contain no person.

    A window is kept if it does not overlap any of ``person_boxes`` grown
    by ``margin`` pixels and, given the person-free ``background``, at most
    ``max_fg`` of its pixels differ from it by more than ``fg_thr`` (this
    catches people the detector missed).

    Args:
        frame (np.ndarray): BGR frame (H, W, 3).
        person_boxes (np.ndarray): (N, >=4) boxes to avoid (give all
            detections, before filtering, to be safe).
        size (int): Window side. Defaults to 256.
        stride (int): Grid step. Defaults to 128.
        margin (int): Growth of the person boxes. Defaults to 8.
        background (np.ndarray, optional): Person-free image of the scene.
        fg_thr (int): Difference counted as foreground. Defaults to 30.
        max_fg (float): Maximum foreground fraction. Defaults to 0.002.

    Returns:
        list[tuple]: ``x1, y1, x2, y2`` of the person-free windows.
    """
    windows = grid_boxes(frame.shape, size, stride)
    person_boxes = np.asarray(person_boxes, np.float64)
    if person_boxes.size:
        grown = person_boxes.reshape(-1, person_boxes.shape[-1])[:, :4] + \
            np.array([-margin, -margin, margin, margin])
    else:
        grown = np.zeros((0, 4))
    fg = _fg_mask(frame, background, fg_thr) if background is not None \
        else None
    kept = []
    for win in windows:
        if len(grown) and _intersection(np.array([win], np.float64),
                                        grown).max() > 0:
            continue
        x1, y1, x2, y2 = win
        if fg is not None and fg[y1:y2, x1:x2].mean() > max_fg:
            continue
        kept.append(win)
    return kept


def split_by_time(frame_idx: int,
                  num_frames: int,
                  heldout_frac: float = 0.15,
                  gap_frames: int = 50) -> str:
    """The split of a crop from its frame index.

    Frames from ``round((1 - heldout_frac) * num_frames)`` on are held
    out; the ``gap_frames`` frames before them are dropped (people seen
    just before the cut would be near-duplicates of held-out crops); the
    rest is training data.

    Args:
        frame_idx (int): Frame index of the crop.
        num_frames (int): Frames in the video.
        heldout_frac (float): Fraction of the frames held out, at the end.
            Defaults to 0.15.
        gap_frames (int): Frames dropped before the held-out part.
            Defaults to 50 (5 s of vtest).

    Returns:
        str: ``'train'``, ``'heldout'`` or ``'gap'``.
    """
    cut = int(round((1 - heldout_frac) * num_frames))
    if frame_idx >= cut:
        return 'heldout'
    if frame_idx >= cut - gap_frames:
        return 'gap'
    return 'train'


# ---------------------------------------------------------------------------
# The whole conversion
# ---------------------------------------------------------------------------
def _imwrite(path: str, img: np.ndarray, quality: int) -> None:
    ok, buf = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f'cannot encode {path!r} as JPEG')
    with open(path, 'wb') as f:
        f.write(buf.tobytes())


def _prepare_out_dir(out_dir: str) -> None:
    """Empty the folders a previous run wrote; refuse a foreign folder."""
    if osp.isdir(out_dir) and os.listdir(out_dir) and \
            not osp.isfile(osp.join(out_dir, 'meta.json')):
        raise FileExistsError(
            f'output folder {out_dir!r} is not empty and has no meta.json '
            '(not written by vtest_to_lup): choose another --out or empty '
            'it')
    for sub in ('train', 'heldout', 'backgrounds', REID_DIR, MASK_DIR):
        if osp.isdir(osp.join(out_dir, sub)):
            shutil.rmtree(osp.join(out_dir, sub))
        os.makedirs(osp.join(out_dir, sub))


#: The Market-1501 folder of the held-out crops, under the output folder.
REID_DIR = 'heldout_reid'
#: The person masks of the crops (``masks/train``, ``masks/heldout``; PNG,
#: the crop's name), under the output folder.
MASK_DIR = 'masks'


def write_reid_heldout(out_dir: str,
                       records: Sequence[dict],
                       crops: Sequence[np.ndarray],
                       min_gap: int = 50,
                       jpeg_quality: int = 95) -> dict:
    """Write the held-out crops as a Market-1501 folder for the ReID probe
    (``out_dir/heldout_reid/{query,bounding_box_test}/``, read by
    :class:`mmdpal.datasets.Market1501` with ``split='test'``).

    Tracks are the identities (person id = track id + 1). vtest.avi has one
    camera, so times far apart stand in for cameras: a held-out track that
    spans at least ``min_gap`` frames gives one query, its first crop
    (camera 1), and as gallery its crops at least ``min_gap`` frames later
    (camera 2); its crops in between are not used. Shorter tracks are left
    out: greedy IoU tracking breaks a person's track into pieces, so their
    crops would often be the query's own person, frames away from it, but
    counted as other identities. The labels of the long tracks are only as
    good as the tracking too (a person whose track broke in two appears as
    two identities).

    Args:
        out_dir (str): The output folder of :func:`make_vtest_lup`.
        records (Sequence[dict]): Its crop records (``frame``,
            ``track_id``, ``split``).
        crops (Sequence[np.ndarray]): The crop of each record.
        min_gap (int): Frames between a query and its gallery images.
            Defaults to 50.
        jpeg_quality (int): JPEG quality. Defaults to 95.

    Returns:
        dict: ``min_gap`` and the numbers of ``queries``, ``gallery``
        images and ``unused`` held-out crops (of short tracks or too close
        to their query).
    """
    by_track = {}
    for rec, crop in zip(records, crops):
        if rec['split'] == 'heldout':
            by_track.setdefault(rec['track_id'], []).append(
                (rec['frame'], crop))
    counts = dict(min_gap=min_gap, queries=0, gallery=0, unused=0)
    for sub in ('query', 'bounding_box_test'):
        os.makedirs(osp.join(out_dir, REID_DIR, sub), exist_ok=True)
    for track, items in sorted(by_track.items()):
        items.sort(key=lambda item: item[0])
        first, last = items[0][0], items[-1][0]
        for frame, crop in items:
            if frame == first and last - first >= min_gap:
                sub, cam = 'query', 1
            elif frame - first >= min_gap:
                sub, cam = 'bounding_box_test', 2
            else:  # a short track, or too close to the query
                counts['unused'] += 1
                continue
            name = f'{track + 1:04d}_c{cam}s1_{frame:06d}_00.jpg'
            _imwrite(
                osp.join(out_dir, REID_DIR, sub, name), crop, jpeg_quality)
            counts['queries' if sub == 'query' else 'gallery'] += 1
    return counts


def make_vtest_lup(video: str,
                   out_dir: str,
                   step: int = 4,
                   heldout_frac: float = 0.15,
                   gap_frames: int = 50,
                   crop_size: Tuple[int, int] = (256, 128),
                   margin: float = 0.05,
                   detector: Optional[Callable[[np.ndarray, int],
                                               np.ndarray]] = None,
                   nms_cfg: Optional[dict] = None,
                   filter_cfg: Optional[dict] = None,
                   track_iou: float = 0.3,
                   track_max_gap: int = 2,
                   median_frames: int = 41,
                   bg_sizes: Sequence[int] = (256, 384),
                   bg_stride: int = 128,
                   frame_bg_frames: int = 6,
                   max_frames: Optional[int] = None,
                   jpeg_quality: int = 95,
                   reid_min_gap: int = 50) -> dict:
    """Cut the LUPerson-style dataset from a static-camera video.

    1. The per-pixel median of ``median_frames`` evenly spaced frames is
       the person-free background (:func:`median_background`).
    2. Every ``step``-th frame: ``detector`` (HOG by default), then
       :func:`nms` and :func:`filter_boxes` (with the background).
    3. Boxes are linked over sampled frames (:func:`link_tracks`).
    4. Split by time (:func:`split_by_time`); training crops of a track
       that goes on into the held-out part are dropped too.
    5. Crops (:func:`cut_crops`) go to ``out_dir/train`` and
       ``out_dir/heldout`` as ``f{frame:04d}_t{track:03d}.jpg``, and their
       person masks (:func:`person_mask`, cut as the crop:
       :func:`cut_masks`) as ``out_dir/masks/<split>/<name>.png``;
       backgrounds (median image, its grid windows of ``bg_sizes``, and
       person-free windows of ``frame_bg_frames`` sampled frames) to
       ``out_dir/backgrounds``; everything is listed in
       ``out_dir/meta.json``. The held-out crops are also written as a
       Market-1501 folder, ``out_dir/heldout_reid``
       (:func:`write_reid_heldout`).

    Args:
        video (str): Path of the video (e.g. from :func:`find_vtest_video`).
        out_dir (str): Output folder (a previous output is replaced).
        step (int): Detect on every ``step``-th frame. Defaults to 4
            (0.4 s of vtest: consecutive boxes of a walking person still
            overlap enough to be linked by IoU).
        heldout_frac (float): See :func:`split_by_time`. Defaults to 0.15.
        gap_frames (int): See :func:`split_by_time`. Defaults to 50.
        crop_size (tuple): ``(h, w)`` of the person crops.
            Defaults to (256, 128).
        margin (float): See :func:`person_crop_box`. Defaults to 0.05.
        detector (callable, optional): ``detector(frame, frame_idx)`` ->
            (N, 5) ``x1, y1, x2, y2, score``. Defaults to
            :class:`HOGPeopleDetector` on the frame's foreground regions
            (given the median background).
        nms_cfg (dict, optional): Arguments of :func:`nms`.
        filter_cfg (dict, optional): Arguments of :func:`filter_boxes`.
        track_iou (float): See :func:`link_tracks`. Defaults to 0.3.
        track_max_gap (int): See :func:`link_tracks`. Defaults to 2.
        median_frames (int): Frames in the median. Defaults to 41.
        bg_sizes (Sequence[int]): Sides of the background windows.
            Defaults to (256, 384).
        bg_stride (int): Grid step of the background windows.
            Defaults to 128.
        frame_bg_frames (int): Sampled frames (evenly spaced) to cut
            person-free windows from. Defaults to 6.
        max_frames (int, optional): Use only the first frames.
        jpeg_quality (int): JPEG quality. Defaults to 95.
        reid_min_gap (int): Frames between a query and its gallery images in
            ``heldout_reid``. Defaults to 50.

    Returns:
        dict: Summary: ``frames`` (in the video / used), ``sampled``,
        ``raw_boxes``, ``boxes``, ``train``, ``heldout``, ``dropped``,
        ``tracks``, ``backgrounds``, ``reid`` (see
        :func:`write_reid_heldout`), ``seconds``.
    """
    start = time.perf_counter()
    if step < 1:
        raise ValueError(f'step must be >= 1, got {step}')
    nms_cfg = nms_cfg or {}
    filter_cfg = filter_cfg or {}
    num_frames = count_frames(video)
    if max_frames is not None:
        num_frames = min(num_frames, max_frames)
    if num_frames == 0:
        raise ValueError(f'no frames could be decoded from {video!r}')

    # 1. the person-free background
    med_idx = np.unique(
        np.linspace(0, num_frames - 1, min(median_frames,
                                           num_frames)).round().astype(int))
    background = median_background([f for _, f in read_frames(video, med_idx)])
    if detector is None:
        detector = HOGPeopleDetector(background=background)

    # 2. detection on sampled frames, crops kept in memory
    sampled = list(range(0, num_frames, step))
    bg_frames = set(sampled[i] for i in np.unique(
        np.linspace(0,
                    len(sampled) -
                    1, min(frame_bg_frames, len(sampled))).round().astype(
                        int))) if frame_bg_frames > 0 else set()
    boxes_per_frame, crops_per_frame, regions_per_frame = [], [], []
    masks_per_frame = []
    frame_bgs = []
    num_raw = 0
    for idx, frame in read_frames(video, sampled):
        if frame.shape != background.shape:
            raise ValueError(f'frame {idx} of {video!r} has shape '
                             f'{frame.shape}, other frames '
                             f'{background.shape}: not a fixed camera')
        raw = np.asarray(detector(frame, idx), np.float64).reshape(-1, 5)
        num_raw += len(raw)
        boxes = filter_boxes(
            nms(raw, **nms_cfg), frame, background, **filter_cfg)
        crops, regions = cut_crops(frame, boxes, crop_size, margin)
        masks_per_frame.append(
            cut_masks(person_mask(frame, background), regions, crop_size
                      ) if regions else [])
        boxes_per_frame.append(boxes)
        crops_per_frame.append(crops)
        regions_per_frame.append(regions)
        if idx in bg_frames:
            avoid = np.concatenate([raw, boxes]) if len(boxes) else raw
            for size in bg_sizes:
                for win in background_boxes(
                        frame, avoid, size, bg_stride, background=background):
                    x1, y1, x2, y2 = win
                    frame_bgs.append((idx, win, frame[y1:y2, x1:x2].copy()))

    # 3. tracks, 4. split
    track_ids = link_tracks(boxes_per_frame, track_iou, track_max_gap)
    records = []
    heldout_tracks = set()
    for idx, boxes, ids in zip(sampled, boxes_per_frame, track_ids):
        for box, tid in zip(boxes, ids):
            split = split_by_time(idx, num_frames, heldout_frac, gap_frames)
            if split == 'heldout':
                heldout_tracks.add(int(tid))
            records.append(
                dict(
                    frame=idx,
                    track_id=int(tid),
                    split=split,
                    box=[int(v) for v in box[:4]],
                    score=round(float(box[4]), 4)))
    for rec in records:
        if rec['split'] == 'train' and rec['track_id'] in heldout_tracks:
            rec['split'] = 'gap'

    # 5. write
    _prepare_out_dir(out_dir)
    crops = [c for cs in crops_per_frame for c in cs]
    regions = [r for rs in regions_per_frame for r in rs]
    masks = [m for ms in masks_per_frame for m in ms]
    for rec, crop, region, mask in zip(records, crops, regions, masks):
        rec['crop_box'] = [int(v) for v in region]
        if rec['split'] == 'gap':
            rec['split'], rec['file'], rec['mask'] = 'dropped', None, None
            continue
        name = f"{rec['split']}/f{rec['frame']:04d}_t{rec['track_id']:03d}"
        rec['file'], rec['mask'] = f'{name}.jpg', f'{MASK_DIR}/{name}.png'
        _imwrite(osp.join(out_dir, rec['file']), crop, jpeg_quality)
        os.makedirs(osp.dirname(osp.join(out_dir, rec['mask'])), exist_ok=True)
        if not cv2.imwrite(osp.join(out_dir, rec['mask']), mask):
            raise OSError(f"cannot write {rec['mask']!r} in {out_dir!r}")

    reid = write_reid_heldout(out_dir, records, crops, reid_min_gap,
                              jpeg_quality)

    backgrounds = []

    def add_background(name, img, source, frame_idx, box):
        path = f'backgrounds/{name}.jpg'
        _imwrite(osp.join(out_dir, path), img, jpeg_quality)
        backgrounds.append(
            dict(
                file=path,
                source=source,
                frame=frame_idx,
                box=[int(v) for v in box]))

    H, W = background.shape[:2]
    add_background('median_full', background, 'median', None, (0, 0, W, H))
    for size in bg_sizes:
        for x1, y1, x2, y2 in grid_boxes(background.shape, size, bg_stride):
            add_background(f'median_s{size}_x{x1:03d}_y{y1:03d}',
                           background[y1:y2,
                                      x1:x2], 'median', None, (x1, y1, x2, y2))
    for idx, (x1, y1, x2, y2), img in frame_bgs:
        add_background(f'f{idx:04d}_s{x2 - x1}_x{x1:03d}_y{y1:03d}', img,
                       'frame', idx, (x1, y1, x2, y2))

    counts = {
        s: sum(r['split'] == s for r in records)
        for s in ('train', 'heldout', 'dropped')
    }
    meta = dict(
        video=osp.basename(video),
        num_frames=num_frames,
        frame_size=[H, W],
        sampled_frames=sampled,
        median_frames=[int(i) for i in med_idx],
        split=dict(
            heldout_from_frame=int(round((1 - heldout_frac) * num_frames)),
            train_before_frame=int(round(
                (1 - heldout_frac) * num_frames)) - gap_frames,
            note='train crops of tracks that reach the held-out part are '
            'dropped too'),
        params=dict(
            step=step,
            heldout_frac=heldout_frac,
            gap_frames=gap_frames,
            crop_size=list(crop_size),
            margin=margin,
            nms=nms_cfg,
            filter=filter_cfg,
            detector=getattr(
                detector, 'params',
                getattr(detector, '__name__',
                        type(detector).__name__)),
            track_iou=track_iou,
            track_max_gap=track_max_gap,
            bg_sizes=list(bg_sizes),
            bg_stride=bg_stride,
            jpeg_quality=jpeg_quality,
            reid_min_gap=reid_min_gap),
        counts=dict(
            **counts,
            tracks=len(
                {r['track_id']
                 for r in records if r['file'] is not None}),
            backgrounds=len(backgrounds),
            reid=reid),
        crops=records,
        backgrounds=backgrounds)
    with open(osp.join(out_dir, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=1)
        f.write('\n')

    return dict(
        frames=num_frames,
        sampled=len(sampled),
        raw_boxes=num_raw,
        boxes=len(records),
        **counts,
        tracks=meta['counts']['tracks'],
        backgrounds=len(backgrounds),
        reid=reid,
        seconds=round(time.perf_counter() - start, 2))
