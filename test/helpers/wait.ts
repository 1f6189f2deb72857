/** Poll until cond() is true; throws with `what` if it is still false after `ms`. */
export async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Read a whole fetch body as text (SSE streams included). */
export async function readAll(res: Response): Promise<string> {
  return await res.text();
}

/** The data payloads of an SSE text, in order. */
export function sseData(text: string): string[] {
  return text
    .split(/\n\n/)
    .map((block) =>
      block
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n'),
    )
    .filter((d) => d.length > 0);
}

/** The comment lines of an SSE text, in order. */
export function sseComments(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(': '))
    .map((l) => l.slice(2));
}
