/** Mutated, truncated and random inputs for the fuzz tests, from a seeded generator (reproducible). */
import sharp from 'sharp';
import { photo } from './fixtures.js';

export function prng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}

export async function seedImages(): Promise<Buffer[]> {
  const p = () => photo(48, 32, 5);
  const alpha = sharp({
    create: { width: 24, height: 24, channels: 4, background: { r: 10, g: 200, b: 30, alpha: 0.5 } },
  });
  return [
    await p().jpeg().toBuffer(),
    await p().jpeg().withMetadata({ orientation: 6 }).toBuffer(),
    await p().withIccProfile('srgb').jpeg().toBuffer(),
    await p().withIccProfile('p3').png().toBuffer(),
    await p().png().toBuffer(),
    await alpha.png().toBuffer(),
    await p().webp().toBuffer(),
    await p().webp({ lossless: true }).toBuffer(),
    await p().gif().toBuffer(),
    await p().tiff({ compression: 'lzw' }).toBuffer(),
    await p().avif({ effort: 0 }).toBuffer(),
  ];
}

/** One fuzz case: a mutation of a seed image, or random bytes (some behind a real magic number). */
export function mutate(seeds: Buffer[], rand: () => number): { kind: string; data: Buffer } {
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
  const seed = pick(seeds);
  const r = rand();
  if (r < 0.1) {
    const data = Buffer.alloc(Math.floor(rand() * 2048));
    for (let i = 0; i < data.length; i++) data[i] = Math.floor(rand() * 256);
    return { kind: 'random', data };
  }
  if (r < 0.2) {
    const tail = Buffer.alloc(Math.floor(rand() * 512));
    for (let i = 0; i < tail.length; i++) tail[i] = Math.floor(rand() * 256);
    return { kind: 'magic+random', data: Buffer.concat([seed.subarray(0, 16), tail]) };
  }
  if (r < 0.45) return { kind: 'truncated', data: Buffer.from(seed.subarray(0, Math.floor(rand() * seed.length))) };
  const data = Buffer.from(seed);
  if (r < 0.8) {
    const flips = 1 + Math.floor(rand() * 16);
    for (let i = 0; i < flips; i++) data[Math.floor(rand() * data.length)] = Math.floor(rand() * 256);
    return { kind: 'bitflip', data };
  }
  if (r < 0.9) {
    // header fields are where dimensions live: hit the first 64 bytes with 0xff runs
    const at = Math.floor(rand() * Math.min(64, data.length - 4));
    data.fill(0xff, at, at + 1 + Math.floor(rand() * 4));
    return { kind: 'header', data };
  }
  const at = Math.floor(rand() * data.length);
  const cut = Math.floor(rand() * 64);
  return {
    kind: 'splice',
    data: Buffer.concat([
      data.subarray(0, at),
      data.subarray(Math.min(data.length, at + cut)),
      data.subarray(0, Math.floor(rand() * 64)),
    ]),
  };
}
