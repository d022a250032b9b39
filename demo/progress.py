"""Run one step of the demo with its whole output in a log file and one
progress line on the terminal.

    python demo/progress.py --log FILE --total N --pattern REGEX --label TEXT \
        -- COMMAND [ARGS...]

Each output line of COMMAND (stdout and stderr) goes to FILE; the last
match of REGEX (its first group: how many of the N units are done, e.g.
the training log's ``Iter(train) [ 40/200]``) moves a bar with the time left,
estimated from the time per unit so far. On failure the last 20 lines of
the log and its path are printed, and the command's exit code returned.
"""
import argparse
import re
import subprocess
import sys
import time
from collections import deque


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--log', required=True, help='the whole output')
    parser.add_argument('--total', type=int, required=True)
    parser.add_argument('--pattern', required=True, help='(\\d+): units done')
    parser.add_argument('--label', required=True)
    parser.add_argument('command', nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.command[:1] == ['--']:
        args.command = args.command[1:]
    return args


def minutes(seconds: float) -> str:
    return f'{int(seconds // 60)} min {int(seconds % 60):02d} s'


def bar(label: str, done: int, total: int, elapsed: float) -> str:
    width = 30
    filled = int(width * done / max(total, 1))
    left = (f'{minutes(elapsed / done * (total - done))} left'
            if done else 'estimating the time left')
    return (f'\r   {label} [{"#" * filled}{"." * (width - filled)}] '
            f'{done}/{total}, {minutes(elapsed)} so far, {left}   ')


def main():
    args = parse_args()
    pattern = re.compile(args.pattern)
    start, done = time.monotonic(), 0
    tail = deque(maxlen=20)
    interactive = sys.stdout.isatty()
    with open(args.log, 'w', buffering=1) as log:  # readable meanwhile
        proc = subprocess.Popen(
            args.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1)
        for line in proc.stdout:
            log.write(line)
            tail.append(line.rstrip('\n'))
            match = pattern.search(line)
            if match and int(match.group(1)) > done:
                done = int(match.group(1))
                text = bar(args.label, done, args.total,
                           time.monotonic() - start)
                # a terminal redraws one line; a file gets one line a step
                print(
                    text if interactive else text.strip(),
                    end='' if interactive else '\n',
                    flush=True)
        code = proc.wait()
    if interactive:
        print()
    if code != 0:
        print(
            f'   {args.label} failed (exit {code}); the last lines of '
            f'{args.log}:',
            file=sys.stderr)
        print('\n'.join(tail), file=sys.stderr)
    sys.exit(code)


if __name__ == '__main__':
    main()
