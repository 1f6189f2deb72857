/** Short messages above the composer (a rejected image, storage full), each dismissable. */
import { useCallback, useState } from 'preact/hooks';
import { newId } from '../ids';

export interface Notice {
  id: string;
  text: string;
}

export function useNotices() {
  const [notices, setNotices] = useState<Notice[]>([]);
  const add = useCallback(
    (...texts: string[]) => setNotices((n) => [...n, ...texts.map((text) => ({ id: newId('n'), text }))]),
    [],
  );
  const dismiss = useCallback((id: string) => setNotices((all) => all.filter((x) => x.id !== id)), []);
  const clear = useCallback(() => setNotices([]), []);
  return { notices, add, dismiss, clear };
}
