/**
 * A tiny byte-level BPE tokenizer in Hugging Face's tokenizer.json format, trained here on a
 * fixed corpus (deterministic), with SmolVLM's special tokens added on top. Byte-level means
 * every string round-trips, including emoji and broken UTF-8 boundaries.
 */

/** GPT-2's reversible byte -> printable-unicode map. */
export function bytesToUnicode(): Map<number, string> {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  return new Map(bs.map((b, i) => [b, String.fromCodePoint(cs[i]!)]));
}

const PRETOKENIZE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

const CORPUS = [
  'The image shows a red square on a white background.',
  'A small cat sits on the wooden table next to a cup of coffee.',
  'There is a dog in the park, and the sky is blue with a few clouds.',
  'What is in this picture? Describe the image in one sentence.',
  'The photo shows two people walking along the beach at sunset.',
  'User: What color is the car? Assistant: The car is green.',
  'The text in the image reads: OPEN 24 HOURS. The numbers are 1, 2, 3 and 42.',
  'A chart with three bars: the first is tall, the second is short, the third is medium.',
  'Compare the two images: the first one is brighter than the second one.',
  'It is a diagram of a house with a door, two windows and a roof.',
].join('\n');

export interface TinyTokenizer {
  tokenizerJson: object;
  vocabSize: number;
  specialIds: Record<string, number>;
}

/** Tokens that every SmolVLM-family tokenizer knows; ids are assigned after the BPE vocab. */
export const SPECIAL_TOKENS = [
  '<|endoftext|>',
  '<|im_start|>',
  '<|im_end|>',
  '<fake_token_around_image>',
  '<image>',
  '<end_of_utterance>',
  '<global-img>',
  ...Array.from({ length: 16 }, (_, i) => `<row_${Math.floor(i / 4) + 1}_col_${(i % 4) + 1}>`),
];

/**
 * `padTo` grows the vocabulary to that many ids with filler tokens (" w0", " w1", ...) that
 * encoding never produces but decoding can show: a model of a real vocabulary size (its embedding
 * table and LM head) can then stream whatever ids its random weights pick.
 */
export function buildTokenizer(
  numMerges: number,
  padTo = 0,
  layout: { specials?: readonly string[]; specialsFrom?: number } = {},
): TinyTokenizer {
  const byteMap = bytesToUnicode();
  const encoder = new TextEncoder();
  // Word counts over the corpus, each word as a list of byte-level symbols.
  const wordCounts = new Map<string, number>();
  for (const m of CORPUS.matchAll(PRETOKENIZE)) {
    const w = [...encoder.encode(m[0])].map((b) => byteMap.get(b)!).join('\u0000');
    wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
  }
  let words = [...wordCounts.entries()].map(([w, c]) => ({ symbols: w.split('\u0000'), count: c }));

  const vocab = new Map<string, number>();
  for (let b = 0; b < 256; b++) {
    const ch = byteMap.get(b)!;
    vocab.set(ch, vocab.size);
  }
  const merges: string[] = [];
  for (let step = 0; step < numMerges; step++) {
    const pairs = new Map<string, number>();
    for (const { symbols, count } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = symbols[i] + ' ' + symbols[i + 1];
        pairs.set(key, (pairs.get(key) ?? 0) + count);
      }
    }
    if (!pairs.size) break;
    // Highest count wins; ties break on the pair's text so the result never depends on Map order.
    const [best] = [...pairs.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))[0]!;
    const [left, right] = best.split(' ') as [string, string];
    merges.push(best);
    vocab.set(left + right, vocab.size);
    words = words.map(({ symbols, count }) => {
      const out: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && symbols[i] === left && symbols[i + 1] === right) {
          out.push(left + right);
          i++;
        } else out.push(symbols[i]!);
      }
      return { symbols: out, count };
    });
  }

  const space = byteMap.get(0x20)!;
  let filler = 0;
  const pad = (to: number): void => {
    while (vocab.size < to) vocab.set(`${space}w${(filler++).toString(36)}`, vocab.size);
  };
  // A real model's special tokens sit at its own ids (GLM's after 59,246 ordinary ones).
  pad(layout.specialsFrom ?? 0);
  const specialIds: Record<string, number> = {};
  const addedTokens = (layout.specials ?? SPECIAL_TOKENS).map((content) => {
    const id = vocab.size;
    vocab.set(content, id);
    specialIds[content] = id;
    return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
  });
  pad(padTo);

  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges,
    },
  };
  return { tokenizerJson, vocabSize: vocab.size, specialIds };
}
