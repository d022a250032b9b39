"""The one JSON of tools/gpu_check.sh: every step's figures, from the
folder its steps wrote (``NAME.status``: return code and seconds;
``NAME.json``: a ``benchmark_pretrain.py --json`` report; ``NAME.xml``:
pytest's junit XML; ``NAME.log``: the output).

    python tools/analysis_tools/gpu_check_report.py PARTS OUT [--seconds S]

Exits 1 when a step failed or a training step's losses are not finite.
"""
import argparse
import glob
import json
import math
import os.path as osp
import sys
import xml.etree.ElementTree as ET

TRAIN_KEYS = ('device', 'precision', 'batch', 'samples_per_s', 's_per_iter',
              'peak_memory_gb', 'gflops_per_sample', 'last_losses')


def read_step(parts, name):
    """One step's figures and whether it passed."""
    with open(osp.join(parts, name + '.status')) as f:
        returncode, seconds = map(int, f.read().split())
    step = dict(returncode=returncode, seconds=seconds)
    ok = returncode == 0
    bench = osp.join(parts, name + '.json')
    if osp.exists(bench):
        with open(bench) as f:
            train = json.load(f)['train']
        step.update({k: train[k] for k in TRAIN_KEYS})
        step['finite_losses'] = all(
            math.isfinite(v) for v in train['last_losses'].values())
        ok = ok and step['finite_losses']
    junit = osp.join(parts, name + '.xml')
    if osp.exists(junit):
        step['tests'] = {}
        for case in ET.parse(junit).iter('testcase'):
            outcome = next((tag for tag in ('failure', 'error', 'skipped')
                            if case.find(tag) is not None), 'passed')
            step['tests'][case.get('name')] = outcome
    if not ok:
        with open(osp.join(parts, name + '.log')) as f:
            step['log_tail'] = f.read()[-3000:]
    return step, ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('parts', help="the folder of the steps' files")
    parser.add_argument('out', help='the JSON to write')
    parser.add_argument('--seconds', type=int, help='the whole run took')
    args = parser.parse_args()
    report = dict(seconds=args.seconds, steps={}, failed=[])
    for status in sorted(glob.glob(osp.join(args.parts, '*.status'))):
        name = osp.basename(status)[:-len('.status')]
        report['steps'][name], ok = read_step(args.parts, name)
        if not ok:
            report['failed'].append(name)
    with open(args.out, 'w') as f:
        json.dump(report, f, indent=1)
    passed = len(report['steps']) - len(report['failed'])
    print(f'gpu_check: {passed} of {len(report["steps"])} steps passed in '
          f'{args.seconds} s; wrote {args.out}' +
          (f'; failed: {", ".join(report["failed"])}'
           if report['failed'] else ''))
    sys.exit(1 if report['failed'] else 0)


if __name__ == '__main__':
    main()
