/**
 * What kind of document the bytes are, from the bytes (never the file name or declared type),
 * and for Office files, what their zip archive claims to unpack to, before anything opens them.
 */
import { GlimpseError } from '../core/index.js';

export type DocumentKind = 'pdf' | 'office';

const OLE2 = Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);

function invalid(message: string): GlimpseError {
  return new GlimpseError('invalid_document', message, { param: 'file' });
}

/** 'pdf', or 'office' (OOXML or OpenDocument zip, or a legacy OLE2 .doc/.ppt/.xls); anything else is refused. */
export function sniffDocument(data: Buffer, maxUnpackedBytes: number): DocumentKind {
  // PDF readers accept the header anywhere in the first kilobyte; so does this.
  if (data.subarray(0, 1024).includes('%PDF-')) return 'pdf';
  if (data.subarray(0, 8).equals(OLE2)) return 'office';
  if (data.readUInt32LE(0) === 0x04034b50) {
    const entries = zipEntries(data);
    if (!entries.some((e) => e.name === '[Content_Types].xml' || e.name === 'mimetype')) {
      throw invalid('The file is a zip archive but not an Office document (no [Content_Types].xml or mimetype entry).');
    }
    const unpacked = entries.reduce((sum, e) => sum + e.size, 0);
    if (unpacked > maxUnpackedBytes) {
      throw new GlimpseError(
        'document_too_large',
        `The Office file would unpack to ${unpacked} bytes; the limit (documents.maxUnpackedBytes) is ${maxUnpackedBytes}.`,
        { param: 'file' },
      );
    }
    return 'office';
  }
  throw invalid('The file is not a PDF or an Office document (pptx, docx, xlsx, odp, odt, ods, ppt, doc, xls).');
}

/**
 * Names and declared unpacked sizes from a zip's central directory. Only the directory is read
 * (no entry is inflated), which is all a zip-bomb check needs; a library that extracts would do
 * more than is wanted here. ZIP64 sizes count as unlimited: no Office file within the limits needs them.
 */
function zipEntries(data: Buffer): Array<{ name: string; size: number }> {
  const EOCD = 0x06054b50;
  const CENTRAL = 0x02014b50;
  let end = -1;
  for (let i = data.length - 22; i >= Math.max(0, data.length - 22 - 0xffff); i--) {
    if (data.readUInt32LE(i) === EOCD) {
      end = i;
      break;
    }
  }
  if (end < 0) throw invalid('The Office file is a damaged zip archive (no end of central directory).');
  const count = data.readUInt16LE(end + 10);
  let at = data.readUInt32LE(end + 16);
  const entries = [];
  for (let n = 0; n < count; n++) {
    if (at + 46 > data.length || data.readUInt32LE(at) !== CENTRAL)
      throw invalid('The Office file is a damaged zip archive (bad central directory).');
    const size = data.readUInt32LE(at + 24);
    const nameLength = data.readUInt16LE(at + 28);
    const skip = nameLength + data.readUInt16LE(at + 30) + data.readUInt16LE(at + 32);
    entries.push({
      name: data.toString('utf8', at + 46, at + 46 + nameLength),
      size: size === 0xffffffff ? Infinity : size,
    });
    at += 46 + skip;
  }
  return entries;
}
