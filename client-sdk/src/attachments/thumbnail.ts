/**
 * Thumbnails made on the device, from the de-identified image: at most 320 pixels on the long side,
 * JPEG, sealed inline in the message. They are drawn pixels re-encoded by the browser's canvas, so they
 * carry no metadata at all (not even the orientation: it is applied to the pixels).
 *
 * In browsers only (`createImageBitmap` with `imageOrientation: 'from-image'`, and `OffscreenCanvas`). In
 * Node no thumbnail is made: decoding there needs a native dependency (sharp) or pure-JS decoders
 * (`jpeg-js` and `pngjs`: no WebP, no orientation, about a second and 50 MB of RGBA for a 12-megapixel
 * photo, and `jpeg-js` barely maintained) for clients that are mostly bots and integrations; recipients
 * show the file's name until they open it.
 */
import { AttachmentLimits } from '@curbside/shared';

/** A thumbnail made on the device (e.g. by the SDK's de-identification), sent inline in the sealed message. */
export interface AttachmentThumbnail {
  bytes: Uint8Array;
  mediaType: string;
  width: number;
  height: number;
}

const MAX_SIDE = 320;

/**
 * A JPEG thumbnail of an image, at most 320 px on its long side and within the sealed message's limit,
 * drawn upright (the EXIF orientation applied) on white (transparent areas would turn black in a JPEG).
 * Make it from the de-identified image (`stripImageMetadata`).
 *
 * @example
 * ```ts
 * const clean = stripImageMetadata(bytes);
 * const thumbnail = await makeThumbnail(clean.bytes, clean.mediaType); // undefined in Node
 * ```
 * @param bytes - the image file
 * @param mediaType - its media type, e.g. `image/jpeg`
 * @returns the thumbnail, or undefined where there is no canvas (Node) or the browser cannot decode the image
 */
export async function makeThumbnail(bytes: Uint8Array, mediaType: string): Promise<AttachmentThumbnail | undefined> {
  if (typeof createImageBitmap !== 'function' || typeof OffscreenCanvas === 'undefined') return undefined;
  try {
    const bitmap = await createImageBitmap(new Blob([bytes as BlobPart], { type: mediaType }), { imageOrientation: 'from-image' });
    const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
    const width = Math.max(1, Math.round(bitmap.width * scale));
    const height = Math.max(1, Math.round(bitmap.height * scale));
    const canvas = new OffscreenCanvas(width, height);
    const context = canvas.getContext('2d')!;
    context.fillStyle = '#fff';
    context.fillRect(0, 0, width, height);
    context.drawImage(bitmap, 0, 0, width, height);
    bitmap.close();
    for (const quality of [0.8, 0.6, 0.4]) {
      const out = new Uint8Array(await (await canvas.convertToBlob({ type: 'image/jpeg', quality })).arrayBuffer());
      if (out.length <= AttachmentLimits.MAX_THUMBNAIL_BYTES) return { bytes: out, mediaType: 'image/jpeg', width, height };
    }
    return undefined;
  } catch {
    // An image the browser cannot decode gets no thumbnail; the file itself still goes.
    return undefined;
  }
}
