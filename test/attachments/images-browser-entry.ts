/**
 * The page side of deidentify-browser.test.ts, bundled by esbuild for Chromium: the SDK's
 * de-identification and thumbnails run in the page, and the page's own decoder says how images look.
 * Everything is reached through `globalThis.__curbsideImages` with page.evaluate; bytes travel as base64.
 */
import { stripImageMetadata } from '../../client-sdk/src/attachments/deidentify.js';
import { makeThumbnail } from '../../client-sdk/src/attachments/thumbnail.js';

const fromBase64 = (b64: string) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export interface PageStrip {
  b64: string;
  removed: string[];
  orientation: number;
}
export interface PageThumbnail {
  b64: string;
  mediaType: string;
  width: number;
  height: number;
}

const api = {
  /** stripImageMetadata, in the browser. */
  strip(b64: string): PageStrip {
    const out = stripImageMetadata(fromBase64(b64));
    return { b64: toBase64(out.bytes), removed: out.removed, orientation: out.orientation };
  },
  /** How an <img> shows the image: its size as displayed (the EXIF orientation applied, as browsers do). */
  async display(b64: string, mediaType: string): Promise<{ width: number; height: number }> {
    const img = new Image();
    img.src = `data:${mediaType};base64,${b64}`;
    await img.decode();
    return { width: img.naturalWidth, height: img.naturalHeight };
  },
  async thumbnail(b64: string, mediaType: string): Promise<PageThumbnail | null> {
    const t = await makeThumbnail(fromBase64(b64), mediaType);
    return t ? { b64: toBase64(t.bytes), mediaType: t.mediaType, width: t.width, height: t.height } : null;
  },
  /** The RGBA of one pixel of a decoded image. */
  async pixel(b64: string, mediaType: string, x: number, y: number): Promise<number[]> {
    const bitmap = await createImageBitmap(new Blob([fromBase64(b64) as BlobPart], { type: mediaType }));
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const context = canvas.getContext('2d')!;
    context.drawImage(bitmap, 0, 0);
    return [...context.getImageData(x, y, 1, 1).data];
  },
};

(globalThis as unknown as { __curbsideImages: typeof api }).__curbsideImages = api;
export type ImagesApi = typeof api;
