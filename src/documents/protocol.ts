/** Messages between the document renderer and its worker thread. */

export interface RenderJob {
  pdf: ArrayBuffer;
  maxPages: number;
  totalPixels: number;
  maxPagePixels: number;
  minPagePixels: number;
  maxPageInches: number;
  unit: number;
}

export type RenderReply =
  | { type: 'ready' }
  | { type: 'info'; pages: number }
  | { type: 'page'; index: number; width: number; height: number; rgb: ArrayBuffer }
  | { type: 'done' }
  | {
      type: 'error';
      code: 'invalid_document' | 'document_encrypted' | 'too_many_pages' | 'document_page_too_large';
      message: string;
    };
