/**
 * A file in a message: an image's preview (the thumbnail its sender sealed with the message), or the
 * file's name and size; Open (an image, full size) or Save (any other file), with a progress bar while
 * it downloads, decrypts and is checked; what de-identification removed before it was encrypted, or, on
 * an image sent with its metadata, a warning that it may carry its location; and a plain reason when an
 * upload or a download failed (too large, quota, tampered…).
 */
import { h } from '../dom.js';
import type { ViewContext } from '../context.js';
import type { HistoryItem } from '../history.js';
import { metadataWarning } from '../words.js';

/** "2.4 MB". */
export function fileSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** Object URLs of thumbnails shown, by attachment id (kept for the page's life: they are small). */
const thumbnails = new Map<string, string>();

export function attachmentBlock(ctx: ViewContext, item: HistoryItem): HTMLElement | false {
  const a = item.attachment;
  const file = a ? { name: a.name ?? 'file', size: a.size, mediaType: a.mediaType } : item.pendingFile;
  if (!file) return false;
  const image = file.mediaType.startsWith('image/');
  let preview: HTMLElement | false = false;
  const client = ctx.client();
  if (a && image && client) {
    let url = thumbnails.get(a.id);
    const thumb = url ? undefined : client.attachments.thumbnail(a);
    if (!url && thumb) {
      url = URL.createObjectURL(new Blob([thumb.bytes as BlobPart], { type: thumb.mediaType }));
      thumbnails.set(a.id, url);
    }
    if (url) preview = h('img', { class: 'thumb', src: url, alt: `Preview of ${file.name}` });
  }
  const transfer = item.transfer;
  const progress =
    transfer && 'done' in transfer
      ? h('progress', { max: '1', value: String(transfer.done), 'aria-label': `${transfer.phase === 'upload' ? 'Uploading' : 'Downloading'} ${file.name}` })
      : false;
  const failed = transfer && 'failed' in transfer ? h('p', { class: 'file-error', role: 'alert' }, transfer.failed) : false;
  let open: HTMLElement | false = false;
  if (a && !(transfer && 'done' in transfer)) {
    const button = h('button', { type: 'button', class: 'open-file', 'aria-label': `${image ? 'Open' : 'Save'} ${file.name}` }, image ? 'Open' : 'Save');
    button.addEventListener('click', () => ctx.actions.openAttachment(item));
    open = button;
  }
  const removed = a?.removedMetadata?.length ? h('p', { class: 'metadata-note' }, `Metadata removed before sending: ${a.removedMetadata.join(', ')}.`) : false;
  // Announced once by the element's live region: this node is redrawn with every progress step.
  // The sender's own report while sending, else what the sender sealed with the file (recipients warn too).
  const warning = item.metadataWarning ?? (a?.metadataKept ? metadataWarning({ status: 'not-removed', ...a.metadataKept }) : undefined);
  const kept = warning ? h('p', { class: 'metadata-warning' }, h('span', { 'aria-hidden': 'true' }, '⚠ '), warning) : false;
  return h(
    'div',
    { class: 'file' },
    preview,
    h('p', { class: 'file-name' }, `${file.name} · ${fileSize(file.size)}`),
    progress,
    open,
    failed,
    kept,
    removed,
  );
}

/** The full-size image, in a dialog. */
export function imageViewer(url: string, name: string, titleId: string, close: HTMLButtonElement): HTMLElement {
  return h(
    'div',
    { class: 'dialog image-view', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': titleId, tabindex: '-1' },
    h('h2', { id: titleId }, name),
    h('img', { class: 'full', src: url, alt: name }),
    h('div', { class: 'actions' }, close),
  );
}
