/**
 * Incremental Server-Sent Events parser: bytes in, complete `data` payloads out.
 * Handles CRLF/LF, multi-line data fields, comments and events split across chunks.
 */
export async function* parseSseData(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, nl);
      const sepLen = buffer.startsWith('\r\n', nl) ? 2 : 1;
      // A lone '\r' at the very end may be the first half of '\r\n': wait for more bytes.
      if (buffer[nl] === '\r' && sepLen === 1 && nl === buffer.length - 1) break;
      buffer = buffer.slice(nl + sepLen);
      if (line === '') {
        if (data.length) yield data.join('\n');
        data = [];
      } else if (line.startsWith('data:')) {
        data.push(line.slice(line[5] === ' ' ? 6 : 5));
      }
      // comments (':'), 'event:', 'id:' and 'retry:' lines carry nothing we need
    }
  }
  buffer += decoder.decode();
  if (buffer.startsWith('data:')) data.push(buffer.slice(buffer[5] === ' ' ? 6 : 5));
  if (data.length) yield data.join('\n');
}
