"""Cut a small LUPerson-style dataset from OpenCV's vtest.avi.

    python demo/vtest_to_lup.py [--video PATH] \
        [--out data/vtest_lup] [--step 4] [--heldout-frac 0.15]

Without --video, vtest.avi is looked for in /usr/share/doc/opencv-doc/
(``apt-get install opencv-doc``) and in the cache data/opencv-doc/; if it is
in neither, ``apt-get download opencv-doc`` fetches the package (96 MB, no
install, no root needed where apt's lists are there) and vtest.avi is
unpacked into data/opencv-doc/ (--no-download turns this off).

HOG people detections on every --step-th frame become 256x128 person crops
in OUT/train/ and OUT/heldout/ (the last --heldout-frac of the video, after
a --gap-frames gap); OUT/heldout_reid/ holds the held-out crops again as a
Market-1501 folder for the ReID probe (tracks are the identities; a query
and its gallery images are --reid-min-gap frames apart, times far apart
standing in for cameras); OUT/backgrounds/ gets person-free images for the
copy-paste view (the median-over-time background and windows of it, and
person-free windows of frames); OUT/meta.json lists every crop with frame,
box, score, split and track_id. Runs are deterministic (byte-identical).

Train on it with ``train_dataloader.dataset.data_root=OUT/train`` and
``CopyPasteMultiPerson.background_dir=OUT/backgrounds``.
"""
import argparse
import os.path as osp
import sys

from vtest_data import (DEFAULT_CACHE_DIR, VTestNotFoundError,
                        find_vtest_video, make_vtest_lup)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument(
        '--video',
        help='path of vtest.avi (or another '
        'static-camera video); default: look it up / fetch')
    parser.add_argument(
        '--out', default=osp.join('data', 'vtest_lup'), help='output folder')
    parser.add_argument(
        '--cache-dir',
        default=osp.join(REPO, DEFAULT_CACHE_DIR),
        help='where opencv-doc is (or gets) unpacked')
    parser.add_argument(
        '--no-download',
        action='store_true',
        help='do not fetch opencv-doc with apt-get')
    parser.add_argument(
        '--step',
        type=int,
        default=4,
        help='detect people on every STEP-th frame')
    parser.add_argument(
        '--heldout-frac',
        type=float,
        default=0.15,
        help='fraction of the frames, at the end, held out')
    parser.add_argument(
        '--gap-frames',
        type=int,
        default=50,
        help='frames dropped before the held-out part')
    parser.add_argument(
        '--crop-size',
        type=int,
        nargs=2,
        default=[256, 128],
        metavar=('H', 'W'),
        help='size of the person crops')
    parser.add_argument(
        '--reid-min-gap',
        type=int,
        default=50,
        help='frames between a held-out query and its gallery images')
    parser.add_argument(
        '--max-frames',
        type=int,
        help='use only the first frames (quick runs)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        video = find_vtest_video(
            args.video,
            cache_dir=args.cache_dir,
            download=not args.no_download)
    except VTestNotFoundError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'video: {video}')
    summary = make_vtest_lup(
        video,
        args.out,
        step=args.step,
        heldout_frac=args.heldout_frac,
        gap_frames=args.gap_frames,
        crop_size=tuple(args.crop_size),
        max_frames=args.max_frames,
        reid_min_gap=args.reid_min_gap)
    reid = summary['reid']
    print(f"frames: {summary['frames']} in the video, "
          f"{summary['sampled']} read for detection (every {args.step}th)\n"
          f"boxes: {summary['raw_boxes']} raw HOG detections, "
          f"{summary['boxes']} after NMS and filtering, "
          f"{summary['tracks']} tracks\n"
          f"crops: {summary['train']} train, {summary['heldout']} heldout, "
          f"{summary['dropped']} dropped (gap before the held-out part)\n"
          f"backgrounds: {summary['backgrounds']}\n"
          f"ReID (heldout_reid/, Market-1501 layout): {reid['queries']} "
          f"queries, {reid['gallery']} gallery images of their tracks "
          f"{reid['min_gap']}+ frames later ({reid['unused']} held-out "
          f"crops unused: short tracks, or too close to the query)\n"
          f"wrote {args.out}/{{train,heldout,heldout_reid,backgrounds,"
          f"meta.json}} in "
          f"{summary['seconds']:.1f} s")
    return 0


if __name__ == '__main__':
    sys.exit(main())
