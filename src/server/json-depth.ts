import { GlimpseError } from '../core/index.js';

/**
 * Refuses JSON text nested deeper than `max` levels of objects and arrays (`maxJsonDepth`), before
 * it is parsed, naming the top-level field it is in. Free-form fields (tool parameters, JSON
 * schemas, chat_template_kwargs) are copied, serialised and hashed on their way to a model, and
 * recursion over a value nested thousands deep overflows the stack. One pass over the text:
 * strings (base64 images are most of a body) are skipped with indexOf, so the check costs a small
 * fraction of JSON.parse. Malformed text is left for JSON.parse to refuse.
 */
export function checkJsonDepth(text: string, max: number, what: string): void {
  let depth = 0;
  let rootIsObject = false;
  let expectKey = false;
  let field: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let end = i;
      for (;;) {
        end = text.indexOf('"', end + 1);
        if (end < 0) return;
        let backslashes = 0;
        while (text.charCodeAt(end - 1 - backslashes) === 0x5c /* \ */) backslashes++;
        if (backslashes % 2 === 0) break;
      }
      if (expectKey) {
        try {
          field = JSON.parse(text.slice(i, end + 1)) as string;
        } catch {
          field = text.slice(i + 1, end);
        }
      }
      expectKey = false;
      i = end;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > max) {
        const where = depth > 2 && rootIsObject && field !== undefined ? `'${field}'` : what;
        throw new GlimpseError(
          'invalid_request',
          `${where[0]!.toUpperCase()}${where.slice(1)} nests objects and arrays deeper than ${max} levels.`,
          { param: where === what ? null : field! },
        );
      }
      if (depth === 1) expectKey = rootIsObject = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    } else if (c === 0x2c /* , */ && depth === 1 && rootIsObject) {
      expectKey = true;
    }
  }
}
