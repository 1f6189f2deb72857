/** Real PDFs for the document tests, written with MuPDF's own PDF writer. */
import * as mupdf from 'mupdf';

export interface PdfOptions {
  pages?: number;
  /** Page size in points (1/72 inch); US Letter by default. */
  width?: number;
  height?: number;
  /** Written on every page, followed by the page number. */
  text?: string;
  /** Encrypt with this user password (AES-256). */
  password?: string;
}

export function makePdf(opts: PdfOptions = {}): Buffer {
  const { pages = 1, width = 612, height = 792, text = 'Page', password } = opts;
  const doc = new mupdf.PDFDocument();
  const font = doc.addSimpleFont(new mupdf.Font('Helvetica'));
  for (let i = 0; i < pages; i++) {
    const resources = doc.addObject({ Font: { F1: font } });
    // A black bar across the top and a line of text, so a rendered page is not blank.
    const contents = `0 0 0 rg 36 ${height - 60} ${width - 72} 24 re f BT /F1 24 Tf 72 ${height / 2} Td (${text} ${i + 1}) Tj ET`;
    doc.insertPage(-1, doc.addPage([0, 0, width, height], 0, resources, contents));
  }
  const options = password ? `encrypt=aes-256,user-password=${password},owner-password=${password}x` : '';
  const out = Buffer.from(doc.saveToBuffer(options).asUint8Array());
  doc.destroy();
  return out;
}

/**
 * A valid PDF of `pages` blank Letter pages, written as text (MuPDF's writer takes half a minute
 * over 10,000 pages; this takes milliseconds): catalog, one page tree, one page object per page.
 */
export function manyPagesPdf(pages: number): Buffer {
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    `<< /Type /Pages /Count ${pages} /Kids [${Array.from({ length: pages }, (_, i) => `${i + 3} 0 R`).join(' ')}] >>`,
  ];
  for (let i = 0; i < pages; i++) objects.push('<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>');
  // ASCII only, so string length is byte offset.
  let out = '%PDF-1.7\n';
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${body}\nendobj\n`;
  });
  const xref = out.length;
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}
