"""Pillow doing the same work as glimpse's image normalization, for bench/images.ts.

Per file: open, shrink-on-load (draft, as Pillow's own thumbnail does for JPEG), apply EXIF
orientation, convert to RGB (flattening alpha onto white), shrink so the longest edge is at most
MAX_EDGE with Lanczos, and hand over the pixels (mode "pixels", what an in-process model takes) or
also encode JPEG q90 (mode "encoded", what a model behind an HTTP API takes). Prints one JSON object:
images per second, and CPU milliseconds per image (which other load on the machine barely moves).
Mode "perfile" prints milliseconds per file for both modes and for decoding alone. Mode "plain"
is the pixels work without draft, the way Python model servers commonly load images
(Image.open(...).convert('RGB'), then resize): a full-size decode, for context only; the
comparison that counts is against the best Pillow can do (draft).

usage: python3 images_pillow.py MAX_EDGE SECONDS PROCESSES pixels|encoded|plain|perfile FILE...
"""
import io
import json
import sys
import time
from multiprocessing import Pool

from PIL import Image, ImageOps


def normalize(path, max_edge, encode=True, draft=True):
    with open(path, 'rb') as f:
        data = f.read()
    im = Image.open(io.BytesIO(data))
    if draft:
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
    pixels = im.tobytes()
    if encode:
        out = io.BytesIO()
        im.save(out, 'JPEG', quality=90)
    return im.size, len(pixels)


def decode_only(path, max_edge):
    """The codec floor: read the file and decode it (at the draft scale for JPEG), nothing else."""
    with open(path, 'rb') as f:
        data = f.read()
    im = Image.open(io.BytesIO(data))
    im.draft('RGB', (max_edge, max_edge))
    im.load()


def per_file(max_edge, seconds, files):
    out = {}
    for path in files:
        row = {}
        for name, fn in (('pixels', lambda: normalize(path, max_edge, False)), ('encoded', lambda: normalize(path, max_edge, True)), ('decodeOnly', lambda: decode_only(path, max_edge))):
            fn()
            n, start = 0, time.perf_counter()
            while n < 3 or time.perf_counter() - start < seconds:
                fn()
                n += 1
            row[name] = (time.perf_counter() - start) * 1000 / n
        out[path] = row
    return out


def run(args):
    max_edge, seconds, encode, draft, files = args
    done = 0
    start = time.perf_counter()
    cpu0 = time.process_time()
    while time.perf_counter() - start < seconds:
        normalize(files[done % len(files)], max_edge, encode, draft)
        done += 1
    return done, time.perf_counter() - start, time.process_time() - cpu0


def main():
    max_edge, seconds, procs, mode = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    files = sys.argv[5:]
    if mode == 'perfile':
        print(json.dumps({'perFile': per_file(max_edge, seconds, files), 'pillow': Image.__version__}))
        return
    encode = mode == 'encoded'
    draft = mode != 'plain'
    for f in files:  # warm up (imports, codec init) outside the timed part
        normalize(f, max_edge, encode, draft)
    if procs == 1:
        done, elapsed, cpu = run((max_edge, seconds, encode, draft, files))
        rate = done / elapsed
    else:
        with Pool(procs) as pool:
            # each worker starts at a different file so the mix stays the same
            results = pool.map(run, [(max_edge, seconds, encode, draft, files[i % len(files):] + files[:i % len(files)]) for i in range(procs)])
        done = sum(r[0] for r in results)
        rate = sum(r[0] / r[1] for r in results)
        cpu = sum(r[2] for r in results)
    print(json.dumps({'images': done, 'imagesPerSecond': rate, 'cpuMsPerImage': cpu * 1000 / done, 'pillow': Image.__version__, 'processes': procs}))


if __name__ == '__main__':
    main()
