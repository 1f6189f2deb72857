let idSeq = 0;

/** An id unique within this page's life (messages, notices): time for readability, a counter for uniqueness. */
export function newId(prefix: string): string {
  idSeq += 1;
  return `${prefix}-${Date.now().toString(36)}-${idSeq}`;
}
