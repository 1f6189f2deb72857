import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { iccDescription, isSrgbProfile } from '../../src/images/icc.js';

const profileOf = async (name: string) =>
  (
    await sharp({ create: { width: 2, height: 2, channels: 3, background: '#808080' } })
      .withIccProfile(name)
      .jpeg()
      .toBuffer()
      .then((b) => sharp(b).metadata())
  ).icc!;

test('an sRGB profile is recognised by its description; P3 and CMYK are not sRGB', async () => {
  const srgb = await profileOf('srgb');
  assert.match(iccDescription(srgb) ?? '', /^sRGB/);
  assert.equal(isSrgbProfile(srgb), true);
  assert.equal(isSrgbProfile(await profileOf('p3')), false);
  assert.equal(isSrgbProfile(await profileOf('cmyk')), false);
});

test('truncated or garbage profiles are "not sRGB" without throwing', async () => {
  const srgb = await profileOf('srgb');
  assert.equal(isSrgbProfile(undefined), false);
  assert.equal(isSrgbProfile(Buffer.alloc(10)), false);
  for (let cut = 0; cut < srgb.length; cut += 7) assert.doesNotThrow(() => isSrgbProfile(srgb.subarray(0, cut)));
  const mangled = Buffer.from(srgb);
  mangled.writeUInt32BE(0xffffffff, 128); // absurd tag count
  assert.doesNotThrow(() => isSrgbProfile(mangled));
  // every 4-byte field of the header and tag area set to odd and huge values (found by the fuzz: an odd UTF-16 length)
  for (let at = 0; at + 4 <= Math.min(srgb.length, 400); at += 2) {
    for (const v of [1, 3, 0x7fffffff, 0xffffffff]) {
      const b = Buffer.from(srgb);
      b.writeUInt32BE(v, at);
      assert.doesNotThrow(() => isSrgbProfile(b), `field at ${at} = ${v}`);
    }
  }
  for (let at = 0; at < srgb.length; at++) {
    const b = Buffer.from(srgb);
    b[at] = b[at]! ^ 0x01;
    assert.doesNotThrow(() => isSrgbProfile(b), `bit flip at ${at}`);
  }
});
