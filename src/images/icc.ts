/**
 * Just enough ICC parsing to tell whether an embedded profile is sRGB. Converting sRGB to sRGB
 * is an identity that still costs a full colour transform per pixel (a third of the decode time
 * of a 12 MP photo), so normalization skips it; any other profile (Display P3, Adobe RGB, CMYK)
 * is converted. Anything unparseable counts as "not sRGB", which only costs time.
 */

function tagText(icc: Buffer, offset: number, size: number): string | null {
  if (offset + size > icc.length || size < 12) return null;
  const type = icc.toString('latin1', offset, offset + 4);
  if (type === 'desc') {
    // ICC v2 textDescriptionType: type, reserved, ASCII count, ASCII text
    const count = icc.readUInt32BE(offset + 8);
    if (count > size - 12) return null;
    return icc.toString('latin1', offset + 12, offset + 12 + count).replace(/\0+$/, '');
  }
  if (type === 'mluc') {
    // ICC v4 multiLocalizedUnicodeType: first record's UTF-16BE string
    const records = icc.readUInt32BE(offset + 8);
    if (records < 1 || size < 28) return null;
    const len = icc.readUInt32BE(offset + 20);
    const at = icc.readUInt32BE(offset + 24);
    if (at + len > size || len > 512) return null;
    // UTF-16 needs an even byte count; a damaged profile may not have one.
    const utf16be = Buffer.from(icc.subarray(offset + at, offset + at + (len & ~1)));
    return utf16be.swap16().toString('utf16le');
  }
  return null;
}

/** The profile's description, when it has one that can be read. */
export function iccDescription(icc: Buffer): string | null {
  if (icc.length < 132 || icc.toString('latin1', 36, 40) !== 'acsp') return null;
  const tags = icc.readUInt32BE(128);
  for (let i = 0; i < tags && 132 + i * 12 + 12 <= icc.length; i++) {
    const at = 132 + i * 12;
    if (icc.toString('latin1', at, at + 4) === 'desc')
      return tagText(icc, icc.readUInt32BE(at + 4), icc.readUInt32BE(at + 8));
  }
  return null;
}

/** True for an RGB profile that describes itself as sRGB (IEC 61966-2.1 and its common builds). */
export function isSrgbProfile(icc: Buffer | undefined): boolean {
  if (!icc || icc.length < 132 || icc.toString('latin1', 16, 20) !== 'RGB ') return false;
  try {
    const desc = iccDescription(icc);
    return desc !== null && /^\s*sRGB\b/i.test(desc);
  } catch {
    // A profile this parser cannot walk is simply not known to be sRGB: libvips converts it.
    return false;
  }
}
