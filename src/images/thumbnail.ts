/**
 * Small views of rendered pages and sampled frames, for a client that shows what the model was
 * given (the page's strip). Made from the pixels already rendered for the model, so asking for
 * them costs one small resize each, never a second render.
 */
import sharp from 'sharp';

/** Longest side of a thumbnail: enough to tell pages apart in a strip, a few kilobytes each. */
const THUMBNAIL_EDGE = 160;

/** A JPEG data URL of 8-bit RGB pixels, at most THUMBNAIL_EDGE on its longest side. */
export async function thumbnailUrl(rgb: Buffer, width: number, height: number): Promise<string> {
  const jpeg = await sharp(rgb, { raw: { width, height, channels: 3 } })
    .resize({ width: THUMBNAIL_EDGE, height: THUMBNAIL_EDGE, fit: 'inside', withoutEnlargement: true })
    .jpeg({ quality: 70 })
    .toBuffer();
  return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
}
