/**
 * What counts as personal data to mask, and how each kind is masked. Every pattern is anchored
 * on both sides (no digit, or no e-mail character, next to it), and numbers are validated (the
 * ID check digit, Luhn for cards), so ordinary numbers (prices, dates, order numbers) pass.
 */

export const PII_KINDS = ['id_card', 'bank_card', 'phone', 'email'] as const;
export type PiiKind = (typeof PII_KINDS)[number];

/** GB 11643: weights of the first 17 digits, and the check character for the sum mod 11. */
const ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK = '10X98765432';

export function validIdNumber(id: string): boolean {
  if (!/^\d{17}[\dXx]$/.test(id)) return false;
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(id[i]) * ID_WEIGHTS[i]!;
  if (ID_CHECK[sum % 11] !== id[17]!.toUpperCase()) return false;
  // Birth date: YYYYMMDD from 1900 on, month and day in range.
  const y = Number(id.slice(6, 10));
  const m = Number(id.slice(10, 12));
  const d = Number(id.slice(12, 14));
  return y >= 1900 && y <= 2100 && m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

export function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let n = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      n *= 2;
      if (n > 9) n -= 9;
    }
    sum += n;
  }
  return sum % 10 === 0;
}

const star = (n: number) => '*'.repeat(n);

interface Detector {
  kind: PiiKind;
  re: RegExp;
  /** The masked text, or undefined when the match is not really this kind (a check digit fails). */
  mask(match: string): string | undefined;
}

/**
 * In order of precedence: an 18-digit ID could also pass Luhn, so IDs are looked for first; a
 * masked stretch is not looked at again.
 */
const DETECTORS: Detector[] = [
  {
    kind: 'id_card',
    re: /(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])/g,
    mask: (m) => (validIdNumber(m) ? m.slice(0, 6) + star(8) + m.slice(14) : undefined),
  },
  {
    kind: 'bank_card',
    // 16 to 19 digits, bare or in groups of four (and a last of up to three) split by one space or hyphen; issuers' first digits 3-6.
    re: /(?<![\d-])[3-6]\d{3}(?:[ -]?\d{4}){3}(?:[ -]?\d{1,3})?(?![\d-])/g,
    mask(m) {
      const digits = m.replace(/[ -]/g, '');
      if (digits.length < 16 || digits.length > 19 || !luhn(digits)) return undefined;
      return digits.slice(0, 6) + star(digits.length - 10) + digits.slice(-4);
    },
  },
  {
    kind: 'phone',
    // Mainland mobile numbers, optionally after +86 / 86; the country code is kept as written.
    re: /(?<!\d)(?:\+?86[ -]?)?1[3-9]\d{9}(?!\d)/g,
    mask: (m) => m.slice(0, m.length - 8) + star(4) + m.slice(-4),
  },
  {
    kind: 'email',
    re: /(?<![\w.%+-])[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-]|\.[A-Za-z0-9])/g,
    mask: (m) => m[0] + '***' + m.slice(m.indexOf('@')),
  },
];

/** Mask every kind in `kinds` found in `text`; `found` is called once per masked item. */
export function maskText(text: string, kinds: ReadonlySet<PiiKind>, found?: (kind: PiiKind) => void): string {
  let out = text;
  for (const d of DETECTORS) {
    if (!kinds.has(d.kind)) continue;
    out = out.replace(d.re, (m) => {
      const masked = d.mask(m);
      if (masked === undefined) return m;
      found?.(d.kind);
      return masked;
    });
  }
  return out;
}

const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';

/** Start of the trailing number-like run of `text` (digits, single separators between digits, a final X, a leading +). */
function numberRunStart(text: string): number {
  let i = text.length;
  if ((text[i - 1] === 'X' || text[i - 1] === 'x') && isDigit(text[i - 2])) i--;
  if ((text[i - 1] === ' ' || text[i - 1] === '-') && isDigit(text[i - 2])) i--;
  // Hand-written rather than a regex: nested quantifiers over long digit runs backtrack badly.
  while (
    i > 0 &&
    (isDigit(text[i - 1]) || ((text[i - 1] === ' ' || text[i - 1] === '-') && isDigit(text[i - 2]) && isDigit(text[i])))
  )
    i--;
  if (text[i - 1] === '+') i--;
  return i;
}

/** Most digits any number match holds: a 19-digit card, or 86 and an 11-digit mobile number. */
const MAX_DIGITS = 19;

/**
 * Where the shortest tail of `text` starts that could still grow into a match (so it must wait for
 * more text), or text.length when nothing may. `before` is the character emitted just before `text`.
 */
export function heldFrom(text: string, kinds: ReadonlySet<PiiKind>, before = ''): number {
  let from = text.length;
  if (kinds.has('id_card') || kinds.has('bank_card') || kinds.has('phone')) {
    const start = numberRunStart(text);
    const run = text.slice(start);
    const digits = run.replace(/\D/g, '').length;
    const prev = start > 0 ? text[start - 1] : before.slice(-1);
    // Glued to a digit already sent, or longer than any match: it can never become one.
    if (run.length > 0 && !isDigit(prev) && digits <= MAX_DIGITS) from = start;
  }
  if (kinds.has('email')) {
    // A trailing e-mail-like word, with or without its @domain yet.
    const m = /[\w.%+-]+(?:@[A-Za-z0-9.-]*)?$/.exec(text);
    if (m && m[0].length <= 254) from = Math.min(from, m.index);
  }
  return from;
}
