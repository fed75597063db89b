/**
 * Thumbnails made on the device, from the de-identified image (so they carry no metadata either): at
 * most 320 pixels on the long side, JPEG, sealed inline in the message. In browsers only
 * (`createImageBitmap` and `OffscreenCanvas`, which apply the image's orientation); in Node there is no
 * image decoder without a native dependency, so no thumbnail is made there and recipients show the file's
 * name until they open it.
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

export async function makeThumbnail(bytes: Uint8Array, mediaType: string): Promise<AttachmentThumbnail | undefined> {
  if (typeof createImageBitmap !== 'function' || typeof OffscreenCanvas === 'undefined') return undefined;
  try {
    const bitmap = await createImageBitmap(new Blob([bytes as BlobPart], { type: mediaType }), { imageOrientation: 'from-image' });
    const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
    const width = Math.max(1, Math.round(bitmap.width * scale));
    const height = Math.max(1, Math.round(bitmap.height * scale));
    const canvas = new OffscreenCanvas(width, height);
    canvas.getContext('2d')!.drawImage(bitmap, 0, 0, width, height);
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
