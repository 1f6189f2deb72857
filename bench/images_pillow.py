"""Pillow doing the same work as glimpse's image normalization, for bench/images.ts.

Per file: open, shrink-on-load (draft, as Pillow's own thumbnail does for JPEG), apply EXIF
orientation, convert to RGB (flattening alpha onto white), shrink so the longest edge is at most
MAX_EDGE with Lanczos, encode JPEG q90. Prints one JSON object: images per second, and CPU milliseconds per image (which
other load on the machine barely moves).

usage: python3 images_pillow.py MAX_EDGE SECONDS PROCESSES FILE...
"""
import io
import json
import sys
import time
from multiprocessing import Pool

from PIL import Image, ImageOps


def normalize(path, max_edge):
    with open(path, 'rb') as f:
        data = f.read()
    im = Image.open(io.BytesIO(data))
    im.draft('RGB', (max_edge, max_edge))
    im = ImageOps.exif_transpose(im)
    if im.mode in ('RGBA', 'LA', 'P'):
        im = im.convert('RGBA')
        bg = Image.new('RGB', im.size, (255, 255, 255))
        bg.paste(im, mask=im.split()[-1])
        im = bg
    elif im.mode != 'RGB':
        im = im.convert('RGB')
    im.thumbnail((max_edge, max_edge), Image.LANCZOS)
    out = io.BytesIO()
    im.save(out, 'JPEG', quality=90)
    return im.size


def run(args):
    max_edge, seconds, files = args
    done = 0
    start = time.perf_counter()
    cpu0 = time.process_time()
    while time.perf_counter() - start < seconds:
        normalize(files[done % len(files)], max_edge)
        done += 1
    return done, time.perf_counter() - start, time.process_time() - cpu0


def main():
    max_edge, seconds, procs = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    files = sys.argv[4:]
    for f in files:  # warm up (imports, codec init) outside the timed part
        normalize(f, max_edge)
    if procs == 1:
        done, elapsed, cpu = run((max_edge, seconds, files))
        rate = done / elapsed
    else:
        with Pool(procs) as pool:
            # each worker starts at a different file so the mix stays the same
            results = pool.map(run, [(max_edge, seconds, files[i % len(files):] + files[:i % len(files)]) for i in range(procs)])
        done = sum(r[0] for r in results)
        rate = sum(r[0] / r[1] for r in results)
        cpu = sum(r[2] for r in results)
    print(json.dumps({'images': done, 'imagesPerSecond': rate, 'cpuMsPerImage': cpu * 1000 / done, 'pillow': Image.__version__, 'processes': procs}))


if __name__ == '__main__':
    main()
